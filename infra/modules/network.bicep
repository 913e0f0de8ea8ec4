// The Function App's outbound path when restrictNetwork is on (main.bicep): a VNet with one subnet delegated to
// Flex Consumption (Microsoft.App/environments), with service endpoints to Storage, Key Vault and Cognitive
// Services. The storage account, the vault and a deployed Azure OpenAI account then deny everything except
// this subnet (and the operator addresses in allowedIpAddresses).
//
// Service endpoints rather than private endpoints: no private DNS zones, no per-endpoint cost, and the same
// "only this subnet" rule on each firewall. What they do not give: the public endpoints still exist (denying
// everyone else), and traffic is identified by subnet, not carried on private IPs. Private endpoints are the
// next step for a tenant that forbids public endpoints altogether (docs/deploy.md).
param vnetName string
param nsgName string
param location string
param tags object = {}

@description('Address space of the VNet.')
param addressPrefix string = '10.40.0.0/16'

@description('The Flex Consumption integration subnet (Microsoft recommends /24 or larger: one address per instance).')
param appSubnetPrefix string = '10.40.0.0/24'

// No custom rules: the defaults (VNet and internet outbound allowed, inbound from outside the VNet denied)
// are what the app needs; an NSG on the subnet is where an operator adds egress rules later.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: nsgName
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          // Azure is making new subnets private (no default outbound access) unless asked; the app must reach the
          // Databricks workspace, ACS and Application Insights on the internet. A NAT gateway (a fixed egress
          // IP, e.g. for a Databricks IP access list) is the production alternative (docs/deploy.md).
          defaultOutboundAccess: true
          serviceEndpoints: [
            {
              service: 'Microsoft.Storage'
            }
            {
              service: 'Microsoft.KeyVault'
            }
            {
              service: 'Microsoft.CognitiveServices'
            }
          ]
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output appSubnetId string = vnet.properties.subnets[0].id
