#!/usr/bin/env bash
# make demo: the whole of scimsync on embedded defaults, on one machine.
#   - builds what is missing (temporal CLI, worker, starter, scimtest-server) into .bin/
#   - a Temporal dev server with its Web UI on :8233, history kept in .dev/temporal.db
#   - PostgreSQL at DATABASE_URL, else the local one at 127.0.0.1:5432, else a private
#     cluster under .dev/pg started from the local PostgreSQL binaries
#   - a stand-in SCIM application (scimtest-server) on 127.0.0.1:8088
#   - examples/config.yaml applied, examples/directory.json imported, a worker, a full sync
#   - payload encryption on: a codec key made once in .dev/codec-key (beside the installation
#     secret, owner-only), the worker and starter use it, and the Web UI decodes through the
#     worker's codec server at http://127.0.0.1:9464/codec
# It leaves everything running until Ctrl-C, which stops what it started. A second run
# reuses what is there, keys included.
#
# Where it runs can be moved, e.g. to run a second demo beside the first (the integration
# test TestDemoHistoriesHoldNoEmailInClear does): SCIMSYNC_DEMO_DIR (state, default .dev),
# SCIMSYNC_DEMO_TEMPORAL_PORT (7233), SCIMSYNC_DEMO_UI_PORT (8233), SCIMSYNC_DEMO_TARGET_ADDR
# (127.0.0.1:8088), SCIMSYNC_DEMO_HTTP_ADDR (the worker's, 127.0.0.1:9464).
# SCIMSYNC_CODEC_KEYS, when set, replaces the demo's key list (to rotate; see README).
#
# SCIMSYNC_DEMO_TEMPORAL=cluster (make cluster) runs it on the production-shaped Temporal
# instead of the dev server: the real server 1.29.1 on PostgreSQL (databases temporal_demo
# and temporal_demo_visibility beside the demo's), 4 history shards, started by
# scripts/temporal-cluster.sh with deploy/temporal/config, and the Web UI server 2.42.1
# on the UI port (deploy/temporal/ui); its history stays in those databases.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=${SCIMSYNC_DEMO_DIR:-.dev}
mkdir -p "$dev" .bin
dev=$(cd "$dev" && pwd)
temporal_port=${SCIMSYNC_DEMO_TEMPORAL_PORT:-7233}
ui_port=${SCIMSYNC_DEMO_UI_PORT:-8233}
target_addr=${SCIMSYNC_DEMO_TARGET_ADDR:-127.0.0.1:8088}
http_addr=${SCIMSYNC_DEMO_HTTP_ADDR:-127.0.0.1:9464}
codec_endpoint="http://$http_addr/codec"
pids=()
cleanup() {
  echo
  echo "demo: stopping what the demo started"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${stop_cluster:-}" ]; then scripts/temporal-cluster.sh stop || true; fi
  if [ -n "${private_pg:-}" ]; then pg_run "$pgbin/pg_ctl" -D "$dev/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 "$((t*5))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "demo: $what did not come up; see $dev/*.log" >&2; exit 1
}

step "building (first run: the Temporal CLI takes about 10 minutes)"
scripts/ensure-tools.sh temporal
go build -o .bin/ ./cmd/worker ./cmd/starter ./cmd/scimtest-server

step "PostgreSQL"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
pg_run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -z "${DATABASE_URL:-}" ]; then
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='scimsync_demo'" | grep -q 1 ||
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE scimsync_demo"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/scimsync_demo?sslmode=disable"
  else
    [ -n "$pgbin" ] || { echo "demo: no PostgreSQL answers and no local binaries; set DATABASE_URL" >&2; exit 1; }
    private_pg=1
    if [ ! -d "$dev/pg/data" ]; then
      mkdir -p "$dev/pg" && [ "$(id -u)" != 0 ] || chown -R postgres "$dev/pg"
      pg_run "$pgbin/initdb" -D "$dev/pg/data" -U postgres --auth=trust >/dev/null
    fi
    pg_run "$pgbin/pg_ctl" -D "$dev/pg/data" -l "$dev/pg/postgres.log" -o "-p 54329 -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    wait_for 30 "the private PostgreSQL" pg_isready -h 127.0.0.1 -p 54329
    psql -h 127.0.0.1 -p 54329 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='scimsync_demo'" | grep -q 1 ||
      psql -h 127.0.0.1 -p 54329 -U postgres -qc "CREATE DATABASE scimsync_demo"
    export DATABASE_URL="postgres://postgres@127.0.0.1:54329/scimsync_demo?sslmode=disable"
  fi
