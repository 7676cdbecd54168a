#!/usr/bin/env bash
# TAXII ingest with the Rust load generator (crates/taxii/examples/loadgen.rs): for each binary
# given (default target/release/kizuna), `rounds` times in turn (A B A B ... for an A/B in one
# sitting), start `kizuna serve` as bench.py does (fresh data directory, 127.0.0.1:0, its
# self-signed certificate, a kizuna.toml that only lifts the per-account rate limit), POST N
# objects 0 -> N (bench.py's objects, byte for byte) over CONNECTIONS keep-alive HTTPS
# connections, print the generator's report, stop the server.
#
#   bench/taxii/ingest.sh [-n N] [--connections K] [--rounds R] [--no-build] [--keep DIR] [BINARY...]
#
# The first and last 10% of a 0 -> 1,000,000 run are the windows "into an empty collection" and
# "at ~1,000,000 stored objects" of issue 2's 1.5x target. Reports go to stdout and, as JSON, to
# target/bench/ingest-<UTC time>-<round>-<binary name>.json.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=100000
connections=4
rounds=1
build=1
keep=
binaries=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --keep) keep=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) binaries+=("$1"); shift ;;
    esac
done

cd "$root"
if [ "$build" = 1 ]; then
    cargo build --release -p kizuna-cli -p kizuna-taxii --example loadgen
fi
[ ${#binaries[@]} -gt 0 ] || binaries=("$root/target/release/kizuna")
loadgen="$root/target/release/examples/loadgen"

# The generator's objects must be bench.py's, byte for byte: compare one envelope.
python="$root/target/py-venv/bin/python"
[ -x "$python" ] || python=python3
k=$(( (n / 100) / 2 ))
if ! cmp -s <("$loadgen" --dump-envelope "$k" -n "$n") <("$python" - "$k" "$n" <<'EOF'
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("bench", os.path.join("bench", "taxii", "bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
sys.stdout.buffer.write(bench.envelope(int(sys.argv[1]), 100, int(sys.argv[2]), 1))
EOF
); then
    echo "loadgen's envelope $k differs from bench.py's" >&2
    exit 1
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$root/target/bench"
work=$(mktemp -d "${TMPDIR:-/tmp}/kizuna-ingest-XXXXXX")
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT

for round in $(seq 1 "$rounds"); do
    for bin in "${binaries[@]}"; do
        dir="$work/$round-$(basename "$bin")"
        mkdir -p "$dir/data"
        printf '[taxii]\nrate_per_second = 1000000.0\nrate_burst = 1000000.0\n' >"$dir/kizuna.toml"
        password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
        KIZUNA_ADMIN_PASSWORD=$password "$bin" serve --data "$dir/data" --listen 127.0.0.1:0 \
            --ready-file "$dir/ready.json" --config "$dir/kizuna.toml" >"$dir/kizuna.log" 2>&1 &
        server=$!
        for _ in $(seq 600); do
            [ -s "$dir/ready.json" ] && break
            kill -0 "$server" 2>/dev/null || { cat "$dir/kizuna.log" >&2; exit 1; }
            sleep 0.1
        done
        [ -s "$dir/ready.json" ] || { echo "no ready file" >&2; exit 1; }
        echo "== round $round, $bin ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
        KIZUNA_ADMIN_PASSWORD=$password "$loadgen" --ready "$dir/ready.json" --pid "$server" \
            -n "$n" --connections "$connections" \
            --json-out "$root/target/bench/ingest-$stamp-$round-$(basename "$bin").json"
        kill "$server"
        wait "$server" 2>/dev/null || true
        server=
        [ -n "$keep" ] && cp -r "$dir" "$keep/"
        rm -rf "$dir"
    done
done
