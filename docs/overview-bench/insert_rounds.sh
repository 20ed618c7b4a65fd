#!/bin/sh
# Alternates the 000040 and 000080 versions of event_rollups_apply; pgbench -c 2 of insert50.sql.
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=postgres
for r in 1 2 3; do
  for v in 40 80; do
    psql -q -d ov_bench -f "$(dirname "$0")"/apply$v.sql
    printf "round $r trigger $v: "
    pgbench -n -c 2 -j 2 -T 15 -f "$(dirname "$0")"/insert50.sql ov_bench 2>&1 | grep -E "latency average|^tps" | tr '\n' ' '
    echo " load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
psql -q -d ov_bench -f "$(dirname "$0")"/apply80.sql
