#!/usr/bin/env bash
# Full-size reliability runs (issue 4), per-store costs and the platforms at full size (issue 9),
# capture-summary throughput (issue 10): builds the release component, then runs
# crates/test-host/examples/apc-bench.rs and apc-stores.rs (optimised) and tests/platforms.rs at
# full size against it, and prints their tables.
# Sizes: APC_BENCH_STORM, APC_BENCH_ALERTS, APC_BENCH_VMS, APC_BENCH_SOAK, APC_BENCH_RECORDS,
# APC_BENCH_SEED (see the example's header). Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --target wasm32-wasip2 --release
# The baseline of the per-store table: the smallest Spin component, on the same hosts.
if [ "${APC_BENCH_ONLY:-}" != summary ]; then
  cargo build --target wasm32-wasip2 --release -p trivial-component
fi
target_dir="${CARGO_TARGET_DIR:-target}"
export APC_WASM="${APC_WASM:-$PWD/target/wasm32-wasip2/release/alert_packet_capture.wasm}"
# The wasm above was built in the default target dir unless CARGO_TARGET_DIR was set.
if [ ! -f "$APC_WASM" ] && [ -f "$target_dir/wasm32-wasip2/release/alert_packet_capture.wasm" ]; then
  APC_WASM="$target_dir/wasm32-wasip2/release/alert_packet_capture.wasm"
fi
export APC_TRIVIAL_WASM="${APC_TRIVIAL_WASM:-$(dirname "$APC_WASM")/trivial_component.wasm}"
start=$(date +%s)
# APC_BENCH_ONLY=reliability|stores|platforms|summary runs only that section (summary: issue
# 10's MiB/s and peak memory of an 8 MiB file, in apc-bench).
want() { [ -z "${APC_BENCH_ONLY:-}" ] || [ "$APC_BENCH_ONLY" = "$1" ]; }
if want reliability || want summary; then
  cargo run --release -p test-host --example apc-bench
fi
# Per store (in memory strict, a real redis-server with 3 replicas, Akamai-like): Azure calls,
# KV operations and writes per request beside issue 9's budgets, and requests/s of the
# duplicate and new-alert paths beside the trivial component on the same hosts. Needs redis-server
# (scripts/test.sh installs it). Sizes: APC_STORES_DUPLICATES, APC_STORES_NEW, APC_STORES_PARALLEL.
if want stores; then
  cargo run --release -p test-host --example apc-stores
fi
# Issue 9's proof at full size on each platform's store (memory as SQLite, a real redis-server
# with 3 replicas, Akamai-like with 3 replicas), through the .wasm, with the audit of every run:
# 1,000 deliveries of one alert 100 at a time; 200 VMs at once, 32 in flight; each run to its
# end. The tests print their answers and PUT counts.
if want platforms; then
  APC_PLATFORMS_FULL=1 cargo test -p test-host --test platforms -- --nocapture --test-threads=1 \
    storm_of_one_alert hundred_vms_at_once 2>&1 | grep -E "^(storm on|[0-9]+ VMs on|test |test result)"
fi
echo
echo "bench finished in $(( $(date +%s) - start )) s"
