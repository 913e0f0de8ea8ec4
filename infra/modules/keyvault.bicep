// Key Vault in RBAC mode with purge protection. The app reads secrets through App Service Key Vault
// references (resolved with the user-assigned identity) and, for multi-workspace PATs and the feedback signing
// key, through the SDK. The identity may read only the secrets it needs, one role assignment per secret
// (rbac.bicep), never the whole vault.
//
// Secrets are written here only when a value is passed in (secure parameters, never in a file); otherwise
// they are put into the vault by hand (docs/deploy.md). Secret names match the app settings' references.
// The webhook password is required: the agent never runs with the function key as the only credential.
param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret is kept. With purge protection nothing can shorten this, so a vault deleted by a teardown blocks its name for this long (docs/deploy.md: recover it or use a new environment name).')
param softDeleteRetentionInDays int = 90

@secure()
param databricksPatToken string = ''

@secure()
param databricksClientSecret string = ''

@secure()
@minLength(15)
param webhookPassword string

@secure()
@description('Key that signs the emails\' feedback links (secret feedback-signing-key, read by the app through KEY_VAULT_URL). Empty: not written.')
param feedbackSigningKey string = ''

@description('Deny by default; allow only subnetId (the app) and allowedIpAddresses (operators).')
param restrictNetwork bool = true

@description('The Function App\'s VNet integration subnet (service endpoint Microsoft.KeyVault). Empty: none.')
param subnetId string = ''

@description('Public IPv4 addresses or CIDR ranges of operators: azd reads webhook-password back from here on every provision, and people put secrets in by hand.')
param allowedIpAddresses array = []

// AzureServices stays bypassed so that ARM (template deployments writing the secrets below) is not blocked; App
// Service Key Vault references are not a trusted service and come through the app's subnet instead.
// A for-expression must be a variable's whole value (Bicep BCP138), so the rules are built here.
var ipRules = [for ip in allowedIpAddresses: {
  value: ip
}]
var restrictedAcls = {
  bypass: 'AzureServices'
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
  bypass: 'AzureServices'
  defaultAction: 'Allow'
}

@secure()
param emailSmtpPassword string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  #checkov:skip=CKV_AZURE_109:False positive: the firewall denies by default when restrictNetwork is true (the default), admitting only the app's subnet and the operator addresses; checkov 3.3.30 cannot evaluate the `restrictNetwork ? ... : ...` expression (tests/infra/test_bicep.py asserts the Deny branch and the default).
  #checkov:skip=CKV_AZURE_189:The public endpoint stays enabled because the app comes in through a VNet service endpoint, a firewall rule on that endpoint; with restrictNetwork its firewall denies every other network. A private endpoint would allow Disabled (docs/deploy.md).
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: restrictNetwork ? restrictedAcls : openAcls
  }
}

resource databricksPat 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(databricksPatToken)) {
  #checkov:skip=CKV_AZURE_41:No expiry date: App Service's Key Vault reference stops resolving when a secret expires and the app then refuses to start; these secrets are rotated by writing a new version (docs/deploy.md), which references pick up within 24 h.
  #checkov:skip=CKV_AZURE_114:False positive: contentType is set below, but checkov 3.3.30 does not read the body of a conditional `if (...)` resource (tests/infra/test_bicep.py asserts contentType on every secret).
  parent: vault
  name: 'databricks-pat'
  properties: {
    value: databricksPatToken
    contentType: 'text/plain'
  }
}

resource databricksClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(databricksClientSecret)) {
  #checkov:skip=CKV_AZURE_41:No expiry date: App Service's Key Vault reference stops resolving when a secret expires and the app then refuses to start; these secrets are rotated by writing a new version (docs/deploy.md), which references pick up within 24 h.
  #checkov:skip=CKV_AZURE_114:False positive: contentType is set below, but checkov 3.3.30 does not read the body of a conditional `if (...)` resource (tests/infra/test_bicep.py asserts contentType on every secret).
  parent: vault
  name: 'databricks-client-secret'
  properties: {
    value: databricksClientSecret
    contentType: 'text/plain'
  }
}

// Always written: the password is a required parameter (azd reads the current one back from this vault).
resource webhookPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  #checkov:skip=CKV_AZURE_41:No expiry date: App Service's Key Vault reference stops resolving when a secret expires and the app then refuses to start; these secrets are rotated by writing a new version (docs/deploy.md), which references pick up within 24 h.
  parent: vault
  name: 'webhook-password'
  properties: {
    value: webhookPassword
    contentType: 'text/plain'
  }
}

resource feedbackSigningKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(feedbackSigningKey)) {
  #checkov:skip=CKV_AZURE_41:No expiry date: the app reads this key on start and signs links with it; an expired secret would stop feedback links. Rotated by writing a new version (SECURITY.md), which voids the links already sent.
  #checkov:skip=CKV_AZURE_114:False positive: contentType is set below, but checkov 3.3.30 does not read the body of a conditional `if (...)` resource (tests/infra/test_bicep.py asserts contentType on every secret).
  parent: vault
  name: 'feedback-signing-key'
  properties: {
    value: feedbackSigningKey
    contentType: 'text/plain'
  }
}

resource emailPassword 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(emailSmtpPassword)) {
  #checkov:skip=CKV_AZURE_41:No expiry date: App Service's Key Vault reference stops resolving when a secret expires and the app then refuses to start; these secrets are rotated by writing a new version (docs/deploy.md), which references pick up within 24 h.
  #checkov:skip=CKV_AZURE_114:False positive: contentType is set below, but checkov 3.3.30 does not read the body of a conditional `if (...)` resource (tests/infra/test_bicep.py asserts contentType on every secret).
  parent: vault
  name: 'email-password'
  properties: {
    value: emailSmtpPassword
    contentType: 'text/plain'
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
