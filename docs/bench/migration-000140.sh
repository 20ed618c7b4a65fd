#!/usr/bin/env bash
# How long migration 000140 (the events' email index keyed on domain and email alone) takes on an
# install with N stored events. On a fresh stock cluster (initdb defaults, autovacuum on, port
# 5494, under /var/tmp/migtime, stopped at the end): `postback migrate` to the head, migration
# 000140 rolled back by its down.sql, N events of one domain from 200,000 customers spread over
# the last 60 days inserted (VACUUM ANALYZE, CHECKPOINT), then `postback migrate` again, timed.
# Prints the fill time, the old index's size, the migration's seconds and the new index's size.
#
# Usage, as root:  docs/bench/migration-000140.sh BIN [N]     (N default 10,000,000)
set -euo pipefail
BIN=$(realpath "${1:?usage: migration-000140.sh BIN [N]}"); N=${2:-10000000}
. "$(dirname "$0")/migtime.sh"
migtime_before 2026-12-05-000140_events_email_dedup 20261205000140
psql -d mt -c "SELECT postback_partitions_ensure(now() - interval '61 days', now())" >/dev/null
index_size() {
  psql -d mt -c "SELECT pg_size_pretty(sum(pg_relation_size(relid))) FROM pg_partition_tree('events_domain_email_idx')"
}
t0=$(date +%s.%N)
psql -d mt -c "INSERT INTO events (id, workspace_id, domain_id, event_name, email, email_sha256, payload,
                                   products, occurred_at, received_at, value, currency, order_id)
  SELECT gen_random_uuid(), '$WS', '$DOM', 'purchase', x.email, sha256(convert_to(x.email, 'UTF8')),
         '{}', '[]', x.t, x.t, 10, 'USD', 'order-' || g
  FROM generate_series(1, $N) g
  CROSS JOIN LATERAL (SELECT now() - (1 - g::float8 / $N) * interval '60 days' AS t,
                             'customer-' || (g::bigint * 7919 % 200000) || '@example.com' AS email) x"
psql -d mt -c "VACUUM ANALYZE events"; psql -d mt -c "CHECKPOINT"
echo "fill $(since $t0) s; old email index $(index_size)"
t0=$(date +%s.%N)
DATABASE_URL=$URL $BIN migrate
echo "migration 000140 on $N events: $(since $t0) s"
echo "after: $(psql -d mt -c "SELECT count(*) FROM events") events, new email index $(index_size)"
