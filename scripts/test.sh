#!/usr/bin/env bash
# Runs every test: native unit/property/flow tests of the core, the Azure emulator's tests, and
# the component tests that drive the release .wasm through the wasmtime test host and the
# emulator. Sets up what it needs (the wasm32-wasip2 target) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

echo "== building the component (release .wasm)"
cargo build --target wasm32-wasip2 --release
wasm=target/wasm32-wasip2/release/alert_packet_capture.wasm
size=$(stat -c %s "$wasm")
echo "component: $wasm, $size bytes ($(( size * 100 / 1048576 ))% of the 1 MiB budget)"
if [ "$size" -gt 1048576 ]; then
  echo "the component is over its 1 MiB budget" >&2
  exit 1
fi

echo "== running the tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
APC_WASM="$PWD/$wasm" cargo test --workspace --all-targets "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
