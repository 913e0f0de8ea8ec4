// databricks-ai-agent: everything the Function App needs, in one resource group.
//
// Deployed by `azd up` (azure.yaml + main.parameters.json) or by
// `az deployment sub create --template-file infra/main.bicep` (see docs/deploy.md).
//
// Syntax note: checkov reads these files with pycep-parser 0.5.1, which cannot parse user-defined `type`,
// `func` or `@export()`, and mis-reads operator precedence. So: no user-defined types or functions, and
// every compound condition is parenthesised, e.g. `(a == 'x') ? ... : ...`.
targetScope = 'subscription'

// --- Environment ------------------------------------------------------------------------------------
@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used in the resource group name and the resource token.')
param environmentName string

@minLength(1)
@description('Azure region for every regional resource. Flex Consumption must be available there.')
param location string

@description('Resource group to create or reuse; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person (or pipeline) deploying. Gets Key Vault Secrets Officer so they can put secrets in the vault. azd fills it from AZURE_PRINCIPAL_ID; empty: no role.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principal behind principalId.')
param principalType string = 'User'

// --- Databricks --------------------------------------------------------------------------------------
@description('Workspace URL, https://adb-<id>.<n>.azuredatabricks.net (DATABRICKS_WORKSPACE_URL).')
param databricksWorkspaceUrl string

@description('Workspace id the webhook must carry (DATABRICKS_WORKSPACE_ID); empty accepts any.')
param databricksWorkspaceId string = ''

@allowed([
  'entra'
  'pat'
  'oauth-m2m'
])
@description('entra: the user-assigned managed identity, added to the workspace as a service principal (default). pat: a personal access token kept in Key Vault as secret databricks-pat. oauth-m2m: a Databricks service principal\'s OAuth secret, kept in Key Vault as secret databricks-client-secret, with databricksClientId.')
param databricksAuth string = 'entra'

@description('With databricksAuth=oauth-m2m: the Databricks service principal\'s application (client) id (DATABRICKS_CLIENT_ID).')
param databricksClientId string = ''

@secure()
@description('Optional. With databricksAuth=oauth-m2m, the OAuth secret to store as Key Vault secret databricks-client-secret. Empty: put the secret in the vault yourself (docs/deploy.md).')
param databricksClientSecret string = ''

@secure()
@description('Optional. With databricksAuth=pat, the token to store as Key Vault secret databricks-pat. Empty: put the secret in the vault yourself (docs/deploy.md).')
param databricksPatToken string = ''

// --- Agent behaviour ---------------------------------------------------------------------------------
// A first deployment observes: it decides, records and emails "would have repaired run 123" but changes
// nothing in Databricks. The team reads those decisions for about a week before trusting the agent, then
// redeploys with agentMode=act.
@allowed([
  'observe'
  'act'
])
@description('AGENT_MODE. observe for a first deployment (decide, record, notify; change nothing in Databricks); act once the team trusts it.')
param agentMode string = 'observe'

@minValue(0)
@maxValue(10)
@description('MAX_RETRIES: agent attempts per chain of failures before it escalates.')
param maxRetries int = 3

@description('POLL_SCHEDULE: NCRONTAB schedule of the poller (timer trigger).')
param pollSchedule string = '0 */5 * * * *'

@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
@description('LOG_LEVEL of the app.')
param logLevel string = 'INFO'

// --- Webhook -----------------------------------------------------------------------------------------
// Both required, in every mode: the webhook never accepts the function key alone, and in act mode the app
// refuses to start without them. A deployment without a password fails validation here instead.
@minLength(1)
@description('WEBHOOK_USERNAME: Basic-auth user the Databricks notification destination sends, on top of the function key.')
param webhookUsername string = 'databricks'

@secure()
@minLength(15)
@description('Basic-auth password, stored as Key Vault secret webhook-password (15 characters or more; azd generates 15 letters and digits on the first run and reads the same value back from the vault afterwards).')
param webhookPassword string

// --- Email -------------------------------------------------------------------------------------------
@description('EMAIL_ENABLED: send email. Off: notifications are only recorded.')
param emailEnabled bool = true

@allowed([
  'acs'
  'smtp'
])
@description('EMAIL_TRANSPORT: acs (the Communication Services resource deployed here) or smtp (a server you bring).')
param emailTransport string = 'acs'

@allowed([
  'entra'
  'connectionString'
])
@description('How the app authenticates to Communication Services. entra (default): ACS_ENDPOINT + the managed identity, no key anywhere. connectionString: ACS_CONNECTION_STRING from Key Vault secret acs-connection-string, written by this template.')
param acsAuth string = 'entra'

@description('Data location of the Communication and Email services (where message data is stored at rest), e.g. United States, Europe, UK.')
param emailDataLocation string = 'United States'

