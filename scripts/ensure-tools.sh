#!/usr/bin/env bash
# Makes the tools the tests and the demo need available, building what is missing:
#   .bin/temporal      the Temporal CLI v1.5.1 (dev server + Web UI), built once into
#                      $(go env GOPATH)/bin and linked here, so fresh clones reuse it
#   .bin/workflowcheck the workflow determinism checker
#   integration/scimmy/node_modules  the SCIMMY third-party SCIM server (npm)
# `ensure-tools.sh temporal` makes the Temporal CLI only (what the demo needs).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bin
gobin="$(go env GOPATH)/bin"

temporal_version="v1.5.1"
if [ ! -x "$gobin/temporal" ] || ! "$gobin/temporal" --version 2>/dev/null | grep -q "Server 1.29.1"; then
  echo "ensure-tools: building the temporal CLI $temporal_version (about 10 minutes the first time)"
  GOFLAGS= go install "github.com/temporalio/cli/cmd/temporal@$temporal_version"
fi
ln -sf "$gobin/temporal" .bin/temporal
[ "${1:-}" != temporal ] || exit 0

if [ ! -x "$gobin/workflowcheck" ]; then
  echo "ensure-tools: installing workflowcheck"
  GOFLAGS= go install go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
fi
ln -sf "$gobin/workflowcheck" .bin/workflowcheck

if [ -f integration/scimmy/package-lock.json ] && [ ! -d integration/scimmy/node_modules ]; then
  if command -v npm >/dev/null; then
    echo "ensure-tools: installing SCIMMY (npm ci)"
    (cd integration/scimmy && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "ensure-tools: npm not found; SCIMMY tests will fail under CI=true" >&2
  fi
fi
