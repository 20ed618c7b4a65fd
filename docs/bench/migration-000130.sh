#!/usr/bin/env bash
# How long migration 000130 (event_keys partitioned by month) takes on an install with N stored
# idempotency keys. On a fresh stock cluster (initdb defaults, autovacuum on, port 5494, under
# /var/tmp/migtime, stopped at the end): `postback migrate` to the head, migration 000130 rolled
# back by its down.sql, N keys of one domain spread over the last 60 days inserted into the
# single table (VACUUM ANALYZE, CHECKPOINT), then `postback migrate` again, timed. Prints the
# fill time and size, the migration's seconds, and the keys and size after it.
#
# Usage, as root:  docs/bench/migration-000130.sh BIN [N]     (N default 10,000,000)
set -euo pipefail
BIN=$(realpath "${1:?usage: migration-000130.sh BIN [N]}"); N=${2:-10000000}
. "$(dirname "$0")/migtime.sh"
migtime_before 2026-12-05-000130_event_keys_partitions 20261205000130
t0=$(date +%s.%N)
psql -d mt -c "INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, order_id, event_name)
  SELECT '$WS', gen_random_uuid(), '$DOM', now() - (g::float8 / $N) * interval '60 days', 'order-' || g, 'purchase'
  FROM generate_series(1, $N) g"
psql -d mt -c "VACUUM ANALYZE event_keys"; psql -d mt -c "CHECKPOINT"
echo "fill $(since $t0) s; size $(psql -d mt -c "SELECT pg_size_pretty(pg_total_relation_size('event_keys'))")"
t0=$(date +%s.%N)
DATABASE_URL=$URL $BIN migrate
echo "migration 000130 on $N keys: $(since $t0) s"
echo "after: $(psql -d mt -c "SELECT (SELECT count(*) FROM event_keys) || ' keys, ' || (SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('event_keys'))")"