@description('Comma-separated EMAIL_FALLBACK_RECIPIENTS (used when a job has no owner address).')
param emailDefaultRecipients string = ''

@description('Comma-separated EMAIL_ESCALATION_RECIPIENTS.')
param emailEscalationRecipients string = ''

@description('SMTP only: EMAIL_SENDER (the From address). With acs the sender is DoNotReply@<the Azure-managed domain>.')
param emailSmtpSender string = ''

@description('SMTP only: EMAIL_SMTP_HOST.')
param emailSmtpHost string = ''

@description('SMTP only: EMAIL_SMTP_PORT.')
param emailSmtpPort int = 587

@description('SMTP only: EMAIL_SMTP_USERNAME; empty: the sender address.')
param emailSmtpUsername string = ''

@secure()
@description('SMTP only, optional: password stored as Key Vault secret email-password. Empty: put the secret in the vault yourself.')
param emailSmtpPassword string = ''

@description('FEEDBACK_URL: link in emails where a reader rates a decision; empty: the app\'s own /api/feedback endpoint.')
param feedbackUrl string = ''

@secure()
@description('Key that signs the emails\' one-click feedback links, stored as Key Vault secret feedback-signing-key (the app reads it through KEY_VAULT_URL). azd generates one on the first run. Empty: not written; the app then sends no feedback links unless the secret is in the vault (list it in extraKeyVaultSecretNames).')
param feedbackSigningKey string = ''

// --- Azure OpenAI (optional) -------------------------------------------------------------------------
@description('Deploy an Azure OpenAI account and a chat model deployment. Off: rules only, unless openAiEndpoint names an existing account.')
param deployOpenAi bool = false

@description('Region of the Azure OpenAI account (model availability differs by region); default: location.')
param openAiLocation string = ''

@description('Chat model to deploy (AZURE_OPENAI_MODEL).')
param openAiModelName string = 'gpt-4o-mini'

@description('Version of that model.')
param openAiModelVersion string = '2024-07-18'

@description('Deployment name (AZURE_OPENAI_DEPLOYMENT).')
param openAiDeploymentName string = 'agent-chat'

@allowed([
  'GlobalStandard'
  'Standard'
  'DataZoneStandard'
])
@description('Deployment SKU.')
param openAiDeploymentSku string = 'GlobalStandard'

@minValue(1)
@description('Deployment capacity in thousands of tokens per minute.')
param openAiDeploymentCapacity int = 30

@description('AZURE_OPENAI_API_VERSION.')
param openAiApiVersion string = '2024-10-21'

@description('Existing Azure OpenAI endpoint to use instead of deploying one (deployOpenAi=false). Grant the identity Cognitive Services OpenAI User on it yourself, or use openAiAuth=key.')
param openAiEndpoint string = ''

@allowed([
  'entra'
  'key'
])
@description('Existing endpoint only: entra (the identity, default) or key (AZURE_OPENAI_API_KEY from Key Vault secret azure-openai-api-key). A deployed account always uses Entra, local auth off.')
param openAiAuth string = 'entra'

// --- Network and access ------------------------------------------------------------------------------
// restrictNetwork (default): the Function App gets VNet integration, and storage, Key Vault and a deployed Azure
// OpenAI account deny every network except that subnet (service endpoints) and allowedIpAddresses. Off: their
// firewalls allow all networks (Entra ID is still required everywhere). Trade-off written down in docs/deploy.md:
// with it on, the operator's own machine needs its address in allowedIpAddresses to read the vault (azd reads
// webhook-password back on every provision) or the tables (`python -m shared report`).
@description('Storage, Key Vault and Azure OpenAI deny by default and admit only the app\'s subnet and allowedIpAddresses.')
param restrictNetwork bool = true

@description('Comma-separated public IPv4 addresses or CIDR ranges allowed through the storage, Key Vault and OpenAI firewalls, e.g. the deployer\'s address (azd env set ALLOWED_IP_ADDRESSES "$(curl -s https://api.ipify.org)").')
param allowedIpAddresses string = ''

@description('Address space of the VNet (restrictNetwork only).')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Flex Consumption integration subnet, inside vnetAddressPrefix.')
param appSubnetPrefix string = '10.40.0.0/24'

@allowed([
  'resource'
  'account'
])
@description('resource (default): the identity\'s queue and table roles are assigned on each queue and table. account: on the storage account (also lets the Functions host write its diagnostic-events tables).')
param storageRoleScope string = 'resource'

