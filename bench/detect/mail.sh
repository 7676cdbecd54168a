#!/usr/bin/env bash
# Mail benchmark (issue 4): `kizuna scan mail` end to end on a generated mbox of ~30 KB messages
# with attachments, against 10,000 indicators and with --observables (extraction alone, also
# pinned to one core), peak memory from /usr/bin/time -v; and, as the comparison, Python's `email` + hashlib on the same
# mbox (bench/detect/mail_python.py).
#
# Usage: bench/detect/mail.sh [MESSAGES]   (default 10000)
# Environment: CARGO_TARGET_DIR (default target), PY (default target/py-venv/bin/python),
#              KIZUNA and GEN to use binaries built elsewhere, PY_MESSAGES for the number of
#              messages Python parses (default 2000: its rate per message is what is compared).
set -euo pipefail
N=${1:-10000}
source "$(dirname "$0")/common.sh"

MBOX=$DATA/mail-$N.mbox
[ -s "$MBOX" ] || "$GEN" mbox "$N" > "$MBOX"
[ -s "$DATA/ind-10000.jsonl" ] || "$GEN" indicators 10000 > "$DATA/ind-10000.jsonl"

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
bytes=$(stat -c %s "$MBOX")
echo "mbox: $N messages, $bytes bytes ($((bytes / N)) bytes per message)"
printf '%-34s %9s %12s %12s %8s %s\n' run seconds 'messages/s' 'peak RSS MB' 'output' 'cpu'
declare -A RATE CPURATE
measure() { # name, output file, command...
  local name=$1 out=$2; shift 2
  /usr/bin/time -v -o "$DATA/time-mail-$name.txt" "$@" > "$out" 2> "$DATA/stderr-mail-$name.txt" || true
  local secs rss cpu pct
  secs=$(wall_secs "$DATA/time-mail-$name.txt")
  rss=$(peak_mb "$DATA/time-mail-$name.txt")
  cpu=$(cpu_secs "$DATA/time-mail-$name.txt")
  pct=$(cpu_share "$DATA/time-mail-$name.txt")
  RATE[$name]=$(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%.0f", n/s}')
  CPURATE[$name]=$(awk -v n="$N" -v s="$cpu" 'BEGIN {printf "%.0f", n/s}')
  printf '%-34s %9s %12s %12s %8s %s\n' "$name" "$secs" "${RATE[$name]}" "$rss" "$(wc -l < "$out")" "(cpu ${cpu}s, $pct of a core)"
}
measure "scan-10000-indicators" "$DATA/mail-hits.jsonl" \
  "$KIZUNA" scan mail "$MBOX" --indicators "$DATA/ind-10000.jsonl" --format jsonl
measure "scan-observables" "$DATA/mail-observables.jsonl" \
  "$KIZUNA" scan mail "$MBOX" --observables
# The same pinned to one core: what extracting on every core gives, within this run.
measure "scan-observables-one-core" "$DATA/mail-observables-1.jsonl" \
  taskset -c 0 "$KIZUNA" scan mail "$MBOX" --observables
grep -h 'observations,' "$DATA/stderr-mail-scan-10000-indicators.txt" || true
"$PY" bench/detect/mail_python.py "$MBOX" "${PY_MESSAGES:-2000}" > "$DATA/mail-python.txt"
head -n1 "$DATA/mail-python.txt"
py=$(sed -n 's/^MAIL_PYTHON_RATE=//p' "$DATA/mail-python.txt")
py_cpu=$(sed -n 's/^MAIL_PYTHON_CPU_RATE=//p' "$DATA/mail-python.txt")
for name in scan-10000-indicators scan-observables; do
  awk -v name="$name" -v k="${RATE[$name]}" -v kc="${CPURATE[$name]}" -v p="$py" -v pc="$py_cpu" \
    'BEGIN {printf "kizuna %s / python email+hashlib: %.1fx wall, %.1fx per CPU second\n", name, k/p, kc/pc}'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
