// Every role the app's managed identity holds, each the narrowest built-in role for what the app does,
// scoped to the one resource it is for. Role assignment names are guid(scope, principal, role), so a
// redeploy finds the same assignment instead of failing with RoleAssignmentExists.
param principalId string
param storageAccountName string
param keyVaultName string
param appInsightsName string
param communicationServiceName string
param grantCommunication bool = true
param openAiName string
param grantOpenAi bool = false

@description('The deploying user or pipeline; gets Key Vault Secrets Officer to put secrets in the vault. Empty: none.')
param deployerPrincipalId string = ''
param deployerPrincipalType string = 'User'

// Built-in role definition ids (the same in every tenant).
// Functions host storage (leases, keys, timer locks, Flex deployment package).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// job-failures queue: trigger (read, delete), output (add) and the host's move to job-failures-poison.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// agentdecisions / agentstate / agentoutbox, and the host's diagnostic events.
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Read secret values (Key Vault references and SecretClient); cannot list or write them.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// For the deployer: write secrets; no access to keys, certificates or the vault's own settings.
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
// Send telemetry to Application Insights with Entra auth (local auth is off).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Send email with Entra auth. The narrowest built-in role that can; a custom role with
// Microsoft.Communication/CommunicationServices/Read+Write and Microsoft.Communication/EmailServices/Write
// is the tighter alternative (docs/deploy.md).
var communicationAndEmailServiceOwner = '09976791-48a7-449e-bb21-39d1a415f350'
// Call deployments (chat completions) with Entra auth; cannot manage the account or read keys.
var cognitiveServicesOpenAiUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: openAiName
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

resource emailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantCommunication) {
  name: guid(communicationService.id, principalId, communicationAndEmailServiceOwner)
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', communicationAndEmailServiceOwner)
  }
}

resource openAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantOpenAi) {
  name: guid(openAi.id, principalId, cognitiveServicesOpenAiUser)
  scope: openAi
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAiUser)
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}
