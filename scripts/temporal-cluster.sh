#!/usr/bin/env bash
# A production-shaped Temporal server for scimsync: the real server (v1.29.1) on
# PostgreSQL, with advanced visibility on PostgreSQL, 4 history shards and the frontend,
# history, matching and worker services, configured by deploy/temporal/config/scimsync.yaml.
# CI (`make test`, through internal/testenv), `make cluster` and docker-compose.temporal.yml
# all go through these steps.
#
#   scripts/temporal-cluster.sh schema     create the two databases when missing and bring
#                                          their schemas to the latest version (idempotent)
#   scripts/temporal-cluster.sh serve      run the server in the foreground (exec: the
#                                          process is the server's)
#   scripts/temporal-cluster.sh register   wait until the server answers, create the
#                                          namespace and scimsync's search attributes
#                                          when missing (idempotent)
#   scripts/temporal-cluster.sh start      schema, serve in the background, register; the
#                                          pid and log are in $TEMPORAL_CLUSTER_DIR
#   scripts/temporal-cluster.sh stop       stop what `start` started
#   scripts/temporal-cluster.sh env        print the settings in effect
#
# Settings (environment; defaults in brackets):
#   TEMPORAL_DB_HOST [127.0.0.1]  TEMPORAL_DB_PORT [5432]  TEMPORAL_DB_USER [postgres]
#   TEMPORAL_DB_PASSWORD []       TEMPORAL_DB [temporal]   TEMPORAL_VISIBILITY_DB [temporal_visibility]
#   TEMPORAL_FRONTEND_PORT [7233]: the other ports follow it: history +1, matching +2,
#     worker +6, frontend HTTP +10, and each service's membership port 300 below its gRPC
#     port (7233 gives Temporal's usual 7233-7235, 7239, 7243, 6933-6935, 6939); each can
#     be set on its own (TEMPORAL_HISTORY_PORT, TEMPORAL_FRONTEND_HTTP_PORT, ...)
#   TEMPORAL_NAMESPACE [default]  TEMPORAL_NAMESPACE_RETENTION [72h]
#   TEMPORAL_CLUSTER_ADDRESS: where `register` reaches the frontend [$TEMPORAL_BIND_IP:$TEMPORAL_FRONTEND_PORT;
#     compose: temporal:7233]
#   TEMPORAL_NUM_HISTORY_SHARDS [4], TEMPORAL_LOG_LEVEL [warn], TEMPORAL_DB_MAX_CONNS [20],
#     TEMPORAL_VISIBILITY_DB_MAX_CONNS [10], TEMPORAL_BIND_IP [127.0.0.1],
#     TEMPORAL_METRICS_ADDRESS [none]: read by the config file
#   TEMPORAL_CLUSTER_DIR [.dev/temporal-cluster]: pid and log of `start`
#   Binaries: TEMPORAL_SERVER, TEMPORAL_SQL_TOOL, TEMPORAL_CLI [.bin/temporal-server,
#     .bin/temporal-sql-tool, .bin/temporal (`make tools`), else temporal-server,
#     temporal-sql-tool, temporal on PATH, as in the temporalio/admin-tools image]
#   TEMPORAL_SCHEMA_DIR: the server's schema/postgresql/v12 [the Go module cache's copy of
#     go.temporal.io/server@v1.29.1, else /etc/temporal/schema/postgresql/v12]
#   TEMPORAL_CONFIG_DIR [deploy/temporal/config], TEMPORAL_DYNAMIC_CONFIG
#     [deploy/temporal/dynamicconfig/scimsync.yaml]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
server_version="1.29.1"

die() { echo "temporal-cluster: $*" >&2; exit 1; }

