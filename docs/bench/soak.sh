#!/usr/bin/env bash
# Issue 23's soak: `inbound --webhook --platform`, 32 connections, MINUTES minutes measured,
# a sample every 30 s, on a private stock cluster (cluster.sh: initdb defaults, autovacuum on,
# port 5499, a fresh database). Prints the bench's report, which ends (for 10 minutes or more)
# with the soak summary: inbound accepted/s and webhook and platform arrivals/s in the first and
# the last min(5 min, MINUTES/4), their ratio, RSS first/last/max, pending deliveries max/last.
#
# Usage, as root from anywhere:  docs/bench/soak.sh BIN [MINUTES]
#   BIN      the release postback binary (the bench is the postback-bench next to it, or BENCH=…)
#   MINUTES  default 30
# The samples are printed as they are taken; the report and the bench's log stay in $OUT
# (soak.txt, soak.log), with PostgreSQL's log (postgresql.log; add
# PG_CONF="log_autovacuum_min_duration = 0" to see every autovacuum in it). With
# PG_SAMPLE_SECONDS=N, pgsample.sh also writes PostgreSQL's counters every N seconds to
# $OUT/pg-samples.txt (WAL, full-page images, checkpoints, buffer reads and writes).
set -euo pipefail
. "$(dirname "$0")/cluster.sh"
BIN=${1:?usage: soak.sh BIN [MINUTES]}
MINUTES=${2:-30}
setup
cluster_start
echo "=== soak $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -n "${PG_SAMPLE_SECONDS:-}" ]; then
  "$(dirname "$0")/pgsample.sh" "$PG_SAMPLE_SECONDS" >"$OUT/pg-samples.txt" 2>&1 &
fi
"$BENCH" inbound --webhook --platform --connections 32 --seconds $((MINUTES * 60)) \
  --sample-seconds 30 --binary "$BIN" --database-url "$PG_URL" \
  2> >(tee "$OUT/soak.log" >&2) | tee "$OUT/soak.txt" ||
  echo "!!! the soak run failed: see $OUT/soak.log" >&2
cp "$PG_DIR/log" "$OUT/postgresql.log" || true
