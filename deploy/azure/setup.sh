#!/usr/bin/env bash
# Sets up the Azure side of alert-packet-capture with the az CLI, idempotently: run it again
# and it changes only what is missing. deploy/README.md ("Azure set-up, scripted") explains
# each step; deploy/azure/main.bicep declares the same resources.
#
#   deploy/azure/setup.sh --dry-run   print every command it would run, run nothing
#   deploy/azure/setup.sh             do it (az login first)
#
# Settings (environment):
#   SUB        subscription id (default: az account show; required for --dry-run)
#   VM_RG      resource group of the VMs to capture on (default app-rg; must exist)
#   VM_NAME    a VM to put the example metric alert on (default: none, no alert)
#   NW_RG      Network Watchers' resource group (default NetworkWatcherRG)
#   ST_RG      resource group of the capture storage account (default capture-rg)
#   ST         storage account name (default pcap + the subscription's first 8 hex digits)
#   REGION     region of the storage account and the watcher (default westus)
#   SP_NAME    service principal display name (default alert-packet-capture)
#   APC_URL    where the component is served, e.g. https://apc.example.com (default: none, no
#              action group)
#   FILES_ROLE builtin (Storage Blob Data Reader, default) or custom (deploy/
#              role-alert-packet-capture-files.json) for reading capture files
#   OUT        folder for the generated secrets, mode 700 (default ./apc-secrets)
#   SECURE_WEBHOOK  1: also the Entra ID ("secure") webhook — an app registration with an
#              application id URI and the ActionGroupsSecureWebhook app role, that role given to
#              Azure Monitor's action-group principal, and the action group's receiver switched
#              to a token (needs APC_URL; set alerts_auth=keys+entra first, then entra)
# The webhook key is read from $OUT/webhook-key, made there (openssl rand -hex 24) if missing.
# Secrets are written to $OUT only, never printed.
set -euo pipefail

dry_run=false
case ${1:-} in
  --dry-run) dry_run=true ;;
  "") ;;
  -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "setup.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
roles_dir=$(cd "$here/.." && pwd)

if [ -z "${SUB:-}" ]; then
  if $dry_run; then
    echo "setup.sh: --dry-run needs SUB (the subscription id)" >&2
    exit 2
  fi
  SUB=$(az account show --query id -o tsv)
fi
VM_RG=${VM_RG:-app-rg}
VM_NAME=${VM_NAME:-}
NW_RG=${NW_RG:-NetworkWatcherRG}
ST_RG=${ST_RG:-capture-rg}
ST=${ST:-pcap$(printf '%s' "${SUB//-/}" | cut -c1-8)}
REGION=${REGION:-westus}
SP_NAME=${SP_NAME:-alert-packet-capture}
APC_URL=${APC_URL:-}
FILES_ROLE=${FILES_ROLE:-builtin}
SECURE_WEBHOOK=${SECURE_WEBHOOK:-}
OUT=${OUT:-./apc-secrets}

sub_scope=/subscriptions/$SUB
vm_rg_scope=$sub_scope/resourceGroups/$VM_RG
nw_rg_scope=$sub_scope/resourceGroups/$NW_RG
st_rg_scope=$sub_scope/resourceGroups/$ST_RG
st_id=$st_rg_scope/providers/Microsoft.Storage/storageAccounts/$ST

