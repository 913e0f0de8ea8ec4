// Every role the app's managed identity holds: the narrowest built-in role for what the app does, on the
// narrowest scope Azure RBAC offers for it. Role assignment names are guid(scope, principal, role), so a
// redeploy finds the same assignment instead of failing with RoleAssignmentExists.
//
//   what                                   role                                  scope
//   Functions host (leases, keys, timer    Storage Blob Data Owner               the storage account
//     locks, Flex deployment package)
//   job-failures, job-failures-poison      Storage Queue Data Contributor        each queue
//   job-failures-llm(-poison)
//   the app's tables                       Storage Table Data Contributor        each table
//   the secrets this configuration reads   Key Vault Secrets User                each secret
//   telemetry                              Monitoring Metrics Publisher          the Application Insights resource
//   email (ACS, Entra auth)                Communication and Email Service Owner the Communication Services resource
//                                          (or the custom sender role below)
//   Azure OpenAI (deployed here)           Cognitive Services OpenAI User        the OpenAI account
param principalId string
param storageAccountName string

@description('The queues the app and the Functions host use (trigger, output, poison move).')
param queueNames array

@description('Every table the app reads or writes; each gets its own role assignment.')
param tableNames array

@allowed([
  'resource'
  'account'
])
@description('resource: queue and table roles on each queue and table (default). account: on the whole account, which also lets the Functions host write its diagnostic-events tables (AzureFunctionsDiagnosticEvents*). Use account if your tenant refuses table-scoped Create Table calls (docs/deploy.md).')
param storageRoleScope string = 'resource'

param keyVaultName string

@description('Secrets the identity may read, one role assignment each. Every one must exist when this deploys.')
param secretNames array

param appInsightsName string
param communicationServiceName string
param grantCommunication bool = true

@allowed([
  'builtin'
  'custom'
])
@description('builtin: Communication and Email Service Owner (the only built-in role that can send with Entra ID). custom: a role defined here with read and send-path actions only, no keys, no delete (needs Microsoft.Authorization/roleDefinitions/write, e.g. Owner or User Access Administrator).')
param acsRole string = 'builtin'

param openAiName string
param grantOpenAi bool = false

@description('The deploying user or pipeline; gets Key Vault Secrets Officer to put secrets in the vault. Empty: none.')
param deployerPrincipalId string = ''
param deployerPrincipalType string = 'User'

// Built-in role definition ids (the same in every tenant).
// Functions host storage: leases, keys, timer locks, the Flex deployment package. Microsoft's documented role
// for AzureWebJobsStorage with an identity; the host creates its own containers, so it stays on the account.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Queue trigger (read, delete), output (add) and the host's move to job-failures-poison.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// The app's tables (entities; create-if-missing on start).
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Read secret values (Key Vault references and SecretClient); cannot list or write them.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// For the deployer: write secrets; no access to keys, certificates or the vault's own settings.
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
// Send telemetry to Application Insights with Entra auth (local auth is off).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Send email with Entra auth. No narrower built-in role exists (the built-in list has only this one for
// Communication Services); it can also list keys and delete the resource, hence the custom alternative.
var communicationAndEmailServiceOwner = '09976791-48a7-449e-bb21-39d1a415f350'
// Call deployments (chat completions) with Entra auth; cannot manage the account or read keys.
var cognitiveServicesOpenAiUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

var perResource = (storageRoleScope == 'resource')
var customAcsRole = grantCommunication && (acsRole == 'custom')
var builtinAcsRole = grantCommunication && (acsRole == 'builtin')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for secretName in secretNames: {
  parent: vault
  name: secretName
}]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: openAiName
}

// --- Storage ------------------------------------------------------------------------------------------
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

resource queueContributors 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in queueNames: if (perResource) {
  name: guid(queues[i].id, principalId, storageQueueDataContributor)
  scope: queues[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}]

resource tableContributors 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (tableName, i) in tableNames: if (perResource) {
  name: guid(tables[i].id, principalId, storageTableDataContributor)
  scope: tables[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}]

resource accountQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!perResource) {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

resource accountTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!perResource) {
  name: guid(storage.id, principalId, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}

// --- Key Vault: one assignment per secret, so the identity cannot read (or list) anything else ----------
resource secretReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (secretName, i) in secretNames: {
  name: guid(secrets[i].id, principalId, keyVaultSecretsUser)
  scope: secrets[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}]

// --- Telemetry, email, LLM ---------------------------------------------------------------------------------
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

resource emailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (builtinAcsRole) {
  name: guid(communicationService.id, principalId, communicationAndEmailServiceOwner)
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', communicationAndEmailServiceOwner)
  }
}

// The actions a community-tested custom role needs for EmailClient.begin_send with Entra ID (Microsoft Q&A
// 2025-07, not a Microsoft document; verify with one test email). Compared with the built-in Owner role it
// leaves out ListKeys/RegenerateKey (the connection string), delete, and domain/sender changes.
resource acsSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (customAcsRole) {
  name: guid(resourceGroup().id, 'acs-email-sender')
  properties: {
    roleName: 'ACS Email Sender (${resourceGroup().name})'
    description: 'Send email through Azure Communication Services with Entra ID: read and send-path actions, no keys, no delete.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
          'Microsoft.Communication/CommunicationServices/Write'
          'Microsoft.Communication/EmailServices/read'
          'Microsoft.Communication/EmailServices/write'
          'Microsoft.Communication/EmailServices/Domains/read'
          'Microsoft.Communication/EmailServices/Domains/SenderUsernames/read'
          'Microsoft.Communication/Operations/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource customEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (customAcsRole) {
  name: guid(communicationService.id, principalId, 'acs-email-sender')
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: acsSenderRole.id
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

// The deployer writes secrets that do not exist yet (a PAT, an SMTP password), so this one stays on the vault.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}
