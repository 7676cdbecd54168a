# Sourced by bench/detect/run.sh and mail.sh: the repository root as working directory, the
# binaries (built here unless KIZUNA and GEN name binaries built elsewhere), the data folder,
# and readers of /usr/bin/time -v reports.
# Environment: CARGO_TARGET_DIR (default target), PY (default target/py-venv/bin/python).
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T=${CARGO_TARGET_DIR:-target}
PY=${PY:-target/py-venv/bin/python}
DATA=$T/bench-detect
mkdir -p "$DATA"
if [ -z "${KIZUNA:-}" ]; then
  cargo build --release -p kizuna-cli
  cargo build --release -p kizuna-detect --example detect_bench_gen
fi
GEN=${GEN:-$T/release/examples/detect_bench_gen}
KIZUNA=${KIZUNA:-$T/release/kizuna}

# Wall seconds, peak RSS in MB, CPU seconds (user + system), share of a core: from a report.
wall_secs() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
peak_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }
cpu_secs() { awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$1"; }
cpu_share() { awk -F': ' '/Percent of CPU/ {print $2}' "$1"; }
