#!/usr/bin/env bash
# Proves that the Temporal Web UI served by `make demo` lists the demo's full sync and its
# SyncBatch children, that it decodes the demo's encrypted payloads through the worker's
# codec server, and that it shows the workflows' summaries (sealed too, so shown only when
# the codec server opened them): loads the workflow list, the full sync's page and the User
# Metadata pages of a full sync with batches and of an ObjectSync in headless Chromium
# (Debian's chromium package), checks the rendered pages, and saves two screenshots.
#   [TEMPORAL_ADDRESS=localhost:7233] scripts/ui-check.sh [UI_URL] [SCREENSHOT] [SUMMARY_SCREENSHOT]
set -euo pipefail
ui=${1:-http://localhost:8233}
shot=${2:-docs/screenshots/temporal-ui.png}
summary_shot=${3:-docs/screenshots/temporal-ui-summaries.png}
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

# Summaries (Temporal's user metadata) are on each execution's User Metadata tab: the full
# sync's own and its children's (the events that started them), and an ObjectSync's. The
# list does not show them (the Web UI has no such column).
# page_of WORKFLOW_ID RUN_ID: the URL of the execution's User Metadata tab.
page_of() { printf '%s/namespaces/default/workflows/%s/%s/user-metadata' "$ui" "$(printf %s "$1" | sed 's#/#%2F#g')" "$2"; }
# latest QUERY: "workflowId runId" of the latest execution the visibility query finds.
latest() {
  "$temporal" workflow list --address "${TEMPORAL_ADDRESS:-localhost:7233}" --query "$1" --limit 1 -o json 2>/dev/null |
    tr -d ' \n' | sed -nE 's/.*"workflowId":"([^"]+)","runId":"([^"]+)".*/\1 \2/p'
}
# The full sync that started the latest SyncBatch (a later one may have had nothing to write).
batch_parent=$("$temporal" workflow list --address "${TEMPORAL_ADDRESS:-localhost:7233}" --query "WorkflowType = 'SyncBatch'" \
  --limit 1 -o json 2>/dev/null | tr -d ' \n' | sed -nE 's/.*"parentExecution":\{"workflowId":"([^"]+)","runId":"([^"]+)"\}.*/\1 \2/p')
object_sync=$(latest "WorkflowType = 'ObjectSync'")
if [ -z "$batch_parent" ] || [ -z "$object_sync" ]; then
  echo "ui-check: no full sync with batches, or no ObjectSync, at ${TEMPORAL_ADDRESS:-localhost:7233}" >&2
  exit 1
fi
read -r wf_id run_id <<<"$batch_parent"
page=$(page_of "$wf_id" "$run_id")
dom=$("$chromium" "${flags[@]}" --dump-dom "$page" 2>/dev/null)
"$chromium" "${flags[@]}" --screenshot="$summary_shot" "$page" >/dev/null 2>&1
# The Summary section renders its text in a frame whose address carries it, URL-encoded.
for want in "content=full%20sync%20of%20demo&" "demo users batch 1 ([0-9]* objects\{0,1\})"; do
  if grep -q -- "$want" <<<"$dom"; then
    echo "ui-check: the full sync's User Metadata shows the summary $want"
  else
    echo "ui-check: the full sync's User Metadata does not show the summary $want ($page)" >&2
    fail=1
  fi
done
echo "ui-check: screenshot of the summaries saved to $summary_shot"
read -r wf_id run_id <<<"$object_sync"
page=$(page_of "$wf_id" "$run_id")
dom=$("$chromium" "${flags[@]}" --dump-dom "$page" 2>/dev/null)
summary='content=demo%20%C2%B7%20\(user\|group\)%20%C2%B7%20[^&]'
if grep -q "$summary" <<<"$dom" && ! grep -q 'content=%3Csealed%3E' <<<"$dom"; then
  echo "ui-check: the ObjectSync's User Metadata shows its summary, decoded by the codec server"
else
  echo "ui-check: the ObjectSync's User Metadata does not show its summary decoded ($page)" >&2
  fail=1
fi
exit $fail
