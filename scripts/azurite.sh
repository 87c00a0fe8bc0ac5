#!/usr/bin/env bash
# Azurite check: our Storage client (crates/apc-core/src/clients/azure/storage.rs) against Microsoft's
# Storage emulator. Installs the Azurite version pinned in scripts/azurite/package-lock.json into
# target/azurite/ (npm ci), makes a throwaway CA and a server certificate for 127.0.0.1 with
# openssl in a temporary folder, starts azurite-blob over HTTPS on a free loopback port with
# `--oauth basic` (bearer tokens are decoded and their audience, issuer and lifetime checked, the
# signature is not), runs the ignored tests of crates/apc-core/tests/azurite.rs against it, and
# stops it. Strict mode (no --loose): we send nothing Azurite does not know, and a loose emulator
# would hide it if we did. Needs node (20 or later) with npm, and openssl. Arguments go to the
# test binary (e.g. a test name).
#
# Azurite 3.35.0 is the newest release that declares Node 20 support (3.36 asks for 21, 3.37 for
# 22; CI has Node 20). It serves the Storage version we pin (2025-01-05).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in node npm openssl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "azurite.sh: $tool is not on PATH. The Azurite check needs Node.js 20 or later with npm" >&2
    echo "(https://nodejs.org, or Debian's nodejs and npm packages) and openssl." >&2
    exit 1
  fi
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "azurite.sh: Node.js $(node --version) is too old; Azurite needs 20 or later" >&2
  exit 1
fi

dir=target/azurite
lock=scripts/azurite/package-lock.json
# Reinstall only when the pinned set changed (npm ci replaces node_modules from the lock file).
if ! cmp -s "$lock" "$dir/package-lock.json" 2>/dev/null || [ ! -x "$dir/node_modules/.bin/azurite-blob" ]; then
  echo "== installing Azurite ($(sed -n 's/.*"azurite": "\(.*\)".*/\1/p' scripts/azurite/package.json)) into $dir"
  mkdir -p "$dir"
  cp scripts/azurite/package.json "$lock" "$dir/"
  # No install scripts: Azurite runs without any (one dependency's postinstall only prints).
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

tmp=$(mktemp -d)
azurite_pid=""
cleanup() {
  if [ -n "$azurite_pid" ]; then kill "$azurite_pid" 2>/dev/null || true; wait "$azurite_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A CA of our own and a leaf for 127.0.0.1 signed by it: the test trusts the CA only (a
# self-signed CA certificate cannot be the server's certificate for rustls/webpki).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj "/CN=alert-packet-capture Azurite test CA" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/leaf.csr" 2>/dev/null
printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -days 1 \
  -set_serial "0x$(openssl rand -hex 8)" -extfile "$tmp/leaf.ext" -out "$tmp/cert.pem" 2>/dev/null

# Build the test before starting the emulator, so a slow build does not count against it.
echo "== building the Azurite test"
cargo test --quiet -p apc-core --test azurite --no-run

# Port 0: the OS picks a free loopback port; Azurite prints the address it got.
# In memory, run from the temporary folder: nothing is left behind.
out="$tmp/azurite.log"
bin="$PWD/$dir/node_modules/.bin/azurite-blob"
(cd "$tmp" && exec "$bin" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence --oauth basic \
  --cert "$tmp/cert.pem" --key "$tmp/key.pem" --disableTelemetry --silent) >"$out" 2>&1 &
azurite_pid=$!
url=""
for _ in $(seq 1 600); do
  url=$(sed -n 's/^Azurite Blob service successfully listens on \(https:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$out")
  [ -n "$url" ] && break
  if ! kill -0 "$azurite_pid" 2>/dev/null; then cat "$out" >&2; echo "Azurite exited" >&2; exit 1; fi
  sleep 0.1
done
if [ -z "$url" ]; then cat "$out" >&2; echo "Azurite did not report its address" >&2; exit 1; fi

echo "== Azurite $("$bin" --version) at $url"
APC_AZURITE_URL="$url" APC_AZURITE_CA="$tmp/ca.pem" \
  cargo test -p apc-core --test azurite -- --ignored "$@"
