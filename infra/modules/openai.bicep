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

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  #checkov:skip=CKV_AZURE_134:Public network access stays enabled: the Flex Consumption app has no VNet integration in this template, so it reaches the account through the public endpoint. Local (key) auth is off, so only Entra identities holding an OpenAI role can call it. Private endpoint + VNet integration is the hardening option (docs/deploy.md).
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
    networkAcls: {
      defaultAction: 'Allow'
    }
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
