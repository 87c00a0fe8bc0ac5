// The capture storage account (Network Watcher writes through a SAS, so shared keys stay on),
// the responder role on its resource group and the file-reader role on the account.
param location string
param name string
param principalObjectId string
param responderRoleId string
param fileReaderRoleId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true
    supportsHttpsTrafficOnly: true
  }
}

resource responder 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, responderRoleId, principalObjectId)
  properties: {
    roleDefinitionId: responderRoleId
    principalId: principalObjectId
    principalType: 'ServicePrincipal'
  }
}

resource fileReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, fileReaderRoleId, principalObjectId)
  scope: account
  properties: {
    roleDefinitionId: fileReaderRoleId
    principalId: principalObjectId
    principalType: 'ServicePrincipal'
  }
}

output id string = account.id
