#!/usr/bin/env bash
# The alerting rules in docs/METRICS.md parse and type-check: `promtool check rules` on the YAML block of that page.
# Installs Debian's prometheus package (for promtool) when it is missing and this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool is missing (apt-get install prometheus)"; exit 1
  fi
fi
rules="$(mktemp --suffix=.yml)"
trap 'rm -f "$rules"' EXIT
python3 - "$rules" <<'PY'
import sys
text = open("docs/METRICS.md").read()
start = text.index("```yaml\n") + len("```yaml\n")
open(sys.argv[1], "w").write(text[start:text.index("```", start)])
PY
promtool check rules "$rules"
