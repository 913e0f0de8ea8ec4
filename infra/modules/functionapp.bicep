// The Function App on the Flex Consumption plan (Linux, Python 3.11), running as the user-assigned identity,
// and its app settings: identity-based storage, Key Vault references for secrets, and the settings the app
// reads (shared/settings.py: the env name is the field name upper-cased, or its alias).
param name string
param planName string
param location string
param tags object = {}

param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param keyVaultName string
param keyVaultUri string

param maximumInstanceCount int = 10
param instanceMemoryMB int = 2048

param databricksWorkspaceUrl string
param databricksWorkspaceId string = ''
param databricksAuth string = 'entra'
param databricksClientId string = ''
param agentMode string = 'observe'
param maxRetries int = 3
param pollSchedule string = '0 */5 * * * *'
param logLevel string = 'INFO'
param decisionsTable string
param stateTable string
param outboxTable string
@minLength(1)
param webhookUsername string

@description('VNet integration subnet (delegated to Microsoft.App/environments). Empty: no VNet integration.')
param subnetId string = ''
param emailEnabled bool = true
param emailTransport string = 'acs'
param acsAuth string = 'entra'
param acsEndpoint string = ''
param acsSender string = ''
param emailDefaultRecipients string = ''
param emailEscalationRecipients string = ''
param emailSmtpSender string = ''
param emailSmtpHost string = ''
param emailSmtpPort int = 587
param emailSmtpUsername string = ''
param feedbackUrl string = ''
param useOpenAi bool = false
param openAiEndpoint string = ''
param openAiUseKey bool = false
param openAiDeploymentName string = ''
param openAiModelName string = ''
param openAiApiVersion string = '2024-10-21'
@description('More app settings, [{name, value}], for fields of shared/settings.py this module does not set.')
param extraAppSettings array = []

// --- App settings --------------------------------------------------------------------------------------
// Set inline in siteConfig.appSettings, so the app is created with them in one step (no first start without
// storage settings) and checkov sees them on the site. Each group is a list of {name, value}; optional groups
// are empty lists when their mode is off, and concat() joins them below.
//
// The Functions host: storage through the identity (no connection string; shared keys are off), telemetry
// through the identity (App Insights local auth is off). On Flex Consumption the runtime and its version
// live in functionAppConfig.runtime, so FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION /
// WEBSITE_RUN_FROM_PACKAGE are not set (they are rejected or ignored there).
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageBlobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storageQueueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storageTableEndpoint
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

// The app (shared/settings.py). POLL_SCHEDULE is set even at its default so that a timer schedule bound
// as %POLL_SCHEDULE% always resolves.
var agentSettings = [
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'KEY_VAULT_URL'
    value: keyVaultUri
  }
  {
    name: 'DATABRICKS_WORKSPACE_URL'
    value: databricksWorkspaceUrl
  }
  {
    name: 'DATABRICKS_AUTH'
    value: databricksAuth
  }
  {
    name: 'AGENT_MODE'
    value: agentMode
  }
  {
    name: 'MAX_RETRIES'
    value: string(maxRetries)
  }
  {
    // The Jobs API budget per workspace is split across this many instances (shared/databricks/limiter.py).
    name: 'FUNCTIONS_MAX_INSTANCES'
    value: string(maximumInstanceCount)
  }
  {
    name: 'POLL_SCHEDULE'
    value: pollSchedule
  }
  {
    name: 'LOG_LEVEL'
    value: logLevel
  }
  {
    name: 'DECISIONS_TABLE'
    value: decisionsTable
  }
  {
    name: 'STATE_TABLE'
    value: stateTable
  }
  {
    name: 'OUTBOX_TABLE'
    value: outboxTable
  }
  {
    name: 'EMAIL_ENABLED'
    value: emailEnabled ? 'true' : 'false'
  }
  {
    name: 'EMAIL_TRANSPORT'
    value: emailTransport
  }
  {
    name: 'EMAIL_FALLBACK_RECIPIENTS'
    value: emailDefaultRecipients
  }
  {
    name: 'EMAIL_ESCALATION_RECIPIENTS'
    value: emailEscalationRecipients
  }
]

// Optional values are left out rather than set to '', so the portal lists only what is configured (the app
// treats an empty value as unset either way).
var workspaceIdSettings = empty(databricksWorkspaceId) ? [] : [
  {
    name: 'DATABRICKS_WORKSPACE_ID'
    value: databricksWorkspaceId
  }
]

var feedbackSettings = empty(feedbackUrl) ? [] : [
  {
    name: 'FEEDBACK_URL'
    value: feedbackUrl
  }
]

