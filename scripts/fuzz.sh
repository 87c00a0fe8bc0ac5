#!/usr/bin/env bash
# Fuzz the parsers that read untrusted input, with libFuzzer through cargo-fuzz:
#   alert_parse      apc_core::alert::parse on arbitrary bytes (seeded with every alert sample)
#   resource_id      ResourceId::parse / Scope::parse on arbitrary strings (seeded with the ids
#                    found in the samples)
#   capture_summary  summary::Summarizer fed as a range reader feeds it: 4 control bytes pick the
#                    chunk sizes, a known total size and a small max_bytes; the file follows
#                    (seeded with a one-SYN pcap, a pcap header and a pcapng section header).
#                    Chunked and one-piece feeding must give the same summary.
#   entra_token      apc_core::entra (issue 12): the first byte picks a bearer token (parse,
#                    claim checks at any time) or a JWKS document (its keys must refuse a fixed
#                    unsigned token); seeded with well-formed, `alg: none` and HS256 tokens and
#                    a JWKS.
#
# Usage: scripts/fuzz.sh [runs-per-target] [target...]
#   scripts/fuzz.sh                     # 1,000,000 executions of each target
#   scripts/fuzz.sh 200000 resource_id  # a shorter run of one target
#
# Not part of CI or of the workspace build (fuzz/ is excluded from the workspace).
# cargo-fuzz builds with nightly-only rustc flags (-Z sanitizer=address, -Z ...); the machine has
# the stable toolchain, so RUSTC_BOOTSTRAP=1 lets stable rustc accept them. The first run installs
# cargo-fuzz (about 5 min) and builds the targets with AddressSanitizer (about 6 min on 2 cores).
# One in-process libFuzzer job per target (no -jobs/-fork: the machine's 2 cores are shared).
# Any crash is kept in fuzz/artifacts/<target>/ (git-ignored) and must become a regression test
# in crates/apc-core/tests/security.rs (capture_summary: crates/apc-core/src/domain/summary/tests.rs).
# The corpus lives in a temporary directory and is not kept.
#
# Measured (2026-12-01, 2 shared cores, one job, each target 1,000,000 executions, 0 crashes):
#   scripts/fuzz.sh                  (all three, 6 min 15 s once built)
#     alert_parse      122 s,  8,196 exec/s, peak RSS 479 MB
#     resource_id       70 s, 14,285 exec/s, peak RSS 448 MB
#     capture_summary  179 s,  5,586 exec/s, peak RSS 489 MB
#   scripts/fuzz.sh 1000000 entra_token (issue 12; 2026-12-01, 0 crashes): 142 s, 7,042 exec/s,
#     peak RSS 481 MB
#   scripts/fuzz.sh 1000000 capture_summary, with a release build on the other core: 426 s,
#     2,347 exec/s. The peak RSS is AddressSanitizer's quarantine: it levels off by ~150,000
#     executions. The first capture_summary run, against the old summariser, found an input
#     whose summary depended on the chunk sizes (fixed; its regression test is in
#     summary/tests.rs).
#   -rss_limit_mb=1024 is about twice that plateau: a summariser whose tables grew with its
#   input would cross it. Their caps are checked directly by
#   summary::tests::every_table_stays_at_its_cap_under_distinct_flows_hosts_ports_and_probes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
samples="$root/testdata/azure-samples"
runs=${1:-1000000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(alert_parse resource_id capture_summary entra_token)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}"

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/alert_parse" "$corpus/resource_id" "$corpus/capture_summary" "$corpus/entra_token"
# capture_summary inputs begin with 4 control bytes (chunk sizes, known total size, a small
# max_bytes; see the target), then the file: a little-endian microsecond pcap (Ethernet) with one
# TCP SYN, the bare pcap header, and a pcapng section header block.
pcap_header='\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x01\x00\x00\x00'
syn_record='\x00\xf1\x53\x65\x00\x00\x00\x00\x36\x00\x00\x00\x36\x00\x00\x00'
syn_record+='\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00'
syn_record+='\x45\x00\x00\x28\x00\x01\x40\x00\x40\x06\x00\x00\x0a\x00\x00\x04\xcb\x00\x71\x09'
syn_record+='\xc3\x50\x01\xbb\x00\x00\x03\xe8\x00\x00\x00\x00\x50\x02\xfa\xf0\x00\x00\x00\x00'
printf '\x00\x3f\x00\x00%b%b' "$pcap_header" "$syn_record" >"$corpus/capture_summary/pcap-syn"
printf '\x03\x07\x81\x05%b' "$pcap_header" >"$corpus/capture_summary/pcap-header"
printf '\x09\x0b\x42\x00\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x1c\x00\x00\x00' \
  >"$corpus/capture_summary/pcapng-shb"
cp "$samples"/alerts/*.json "$corpus/alert_parse/"
n=0
grep -rhoE '"/subscriptions/[^"]*"' "$samples" | tr -d '"' | sort -u | while IFS= read -r id; do
  n=$((n + 1))
  printf '%s' "$id" >"$corpus/resource_id/id-$n"
done

# entra_token: base64url of JSON, and tokens built from it (mode byte first: 0 token, 1 JWKS).
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
claims=$(b64url '{"aud":"api://apc","iss":"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/","appid":"461e8683-5575-4561-ac7f-899cc907d62a","roles":["ActionGroupsSecureWebhook"],"nbf":1780000000,"exp":1780003600}')
sig=$(head -c 256 /dev/zero | base64 -w0 | tr '+/' '-_' | tr -d '=')
printf '\x00%s.%s.%s' "$(b64url '{"typ":"JWT","alg":"RS256","kid":"k1"}')" "$claims" "$sig" >"$corpus/entra_token/rs256"
printf '\x00%s.%s.' "$(b64url '{"alg":"none"}')" "$claims" >"$corpus/entra_token/none"
printf '\x00%s.%s.%s' "$(b64url '{"alg":"HS256","kid":"k1"}')" "$claims" "$(b64url 0123456789abcdef0123456789abcdef)" \
  >"$corpus/entra_token/hs256"
printf '\x01{"keys":[{"kty":"RSA","use":"sig","kid":"k1","n":"%s","e":"AQAB"},{"kty":"EC","kid":"k2"}]}' "$sig" \
  >"$corpus/entra_token/jwks"

cd "$root/fuzz"
for t in "${targets[@]}"; do
  echo "== $t: $runs executions"
  # -max_len: alert payloads are a few KiB; room to grow without making each run slow.
  cargo fuzz run "$t" "$corpus/$t" -- \
    -runs="$runs" -max_len=16384 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1
done
