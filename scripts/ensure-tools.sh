#!/usr/bin/env bash
# Makes the tools the tests and the demo need available, building what is missing:
#   .bin/temporal      the Temporal CLI v1.5.1 (dev server + Web UI), built once into
#                      $(go env GOPATH)/bin and linked here, so fresh clones reuse it
#   .bin/workflowcheck the workflow determinism checker
#   .bin/temporal-server, .bin/temporal-sql-tool  the Temporal server 1.29.1 and its SQL
#                      schema tool (`server` and `sql` in $(go env GOPATH)/bin, about five
#                      minutes the first time), for the production-shaped cluster of
#                      scripts/temporal-cluster.sh; its schemas stay in the Go module cache
#   with --ui: .bin/temporal-ui, the Temporal Web UI server 2.42.1 (make cluster)
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

server_version="1.29.1"
if ! "$gobin/server" --version 2>/dev/null | grep -q "^temporal version $server_version$"; then
  echo "ensure-tools: building the Temporal server $server_version (about 4 minutes the first time)"
  GOFLAGS= go install "go.temporal.io/server/cmd/server@v$server_version"
fi
ln -sf "$gobin/server" .bin/temporal-server
if ! "$gobin/sql" --version 2>/dev/null | grep -q "^temporal-sql-tool version $server_version$"; then
  echo "ensure-tools: building the Temporal SQL tool $server_version"
  GOFLAGS= go install "go.temporal.io/server/cmd/tools/sql@v$server_version"
fi
ln -sf "$gobin/sql" .bin/temporal-sql-tool
if [ ! -d "$(go env GOMODCACHE)/go.temporal.io/server@v$server_version/schema/postgresql/v12/temporal/versioned" ]; then
  echo "ensure-tools: downloading the Temporal server's schemas"
  (cd / && GOFLAGS= go mod download "go.temporal.io/server@v$server_version")
fi

if [ "${1:-}" = "--ui" ]; then
  ui_version="2.42.1"
  ui_dir="$gobin/temporal-ui-$ui_version"
  if [ ! -x "$ui_dir/server" ]; then
    echo "ensure-tools: building the Temporal Web UI server $ui_version (a few minutes the first time)"
    GOFLAGS= GOBIN="$ui_dir" go install "github.com/temporalio/ui-server/v2/cmd/server@v$ui_version"
  fi
  ln -sf "$ui_dir/server" .bin/temporal-ui
fi

if [ -f integration/scimmy/package-lock.json ] && [ ! -d integration/scimmy/node_modules ]; then
  if command -v npm >/dev/null; then
    echo "ensure-tools: installing SCIMMY (npm ci)"
    (cd integration/scimmy && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "ensure-tools: npm not found; SCIMMY tests will fail under CI=true" >&2
  fi
fi
