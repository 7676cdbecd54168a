#!/usr/bin/env bash
# Runs the TAXII 2.1 conformance suite against medallion 3.0.0 (PyPI) started on 127.0.0.1 with a
# free port; writes target/conformance/medallion.{json,score}. Exits 0 once a score is produced
# (medallion is known to fail some MUSTs: see conformance/README.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/peers.sh"
exec "$root/target/py-venv/bin/python" "$root/conformance/run_against.py" medallion "$@"
