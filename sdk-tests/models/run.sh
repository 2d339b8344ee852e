#!/usr/bin/env bash
# The bodies Callsign sends to Infobip and ClickSend, checked against the providers' generated request models
# (PyPI `infobip-api-python-client`, `clicksend-client`): the `#[ignore]`d `bodies_for_*_generated_models` tests
# write them, `check.py` parses each with its endpoint's model and refuses broken copies.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/callsign-target}"
venv="${CALLSIGN_MODELS_VENV:-$HOME/.cache/callsign-models-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r requirements.txt
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
CALLSIGN_MODEL_BODIES_DIR="$out" cargo nextest run --locked -p callsign-messaging --test providers \
  --run-ignored only -E 'test(generated_models)'
"$venv/bin/python" check.py "$out"
