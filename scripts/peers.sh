#!/usr/bin/env bash
# Installs the pinned Python reference peers (stix2-matcher, taxii2-client, medallion, ...) into
# target/py-venv. Idempotent: does nothing when the venv already matches requirements-peers.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/py-venv"
req="$root/scripts/requirements-peers.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "peers installed in $venv"