# Prints a command (the webhook key masked), and runs it unless --dry-run.
run() {
  local shown="+" arg
  for arg in "$@"; do
    if [ -n "${key:-}" ]; then arg=${arg//"$key"/<webhook key>}; fi
    arg=${arg//"$tmp"/<tmp>}
    if [[ $arg == *[[:space:]]* || -z $arg ]]; then shown+=" '$arg'"; else shown+=" $arg"; fi
  done
  printf '%s\n' "$shown"
  if ! $dry_run; then "$@"; fi
}

# A read-only lookup; in a dry run nothing exists yet, so it answers empty.
lookup() {
  if $dry_run; then return 0; fi
  "$@" 2>/dev/null || true
}

say() { printf '== %s\n' "$*"; }

# A role JSON from deploy/ with AssignableScopes replaced by the given scopes (awk: the files
# keep the list on lines of their own, which scripts/check_deploy.py checks).
role_json() {
  local file=$1; shift
  local scopes
  scopes=$(printf '    "%s",\n' "$@" | sed '$ s/,$//')
  awk -v scopes="$scopes" '
    /"AssignableScopes": \[/ { print; print scopes; skip = 1; next }
    skip && /^  \]/ { skip = 0 }
    !skip { print }' "$file"
}

# Creates the custom role from a deploy/ JSON, or updates it (same name) with the scopes given.
ensure_role() {
  local file=$1 name; shift
  name=$(sed -n 's/^  "Name": "\(.*\)",$/\1/p' "$file")
  local json
  json=$tmp/$(basename "$file")
  role_json "$file" "$@" > "$json"
  say "custom role \"$name\", assignable at: $*"
  if $dry_run; then sed 's/^/  | /' "$json"; fi
  local id
  id=$(lookup az role definition list --custom-role-only true --name "$name" --query '[0].name' -o tsv)
  if [ -z "$id" ]; then
    run az role definition create --role-definition "@$json"
  else
    # An update needs the definition's id beside its name.
    sed -i "s/^  \"Name\": /  \"Id\": \"$id\",\n  \"Name\": /" "$json"
    run az role definition update --role-definition "@$json"
  fi
}

# Assigns a role to the service principal on a scope, unless it already is.
ensure_assignment() {
  local role=$1 scope=$2 found
  found=$(lookup az role assignment list --assignee "$app_id" --role "$role" --scope "$scope" --query '[0].id' -o tsv)
  if [ -z "$found" ]; then
    # A new custom role takes minutes to replicate: retry while ARM does not know it yet.
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      if run az role assignment create --assignee-object-id "$sp_object_id" --assignee-principal-type ServicePrincipal \
        --role "$role" --scope "$scope" -o none; then
        return 0
      fi
      [ "$attempt" = 10 ] && return 1
      say "the role may not have replicated yet; retrying in 30 s"
      sleep 30
    done
  else
    say "\"$role\" on $scope: already assigned"
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if $dry_run; then say "dry run: nothing is changed; lookups are skipped, so everything shows as missing"; fi

key=
if ! $dry_run; then
  (umask 077 && mkdir -p "$OUT")
  if [ ! -s "$OUT/webhook-key" ]; then
    (umask 077 && openssl rand -hex 24 > "$OUT/webhook-key")
  fi
  key=$(tr -d '[:space:]' < "$OUT/webhook-key")
fi

say "1. resource groups (the VMs' group $VM_RG must exist already)"
run az account set --subscription "$SUB"
for rg in "$ST_RG" "$NW_RG"; do
  if [ "$(lookup az group exists -n "$rg")" = true ]; then
    say "resource group $rg: exists"
  else
    run az group create -n "$rg" -l "$REGION" -o none
  fi
done

say "2. storage account $ST for .cap files (Network Watcher writes through a SAS: shared keys on)"
if [ -n "$(lookup az storage account show -n "$ST" -g "$ST_RG" --query id -o tsv)" ]; then
  say "storage account $ST: exists"
else
  run az storage account create -n "$ST" -g "$ST_RG" -l "$REGION" --sku Standard_LRS --kind StorageV2 \
    --min-tls-version TLS1_2 --allow-blob-public-access false --allow-shared-key-access true -o none
fi

say "3. least-privilege custom roles, scopes filled in"
ensure_role "$roles_dir/role-alert-packet-capture.json" "$vm_rg_scope" "$nw_rg_scope" "$st_rg_scope"
ensure_role "$roles_dir/role-alert-packet-capture-operations.json" "$sub_scope"
if [ "$FILES_ROLE" = custom ]; then
  ensure_role "$roles_dir/role-alert-packet-capture-files.json" "$st_id"
  files_role="Alert Packet Capture File Reader"
else
  files_role="Storage Blob Data Reader"
fi

say "4. service principal $SP_NAME (no role from create-for-rbac: step 5 assigns them)"
app_id=$(lookup az ad sp list --display-name "$SP_NAME" --query '[0].appId' -o tsv)
if [ -z "$app_id" ]; then
  # The output holds the password: into $OUT (mode 600), never on the terminal.
  printf '+ az ad sp create-for-rbac --name %s --years 1 -o json > %s/service-principal.json\n' "$SP_NAME" "$OUT"
  if $dry_run; then
    app_id="<appId>"
  else
    (umask 077 && az ad sp create-for-rbac --name "$SP_NAME" --years 1 -o json > "$OUT/service-principal.json")
    app_id=$(sed -n 's/.*"appId": "\([^"]*\)".*/\1/p' "$OUT/service-principal.json")
  fi
else
  say "service principal $SP_NAME: exists (appId $app_id); its secret is not reset"
fi
sp_object_id=$(lookup az ad sp show --id "$app_id" --query id -o tsv)
# A new principal takes a little while to show in Microsoft Graph.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if $dry_run || [ -n "$sp_object_id" ]; then break; fi
  sleep 6
  sp_object_id=$(lookup az ad sp show --id "$app_id" --query id -o tsv)
done
if ! $dry_run && [ -z "$sp_object_id" ]; then
  echo "setup.sh: service principal $app_id not found in Microsoft Graph after a minute; run again" >&2
  exit 1
fi
sp_object_id=${sp_object_id:-<object id of $app_id>}

say "5. role assignments"
for scope in "$vm_rg_scope" "$nw_rg_scope" "$st_rg_scope"; do
  ensure_assignment "Alert Packet Capture Responder" "$scope"
done
ensure_assignment "Alert Packet Capture Operation Reader" "$sub_scope"
# Data plane: read capture files for the summary, sign the download link.
ensure_assignment "$files_role" "$st_id"

say "6. Network Watcher in $REGION"
run az network watcher configure -g "$NW_RG" --locations "$REGION" --enabled true -o none

if [ -n "$APC_URL" ]; then
  say "7. action group with the common alert schema, calling $APC_URL/alerts"
  # `create` on an existing group replaces it with these settings.
  run az monitor action-group create -g "$VM_RG" -n apc-capture --short-name apccapture \
    --action webhook apc "$APC_URL/alerts?code=${key:-<webhook key>}" usecommonalertschema -o none
  ag_id=$vm_rg_scope/providers/microsoft.insights/actionGroups/apc-capture
  if [ "$SECURE_WEBHOOK" = 1 ]; then
    say "7b. secure webhook: app registration, app role, role for Azure Monitor's action groups"
    ag_app=461e8683-5575-4561-ac7f-899cc907d62a
    role_value=ActionGroupsSecureWebhook
    hook_app=$(lookup az ad app list --display-name "$SP_NAME-webhook" --query '[0].appId' -o tsv)
    if [ -z "$hook_app" ]; then
      run az ad app create --display-name "$SP_NAME-webhook" -o none
      hook_app=$(lookup az ad app list --display-name "$SP_NAME-webhook" --query '[0].appId' -o tsv)
    fi
    hook_app=${hook_app:-<webhook app id>}
    run az ad app update --id "$hook_app" --identifier-uris "api://$hook_app"
    role_id=$(lookup az ad app show --id "$hook_app" --query "appRoles[?value=='$role_value'].id | [0]" -o tsv)
    if [ -z "$role_id" ]; then
      role_id=$(cat /proc/sys/kernel/random/uuid)
      run az ad app update --id "$hook_app" --app-roles "[{\"allowedMemberTypes\":[\"Application\"],\"description\":\"Azure Monitor action groups may call the capture webhook\",\"displayName\":\"$role_value\",\"id\":\"$role_id\",\"isEnabled\":true,\"value\":\"$role_value\"}]"
    fi
    [ -n "$(lookup az ad sp show --id "$hook_app" --query id -o tsv)" ] || run az ad sp create --id "$hook_app" -o none
    [ -n "$(lookup az ad sp show --id "$ag_app" --query id -o tsv)" ] || run az ad sp create --id "$ag_app" -o none
    hook_sp=$(lookup az ad sp show --id "$hook_app" --query id -o tsv); hook_sp=${hook_sp:-<webhook principal id>}
    ag_sp=$(lookup az ad sp show --id "$ag_app" --query id -o tsv); ag_sp=${ag_sp:-<action-group principal id>}
    graph=https://graph.microsoft.com/v1.0/servicePrincipals/$ag_sp/appRoleAssignments
    if [ -z "$(lookup az rest --method GET --uri "$graph" --query "value[?resourceId=='$hook_sp'].id | [0]" -o tsv)" ]; then
      run az rest --method POST --uri "$graph" --headers Content-Type=application/json \
        --body "{\"principalId\":\"$ag_sp\",\"resourceId\":\"$hook_sp\",\"appRoleId\":\"$role_id\"}" -o none
    fi
    hook_object=$(lookup az ad app show --id "$hook_app" --query id -o tsv); hook_object=${hook_object:-<webhook app object id>}
    tenant_id=$(lookup az account show --query tenantId -o tsv); tenant_id=${tenant_id:-<tenant id>}
    # The receiver without the key: Azure Monitor sends an Entra ID token for api://$hook_app.
    run az rest --method PATCH --uri "https://management.azure.com$ag_id?api-version=2023-01-01" \
      --headers Content-Type=application/json --body "{\"properties\":{\"webhookReceivers\":[{\"name\":\"apc\",\"serviceUri\":\"$APC_URL/alerts\",\"useCommonAlertSchema\":true,\"useAadAuth\":true,\"objectId\":\"$hook_object\",\"identifierUri\":\"api://$hook_app\",\"tenantId\":\"$tenant_id\"}]}}" -o none
  fi
  if [ -n "$VM_NAME" ]; then
    say "8. metric alert on $VM_NAME: Network Out Total above 2 GB in 5 minutes"
    vm_id=$vm_rg_scope/providers/Microsoft.Compute/virtualMachines/$VM_NAME
    if [ -n "$(lookup az monitor metrics alert show -g "$VM_RG" -n apc-network-out --query id -o tsv)" ]; then
      say "metric alert apc-network-out: exists"
    else
      run az monitor metrics alert create -g "$VM_RG" -n apc-network-out --scopes "$vm_id" \
        --condition "total Network Out Total > 2000000000" --window-size 5m --evaluation-frequency 1m \
        --severity 3 --action "$ag_id" --description "Start a packet capture when outbound traffic spikes" -o none
    fi
  else
    say "8. no VM_NAME: no metric alert (set VM_NAME to add the example one)"
  fi
else
  say "7. no APC_URL: no action group yet (deploy the component first, then run again with APC_URL)"
fi

say "done. The component's variables:"
tenant=$(lookup az account show --query tenantId -o tsv)
printf '  azure_tenant_id      %s\n' "${tenant:-<tenant of $SUB>}"
printf '  azure_client_id      %s\n' "$app_id"
printf '  azure_client_secret  the "password" in %s/service-principal.json\n' "$OUT"
printf '  webhook_keys         the key in %s/webhook-key\n' "$OUT"
printf '  storage_account_id   %s\n' "$st_id"
printf '  allowed_scopes       %s\n' "$vm_rg_scope"
if [ "$SECURE_WEBHOOK" = 1 ] && [ -n "$APC_URL" ]; then
  printf '  alerts_auth          entra (keys+entra while an action group still sends the key)\n'
  printf '  entra_audience       api://%s\n' "$hook_app"
fi
