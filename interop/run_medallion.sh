#!/usr/bin/env bash
# Starts medallion on 127.0.0.1, drives it through every TAXII endpoint with
# taxii2-client and validates every returned object with stix2-validator. Exits with the tour's status.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/peers.sh"
exec "$root/target/py-venv/bin/python" "$root/interop/run_tour.py" medallion "$@"
