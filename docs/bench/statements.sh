#!/usr/bin/env bash
# Where PostgreSQL's time goes in a run (issue 23): per mode given, one 20 s `inbound` run at 32
# connections (`webhook`: with `--webhook`) against a server started here, on a private stock
# cluster (cluster.sh) with pg_stat_statements loaded (track_planning on; nothing else changed).
# Over 10 s of the window (from 7 s in) it prints the rates, the WAL written per stored event
# (records and bytes, from pg_stat_wal), the CPU per stored event of each process (from /proc),
# and the statements that took the most time: calls, rows, planning and execution ms, and µs of
# execution per row.
#
# Usage, as root:  docs/bench/statements.sh BIN [MODE…]   (MODE: inbound or webhook; default both)
#   BIN  the release postback binary (the bench is the postback-bench next to it, or BENCH=…)
set -euo pipefail
. "$(dirname "$0")/cluster.sh"
BIN=${1:?usage: statements.sh BIN [MODE…]}
shift
MODES=("$@")
[ $# -gt 0 ] || MODES=(inbound webhook)
PG_CONF="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track_planning = on"
setup
cluster_start
psql() { /usr/bin/psql -X -h 127.0.0.1 -p 5499 -U postgres -qAt "$@"; }


for mode in "${MODES[@]}"; do
  db=statements_$RANDOM
  url=postgres://postgres@127.0.0.1:5499/$db
  psql -c "CREATE DATABASE $db"
  psql -d "$db" -c "CREATE EXTENSION pg_stat_statements"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  DATABASE_URL=$url POSTBACK_ALLOW_PRIVATE_TARGETS=true POSTBACK_CLIENT_RATE_LIMIT=4294967295 \
    POSTBACK_SITE_RATE_LIMIT=4294967295 POSTBACK_SIGNUP_RATE_LIMIT=4294967295 RUST_LOG=warn \
    "$BIN" --listen "127.0.0.1:$port" >"$OUT/server-$mode.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  args=()
  [ "$mode" = webhook ] && args=(--webhook)
  echo "=== $mode $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$BENCH" inbound "${args[@]}" --url "http://127.0.0.1:$port" --database-url "$url" \
    --connections 32 --seconds 20 --json >"$OUT/$mode.json" 2>"$OUT/$mode.log" &
  bench=$!
  sleep 7
  psql -d "$db" -c "SELECT pg_stat_statements_reset()" >/dev/null
  read -r r0 b0 < <(psql -d "$db" -F ' ' -c "SELECT wal_records, wal_bytes FROM pg_stat_wal")
  e0=$(psql -d "$db" -c "SELECT count(*) FROM events")
  cpu_seconds 10 | grep -v "^all " >"$OUT/cpu-$mode"
  e1=$(psql -d "$db" -c "SELECT count(*) FROM events")
  read -r r1 b1 < <(psql -d "$db" -F ' ' -c "SELECT wal_records, wal_bytes FROM pg_stat_wal")
  psql -d "$db" -F ' | ' -c "
    SELECT calls, rows, round(total_plan_time)::int, round(total_exec_time)::int,
           CASE WHEN rows > 0 THEN round((total_exec_time * 1000 / rows)::numeric, 1) END,
           left(regexp_replace(query, '\s+', ' ', 'g'), 90)
    FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT 8" >"$OUT/statements-$mode"
  wait "$bench" || echo "!!! the bench failed: see $OUT/$mode.log" >&2
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  psql -c "DROP DATABASE $db WITH (FORCE)"
  n=$((e1 - e0))
  [ "$n" -gt 0 ] || { echo "$mode: no events stored in the window" >&2; continue; }
  echo "$mode: $(jq -r '"accepted \(.acceptedPerSecond)/s, delivered \(.webhook.deliveriesPerSecond // "-")/s"' "$OUT/$mode.json")"
  echo "  over 10 s: $n events; WAL per event: $(((r1 - r0) / n)) records, $(((b1 - b0) / n)) bytes"
  echo "  CPU per event: $(awk -v n="$n" '{ printf "%s%s %.1f µs", sep, $1, $2 * 1e6 / n; sep = ", " }' "$OUT/cpu-$mode")"
  echo "  calls | rows | plan ms | exec ms | exec µs/row | statement"
  sed 's/^/  /' "$OUT/statements-$mode"
done
