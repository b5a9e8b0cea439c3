#!/usr/bin/env bash
# Proves that the Temporal Web UI served by `make demo` lists the demo's full sync and its
# SyncBatch children: loads the workflow list in headless Chromium (Debian's chromium
# package), checks the rendered page, and saves a screenshot.
#   scripts/ui-check.sh [UI_URL] [SCREENSHOT]
set -euo pipefail
ui=${1:-http://localhost:8233}
shot=${2:-docs/screenshots/temporal-ui.png}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "ui-check: chromium not found; install it with: apt-get install -y chromium" >&2
  exit 2
fi
url="$ui/namespaces/default/workflows"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1600,1000
  --virtual-time-budget=20000)
dom=$("$chromium" "${flags[@]}" --dump-dom "$url" 2>/dev/null)
mkdir -p "$(dirname "$shot")"
"$chromium" "${flags[@]}" --screenshot="$shot" "$url" >/dev/null 2>&1
fail=0
for want in "scim-full-sync/demo" "user-batch-1" "group-batch" "FullSync" "SyncBatch"; do
  if grep -q -- "$want" <<<"$dom"; then
    echo "ui-check: the workflow list shows $want"
  else
    echo "ui-check: the workflow list does not show $want" >&2
    fail=1
  fi
done
echo "ui-check: screenshot saved to $shot"
exit $fail
