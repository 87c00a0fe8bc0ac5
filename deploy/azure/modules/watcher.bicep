// The region's Network Watcher (named as Azure names the ones it makes) and the responder role
// on its resource group, where the component finds it.
param location string
param principalObjectId string
param responderRoleId string

resource watcher 'Microsoft.Network/networkWatchers@2024-05-01' = {
  name: 'NetworkWatcher_${location}'
  location: location
  properties: {}
}

resource responder 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, responderRoleId, principalObjectId)
  properties: {
    roleDefinitionId: responderRoleId
    principalId: principalObjectId
    principalType: 'ServicePrincipal'
  }
}
