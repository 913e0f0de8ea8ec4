// Log Analytics + workspace-based Application Insights, both with local (key) auth off: the Functions host
// sends telemetry with the managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING, Monitoring Metrics
// Publisher role in rbac.bicep).
param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output logAnalyticsId string = logAnalytics.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
// Not a secret: with local auth off the instrumentation key alone cannot send telemetry.
output appInsightsConnectionString string = appInsights.properties.ConnectionString
