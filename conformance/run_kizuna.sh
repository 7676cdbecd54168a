#!/usr/bin/env bash
# Builds kizuna (cargo build --release -p kizuna-cli), starts `kizuna serve` on a temporary data
# directory, waits for its ready file, runs the TAXII 2.1 conformance suite against it over HTTPS
# (trusting the self-signed certificate it reports), stops it, and exits with the suite's status.
# Report and score: target/conformance/kizuna.{json,score}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/peers.sh"
exec "$root/target/py-venv/bin/python" "$root/conformance/run_against.py" kizuna "$@"
