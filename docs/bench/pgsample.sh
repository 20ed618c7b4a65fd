#!/usr/bin/env bash
# PostgreSQL's own counters while a bench runs on the cluster.sh cluster (port 5499): every
# INTERVAL seconds (default 60) one line with, over that interval, WAL MiB/s, full-page images/s,
# WAL records/s, checkpoints so far (timed/requested), buffers written per second by
# checkpoints, the background writer and backends, blocks read from outside shared_buffers and
# found in them per second, commits per second in the bench's database, that database's size, and
# the VACUUMs under way (relation:phase:blocks scanned/total). Stops when the cluster goes away.
# soak.sh runs it when PG_SAMPLE_SECONDS is set.
#
# Usage:  docs/bench/pgsample.sh [INTERVAL]
set -uo pipefail
INTERVAL=${1:-60}
PSQL="psql -h 127.0.0.1 -p 5499 -U postgres -At -F, -d postgres"
prev=""
while pg_isready -q -h 127.0.0.1 -p 5499; do
  db=$($PSQL -c "SELECT datname FROM pg_database WHERE datname LIKE 'postback_bench%' LIMIT 1" 2>/dev/null)
  if [ -z "$db" ]; then
    sleep 5
    continue
  fi
  line=$($PSQL -v db="$db" 2>/dev/null <<'SQL'
SELECT to_char(now(), 'HH24:MI:SS'), w.wal_bytes, w.wal_fpi, w.wal_records,
       b.checkpoints_timed || '/' || b.checkpoints_req, b.buffers_checkpoint, b.buffers_clean,
       b.buffers_backend, d.blks_read, d.blks_hit, d.xact_commit,
       pg_database_size(d.datname) / 1048576,
       (SELECT coalesce(string_agg(relid::regclass::text || ':' || phase || ':' ||
                                   heap_blks_scanned || '/' || heap_blks_total, ' '), '-')
        FROM pg_stat_progress_vacuum)
FROM pg_stat_wal w, pg_stat_bgwriter b, pg_stat_database d
WHERE d.datname = :'db'
SQL
)
  if [ -n "$line" ] && [ -n "$prev" ]; then
    awk -F, -v a="$prev" -v t="$INTERVAL" '{
      split(a, p, ",")
      printf "%s wal %5.1f MiB/s fpi %6.0f/s records %7.0f/s checkpoints %s written: checkpoint %5.0f/s bgwriter %4.0f/s backends %5.0f/s blocks: read %6.0f/s hit %7.0f/s commits %5.0f/s db %s MiB vacuum %s\n",
        $1, ($2 - p[2]) / t / 1048576, ($3 - p[3]) / t, ($4 - p[4]) / t, $5, ($6 - p[6]) / t,
        ($7 - p[7]) / t, ($8 - p[8]) / t, ($9 - p[9]) / t, ($10 - p[10]) / t, ($11 - p[11]) / t,
        $12, $13
      fflush()
    }' <<<"$line"
  fi
  [ -n "$line" ] && prev=$line
  sleep "$INTERVAL"
done
