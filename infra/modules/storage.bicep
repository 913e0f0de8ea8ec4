// Storage for the Functions host and the app: the Flex deployment container, the job-failures queue and its
// poison queue, the job-failures-llm queue (unsure failures handed over) and its poison queue, and the app's tables. Shared-key access is off: everything authenticates with Entra ID, and
// with restrictNetwork the firewall admits only the app's subnet (service endpoint) and listed operator IPs.
param name string
param location string
param tags object = {}
param deploymentContainerName string
param queueName string
@description('The queue unsure failures are handed to (the model is asked there), with its own poison queue.')
param llmQueueName string
param tableNames array

@description('Deny by default; allow only subnetId (the app) and allowedIpAddresses (operators).')
param restrictNetwork bool = true

@description('The Function App\'s VNet integration subnet (service endpoint Microsoft.Storage). Empty: none.')
param subnetId string = ''

@description('Public IPv4 addresses or CIDR ranges of operators (e.g. to run `python -m shared report` against the tables).')
param allowedIpAddresses array = []

@minValue(1)
@maxValue(365)
@description('Days a deleted blob or container can be restored.')
param deleteRetentionDays int = 7

// AzureServices stays bypassed for Azure Monitor metrics and the platform's own services; it does not admit the
// Function App, which comes in through its subnet.
// A for-expression must be a variable's whole value (Bicep BCP138), so the rules are built here.
var ipRules = [for ip in allowedIpAddresses: {
  value: ip
  action: 'Allow'
}]
var restrictedAcls = {
  bypass: 'AzureServices'
  defaultAction: 'Deny'
  virtualNetworkRules: empty(subnetId) ? [] : [
    {
      id: subnetId
      action: 'Allow'
    }
  ]
  ipRules: ipRules
}
var openAcls = {
  bypass: 'AzureServices'
  defaultAction: 'Allow'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35:False positive: the firewall denies by default when restrictNetwork is true (the default), admitting only the app's subnet and the operator addresses; checkov 3.3.30 cannot evaluate the `restrictNetwork ? ... : ...` expression (tests/infra/test_bicep.py asserts the Deny branch and the default).
  #checkov:skip=CKV_AZURE_59:The public endpoint stays enabled because the app reaches the account through a VNet service endpoint, which is a firewall rule on the public endpoint; with restrictNetwork (the default) its firewall denies every other network. Private endpoints would allow Disabled (docs/deploy.md).
  #checkov:skip=CKV_AZURE_206:Locally redundant on purpose: the account holds a work queue, the app package and a decision log whose source of truth (the run history) lives in Databricks; geo-replication is not worth its cost here.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: restrictNetwork ? restrictedAcls : openAcls
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource jobQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: queueName
}

// The Functions host creates <queue>-poison on the first poison message; declaring it lets an alert or a
// dashboard point at it from day one.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${queueName}-poison'
}

resource llmQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: llmQueueName
}

resource llmPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${llmQueueName}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output queueName string = jobQueue.name
output poisonQueueName string = poisonQueue.name
output llmQueueName string = llmQueue.name
output llmPoisonQueueName string = llmPoisonQueue.name
