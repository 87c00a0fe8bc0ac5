#!/usr/bin/env bash
# Runs the app on http://127.0.0.1:3000. Sets up what it needs on a fresh machine with a Rust
# toolchain: the wasm32-wasip2 target and the release component.
#
#   scripts/run.sh --demo    against a local Azure emulator (started here, stopped on exit)
#   scripts/run.sh           against real Azure, with the variables from the environment or ./.env
#
# Variables (see README "Configuration") are read, for each one spin.toml declares, from
# SPIN_VARIABLE_<NAME>, <NAME> or <name> in the environment, then from the same names in ./.env
# (the environment wins); they are handed on as SPIN_VARIABLE_<NAME>. Other arguments (e.g.
# `--variable notify_format=slack`) go to the server as they are.
#
# Uses `spin up` when the spin CLI is on PATH, else apc-serve, the project's wasmtime host.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=false
listen=127.0.0.1:3000
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --demo) demo=true ;;
    --listen) listen=${2:?--listen needs an address}; shift ;;
    --listen=*) listen=${1#--listen=} ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) extra+=("$1") ;;
  esac
  shift
done

emulator_listen=127.0.0.1:8089
demo_key=demo-key-0123456789abcdef
# The emulator's defaults (crates/azure-emulator/src/lib.rs DEFAULT_*) and its demo storage id.
demo_tenant=72f988bf-86f1-41af-91ab-2d7cd011db47
demo_client=396c2760-2fa5-4948-b9d5-9839a7440836
demo_secret=emulator-secret
demo_storage=/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostorage

# The variables spin.toml declares: name and whether it is required.
declared=$(awk '
  /^\[/ { section = $0; next }
  section == "[variables]" && /^[a-z0-9_]+[ \t]*=/ {
    name = $1; sub(/=.*/, "", name)
    print name, (/required[ \t]*=[ \t]*true/ ? "required" : "optional")
  }' spin.toml)

# ./.env as data, never executed: NAME=VALUE lines, optional `export `, optional quotes.
declare -A dotenv=()
if [ -f .env ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case $line in ''|'#'*) continue ;; esac
    line=${line#export }
    [[ $line == *=* ]] || continue
    key=${line%%=*}; key=${key//[[:space:]]/}
    value=${line#*=}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    dotenv[$key]=$value
  done < .env
fi

# Normalizes every declared variable to SPIN_VARIABLE_<NAME>.
missing=()
while read -r name kind; do
  upper=${name^^}
  value=
  found=false
  for source in env dotenv; do
    for key in "SPIN_VARIABLE_$upper" "$upper" "$name"; do
      if [ $source = env ] && [ -n "${!key+x}" ]; then value=${!key}; found=true; break 2; fi
      if [ $source = dotenv ] && [ -n "${dotenv[$key]+x}" ]; then value=${dotenv[$key]}; found=true; break 2; fi
    done
  done
  if $found; then
    export "SPIN_VARIABLE_$upper=$value"
  elif [ "$kind" = required ] && ! $demo; then
    missing+=("$name")
  fi
done <<< "$declared"

if $demo; then
  export SPIN_VARIABLE_AZURE_AUTHORITY_HOST=http://$emulator_listen
  export SPIN_VARIABLE_AZURE_ARM_ENDPOINT=http://$emulator_listen
  export SPIN_VARIABLE_STORAGE_BLOB_HOST=http://$emulator_listen
  export SPIN_VARIABLE_AZURE_TENANT_ID=$demo_tenant
  export SPIN_VARIABLE_AZURE_CLIENT_ID=$demo_client
  export SPIN_VARIABLE_AZURE_CLIENT_SECRET=$demo_secret
  export SPIN_VARIABLE_STORAGE_ACCOUNT_ID=$demo_storage
  export SPIN_VARIABLE_WEBHOOK_KEYS=$demo_key
elif [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: set these variables (environment or .env, e.g. SPIN_VARIABLE_AZURE_TENANT_ID=...):" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "or run the local demo: scripts/run.sh --demo" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
echo "== building the component (release .wasm)"
# Into ./target, where spin.toml's `source` points, whatever CARGO_TARGET_DIR says.
env -u CARGO_TARGET_DIR cargo build --target wasm32-wasip2 --release

# Both children run in the background and the script waits on them, so a TERM or INT sent to
# the script alone (not only Ctrl-C to the whole terminal group) stops both at once.
emulator_pid=
server_pid=
stop_children() {
  for pid in $server_pid $emulator_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pid=
  emulator_pid=
}
trap stop_children EXIT
trap 'stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM

if $demo; then
  echo "== building and starting the Azure emulator on $emulator_listen"
  cargo build --release -p azure-emulator
  if (exec 3<>"/dev/tcp/${emulator_listen%:*}/${emulator_listen##*:}") 2>/dev/null; then
    echo "run.sh: something already listens on $emulator_listen; stop it first" >&2
    exit 1
  fi
  target_dir=${CARGO_TARGET_DIR:-$PWD/target}
  "$target_dir/release/azure-emulator" --listen "$emulator_listen" --demo &
  emulator_pid=$!
  # Wait until it accepts connections (bash's /dev/tcp: no curl needed), or stops.
  for _ in $(seq 1 100); do
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
      echo "run.sh: the emulator stopped (is $emulator_listen in use?)" >&2
      emulator_pid=
      exit 1
    fi
    if (exec 3<>"/dev/tcp/${emulator_listen%:*}/${emulator_listen##*:}") 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  if ! (exec 3<>"/dev/tcp/${emulator_listen%:*}/${emulator_listen##*:}") 2>/dev/null; then
    echo "run.sh: the emulator did not answer on $emulator_listen" >&2
    exit 1
  fi
  echo "== demo webhook key: $demo_key"
fi

if command -v spin >/dev/null 2>&1; then
  echo "== spin up on http://$listen"
  server=(spin up --listen "$listen")
else
  echo "== spin is not installed: serving with apc-serve (the project's wasmtime host) on http://$listen"
  server=(cargo run --release -p test-host --bin apc-serve -- --listen "$listen")
fi
"${server[@]}" ${extra[@]+"${extra[@]}"} &
server_pid=$!
status=0
wait "$server_pid" || status=$?
server_pid=
exit "$status"
