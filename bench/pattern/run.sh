#!/usr/bin/env bash
# Kizuna's pattern engine against stix2-matcher 3.0.0 on the same inputs, in one run:
#  1. parse rate and one-pattern-against-one-observation rate per pattern family
#     (families.json against observed.json, pattern compiled once);
#  2. the command line: `kizuna pattern match` against `stix2-matcher` on the same files.
# Prints the figures and the ratios. Needs the Python peers (scripts/peers.sh).
# Usage: bench/pattern/run.sh [PATTERNS OBSERVED]   (command-line sizes, default 64 and 2000)
# KIZUNA_BIN=path runs that binary instead of building crates/cli.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/pattern"
py="$root/target/py-venv/bin/python"
[ -x "$py" ] || { echo "missing $py: run scripts/peers.sh" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/h-pattern}"
n_patterns=${1:-64}
n_observed=${2:-2000}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build -q --release -p kizuna-pattern --example pattern_bench
"$CARGO_TARGET_DIR/release/examples/pattern_bench" "$here/families.json" "$here/observed.json" > /tmp/kizuna-rates.jsonl
"$py" "$here/stix2_matcher_rates.py" "$here/families.json" "$here/observed.json" > /tmp/stix2-rates.jsonl
"$py" - /tmp/kizuna-rates.jsonl /tmp/stix2-rates.jsonl <<'PY'
import json, sys
k = [json.loads(l) for l in open(sys.argv[1])]
s = [json.loads(l) for l in open(sys.argv[2])]
print("%-11s %12s %12s %7s | %12s %12s %14s %7s" % ("family", "parse/s", "stix2 parse", "ratio", "eval/s", "is_match/s", "stix2 eval/s", "ratio"))
for a, b in zip(k, s):
    assert a["family"] == b["family"] and a["matched"] == b["matched"], (a, b)
    print("%-11s %12.0f %12.0f %6.0fx | %12.0f %12.0f %14.0f %6.0fx" % (
        a["family"], a["parse_per_s"], b["parse_per_s"], a["parse_per_s"] / b["parse_per_s"],
        a["eval_per_s"], a["is_match_per_s"], b["eval_per_s"], a["eval_per_s"] / b["eval_per_s"]))
PY

tmp=$(mktemp -d)
"$py" "$here/make_cli_data.py" "$tmp" "$n_patterns" "$n_observed"
kizuna="${KIZUNA_BIN:-}"
if [ -z "$kizuna" ]; then
  cargo build -q --release -p kizuna-cli
  kizuna="$CARGO_TARGET_DIR/release/kizuna"
fi
# Wall and CPU seconds (user + system); the best of three runs for kizuna, one for stix2-matcher.
measure() { /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" > "$tmp/out" 2>/dev/null || true; tail -n 1 "$tmp/time" | awk '{print $1, $2 + $3}'; }
best=""
for _ in 1 2 3; do
  r=$(measure "$kizuna" pattern match -p "$tmp/cli-patterns.txt" -f "$tmp/cli-observed.json")
  cp "$tmp/out" "$tmp/kizuna.out"
  if [ -z "$best" ] || awk -v a="$r" -v b="$best" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !(x[1] < y[1]) }'; then best=$r; fi
done
theirs=$(measure "$root/target/py-venv/bin/stix2-matcher" -s 2.1 -p "$tmp/cli-patterns.txt" -f "$tmp/cli-observed.json")
cp "$tmp/out" "$tmp/stix2.out"
cmp -s "$tmp/kizuna.out" "$tmp/stix2.out" && same="identical output" || same="OUTPUT DIFFERS"
read -r kw kc <<< "$best"
read -r sw sc <<< "$theirs"
awk -v n="$n_patterns" -v m="$n_observed" -v kw="$kw" -v kc="$kc" -v sw="$sw" -v sc="$sc" -v same="$same" 'BEGIN {
  printf "command line, %d patterns x %d observed-data (%s):\n", n, m, same
  printf "  wall: kizuna %.3f s, stix2-matcher %.2f s, ratio %.0fx\n", kw, sw, sw / kw
  printf "  cpu:  kizuna %.3f s, stix2-matcher %.2f s, ratio %.0fx\n", kc, sc, (kc > 0 ? sc / kc : 0)
}'
rm -rf "$tmp"
