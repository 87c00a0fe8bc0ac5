#!/usr/bin/env bash
# Runs the app on http://127.0.0.1:3000. Sets up what it needs on a fresh machine with a Rust
# toolchain: the wasm32-wasip2 target, the release component and, when needed, the host.
#
#   scripts/run.sh --demo    the whole story against a local Azure emulator (started here,
#                            stopped on exit): the demo alert is sent, POST /poll runs every 5 s,
#                            notifications are printed here, records are kept in
#                            target/apc-demo/store.json across restarts
#   scripts/run.sh           against real Azure: `spin up` when spin is installed, else apc-serve
#
# Variables (README "Configuration") are read as Spin reads them: SPIN_VARIABLE_<NAME> from the
# environment, then from ./.env, then spin.toml's defaults. apc-serve (crates/test-host) does
# that itself, tested, and prints configuration problems at start. Other arguments (e.g.
# `--variable notify_format=json`) go to the server as they are.
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
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) extra+=("$1") ;;
  esac
  shift
done

emulator_listen=127.0.0.1:8089
# Where cargo puts what it builds; spin.toml's `source` is under ./target whatever this says.
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

say() { printf '== %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  say "adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi
say "building the component (release .wasm; 4.5 minutes the first time on 2 busy cores, seconds after)"
# Into ./target, where spin.toml's `source` points, whatever CARGO_TARGET_DIR says.
env -u CARGO_TARGET_DIR cargo build --target wasm32-wasip2 --release

use_spin=false
if ! $demo && command -v spin >/dev/null 2>&1; then
  use_spin=true
else
  # apc-serve is the test host's server, built in the profile the tests build it in, so
  # scripts/test.sh and this script share one build.
  if [ ! -x "$target_dir/debug/apc-serve" ]; then
    say "building apc-serve, the project's wasmtime host: the first time compiles wasmtime, several minutes on 2 cores"
  else
    say "checking apc-serve is up to date"
  fi
  cargo build -p test-host --bin apc-serve
fi

# Both children run in the background and the script waits on them, so a TERM or INT sent to
# the script alone (not only Ctrl-C to the whole terminal group) stops both at once.
emulator_pid=
server_pid=
# shellcheck disable=SC2317 # called from the traps below
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

answers() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

server=()
if $demo; then
  say "building and starting the Azure emulator on $emulator_listen"
  cargo build -p azure-emulator
  if answers "$emulator_listen"; then
    echo "run.sh: something already listens on $emulator_listen; stop it first" >&2
    exit 1
  fi
  # Captures start 1 s after they are created, so the demo's 10 s capture ends soon after the
  # component first looks at it.
  "$target_dir/debug/azure-emulator" --listen "$emulator_listen" --demo --start-delay 1 &
  emulator_pid=$!
  # Wait until it accepts connections (bash's /dev/tcp: no curl needed), or stops.
  for _ in $(seq 1 100); do
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
      echo "run.sh: the emulator stopped (is $emulator_listen in use?)" >&2
      emulator_pid=
      exit 1
    fi
    answers "$emulator_listen" && break
    sleep 0.1
  done
  if ! answers "$emulator_listen"; then
    echo "run.sh: the emulator did not answer on $emulator_listen" >&2
    exit 1
  fi
  say "starting apc-serve with the demo (it compiles the component first: about 40 s on 2 cores)"
  server=("$target_dir/debug/apc-serve" --listen "$listen" --demo "http://$emulator_listen"
    --store-file target/apc-demo/store.json)
elif $use_spin; then
  say "spin up on http://$listen"
  server=(spin up --listen "$listen")
else
  say "spin is not installed: apc-serve (the project's wasmtime host) will serve on http://$listen"
  server=("$target_dir/debug/apc-serve" --listen "$listen" --store-file target/apc-serve/store.json)
fi
"${server[@]}" ${extra[@]+"${extra[@]}"} &
server_pid=$!
status=0
wait "$server_pid" || status=$?
server_pid=
exit "$status"
