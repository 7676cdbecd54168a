#!/usr/bin/env bash
# Two Kizuna hubs on this machine (TLS, pinned self-signed certificates), release build:
#  1. N objects (default 100,000) added at `mod`: time until all are at `dod`, by push and by pull;
#  2. a trickle of new objects (default 50) with a 1 s sync interval: delay until each is at the
#     partner (p50, p99, max).
# The benchmark itself is crates/sync/examples/two_hub_bench.rs; this script builds it in release
# mode and records the date, the machine and its load beside the figures.
#
# Usage: bench/sync/run.sh [N] [TRICKLE]      (results in bench/sync/results/<date>.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-100000}"
TRICKLE="${2:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/h-sync}"
cargo build --release -p kizuna-sync --example two_hub_bench
mkdir -p bench/sync/results
out="bench/sync/results/$(date -u +%Y-%m-%dT%H%M%SZ).txt"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$CARGO_TARGET_DIR/release/examples/two_hub_bench" "$N" "$TRICKLE"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
echo "written to $out"
