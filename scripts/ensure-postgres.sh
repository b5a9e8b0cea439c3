#!/usr/bin/env bash
# Makes sure PostgreSQL answers at DATABASE_URL (default 127.0.0.1:5432), starting the
# machine's cluster when it is down.
set -euo pipefail
host=127.0.0.1 port=5432
if [ -n "${DATABASE_URL:-}" ]; then
  hp=$(echo "$DATABASE_URL" | sed -E 's#^[a-z]+://([^@/]*@)?([^/:?]+)(:([0-9]+))?.*#\2 \4#')
  host=${hp% *}; p=${hp#* }; port=${p:-5432}
fi
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then exit 0; fi
if [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ]; then
  for version in $(ls /etc/postgresql 2>/dev/null); do
    echo "ensure-postgres: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" && exit 0
    sleep 1
  done
fi
echo "ensure-postgres: PostgreSQL does not answer at $host:$port" >&2
exit 1
