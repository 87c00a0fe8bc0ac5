// The Azure side of alert-packet-capture, as deploy/azure/setup.sh does it with az:
// resource groups, the capture storage account, the least-privilege custom roles (actions from
// deploy/*.json, scopes filled in), role assignments for the service principal (control plane
// and the capture files' data plane), the region's Network Watcher, an action group calling the
// webhook with the common alert schema, and a metric alert on a VM.
//
// The service principal itself is not here: Bicep deploys ARM resources, and a service principal
// is a Microsoft Graph object. Make it first (setup.sh step 4, or `az ad sp create-for-rbac`)
// and pass its object id:
//   az deployment sub create -l westus -f deploy/azure/main.bicep \
//     -p principalObjectId=<object id> vmResourceGroup=app-rg vmName=web-1 \
//        webhookUrl='https://apc.example.com/alerts?code=<key>'
// The webhook URL carries the key: pass it on the command line or from a vault, never in a
// parameters file in the repository.
targetScope = 'subscription'

@description('Region of the storage account and the Network Watcher.')
param location string = 'westus'

@description('Resource group of the VMs to capture on (it must exist).')
param vmResourceGroup string = 'app-rg'

@description('Resource group of the Network Watchers.')
param networkWatcherResourceGroup string = 'NetworkWatcherRG'

@description('Resource group of the capture storage account.')
param storageResourceGroup string = 'capture-rg'

@description('Capture storage account name.')
param storageAccountName string = 'pcap${take(replace(subscription().subscriptionId, '-', ''), 8)}'

@description('Object id of the component\'s service principal.')
param principalObjectId string

@description('Read capture files with the built-in Storage Blob Data Reader (true) or the custom file-reader role of deploy/role-alert-packet-capture-files.json (false).')
param builtinFileReader bool = true

@description('The component\'s webhook URL with its key, https://<host>/alerts?code=<key>; empty: no action group or alert.')
@secure()
param webhookUrl string = ''

@description('A VM in vmResourceGroup to put the example metric alert on; empty: none.')
param vmName string = ''

var responder = loadJsonContent('../role-alert-packet-capture.json')
var operations = loadJsonContent('../role-alert-packet-capture-operations.json')
var files = loadJsonContent('../role-alert-packet-capture-files.json')
var sub = subscription().id
var storageId = '${sub}/resourceGroups/${storageResourceGroup}/providers/Microsoft.Storage/storageAccounts/${storageAccountName}'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource storageRg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: storageResourceGroup
  location: location
}

resource watcherRg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: networkWatcherResourceGroup
  location: location
}

resource responderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(sub, responder.Name)
  properties: {
    roleName: responder.Name
    description: responder.Description
    type: 'CustomRole'
    permissions: [
      {
        actions: responder.Actions
        notActions: responder.NotActions
        dataActions: responder.DataActions
        notDataActions: responder.NotDataActions
      }
    ]
    assignableScopes: [
      '${sub}/resourceGroups/${vmResourceGroup}'
      watcherRg.id
      storageRg.id
    ]
  }
}

resource operationsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(sub, operations.Name)
  properties: {
    roleName: operations.Name
    description: operations.Description
    type: 'CustomRole'
    permissions: [
      {
        actions: operations.Actions
        notActions: operations.NotActions
        dataActions: operations.DataActions
        notDataActions: operations.NotDataActions
      }
    ]
    assignableScopes: [
      sub
    ]
  }
}

resource filesRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!builtinFileReader) {
  name: guid(sub, files.Name)
  properties: {
    roleName: files.Name
    description: files.Description
    type: 'CustomRole'
    permissions: [
      {
        actions: files.Actions
        notActions: files.NotActions
        dataActions: files.DataActions
        notDataActions: files.NotDataActions
      }
    ]
    assignableScopes: [
      storageId
    ]
  }
}

resource operationsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(sub, operationsRole.id, principalObjectId)
  properties: {
    roleDefinitionId: operationsRole.id
    principalId: principalObjectId
    principalType: 'ServicePrincipal'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'apc-storage'
  scope: storageRg
  params: {
    location: location
    name: storageAccountName
    principalObjectId: principalObjectId
    responderRoleId: responderRole.id
    fileReaderRoleId: builtinFileReader ? subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader) : filesRole.id
  }
}

module watcher 'modules/watcher.bicep' = {
  name: 'apc-watcher'
  scope: watcherRg
  params: {
    location: location
    principalObjectId: principalObjectId
    responderRoleId: responderRole.id
  }
}

module vms 'modules/vm-group.bicep' = {
  name: 'apc-vm-group'
  scope: resourceGroup(vmResourceGroup)
  params: {
    principalObjectId: principalObjectId
    responderRoleId: responderRole.id
    webhookUrl: webhookUrl
    vmName: vmName
  }
}

output storageAccountId string = storage.outputs.id
output allowedScopes string = '${sub}/resourceGroups/${vmResourceGroup}'