fi
echo "using $DATABASE_URL"

step "secrets: installation secret and payload encryption key"
# new_secret FILE: 32 random bytes in hex, readable by the owner only; made once, then kept.
# Losing the installation secret changes every user's externalId; losing the codec key
# leaves the histories it sealed unreadable.
new_secret() { [ -s "$1" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"); }
new_secret "$dev/installation-secret"
new_secret "$dev/codec-key"
export SCIMSYNC_INSTALLATION_SECRET="file:$dev/installation-secret"
# Every payload and failure the worker and starter write to Temporal is sealed with it.
if [ -n "${SCIMSYNC_CODEC_KEYS:-}" ]; then
  keys_shown='"$SCIMSYNC_CODEC_KEYS"' # yours may hold literal keys: never printed
else
  export SCIMSYNC_CODEC_KEYS="demo=file:$dev/codec-key"
  keys_shown="'$SCIMSYNC_CODEC_KEYS'"
fi
# The Web UI, in the browser, calls the worker's codec server: allow its origins.
export SCIMSYNC_CODEC_CORS_ORIGINS="http://localhost:$ui_port,http://127.0.0.1:$ui_port"
echo "installation secret and codec key in $dev; sealing with key $(sed -E 's/=.*//' <<<"$SCIMSYNC_CODEC_KEYS")"

temporal_log=$dev/temporal.log
if [ "${SCIMSYNC_DEMO_TEMPORAL:-dev}" = cluster ]; then
  step "Temporal cluster: the real server on PostgreSQL, 4 history shards (Web UI http://localhost:$ui_port)"
  scripts/ensure-tools.sh --ui
  export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:$temporal_port}
  export TEMPORAL_CLUSTER_DIR="$dev/temporal-cluster"
  temporal_log=$dev/temporal-cluster/server.log
  if .bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
    echo "reusing the Temporal server at $TEMPORAL_ADDRESS"
  else
    # The cluster's databases go on the demo's PostgreSQL server.
    re='^postgres(ql)?://([^:@/]+)(:([^@]*))?@([^:/?]+)(:([0-9]+))?/'
    [[ "$DATABASE_URL" =~ $re ]] || { echo "demo: cannot read user, host and port from DATABASE_URL=$DATABASE_URL" >&2; exit 1; }
    export TEMPORAL_DB_USER="${BASH_REMATCH[2]}" TEMPORAL_DB_PASSWORD="${BASH_REMATCH[4]}" \
      TEMPORAL_DB_HOST="${BASH_REMATCH[5]}" TEMPORAL_DB_PORT="${BASH_REMATCH[7]:-5432}" \
      TEMPORAL_DB=temporal_demo TEMPORAL_VISIBILITY_DB=temporal_demo_visibility \
      TEMPORAL_FRONTEND_PORT="${TEMPORAL_ADDRESS##*:}"
    stop_cluster=1
    scripts/temporal-cluster.sh start
  fi
  TEMPORAL_UI_PORT=$ui_port TEMPORAL_CODEC_ENDPOINT=$codec_endpoint \
    .bin/temporal-ui --root / --config "$root/deploy/temporal/ui" --env scimsync start >"$dev/temporal-ui.log" 2>&1 &
  pids+=($!)
  wait_for 30 "the Temporal Web UI" curl -sf "http://127.0.0.1:$ui_port/"
else
step "Temporal dev server (Web UI http://localhost:$ui_port, decoding through $codec_endpoint)"
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-localhost:$temporal_port}
if .bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
  echo "reusing the Temporal server at $TEMPORAL_ADDRESS (its Web UI decodes only if started with --ui-codec-endpoint $codec_endpoint)"
