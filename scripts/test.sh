#!/usr/bin/env bash
# Runs every test: native unit/property/flow tests of the core, the Azure emulator's tests, the
# component tests that drive the release .wasm through the wasmtime test host and the emulator,
# the emulator's conformance under the Azure SDK for Python, and our Storage client against
# Azurite (scripts/azurite.sh; needs node 20+ with npm, and openssl), and the offline checks of
# deploy/ with shellcheck on every script (scripts/check-deploy.sh). Sets up what it needs (the
# wasm32-wasip2 target, Debian's redis-server and shellcheck when run as root) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

# The Redis store tests (crates/test-host/tests/stores.rs) start their own redis-server on a
# free loopback port; it is expected on PATH (Debian's package puts it in /usr/bin).
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing redis-server (Debian package), which the Redis store tests start"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
  else
    echo "redis-server is not on PATH: the Redis store tests need it. Install Debian's package" >&2
    echo "(sudo apt-get install redis-server) or run this script as root, which installs it." >&2
    exit 1
  fi
fi
echo "redis-server: $(command -v redis-server) ($(redis-server --version | grep -o 'v=[^ ]*'))"

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
APC_WASM="$PWD/$wasm" cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

echo "== conformance: the emulator under the official Azure SDK for Python"
pylog=$(mktemp)
trap 'rm -f "$log" "$pylog"' EXIT
bash scripts/conformance.sh 2>&1 | tee "$pylog" || status=$?

echo "== Azurite: our Storage client against Microsoft's Storage emulator"
azlog=$(mktemp)
trap 'rm -f "$log" "$pylog" "$azlog"' EXIT
bash scripts/azurite.sh 2>&1 | tee "$azlog" || status=$?

echo "== deploy/: shellcheck, Kubernetes manifests, runtime config, setup.sh, Bicep (offline)"
dplog=$(mktemp)
trap 'rm -f "$log" "$pylog" "$azlog" "$dplog"' EXIT
bash scripts/check-deploy.sh 2>&1 | tee "$dplog" || status=$?

# One closing line for the whole run (cargo prints one per test binary; pytest one summary).
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
# pytest's last line: "== 8 passed, 1 failed in 3.2s ==" (any order, "error(s)" count as failed).
summary=$(grep -E '^=+ .*[0-9]+ (passed|failed|errors?).* in [0-9.]+s' "$pylog" | tail -1 || true)
py_passed=$({ grep -Eo '[0-9]+ passed' <<<"$summary" || true; } | awk '{s+=$1} END {print s+0}')
py_failed=$({ grep -Eo '[0-9]+ (failed|errors?)' <<<"$summary" || true; } | awk '{s+=$1} END {print s+0}')
if [ -z "$summary" ]; then
  echo "conformance: no pytest summary (the run did not start)" >&2
  py_failed=$((py_failed + 1))
fi
# The Azurite step runs one cargo test binary (its ignored tests): its "test result" line.
az_passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$azlog" | awk '{s+=$4} END {print s+0}')
az_failed=$(grep -Eo '[0-9]+ failed;' "$azlog" | awk '{s+=$1} END {print s+0}')
if ! grep -q 'test result:' "$azlog"; then
  echo "azurite: no test result (the run did not start)" >&2
  az_failed=$((az_failed + 1))
fi
# scripts/check-deploy.sh closes with "deploy checks: N passed, M failed".
dp_line=$(grep -E '^deploy checks: [0-9]+ passed, [0-9]+ failed$' "$dplog" | tail -1 || true)
dp_passed=$(sed -n 's/^deploy checks: \([0-9]*\) passed.*/\1/p' <<<"$dp_line")
dp_failed=$(sed -n 's/.* \([0-9]*\) failed$/\1/p' <<<"$dp_line")
if [ -z "$dp_line" ]; then
  echo "deploy checks: no closing line (the run did not finish)" >&2
  dp_passed=0
  dp_failed=1
fi
passed=$((passed + py_passed + az_passed + dp_passed))
failed=$((failed + py_failed + az_failed + dp_failed))
echo "tests: $passed passed, $failed failed"
exit "$status"
