#!/usr/bin/env bash
# Issue 23's stored-data check: a fresh database against one prefilled with EVENTS stored events
# (`--prefill-events`: spread over 100 tenants' domains, the last 7 days, one succeeded delivery
# each for the other tenants; then the rollups folded, VACUUM ANALYZE and a CHECKPOINT), for
# `inbound` and for `inbound --webhook`, 32 connections, 20 s measured each, interleaved: fresh,
# prefilled, fresh --webhook, prefilled --webhook. All on a private stock cluster (cluster.sh:
# initdb defaults, autovacuum on, port 5499, a fresh database per run). Prints the rates, the
# prefill's own duration and the prefilled/fresh ratios.
#
# Usage, as root from anywhere:  docs/bench/prefill.sh BIN [EVENTS]
#   BIN     the release postback binary (the bench is the postback-bench next to it, or BENCH=…)
#   EVENTS  default 10000000 (each prefilled run fills its own database: about 15 GB of disk
#           under /var/tmp at 10 M, and a few minutes per million on two cores)
# The JSON reports and the bench's logs stay in $OUT (default: /var/tmp/postback-bench-out.*).
set -euo pipefail
. "$(dirname "$0")/cluster.sh"
BIN=${1:?usage: prefill.sh BIN [EVENTS]}
EVENTS=${2:-10000000}
setup
cluster_start
run fresh inbound --connections 32 --seconds 20
run prefilled inbound --connections 32 --seconds 20 --prefill-events "$EVENTS"
run fresh-webhook inbound --webhook --connections 32 --seconds 20
run prefilled-webhook inbound --webhook --connections 32 --seconds 20 --prefill-events "$EVENTS"
rate() { jq -r "$2 // 0" "$OUT/$1.json" 2>/dev/null || echo 0; }
fill() { grep -o 'prefill: done in [0-9]* s' "$OUT/$1.log" | grep -o '[0-9]* s' || echo '?'; }
f=$(rate fresh .acceptedPerSecond) p=$(rate prefilled .acceptedPerSecond)
fa=$(rate fresh-webhook .acceptedPerSecond) pa=$(rate prefilled-webhook .acceptedPerSecond)
fd=$(rate fresh-webhook .webhook.deliveriesPerSecond) pd=$(rate prefilled-webhook .webhook.deliveriesPerSecond)
echo "prefill of $EVENTS events: $(fill prefilled) (inbound run), $(fill prefilled-webhook) (webhook run)"
printf 'inbound only:  fresh %.0f/s, prefilled %.0f/s, prefilled/fresh %s\n' "$f" "$p" "$(ratio "$p" "$f")"
printf 'with webhook:  inbound fresh %.0f/s, prefilled %.0f/s, prefilled/fresh %s\n' "$fa" "$pa" "$(ratio "$pa" "$fa")"
printf '               delivered fresh %.0f/s, prefilled %.0f/s, prefilled/fresh %s\n' "$fd" "$pd" "$(ratio "$pd" "$fd")"
