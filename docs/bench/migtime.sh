# Shared by migration-000130.sh and migration-000140.sh (sourced, not run): a fresh stock cluster
# (initdb defaults, autovacuum on, port 5494, under /var/tmp/migtime, stopped and removed on exit)
# with database `mt` at the head of BIN's migrations, then one migration rolled back by its
# down.sql, and a workspace ($WS) with a domain ($DOM) to fill. Defines psql (to that cluster) and
# $URL.
#
# Usage:  BIN=… ; . migtime.sh ; migtime_before MIGRATION_DIRECTORY VERSION
PG_BIN=/usr/lib/postgresql/15/bin; D=/var/tmp/migtime
URL=postgres://postgres@127.0.0.1:5494/mt
psql() { /usr/bin/psql -X -h 127.0.0.1 -p 5494 -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

migtime_before() {
  local dir=$1 version=$2
  [ -e "$D" ] && { echo "$D exists: another run is going on, or remove it" >&2; exit 1; }
  mkdir -p $D && chown postgres $D
  su postgres -c "$PG_BIN/initdb -D $D -U postgres --auth=trust -E UTF8 --locale=C" >/dev/null
  su postgres -c "$PG_BIN/pg_ctl -D $D -l $D/log -o '-p 5494 -k /tmp' -w start" >/dev/null
  trap 'su postgres -c "$PG_BIN/pg_ctl -D $D -m fast -w stop" >/dev/null; rm -rf "$D"' EXIT
  psql -d postgres -c "CREATE DATABASE mt"
  DATABASE_URL=$URL $BIN migrate
  psql -d mt -f "$(realpath "$(dirname "${BASH_SOURCE[0]}")/../../migrations/$dir")/down.sql"
  psql -d mt -c "DELETE FROM __diesel_schema_migrations WHERE version = '$version'"
  WS=$(python3 -c 'import uuid; print(uuid.uuid4())'); DOM=$(python3 -c 'import uuid; print(uuid.uuid4())')
  psql -d mt -c "INSERT INTO workspaces (id, name, plan) VALUES ('$WS', 'mt', 'command')"
  psql -d mt -c "INSERT INTO domains (id, workspace_id, hostname, site_id) VALUES ('$DOM', '$WS', 'mt.example', 'mtsite')"
}

# Seconds since $1 (a `date +%s.%N`), one decimal.
since() { awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $1 }"; }
