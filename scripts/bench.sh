#!/usr/bin/env bash
# Full-size reliability runs (issue 4): builds the release component, then runs
# crates/test-host/examples/apc-bench.rs (optimised) against it and prints a table.
# Sizes: APC_BENCH_STORM, APC_BENCH_ALERTS, APC_BENCH_VMS, APC_BENCH_SOAK, APC_BENCH_RECORDS,
# APC_BENCH_SEED (see the example's header). Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --target wasm32-wasip2 --release
target_dir="${CARGO_TARGET_DIR:-target}"
export APC_WASM="${APC_WASM:-$PWD/target/wasm32-wasip2/release/alert_packet_capture.wasm}"
# The wasm above was built in the default target dir unless CARGO_TARGET_DIR was set.
if [ ! -f "$APC_WASM" ] && [ -f "$target_dir/wasm32-wasip2/release/alert_packet_capture.wasm" ]; then
  APC_WASM="$target_dir/wasm32-wasip2/release/alert_packet_capture.wasm"
fi
start=$(date +%s)
cargo run --release -p test-host --example apc-bench
echo
echo "bench finished in $(( $(date +%s) - start )) s"
