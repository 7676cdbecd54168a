#!/usr/bin/env bash
# The whole test suite: unit, integration, differential and interop tests, the Python reference
# peers included (installed first, pinned, into target/py-venv). Nothing is skipped: a test whose
# peer is missing fails and says how to install it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/peers.sh
export KIZUNA_PYTHON="$root/target/py-venv/bin/python"
cargo test --workspace --locked "$@"
