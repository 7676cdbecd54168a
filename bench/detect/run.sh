#!/usr/bin/env bash
# Detection benchmark (issue 4): `kizuna match` end to end (reading JSON lines, matching,
# writing sightings) with 1,000 / 10,000 / 100,000 indicators against the same observations,
# peak memory from /usr/bin/time -v, and, on samples extrapolated to the full run, stix2-matcher
# and rstix evaluating every pattern against every observation (bench/detect/rstix).
#
# Usage: bench/detect/run.sh [OBSERVATIONS]   (default 1000000)
# Environment: CARGO_TARGET_DIR (default target), PY (default target/py-venv/bin/python),
#              SAMPLE_PATTERNS / SAMPLE_OBSERVATIONS for the stix2-matcher sample (500 / 40),
#              RSTIX_SAMPLE for the rstix sample (observations against all 10,000 patterns, 2000).
set -euo pipefail
N=${1:-1000000}
source "$(dirname "$0")/common.sh"
# rstix is its own Cargo project, kept out of the workspace and its lock file.
RSTIX=${RSTIX:-$T/h-rstix/release/detect-bench-rstix}
if [ -z "${NO_BUILD_RSTIX:-}" ]; then
  abs_t=$(realpath -m "$T")
  (cd bench/detect/rstix && CARGO_TARGET_DIR="$abs_t/h-rstix" cargo build --release --locked)
fi

if [ ! -s "$DATA/obs-$N.jsonl" ]; then
  "$GEN" observations "$N" > "$DATA/obs-$N.jsonl"
fi
"$GEN" indicators 100000 > "$DATA/ind-100000.jsonl"
head -n 10000 "$DATA/ind-100000.jsonl" > "$DATA/ind-10000.jsonl"
head -n 1000 "$DATA/ind-100000.jsonl" > "$DATA/ind-1000.jsonl"

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GB RAM"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "observations: $N ($(du -hL "$DATA/obs-$N.jsonl" | cut -f1))"
echo "end to end = process wall time, loading the indicators included; matching = kizuna's own"
echo "figure for the matching phase (reading, matching, writing), from its stderr summary"
printf '%-11s %9s %14s %14s %10s %12s\n' indicators seconds 'end to end/s' 'matching/s' sightings 'peak RSS MB'
declare -A RATE MATCH CPU
for K in 1000 10000 100000; do
  /usr/bin/time -v -o "$DATA/time-$K.txt" "$KIZUNA" match --indicators "$DATA/ind-$K.jsonl" \
    --observations "$DATA/obs-$N.jsonl" > "$DATA/sightings-$K.jsonl" 2> "$DATA/stderr-$K.txt" || true
  secs=$(wall_secs "$DATA/time-$K.txt")
  rss=$(peak_mb "$DATA/time-$K.txt")
  hits=$(wc -l < "$DATA/sightings-$K.jsonl")
  RATE[$K]=$(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%.0f", n/s}')
  cpu=$(cpu_secs "$DATA/time-$K.txt")
  CPU[$K]=$cpu
  pct=$(cpu_share "$DATA/time-$K.txt")
  MATCH[$K]=$(sed -n 's/.*s (\([0-9]*\) observations\/s.*/\1/p' "$DATA/stderr-$K.txt")
  printf '%-11s %9s %14s %14s %10s %12s   (cpu %ss, %s of a core)\n' "$K" "$secs" "${RATE[$K]}" "${MATCH[$K]}" "$hits" "$rss" "$cpu" "$pct"
done
awk -v a="${RATE[1000]}" -v b="${RATE[100000]}" -v c="${MATCH[1000]}" -v d="${MATCH[100000]}" \
  'BEGIN {printf "throughput 1,000 / 100,000 indicators: end to end %.2fx, matching %.2fx\n", a/b, c/d}'

# stix2-matcher: one pattern against one observation at a time; a sample, extrapolated.
out=$("$PY" bench/detect/stix2_matcher_sample.py "$DATA/ind-10000.jsonl" "$DATA/obs-$N.jsonl" \
  "${SAMPLE_PATTERNS:-500}" "${SAMPLE_OBSERVATIONS:-40}" 10000 "$N")
echo "$out" | grep -v '^STIX2_MATCHER_EXTRAPOLATED_SECONDS='
py_secs=$(echo "$out" | sed -n 's/^STIX2_MATCHER_EXTRAPOLATED_SECONDS=//p')
awk -v k="${RATE[10000]}" -v n="$N" -v p="$py_secs" \
  'BEGIN {printf "kizuna match / stix2-matcher (10,000 indicators, stix2-matcher EXTRAPOLATED): %.0fx\n", k/(n/p)}'

# rstix: every pattern against every observation, on all cores; a sample, extrapolated.
out=$("$RSTIX" "$DATA/ind-10000.jsonl" "$DATA/obs-$N.jsonl" "${RSTIX_SAMPLE:-2000}" "$N")
echo "$out" | grep -v '^RSTIX_'
rs_secs=$(echo "$out" | sed -n 's/^RSTIX_EXTRAPOLATED_SECONDS=//p')
rs_cpu=$(echo "$out" | sed -n 's/^RSTIX_CPU_SECONDS_PER_OBSERVATION=//p')
awk -v k="${RATE[10000]}" -v n="$N" -v p="$rs_secs" -v kc="${CPU[10000]}" -v pc="$rs_cpu" \
  'BEGIN {printf "kizuna match / rstix (10,000 indicators, rstix EXTRAPOLATED): %.0fx wall, %.0fx per CPU second\n", k/(n/p), pc/(kc/n)}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
