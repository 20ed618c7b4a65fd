#!/bin/sh
# The queries /v1/stats runs since migration 000080 (crates/domain/src/stats/mod.rs), with the
# range's whole UTC days read from event_days and only the partial edge hours from the hourly
# tables. Usage: stats_days.sh DAYS ZONE GROUPING SECONDS, e.g. `stats_days.sh 30 UTC total 15`
# (groupBy=day), `stats_days.sh 90 UTC last_campaign 15` (groupBy=campaign&touch=last). Writes
# the two statements of one call (current period grouped, previous period totals) to a pgbench
# script and runs it on ov_bench for SECONDS with one client; prints pgbench's latency figures.
set -e
days=$1 tz=$2 grouping=$3 secs=${4:-15}
P="psql -h ${PGHOST:-127.0.0.1} -p ${PGPORT:-5432} -U postgres -d ov_bench -Atq"
# The range ends today in the zone; the previous one is the same length just before.
bounds() { # from-offset to-offset → since|until|first whole UTC day|end UTC day (exclusive)
  $P -c "SELECT s, e,
       CASE WHEN s = date_trunc('day', s, 'UTC') THEN (s AT TIME ZONE 'UTC')::date
            ELSE (s AT TIME ZONE 'UTC')::date + 1 END,
       (e AT TIME ZONE 'UTC')::date
FROM (SELECT ((now() AT TIME ZONE '$tz')::date - $1)::timestamp AT TIME ZONE '$tz' AS s,
             ((now() AT TIME ZONE '$tz')::date - $2 + 1)::timestamp AT TIME ZONE '$tz' AS e) x"
}
hours() { # table key lo hi → one hour part, as HourTable::part builds it
  W="workspace_id = '11111111-1111-1111-1111-111111111111' AND hour >= '$3' AND hour < '$4' AND (NULL::uuid IS NULL OR domain_id = NULL::uuid)"
  if [ "$1" = event_hours ]; then
    echo "SELECT $2, kind, currency, events, clicked, amount FROM (SELECT hour, kind, currency, sum(events) AS events, sum(last_clicked) AS clicked, sum(value_sum) AS amount FROM event_hours WHERE $W GROUP BY 1, 2, 3) h"
  else
    echo "SELECT $2, event_kind(event_name), currency, events, CASE WHEN last_click IS NOT NULL THEN events ELSE 0 END, value_sum FROM $1 WHERE $W"
  fi
}
part() { # since until ds de grouping day_key hour_key table → the statement
  s=$1 e=$2 ds=$3 de=$4
  if [ "$ds" \< "$de" ] && [ "$7" != "to_char(hour AT TIME ZONE '$tz', 'YYYY-MM-DD')" ]; then
    h1s=$s; h1e="$ds 00:00:00+00"; h2s="$de 00:00:00+00"; h2e=$e
  else
    ds=$de; h1s=$s; h1e=$e; h2s=$e; h2e=$e
  fi
  cat <<SQL
SELECT key, kind, currency, sum(events)::bigint AS events, sum(clicked)::bigint AS clicked, coalesce(sum(amount), 0)::float8 AS amount
FROM (
  SELECT $6 AS key, kind, currency, events, last_clicked AS clicked, value_sum AS amount FROM event_days
  WHERE workspace_id = '11111111-1111-1111-1111-111111111111' AND grouping = '$5' AND day >= '$ds' AND day < '$de' AND (NULL::uuid IS NULL OR domain_id = NULL::uuid)
  UNION ALL
  $(hours $8 "$7" "$h1s" "$h1e")
  UNION ALL
  $(hours $8 "$7" "$h2s" "$h2e")
) u GROUP BY 1, 2, 3;
SQL
}
cur=$(bounds $((days - 1)) 0 | tr '|' ' ')
prev=$(bounds $((2 * days - 1)) $days | tr '|' ' ')
script=$(mktemp)
set -- $cur
s="$1 $2" e="$3 $4" ds=$5 de=$6
case $grouping in
  total)
    if [ "$tz" = UTC ]; then
      part "$s" "$e" $ds $de total "to_char(day, 'YYYY-MM-DD')" "NULL::text" event_hours >"$script"
    else
      part "$s" "$e" $ds $de total "NULL::text" "to_char(hour AT TIME ZONE '$tz', 'YYYY-MM-DD')" event_hours >"$script"
    fi ;;
  *_click) part "$s" "$e" $ds $de $grouping key last_click event_totals >"$script" ;;
  *_link) part "$s" "$e" $ds $de $grouping key "last_link_id::text" event_rollups >"$script" ;;
  *) part "$s" "$e" $ds $de $grouping key "$grouping" event_rollups >"$script" ;;
esac
set -- $prev
part "$1 $2" "$3 $4" $5 $6 total "NULL::text" "NULL::text" event_hours >>"$script"
if [ -n "$EXPLAIN" ]; then
  sed 's/^SELECT key/EXPLAIN (ANALYZE, COSTS OFF) SELECT key/' "$script" | $P
else
  pgbench -h ${PGHOST:-127.0.0.1} -p ${PGPORT:-5432} -U postgres -n -c 1 -T "$secs" -r -f "$script" ov_bench 2>&1 \
    | grep -E 'latency average|number of transactions actually'
fi
rm -f "$script"