else
  .bin/temporal server start-dev --db-filename "$dev/temporal.db" --ip 127.0.0.1 --port "$temporal_port" --ui-port "$ui_port" \
    --ui-codec-endpoint "$codec_endpoint" \
    --search-attribute ScimProvider=Keyword --search-attribute ScimObjectKind=Keyword \
    --search-attribute ScimBatchFirstId=Keyword --search-attribute ScimBatchLastId=Keyword \
    --log-level warn >"$dev/temporal.log" 2>&1 &
  pids+=($!)
  wait_for 60 "the Temporal dev server" .bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS"
fi
fi

step "stand-in SCIM application at http://$target_addr/scim/v2"
export SCIMSYNC_DEMO_TOKEN=${SCIMSYNC_DEMO_TOKEN:-demo-token-change-me}
.bin/scimtest-server -addr "$target_addr" -token env:SCIMSYNC_DEMO_TOKEN >"$dev/target.log" 2>&1 &
pids+=($!)
wait_for 10 "the stand-in SCIM application" curl -sf -H "Authorization: Bearer $SCIMSYNC_DEMO_TOKEN" "http://$target_addr/scim/v2/ServiceProviderConfig"

step "configuration and sample directory"
config=examples/config.yaml
if [ "$target_addr" != 127.0.0.1:8088 ]; then # the stand-in moved: so does the provider's base_url
  sed "s#http://127.0.0.1:8088/#http://$target_addr/#" examples/config.yaml >"$dev/config.yaml"
  config=$dev/config.yaml
fi
.bin/starter migrate
.bin/starter import -f examples/directory.json # first: the configuration refers to its groups
.bin/starter apply -f "$config"
# The stand-in keeps its users in memory, so each run starts it empty: forget what earlier
# runs synced there, or the full sync would rightly find nothing changed.
psql "$DATABASE_URL" -qc "DELETE FROM sync_links WHERE provider_id IN (SELECT id FROM providers WHERE name = 'demo')"

step "worker (metrics and health at http://$http_addr, codec server at $codec_endpoint)"
SCIMSYNC_HTTP_ADDR=$http_addr .bin/worker >"$dev/worker.log" 2>&1 &
pids+=($!)
wait_for 30 "the worker" curl -sf "http://$http_addr/healthz"

step "full sync"
.bin/starter full-sync --provider demo --wait

users=$(curl -sf -H "Authorization: Bearer $SCIMSYNC_DEMO_TOKEN" "http://$target_addr/scim/v2/Users?count=1" | sed -E 's/.*"totalResults":([0-9]+).*/\1/')
groups=$(curl -sf -H "Authorization: Bearer $SCIMSYNC_DEMO_TOKEN" "http://$target_addr/scim/v2/Groups?count=1" | sed -E 's/.*"totalResults":([0-9]+).*/\1/')
cat <<MSG

$users users, $groups groups synced to the stand-in application.

Payloads in Temporal's history are encrypted (key in $dev/codec-key); the Web UI and the
commands below decode them through the worker's codec server at $codec_endpoint.

Look around:
  Temporal Web UI      http://localhost:$ui_port  (the full sync and its SyncBatch children)
  status               DATABASE_URL='$DATABASE_URL' SCIMSYNC_CODEC_KEYS=$keys_shown .bin/starter status
  list syncs           .bin/temporal workflow list --address $TEMPORAL_ADDRESS --query "ScimProvider = 'demo'"
  progress             .bin/temporal workflow query --address $TEMPORAL_ADDRESS --codec-endpoint $codec_endpoint --workflow-id <full sync id> --name progress
  a history            .bin/temporal workflow show --address $TEMPORAL_ADDRESS --codec-endpoint $codec_endpoint --workflow-id <id>
  the schedule         .bin/temporal schedule describe --address $TEMPORAL_ADDRESS --schedule-id <its id, in starter status>
  the target           curl -H "Authorization: Bearer \$SCIMSYNC_DEMO_TOKEN" http://$target_addr/scim/v2/Users
  metrics              curl http://$http_addr/metrics
  logs                 $dev/worker.log, $temporal_log

Change a user and watch it arrive within a second:
  psql '$DATABASE_URL' -c "UPDATE users SET name = 'Ada King' WHERE username = 'alovelace'"

Press Ctrl-C to stop everything the demo started.
MSG
# Wait in the background: a trap runs at once during `wait`, not after a foreground sleep.
while true; do sleep 3600 & pids+=($!); wait $!; done
