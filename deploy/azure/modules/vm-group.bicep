// In the VMs' resource group: the responder role, the action group that calls the webhook with
// the common alert schema, and an example metric alert on one VM.
param principalObjectId string
param responderRoleId string
@secure()
param webhookUrl string
param vmName string

resource responder 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, responderRoleId, principalObjectId)
  properties: {
    roleDefinitionId: responderRoleId
    principalId: principalObjectId
    principalType: 'ServicePrincipal'
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(webhookUrl)) {
  name: 'apc-capture'
  location: 'Global'
  properties: {
    groupShortName: 'apccapture'
    enabled: true
    webhookReceivers: [
      {
        name: 'apc'
        serviceUri: webhookUrl
        useCommonAlertSchema: true
      }
    ]
  }
}

resource vm 'Microsoft.Compute/virtualMachines@2024-07-01' existing = if (!empty(vmName)) {
  name: vmName
}

resource networkOut 'Microsoft.Insights/metricAlerts@2018-03-01' = if (!empty(webhookUrl) && !empty(vmName)) {
  name: 'apc-network-out'
  location: 'global'
  properties: {
    description: 'Start a packet capture when outbound traffic spikes'
    severity: 3
    enabled: true
    scopes: [
      vm.id
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'network-out'
          metricName: 'Network Out Total'
          metricNamespace: 'Microsoft.Compute/virtualMachines'
          operator: 'GreaterThan'
          threshold: 2000000000
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}
