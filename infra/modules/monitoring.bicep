// Log Analytics + workspace-based Application Insights, both with local (key) auth off: the Functions host
// and the app's OpenTelemetry exporter send with the managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING,
// Monitoring Metrics Publisher role in rbac.bicep). On top: a workbook of the agent's own metrics
// (shared/telemetry.py INSTRUMENTS, in the customMetrics table) and an alert on poison messages.
param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}

@description('Address that gets the poison-message alert (an action group with one email receiver). Empty: the alert still fires and shows in the portal, but notifies no one.')
param alertEmail string = ''

@description('Name of the action group (when alertEmail is set).')
param actionGroupName string = 'ag-databricks-ai-agent'

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

// --- Workbook: the agent's metrics ------------------------------------------------------------------------
// The OpenTelemetry exporter writes each metric to customMetrics under its instrument name, one row per export
// interval: counters carry the interval's sum in valueSum, the histogram (agent.time_to_action) its sum, count,
// min and max. Percentiles of single values are therefore not available from customMetrics; the time-to-action
// tile shows the mean, the max and the 95th percentile of the per-interval means (the report page of
// `python -m shared report` has exact p50/p95 from the decision table). KQL strings use double quotes so the
// Bicep strings need no escaping.
var grain = '{TimeRange:grain}'
var workbookQueries = {
  decisionsByAction: 'customMetrics | where name == "agent.decisions" | extend action = tostring(customDimensions.action) | summarize decisions = sum(valueSum) by action, bin(timestamp, ${grain})'
  decisionsByCategory: 'customMetrics | where name == "agent.decisions" | extend category = tostring(customDimensions.category), source = tostring(customDimensions.source) | summarize decisions = sum(valueSum) by category, source | order by decisions desc'
  reruns: 'customMetrics | where name in ("agent.reruns", "agent.rerun_outcomes") | extend series = iff(name == "agent.reruns", "started", strcat("ended ", tostring(customDimensions.result))) | summarize reruns = sum(valueSum) by series, bin(timestamp, ${grain})'
  rerunSuccess: 'customMetrics | where name == "agent.rerun_outcomes" | summarize succeeded = sumif(valueSum, tostring(customDimensions.result) == "succeeded"), ended = sum(valueSum) | extend success_rate_pct = iff(ended > 0, round(100.0 * succeeded / ended, 1), real(null))'
  emails: 'customMetrics | where name == "agent.emails" | extend result = tostring(customDimensions.result) | summarize emails = sum(valueSum) by result, bin(timestamp, ${grain})'
  llm: 'customMetrics | where name in ("agent.llm.calls", "agent.llm.tokens", "agent.llm.cost_usd") | extend series = case(name == "agent.llm.tokens", strcat("tokens ", tostring(customDimensions.kind)), name == "agent.llm.calls", strcat("calls ", tostring(customDimensions.source)), "cost USD") | summarize total = round(sum(valueSum), 4) by series | order by series asc'
  llmCost: 'customMetrics | where name == "agent.llm.cost_usd" | summarize cost_usd = sum(valueSum) by bin(timestamp, ${grain})'
  timeToAction: 'customMetrics | where name == "agent.time_to_action" and valueCount > 0 | summarize mean_s = sum(valueSum) / sum(valueCount), max_s = max(valueMax), p95_of_interval_means_s = percentile(valueSum / valueCount, 95) by bin(timestamp, ${grain})'
  poison: 'customMetrics | where name == "agent.poison" | extend reason = tostring(customDimensions.reason) | summarize poison = sum(valueSum) by reason, bin(timestamp, ${grain})'
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Databricks AI agent\nDecisions, reruns and their outcomes, emails, LLM use and cost, time to action and poison messages, from the metrics the app sends (shared/telemetry.py). Nothing shows until the app has a connection string and has decided something.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        parameters: [
          {
            id: 'time-range'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 604800000
            }
            typeSettings: {
              allowCustom: true
              selectableValues: [
                {
                  durationMs: 86400000
                }
                {
                  durationMs: 604800000
                }
                {
                  durationMs: 2592000000
                }
              ]
            }
          }
        ]
      }
    }
    {
      type: 3
      name: 'decisions-by-action'
      content: {
        version: 'KqlItem/1.0'
        title: 'Decisions by action (agent.decisions)'
        query: workbookQueries.decisionsByAction
        visualization: 'timechart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'decisions-by-category'
      content: {
        version: 'KqlItem/1.0'
        title: 'Decisions by category and decision source (agent.decisions)'
        query: workbookQueries.decisionsByCategory
        visualization: 'table'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'reruns'
      content: {
        version: 'KqlItem/1.0'
        title: 'Reruns started and how they ended (agent.reruns, agent.rerun_outcomes)'
        query: workbookQueries.reruns
        visualization: 'barchart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'rerun-success'
      content: {
        version: 'KqlItem/1.0'
        title: 'Rerun success rate (agent.rerun_outcomes)'
        query: workbookQueries.rerunSuccess
        visualization: 'table'
        size: 4
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'emails'
      content: {
        version: 'KqlItem/1.0'
        title: 'Emails sent and failed (agent.emails)'
        query: workbookQueries.emails
        visualization: 'barchart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'llm'
      content: {
        version: 'KqlItem/1.0'
        title: 'LLM calls, tokens and estimated cost (agent.llm.calls, agent.llm.tokens, agent.llm.cost_usd)'
        query: workbookQueries.llm
        visualization: 'table'
        size: 4
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'llm-cost'
      content: {
        version: 'KqlItem/1.0'
        title: 'LLM cost over time, USD (agent.llm.cost_usd)'
        query: workbookQueries.llmCost
        visualization: 'timechart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'time-to-action'
      content: {
        version: 'KqlItem/1.0'
        title: 'Time from failure to action, seconds (agent.time_to_action)'
        query: workbookQueries.timeToAction
        visualization: 'timechart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'poison'
      content: {
        version: 'KqlItem/1.0'
        title: 'Poison messages by reason (agent.poison)'
        query: workbookQueries.poison
        visualization: 'barchart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
      }
    }
  ]
  fallbackResourceIds: [
    appInsights.id
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsName, 'agent-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Databricks AI agent'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: string(workbookContent)
  }
}

// --- Alert: a message ended in the poison queue ----------------------------------------------------------------
// agent.poison is counted by the app when it gives a message up (shared/telemetry.py record_poison); one row per
// export interval with a non-zero count, split by reason. Evaluated every 5 minutes over the last 15.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'dbxagent'
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var poisonAlertQuery = 'customMetrics | where name == "agent.poison" and valueSum > 0 | extend reason = tostring(customDimensions.reason)'

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${appInsightsName}-poison'
  location: location
  tags: tags
  properties: {
    displayName: 'Databricks AI agent: poison message'
    description: 'A job-failure message could not be processed and went to job-failures-poison; its reason is on the agent state table and in the logs. Nothing was lost, but no decision was made for that failure.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: poisonAlertQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'reason'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        actionGroup.id
      ]
    }
  }
}

output logAnalyticsId string = logAnalytics.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
// Not a secret: with local auth off the instrumentation key alone cannot send telemetry.
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output workbookId string = workbook.id
output poisonAlertId string = poisonAlert.id
