// Azure Communication Services Email: an Email service with an Azure-managed domain
// (<guid>.azurecomm.net, no DNS to verify), linked to a Communication Services resource the app sends through.
//
// Authentication choice (main.bicep, acsAuth):
// - entra (default): the app gets ACS_ENDPOINT and sends with its managed identity (role in rbac.bicep).
//   No key leaves Azure, nothing to rotate.
// - connectionString: this module copies the resource's connection string into Key Vault as
//   acs-connection-string (ARM to ARM, the value never appears in a file or an output) and the app reads it
//   through a Key Vault reference. Use it if Entra sending is not possible in your tenant.
param emailServiceName string
param communicationServiceName string
param dataLocation string
param tags object = {}
param keyVaultName string
param storeConnectionString bool = false

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      managedDomain.id
    ]
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionStringSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeConnectionString) {
  #checkov:skip=CKV_AZURE_41:No expiry date: App Service's Key Vault reference stops resolving when a secret expires and the app then refuses to start; these secrets are rotated by writing a new version (docs/deploy.md), which references pick up within 24 h.
  #checkov:skip=CKV_AZURE_114:False positive: contentType is set below, but checkov 3.3.30 does not read the body of a conditional `if (...)` resource (tests/infra/test_bicep.py asserts contentType on every secret).
  parent: vault
  name: 'acs-connection-string'
  properties: {
    value: communicationService.listKeys().primaryConnectionString
    contentType: 'text/plain'
  }
}

output communicationServiceName string = communicationService.name
output communicationServiceId string = communicationService.id
output endpoint string = 'https://${communicationService.properties.hostName}'
// Azure-managed domains come with the DoNotReply sender.
output sender string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