export TEMPORAL_DB_HOST="${TEMPORAL_DB_HOST:-127.0.0.1}"
export TEMPORAL_DB_PORT="${TEMPORAL_DB_PORT:-5432}"
export TEMPORAL_DB_USER="${TEMPORAL_DB_USER:-postgres}"
export TEMPORAL_DB_PASSWORD="${TEMPORAL_DB_PASSWORD:-}"
export TEMPORAL_DB="${TEMPORAL_DB:-temporal}"
export TEMPORAL_VISIBILITY_DB="${TEMPORAL_VISIBILITY_DB:-temporal_visibility}"
fp="${TEMPORAL_FRONTEND_PORT:-7233}"
export TEMPORAL_FRONTEND_PORT="$fp"
export TEMPORAL_HISTORY_PORT="${TEMPORAL_HISTORY_PORT:-$((fp + 1))}"
export TEMPORAL_MATCHING_PORT="${TEMPORAL_MATCHING_PORT:-$((fp + 2))}"
export TEMPORAL_WORKER_PORT="${TEMPORAL_WORKER_PORT:-$((fp + 6))}"
export TEMPORAL_FRONTEND_HTTP_PORT="${TEMPORAL_FRONTEND_HTTP_PORT:-$((fp + 10))}"
export TEMPORAL_FRONTEND_MEMBERSHIP_PORT="${TEMPORAL_FRONTEND_MEMBERSHIP_PORT:-$((fp - 300))}"
export TEMPORAL_HISTORY_MEMBERSHIP_PORT="${TEMPORAL_HISTORY_MEMBERSHIP_PORT:-$((TEMPORAL_HISTORY_PORT - 300))}"
export TEMPORAL_MATCHING_MEMBERSHIP_PORT="${TEMPORAL_MATCHING_MEMBERSHIP_PORT:-$((TEMPORAL_MATCHING_PORT - 300))}"
export TEMPORAL_WORKER_MEMBERSHIP_PORT="${TEMPORAL_WORKER_MEMBERSHIP_PORT:-$((TEMPORAL_WORKER_PORT - 300))}"
for p in "$TEMPORAL_FRONTEND_MEMBERSHIP_PORT" "$TEMPORAL_HISTORY_MEMBERSHIP_PORT" "$TEMPORAL_MATCHING_MEMBERSHIP_PORT" "$TEMPORAL_WORKER_MEMBERSHIP_PORT"; do
  # The server keeps them in a smallint column (cluster_membership.rpc_port).
  [ "$p" -gt 0 ] && [ "$p" -le 32767 ] || die "membership port $p out of range 1-32767 (set TEMPORAL_FRONTEND_PORT lower, or the *_MEMBERSHIP_PORT settings)"
done
export TEMPORAL_CONFIG_DIR="${TEMPORAL_CONFIG_DIR:-$here/deploy/temporal/config}"
export TEMPORAL_DYNAMIC_CONFIG="${TEMPORAL_DYNAMIC_CONFIG:-$here/deploy/temporal/dynamicconfig/scimsync.yaml}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-72h}"
cluster_dir="${TEMPORAL_CLUSTER_DIR:-$here/.dev/temporal-cluster}"
bind_ip="${TEMPORAL_BIND_IP:-127.0.0.1}"
[ "$bind_ip" = "0.0.0.0" ] && bind_ip=127.0.0.1
address="${TEMPORAL_CLUSTER_ADDRESS:-$bind_ip:$TEMPORAL_FRONTEND_PORT}"

# tool NAME ENVVAR LOCAL: $ENVVAR, else .bin/LOCAL, else NAME on PATH.
tool() {
  local name=$1 var=$2 local_name=$3
  if [ -n "${!var:-}" ]; then
    [ -x "${!var}" ] || die "$var=${!var} is not an executable"
    echo "${!var}"
  elif [ -x "$here/.bin/$local_name" ]; then
    echo "$here/.bin/$local_name"
  elif command -v "$name" >/dev/null; then
    command -v "$name"
  else
    die "$name not found: run \`make tools\` (it builds the server and the SQL tool $server_version into \$(go env GOPATH)/bin) or set $var"
  fi
}

schema_dir() {
  if [ -n "${TEMPORAL_SCHEMA_DIR:-}" ]; then
    echo "$TEMPORAL_SCHEMA_DIR"
    return
  fi
  local modcache=""
  command -v go >/dev/null && modcache="$(go env GOMODCACHE 2>/dev/null || true)"
  for d in "$modcache/go.temporal.io/server@v$server_version/schema/postgresql/v12" /etc/temporal/schema/postgresql/v12; do
    if [ -d "$d/temporal/versioned" ]; then
      echo "$d"
      return
    fi
  done
  die "the PostgreSQL schemas of the Temporal server $server_version were not found: run \`make tools\` (it downloads go.temporal.io/server@v$server_version) or set TEMPORAL_SCHEMA_DIR to its schema/postgresql/v12"
}

sqltool() { # sqltool DATABASE ARGS...
  local db=$1; shift
  SQL_PASSWORD="$TEMPORAL_DB_PASSWORD" "$(tool temporal-sql-tool TEMPORAL_SQL_TOOL temporal-sql-tool)" \
    --plugin postgres12 --ep "$TEMPORAL_DB_HOST" -p "$TEMPORAL_DB_PORT" -u "$TEMPORAL_DB_USER" --db "$db" "$@"
}

# setup_one DATABASE SCHEMA_SUBDIR: create the database when missing, the version table
# when missing, then every versioned step not yet applied.
setup_one() {
  local db=$1 dir=$2 out
  if ! out=$(sqltool "$db" create-database 2>&1); then
    grep -qi "already exists" <<<"$out" || die "create database $db on $TEMPORAL_DB_HOST:$TEMPORAL_DB_PORT: $out"
  fi
  # setup-schema -v 0.0 creates the version tables; on a database that has them it fails
  # saying so, which is the state we want.
  if ! out=$(sqltool "$db" setup-schema -v 0.0 2>&1); then
    grep -qi "already exists" <<<"$out" || die "setup-schema of $db: $out"
  fi
  out=$(sqltool "$db" update-schema -d "$dir" 2>&1) || die "update-schema of $db from $dir: $out"
}

