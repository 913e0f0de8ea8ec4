// Key Vault in RBAC mode with purge protection. The app reads secrets through App Service Key Vault
// references (resolved with the user-assigned identity) and, for multi-workspace PATs, through the SDK.
//
// Secrets are written here only when a value is passed in (secure parameters, never in a file); otherwise
// they are put into the vault by hand (docs/deploy.md). Secret names match the app settings' references.
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
param webhookPassword string = ''

@secure()
param emailSmtpPassword string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  #checkov:skip=CKV_AZURE_109:Firewall default Allow: App Service resolves Key Vault references from the app's outbound addresses, which on Flex Consumption without VNet integration are neither fixed nor a trusted-service bypass, so deny-by-default would break every secret. Access is still RBAC-only. Private endpoint + VNet integration is the hardening option (docs/deploy.md).
  #checkov:skip=CKV_AZURE_189:Public network access stays enabled for the same reason (no VNet / private endpoint in this template).
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
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
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

resource webhookPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(webhookPassword)) {
  #checkov:skip=CKV_AZURE_41:No expiry date: App Service's Key Vault reference stops resolving when a secret expires and the app then refuses to start; these secrets are rotated by writing a new version (docs/deploy.md), which references pick up within 24 h.
  #checkov:skip=CKV_AZURE_114:False positive: contentType is set below, but checkov 3.3.30 does not read the body of a conditional `if (...)` resource (tests/infra/test_bicep.py asserts contentType on every secret).
  parent: vault
  name: 'webhook-password'
  properties: {
    value: webhookPassword
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
