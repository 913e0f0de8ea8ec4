// Optional Azure OpenAI account with one chat model deployment. Local (key) auth is off: the app calls it
// with its managed identity (Cognitive Services OpenAI User, rbac.bicep).
param name string
param location string
param tags object = {}
param deploymentName string
param modelName string
param modelVersion string
param deploymentSku string = 'GlobalStandard'
param deploymentCapacity int = 30

@description('Deny by default; allow only subnetId (the app, service endpoint Microsoft.CognitiveServices) and allowedIpAddresses.')
param restrictNetwork bool = true
param subnetId string = ''
param allowedIpAddresses array = []

// A for-expression must be a variable's whole value (Bicep BCP138), so the rules are built here.
var ipRules = [for ip in allowedIpAddresses: {
  value: ip
}]
var restrictedAcls = {
  defaultAction: 'Deny'
  virtualNetworkRules: empty(subnetId) ? [] : [
    {
      id: subnetId
      ignoreMissingVnetServiceEndpoint: false
    }
  ]
  ipRules: ipRules
}
var openAcls = {
  defaultAction: 'Allow'
}

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  #checkov:skip=CKV_AZURE_134:The public endpoint stays enabled because the app comes in through a VNet service endpoint, a firewall rule on that endpoint; with restrictNetwork (the default) the firewall denies every other network, and local (key) auth is off. A private endpoint would allow Disabled (docs/deploy.md).
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: restrictNetwork ? restrictedAcls : openAcls
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSku
    capacity: deploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