@description('Tables the app uses besides DECISIONS_TABLE, STATE_TABLE and OUTBOX_TABLE: created here and granted one by one. Defaults: FEEDBACK_TABLE, LEARNED_RULES_TABLE and INCIDENTS_TABLE (feedback, learned rules, incidents). Add a table here when the app gains one.')
param extraTableNames array = [
  'agentfeedback'
  'agentlearnedrules'
  'incidents'
]

@description('Key Vault secrets the app reads besides the ones this configuration implies (e.g. per-workspace PATs or webhook passwords named in DATABRICKS_WORKSPACES): the identity is granted each one. Each must exist in the vault before the deployment.')
param extraKeyVaultSecretNames array = []

@allowed([
  'builtin'
  'custom'
])
@description('ACS with Entra auth: builtin gives the identity Communication and Email Service Owner (no narrower built-in role exists); custom defines a sender role without key listing or delete (needs the right to create role definitions).')
param acsRole string = 'builtin'

// --- Monitoring --------------------------------------------------------------------------------------
@description('Email address for the poison-message alert. Empty: the alert fires in the portal only.')
param alertEmail string = ''

// --- Function App ------------------------------------------------------------------------------------
@minValue(1)
@maxValue(1000)
@description('Flex Consumption: maximum instances. Low on purpose: a handful of failures a minute at most, and every instance calls the same Databricks workspace; the per-workspace Jobs API budget (DATABRICKS_REQUESTS_PER_SECOND) is divided by this number.')
param maximumInstanceCount int = 10

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory (MB).')
param instanceMemoryMB int = 2048

@description('More app settings as [{name, value}], for fields of shared/settings.py this template does not set, e.g. [{"name": "RESIZE_MAX_WORKERS", "value": "8"}]. Do not repeat a name the template sets.')
param extraAppSettings array = []

// --- Names -------------------------------------------------------------------------------------------
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  identity: 'id-${resourceToken}'
  storage: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  appInsights: 'appi-${resourceToken}'
  plan: 'plan-${resourceToken}'
  functionApp: 'func-${resourceToken}'
  emailService: 'ecs-${resourceToken}'
  communicationService: 'acs-${resourceToken}'
  openAi: 'oai-${resourceToken}'
  vnet: 'vnet-${resourceToken}'
  nsg: 'nsg-${resourceToken}'
  actionGroup: 'ag-${resourceToken}'
}
// Flex Consumption pulls the app package from this blob container (same naming as the azd quickstart).
var deploymentContainerName = 'app-package-${take(names.functionApp, 32)}-${take(resourceToken, 7)}'

// The queue and tables the app uses; the three named tables are also handed to the app as settings.
var jobQueueName = 'job-failures'
var llmQueueName = 'job-failures-llm'
var tableNames = {
  decisions: 'agentdecisions'
  state: 'agentstate'
  outbox: 'agentoutbox'
}
var namedTables = [
  tableNames.decisions
  tableNames.state
  tableNames.outbox
]
var allTableNames = union(namedTables, extraTableNames)

var allowedIps = empty(allowedIpAddresses) ? [] : split(replace(allowedIpAddresses, ' ', ''), ',')

// The Key Vault secrets the app reads in this configuration; the identity may read these and no other. Each must
// exist when the role assignment is made: written by this template from its parameter, or put in by hand first.
var webhookSecretNames = [
  'webhook-password'
]
var feedbackSecretNames = empty(feedbackSigningKey) ? [] : [
  'feedback-signing-key'
]
var patSecretNames = (databricksAuth == 'pat') ? [
  'databricks-pat'
] : []
var oauthSecretNames = (databricksAuth == 'oauth-m2m') ? [
  'databricks-client-secret'
] : []
var smtpSecretNames = (emailTransport == 'smtp') ? [
  'email-password'
] : []
var acsSecretNames = ((emailTransport == 'acs') && (acsAuth == 'connectionString')) ? [
  'acs-connection-string'
] : []
var openAiKeySecretNames = ((!deployOpenAi) && (!empty(openAiEndpoint)) && (openAiAuth == 'key')) ? [
  'azure-openai-api-key'
] : []
var appSecretNames = union(webhookSecretNames, feedbackSecretNames, patSecretNames, oauthSecretNames, smtpSecretNames, acsSecretNames, openAiKeySecretNames, extraKeyVaultSecretNames)

var useOpenAi = deployOpenAi || (!empty(openAiEndpoint))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module network 'modules/network.bicep' = if (restrictNetwork) {
  name: 'network'
  scope: rg
  params: {
    vnetName: names.vnet
    nsgName: names.nsg
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
  }
}

