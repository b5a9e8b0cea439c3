#!/usr/bin/env bash
# Proves that the Temporal Web UI served by `make demo` lists the demo's full sync and its
# SyncBatch children, and that it decodes the demo's encrypted payloads through the
# worker's codec server: loads the workflow list and the full sync's page in headless
# Chromium (Debian's chromium package), checks the rendered pages, and saves a screenshot.
#   [TEMPORAL_ADDRESS=localhost:7233] scripts/ui-check.sh [UI_URL] [SCREENSHOT]
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
for want in "scim-full-sync-[0-9a-f]\{12\}/demo" "user-batch-1" "group-batch" "FullSync" "SyncBatch"; do
  if grep -q -- "$want" <<<"$dom"; then
    echo "ui-check: the workflow list shows $want"
  else
    echo "ui-check: the workflow list does not show $want" >&2
    fail=1
  fi
done
echo "ui-check: screenshot saved to $shot"

# The full sync's page: its input is sealed in history, so the UI shows it only when the
# codec server opened it (and the browser was allowed to call it: CORS).
temporal=$(dirname "$0")/../.bin/temporal
run=$("$temporal" workflow list --address "${TEMPORAL_ADDRESS:-localhost:7233}" --query "WorkflowType = 'FullSync'" \
  --limit 1 -o json 2>/dev/null | tr -d ' \n' | sed -nE 's/.*"workflowId":"([^"]+)","runId":"([^"]+)".*/\1 \2/p')
if [ -z "$run" ]; then
  echo "ui-check: no full sync found at ${TEMPORAL_ADDRESS:-localhost:7233}" >&2
  exit 1
fi
read -r wf_id run_id <<<"$run"
page="$ui/namespaces/default/workflows/$(printf %s "$wf_id" | sed 's#/#%2F#g')/$run_id/history"
dom=$("$chromium" "${flags[@]}" --dump-dom "$page" 2>/dev/null)
if grep -q 'data-encoder-status-success' <<<"$dom" && grep -q '&quot;provider&quot;\|"provider"' <<<"$dom"; then
  echo "ui-check: the full sync's page shows its input decoded by the codec server"
else
  echo "ui-check: the full sync's page does not show its input decoded by the codec server ($page)" >&2
  fail=1
fi
exit $fail