// Secrets: Key Vault references, resolved by App Service with keyVaultReferenceIdentity (below). A reference
// is set only when the mode needs the secret; if the secret is missing, the app sees the literal
// "@Microsoft.KeyVault(...)" and refuses to start with a message naming the setting.
var patSettings = (databricksAuth == 'pat') ? [
  {
    name: 'DATABRICKS_PAT_TOKEN'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=databricks-pat)'
  }
] : []
// OAuth M2M: the client id is not a secret; the OAuth secret is a reference like the PAT.
var oauthSettings = (databricksAuth == 'oauth-m2m') ? [
  {
    name: 'DATABRICKS_CLIENT_ID'
    value: databricksClientId
  }
  {
    name: 'DATABRICKS_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=databricks-client-secret)'
  }
] : []

// Always set: Basic auth on top of the function key is required (issue 11: the agent never acts on a request that
// carries only the function key). The password itself is a Key Vault reference.
var webhookSettings = [
  {
    name: 'WEBHOOK_USERNAME'
    value: webhookUsername
  }
  {
    name: 'WEBHOOK_PASSWORD'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=webhook-password)'
  }
]

// ACS with Entra (default): the endpoint only; the identity holds the sending role (rbac.bicep).
var acsEntraSettings = ((emailTransport == 'acs') && (acsAuth == 'entra')) ? [
  {
    name: 'EMAIL_SENDER'
    value: acsSender
  }
  {
    name: 'ACS_ENDPOINT'
    value: acsEndpoint
  }
] : []

var acsConnectionStringSettings = ((emailTransport == 'acs') && (acsAuth == 'connectionString')) ? [
  {
    name: 'EMAIL_SENDER'
    value: acsSender
  }
  {
    name: 'ACS_CONNECTION_STRING'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=acs-connection-string)'
  }
] : []

var smtpSettings = (emailTransport == 'smtp') ? [
  {
    name: 'EMAIL_SENDER'
    value: emailSmtpSender
  }
  {
    name: 'EMAIL_SMTP_HOST'
    value: emailSmtpHost
  }
  {
    name: 'EMAIL_SMTP_PORT'
    value: string(emailSmtpPort)
  }
  {
    name: 'EMAIL_SMTP_USERNAME'
    value: empty(emailSmtpUsername) ? emailSmtpSender : emailSmtpUsername
  }
  {
    name: 'EMAIL_PASSWORD'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=email-password)'
  }
] : []

var openAiSettings = useOpenAi ? [
  {
    name: 'AZURE_OPENAI_ENDPOINT'
    value: openAiEndpoint
  }
  {
    name: 'AZURE_OPENAI_DEPLOYMENT'
    value: openAiDeploymentName
  }
  {
    name: 'AZURE_OPENAI_MODEL'
    value: openAiModelName
  }
  {
    name: 'AZURE_OPENAI_API_VERSION'
    value: openAiApiVersion
  }
] : []

var openAiKeySettings = (useOpenAi && openAiUseKey) ? [
  {
    name: 'AZURE_OPENAI_API_KEY'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=azure-openai-api-key)'
  }
] : []

// Single-line calls: multi-line argument lists are newer Bicep syntax that pycep 0.5.1 cannot parse.
var coreSettings = concat(hostSettings, agentSettings, workspaceIdSettings, feedbackSettings)
var secretSettings = concat(patSettings, oauthSettings, webhookSettings)
var emailSettings = concat(acsEntraSettings, acsConnectionStringSettings, smtpSettings)
var llmSettings = concat(openAiSettings, openAiKeySettings)
var appSettings = concat(coreSettings, secretSettings, emailSettings, llmSettings, extraAppSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225:Zone redundancy is left off: Flex Consumption offers it only in some regions, so requiring it would make the template fail elsewhere; a queued failure waits in storage through a zone outage. Listed as a hardening option in docs/deploy.md.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_222:Public network access is required: the Databricks control plane calls the webhook over the internet (its IPs are shared across Databricks accounts, so an IP allow-list would prove nothing). The function key and Basic auth authenticate callers.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per event; a floor of always-ready instances would cost money for a webhook that fires a few times a day, and a queued failure waits safely in storage during a cold start.
  #checkov:skip=CKV_AZURE_17:Client certificates cannot be used: Databricks notification destinations do not present one.
  #checkov:skip=CKV_AZURE_213:No health-check path: the app's only HTTP route is the webhook (POST, function key), and a probe would need an anonymous GET route. Health is watched in Application Insights (failures, the poison queue) instead.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    // Outbound through the VNet: storage and Key Vault deny every other network (network.bicep).
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// FTP and SCM basic (publishing-profile) credentials off: azd and `az functionapp deployment` use Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