var appSubnetId = restrictNetwork ? network.outputs.appSubnetId : ''

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    queueName: jobQueueName
    llmQueueName: llmQueueName
    tableNames: allTableNames
    restrictNetwork: restrictNetwork
    subnetId: appSubnetId
    allowedIpAddresses: allowedIps
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    databricksPatToken: databricksPatToken
    databricksClientSecret: databricksClientSecret
    webhookPassword: webhookPassword
    feedbackSigningKey: feedbackSigningKey
    emailSmtpPassword: emailSmtpPassword
    restrictNetwork: restrictNetwork
    subnetId: appSubnetId
    allowedIpAddresses: allowedIps
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: tags
    alertEmail: alertEmail
    actionGroupName: names.actionGroup
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    emailServiceName: names.emailService
    communicationServiceName: names.communicationService
    dataLocation: emailDataLocation
    tags: tags
    keyVaultName: keyVault.outputs.name
    storeConnectionString: (emailTransport == 'acs') && (acsAuth == 'connectionString')
  }
}

module openAi 'modules/openai.bicep' = if (deployOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: names.openAi
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: openAiDeploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    deploymentSku: openAiDeploymentSku
    deploymentCapacity: openAiDeploymentCapacity
    restrictNetwork: restrictNetwork
    subnetId: appSubnetId
    allowedIpAddresses: allowedIps
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    queueNames: [
      storage.outputs.queueName
      storage.outputs.poisonQueueName
      storage.outputs.llmQueueName
      storage.outputs.llmPoisonQueueName
    ]
    tableNames: allTableNames
    storageRoleScope: storageRoleScope
    keyVaultName: keyVault.outputs.name
    secretNames: appSecretNames
    appInsightsName: monitoring.outputs.appInsightsName
    communicationServiceName: communication.outputs.communicationServiceName
    grantCommunication: (emailTransport == 'acs') && (acsAuth == 'entra')
    acsRole: acsRole
    openAiName: names.openAi
    grantOpenAi: deployOpenAi
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
  // The OpenAI role needs the account to exist first (its name is known without the module's outputs); the
  // per-secret and per-table roles need the secrets and tables, written by the keyvault, communication and
  // storage modules (read through their outputs above, which makes those modules finish first).
  dependsOn: [
    openAi
  ]
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    keyVaultName: keyVault.outputs.name
    keyVaultUri: keyVault.outputs.uri
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    databricksWorkspaceUrl: databricksWorkspaceUrl
    databricksWorkspaceId: databricksWorkspaceId
    databricksAuth: databricksAuth
    databricksClientId: databricksClientId
    agentMode: agentMode
    maxRetries: maxRetries
    pollSchedule: pollSchedule
    logLevel: logLevel
    decisionsTable: tableNames.decisions
    stateTable: tableNames.state
    outboxTable: tableNames.outbox
    webhookUsername: webhookUsername
    subnetId: appSubnetId
    emailEnabled: emailEnabled
    emailTransport: emailTransport
    acsAuth: acsAuth
    acsEndpoint: communication.outputs.endpoint
    acsSender: communication.outputs.sender
    emailDefaultRecipients: emailDefaultRecipients
    emailEscalationRecipients: emailEscalationRecipients
    emailSmtpSender: emailSmtpSender
    emailSmtpHost: emailSmtpHost
    emailSmtpPort: emailSmtpPort
    emailSmtpUsername: emailSmtpUsername
    feedbackUrl: feedbackUrl
    useOpenAi: useOpenAi
    openAiEndpoint: deployOpenAi ? openAi.outputs.endpoint : openAiEndpoint
    openAiUseKey: (!deployOpenAi) && (openAiAuth == 'key')
    openAiDeploymentName: openAiDeploymentName
    openAiModelName: openAiModelName
    openAiApiVersion: openAiApiVersion
    extraAppSettings: extraAppSettings
  }
  // The identity's roles (storage, Key Vault, App Insights) exist before the host first starts.
  dependsOn: [
    rbac
  ]
}

// --- Outputs (azd stores them in .azure/<env>/.env) ----------------------------------------------------
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
// Read back by azd's secretOrRandomPassword in main.parameters.json on later runs.
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
// Portal: Monitor > Workbooks, or this id.
output AGENT_WORKBOOK_ID string = monitoring.outputs.workbookId
// Add this identity to the Databricks workspace as a service principal (application id = client id).
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MANAGED_IDENTITY_NAME string = identity.outputs.name
output EMAIL_SENDER_ADDRESS string = communication.outputs.sender
output ACS_ENDPOINT_URL string = communication.outputs.endpoint
output AZURE_OPENAI_ENDPOINT_URL string = deployOpenAi ? openAi.outputs.endpoint : openAiEndpoint
// The URL for the Databricks notification destination, WITHOUT the function key: append ?code=<key>
// (docs/deploy.md shows how to read the key). The key never goes into deployment outputs.
output WEBHOOK_URL string = 'https://${functionApp.outputs.defaultHostName}/api/databricks/webhook'