cmd_schema() {
  local dir
  dir="$(schema_dir)"
  setup_one "$TEMPORAL_DB" "$dir/temporal/versioned"
  setup_one "$TEMPORAL_VISIBILITY_DB" "$dir/visibility/versioned"
  echo "temporal-cluster: schemas of $TEMPORAL_DB and $TEMPORAL_VISIBILITY_DB on $TEMPORAL_DB_HOST:$TEMPORAL_DB_PORT are up to date"
}

cmd_serve() {
  local server
  server="$(tool temporal-server TEMPORAL_SERVER temporal-server)"
  [ -f "$TEMPORAL_CONFIG_DIR/scimsync.yaml" ] || die "no scimsync.yaml in TEMPORAL_CONFIG_DIR=$TEMPORAL_CONFIG_DIR"
  [ -f "$TEMPORAL_DYNAMIC_CONFIG" ] || die "TEMPORAL_DYNAMIC_CONFIG=$TEMPORAL_DYNAMIC_CONFIG does not exist"
  exec "$server" --root / --config "$TEMPORAL_CONFIG_DIR" --env scimsync --allow-no-auth start
}

cli() { "$(tool temporal TEMPORAL_CLI temporal)" "$@"; }

# wait_until SECONDS DESCRIPTION COMMAND...: retry COMMAND every half second.
wait_until() {
  local t=$1 what=$2 out=""; shift 2
  local deadline=$((SECONDS + t))
  while :; do
    if out=$("$@" 2>&1); then return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || die "$what: not after ${t}s: $out"
    sleep 0.5
  done
}

cmd_register() {
  local timeout="${TEMPORAL_REGISTER_TIMEOUT:-120}"
  wait_until "$timeout" "the Temporal server at $address answering" cli operator cluster health --address "$address"
  if ! cli operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
    local out
    if ! out=$(cli operator namespace create --address "$address" --namespace "$namespace" --retention "$retention" 2>&1); then
      grep -qi "already" <<<"$out" || die "create namespace $namespace: $out"
    fi
  fi
  wait_until 60 "namespace $namespace known" cli operator namespace describe --address "$address" --namespace "$namespace"
  # scimsync's search attributes (workflows.SearchAttributes; the worker also adds them
  # when missing, and internal/testenv checks that this list matches).
  # Every service learns of a new namespace within seconds (its namespace cache).
  wait_until 60 "namespace $namespace known to the operator service" \
    cli operator search-attribute list --address "$address" --namespace "$namespace"
  local have
  have=$(cli operator search-attribute list --address "$address" --namespace "$namespace" 2>&1) || die "list search attributes: $have"
  for sa in ScimProvider ScimObjectKind ScimBatchFirstId ScimBatchLastId; do
    if ! grep -qw "$sa" <<<"$have"; then
      local out
      if ! out=$(cli operator search-attribute create --address "$address" --namespace "$namespace" --name "$sa" --type Keyword 2>&1); then
        grep -qi "already" <<<"$out" || die "create search attribute $sa: $out"
      fi
    fi
  done
  # Usable once a visibility query on them is accepted.
  wait_until 60 "search attributes usable in namespace $namespace" \
    cli workflow count --address "$address" --namespace "$namespace" --query "ScimProvider = 'x' AND ScimObjectKind = 'x'"
  echo "temporal-cluster: $address ready: namespace $namespace, search attributes ScimProvider, ScimObjectKind, ScimBatchFirstId, ScimBatchLastId"
}

cmd_start() {
  mkdir -p "$cluster_dir"
  if [ -f "$cluster_dir/pid" ] && kill -0 "$(cat "$cluster_dir/pid")" 2>/dev/null; then
    echo "temporal-cluster: already running (pid $(cat "$cluster_dir/pid")); registering"
    cmd_register
    return
  fi
  cmd_schema
  "$0" serve >>"$cluster_dir/server.log" 2>&1 &
  echo $! >"$cluster_dir/pid"
  echo "temporal-cluster: server pid $! on $address, log $cluster_dir/server.log"
  if ! (cmd_register); then
    tail -n 30 "$cluster_dir/server.log" >&2 || true
    die "the server did not become ready; see $cluster_dir/server.log"
  fi
}

cmd_stop() {
  local pidfile="$cluster_dir/pid" pid
  [ -f "$pidfile" ] || { echo "temporal-cluster: not started from $cluster_dir"; return 0; }
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
  echo "temporal-cluster: stopped"
}

cmd_env() {
  env | grep -E '^TEMPORAL_' | grep -v PASSWORD | sort
  echo "address=$address namespace=$namespace"
}

case "${1:-}" in
  schema) cmd_schema ;;
  serve) cmd_serve ;;
  register) cmd_register ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && die "unknown command: $1"; exit 2 ;;
esac
