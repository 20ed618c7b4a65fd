#!/bin/sh
# 1,000,000 events in 10 statements of 100,000 (the rollup trigger runs once per statement).
psql -h 127.0.0.1 -p ${PGPORT:-5432} -U postgres -d ov_bench -q <<'SQL'
DROP TABLE IF EXISTS tt;
CREATE TABLE tt AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM touches;
CREATE INDEX ON tt (n);
ANALYZE tt;
SQL
for i in 0 1 2 3 4 5 6 7 8 9; do
  lo=$((i * 100000 + 1)); hi=$(((i + 1) * 100000))
  start=$(date +%s.%N)
  psql -h 127.0.0.1 -p ${PGPORT:-5432} -U postgres -d ov_bench -q -v lo=$lo -v hi=$hi -f "$(dirname "$0")/prefill_batch.sql"
  end=$(date +%s.%N)
  echo "batch $i: $(echo "$end - $start" | bc) s"
done
psql -h 127.0.0.1 -p ${PGPORT:-5432} -U postgres -d ov_bench -c "VACUUM ANALYZE" -c "SELECT count(*) AS events FROM events" -c "SELECT count(*) AS rollup_rows, sum(events) FROM event_rollups"
