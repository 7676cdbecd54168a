#!/usr/bin/env bash
# Kizuna's pattern engine against the Rust crate rstix 0.23 on the same inputs, in one process:
# per pattern family (../families.json against ../observed.json) the parse rate, the rate of one
# pattern (parsed once) against the observations (prepared once), the cost of preparing the
# observations from JSON text, both engines' verdicts, and verdict-only probes. Prints a table
# with the ratios (Kizuna / rstix).
# Usage: bench/pattern/rstix/run.sh [FAMILIES OBSERVED]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/h-rstix}"
families=${1:-$here/../families.json}
observed=${2:-$here/../observed.json}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m), $(nproc) cores, load before $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$here" && cargo build -q --release --locked)
"$CARGO_TARGET_DIR/release/pattern-bench-rstix" "$families" "$observed" > "$out"
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg)"
# The probes' verdicts from stix2-matcher too, when scripts/peers.sh has installed it.
matcher="$root/target/py-venv/bin/stix2-matcher"
[ -x "$matcher" ] || matcher=""
python3 - "$out" "$observed" "$matcher" <<'PY'
import json, subprocess, sys, tempfile
rows = [json.loads(l) for l in open(sys.argv[1])]
def stix2(pattern):
    if not sys.argv[3]:
        return "-"
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as t:
        t.write(pattern + "\n"); t.flush()
        p = subprocess.run([sys.argv[3], "-s", "2.1", "-p", t.name, "-f", sys.argv[2]],
                           capture_output=True, text=True)
    o = p.stdout.strip()
    if o.startswith("MATCH:"): return "true"
    if o.startswith("NO MATCH:"): return "false"
    err = (p.stderr.strip().splitlines() or ["?"])[-1]
    return "error: " + err[:80]
def f(x):
    return "%12s" % ("{:,.0f}".format(x) if isinstance(x, (int, float)) else "-")
def r(a, b):
    return "%6.1fx" % (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "     -"
for row in rows:
    if row.get("prepare"):
        k, s = row["kizuna_prepare_per_s"], row["rstix_prepare_per_s"]
        print("preparing the observations from JSON text (%d bytes, %d SCO observations for rstix):"
              % (row["observed_bytes"], row["rstix_observations"]))
        print("  kizuna %.1f us, rstix %.1f us, ratio %.1fx\n" % (1e6 / k, 1e6 / s, k / s))
print("%-10s %12s %12s %7s | %12s %12s %12s %7s %7s | %s" % (
    "family", "kizuna parse", "rstix parse", "ratio", "is_match/s", "matches/s", "rstix eval/s",
    "ratio", "ratio m", "verdicts"))
for row in rows:
    if "family" not in row:
        continue
    kv, rv = row["kizuna_verdict"], row.get("rstix_verdict")
    verdict = ("same (%s)" % kv) if rv == kv else ("DIFFER kizuna %s rstix %s" % (kv, row.get("rstix_error", rv)))
    print("%-10s %s %s %s | %s %s %s %s %s | %s" % (
        row["family"], f(row["kizuna_parse_per_s"]), f(row.get("rstix_parse_per_s")),
        r(row["kizuna_parse_per_s"], row.get("rstix_parse_per_s")),
        f(row["kizuna_is_match_per_s"]), f(row["kizuna_matches_per_s"]), f(row.get("rstix_eval_per_s")),
        r(row["kizuna_is_match_per_s"], row.get("rstix_eval_per_s")),
        r(row["kizuna_matches_per_s"], row.get("rstix_eval_per_s")), verdict))
print("\nprobes (verdict only):")
for row in rows:
    if "probe" in row:
        print("  %-4s %-10s %-90s kizuna: %s | rstix: %s | stix2-matcher: %s" % (
            "same" if row["same"] else "DIFF", row["probe"], row["pattern"], row["kizuna"], row["rstix"],
            stix2(row["pattern"])))
PY
