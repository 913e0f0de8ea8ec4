// The user-assigned managed identity the Function App runs as: storage, Key Vault references, App Insights,
// Communication Services, Azure OpenAI and (once added to the workspace) Databricks all see this one identity.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
