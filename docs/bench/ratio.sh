#!/usr/bin/env bash
# Issue 23's end-to-end / inbound-only ratio. Per round, on a private stock cluster (cluster.sh:
# initdb defaults, autovacuum on, port 5499, a fresh database per run): `inbound` (inbound only),
# then `inbound --webhook` (one webhook for every event, a receiver in the bench), 32
# connections, 20 s measured each. Prints each run's rates (for the webhook run: inbound
# accepted/s and deliveries arrived/s at the receiver in the window), the ratio e2e/inbound-only
# per round (e2e = deliveries arrived/s) and of the medians.
#
# Usage, as root from anywhere:  docs/bench/ratio.sh BIN [ROUNDS]
#   BIN     the release postback binary (the bench is the postback-bench next to it, or BENCH=…)
#   ROUNDS  default 3
# The JSON reports stay in $OUT (default: a new /var/tmp/postback-bench-out.* directory).
set -euo pipefail
. "$(dirname "$0")/cluster.sh"
BIN=${1:?usage: ratio.sh BIN [ROUNDS]}
ROUNDS=${2:-3}
setup
cluster_start
only=() e2e=() accepted=()
for r in $(seq "$ROUNDS"); do
  run "inbound-$r" inbound --connections 32 --seconds 20
  run "webhook-$r" inbound --webhook --connections 32 --seconds 20
  i=$(jq -r '.acceptedPerSecond // 0' "$OUT/inbound-$r.json" 2>/dev/null || echo 0)
  a=$(jq -r '.acceptedPerSecond // 0' "$OUT/webhook-$r.json" 2>/dev/null || echo 0)
  d=$(jq -r '.webhook.deliveriesPerSecond // 0' "$OUT/webhook-$r.json" 2>/dev/null || echo 0)
  only+=("$i") accepted+=("$a") e2e+=("$d")
  printf 'round %s: inbound-only %.0f/s; with webhook: inbound %.0f/s, delivered %.0f/s; e2e/inbound-only %s\n' \
    "$r" "$i" "$a" "$d" "$(ratio "$d" "$i")"
done
mi=$(median "${only[@]}") ma=$(median "${accepted[@]}") md=$(median "${e2e[@]}")
printf 'medians: inbound-only %.0f/s; with webhook: inbound %.0f/s, delivered %.0f/s; e2e/inbound-only %s\n' \
  "$mi" "$ma" "$md" "$(ratio "$md" "$mi")"
