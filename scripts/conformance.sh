#!/usr/bin/env bash
# Conformance: drives the Azure emulator with the official Azure SDK for Python (azure-identity,
# azure-mgmt-compute, azure-mgmt-network; versions pinned in
# crates/azure-emulator/conformance/requirements.txt). Creates a virtual environment under
# target/, builds and starts the emulator binary on a free loopback port, runs pytest, stops
# the emulator. Exits non-zero on failure. Needs python3 (3.11) with venv/pip and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/conformance-venv
req=crates/azure-emulator/conformance/requirements.txt
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Reinstall only when the pinned set changed.
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi

echo "== building the emulator"
cargo build --quiet -p azure-emulator --bin azure-emulator
out=$(mktemp)
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  rm -f "$out"
}
trap cleanup EXIT
# Port 0: the OS picks a free loopback port; the emulator prints the URL it got.
target/debug/azure-emulator --listen 127.0.0.1:0 >"$out" 2>&1 &
emu_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^azure-emulator listening on \(http:\/\/[0-9.:]*\)$/\1/p' "$out")
  [ -n "$url" ] && break
  if ! kill -0 "$emu_pid" 2>/dev/null; then cat "$out" >&2; echo "the emulator exited" >&2; exit 1; fi
  sleep 0.1
done
if [ -z "$url" ]; then echo "the emulator did not report its address" >&2; exit 1; fi
echo "== conformance (Azure SDK for Python) against $url"
cd crates/azure-emulator/conformance
EMULATOR_URL="$url" "../../../$venv/bin/python" -m pytest -p no:cacheprovider "$@"
