#!/usr/bin/env bash
# ABC inbound runs in --url mode on one private stock cluster: before, after, after without the
# rollup triggers. Usage: BEFORE=path AFTER=path [BENCH=path] abc.sh ROUNDS (as root: the cluster
# runs as postgres, initialised once under /var/tmp/pbc with initdb's defaults, port 5499).
set -euo pipefail
BEFORE=${BEFORE:?the before binary}
AFTER=${AFTER:?the after binary}
BENCH=${BENCH:-target/release/postback-bench}
B=/usr/lib/postgresql/15/bin
D=/var/tmp/pbc
rounds=${1:-2}
if [ ! -f $D/PG_VERSION ]; then
  mkdir -p $D && chown postgres $D
  su postgres -c "$B/initdb -D $D -U postgres --auth=trust -E UTF8 --locale=C" >/dev/null
fi
su postgres -c "$B/pg_ctl -D $D -l $D/log -o '-p 5499 -k /tmp' -w start" >/dev/null || true
psql() { /usr/bin/psql -h 127.0.0.1 -p 5499 -U postgres -qAt "$@"; }
run() { # name binary drop_triggers
  local name=$1 bin=$2 drop=$3 db=abc_${1//-/_}_$RANDOM
  psql -d postgres -c "CREATE DATABASE $db"
  local url="postgres://postgres@127.0.0.1:5499/$db"
  DATABASE_URL=$url POSTBACK_ALLOW_PRIVATE_TARGETS=true POSTBACK_CLIENT_RATE_LIMIT=4294967295 \
    POSTBACK_SITE_RATE_LIMIT=4294967295 POSTBACK_SIGNUP_RATE_LIMIT=4294967295 RUST_LOG=warn \
    $bin --listen 127.0.0.1:8099 >/tmp/abc-server.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -sf http://127.0.0.1:8099/readyz >/dev/null && break; sleep 0.2; done
  if [ "$drop" = yes ]; then
    psql -d $db -c "DROP TRIGGER event_rollups_insert ON events; DROP TRIGGER event_rollups_delete ON events; DROP TRIGGER event_rollups_update ON events; DROP TRIGGER event_rollups_touch_delete ON touches"
  fi
  echo "=== $name $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$BENCH" inbound --url http://127.0.0.1:8099 --database-url $url --connections 32 --seconds 20 2>&1 | grep -E "accepted|latency|verified|MISMATCH"
  kill $pid; wait $pid 2>/dev/null || true
  psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"
}
for r in $(seq $rounds); do
  run before "$BEFORE" no
  run after "$AFTER" no
  run after-no-rollups "$AFTER" yes
done
su postgres -c "$B/pg_ctl -D $D -m fast -w stop" >/dev/null
