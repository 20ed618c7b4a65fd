#!/usr/bin/env bash
# Issue 23's stored-data check: a fresh database against one prefilled with EVENTS stored events
# (`--prefill-events`: spread over 100 tenants' domains, the last 7 days, one succeeded delivery
# each for the other tenants; then the rollups folded, VACUUM ANALYZE and a CHECKPOINT), for
# `inbound` and for `inbound --webhook`, 32 connections, 20 s measured each. All on a private
# stock cluster (cluster.sh: initdb defaults, autovacuum on, port 5499).
#
# The prefilled database is filled once, by the first run, and served by one postback started
# here (as the bench starts its own: loopback targets allowed, client budgets lifted); every
# later prefilled run loads the same server and database (each run signs up its own tenant, so
# it also holds the earlier runs' events: a few hundred thousand beside the EVENTS). Each fresh
# run gets a new database and server from the bench. Per round, interleaved: prefilled, fresh,
# prefilled --webhook, fresh --webhook (the first round's prefilled run is the one that fills).
# Prints the rates per round, the fill's own duration and the prefilled/fresh ratios of the
# medians.
#
# Usage, as root from anywhere:  docs/bench/prefill.sh BIN [EVENTS] [ROUNDS]
#   BIN     the release postback binary (the bench is the postback-bench next to it, or BENCH=…)
#   EVENTS  default 10000000 (about 15 GB of disk under /var/tmp at 10 M, and a few minutes per
#           million on two cores)
#   ROUNDS  default 2
# The JSON reports and the bench's logs stay in $OUT (default: /var/tmp/postback-bench-out.*).
set -euo pipefail
. "$(dirname "$0")/cluster.sh"
BIN=${1:?usage: prefill.sh BIN [EVENTS] [ROUNDS]}
EVENTS=${2:-10000000}
ROUNDS=${3:-2}
setup
cluster_start
FILLED_URL=postgres://postgres@127.0.0.1:5499/prefilled
psql -X -q -h 127.0.0.1 -p 5499 -U postgres -d postgres -c 'CREATE DATABASE prefilled'
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL=$FILLED_URL POSTBACK_ALLOW_PRIVATE_TARGETS=true \
  POSTBACK_CLIENT_RATE_LIMIT=4294967295 POSTBACK_SITE_RATE_LIMIT=4294967295 \
  POSTBACK_SIGNUP_RATE_LIMIT=4294967295 RUST_LOG=warn \
  "$BIN" --listen "127.0.0.1:$port" >"$OUT/prefilled-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; cluster_stop' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done

# `filled NAME ARGS…`: one bench run against the prefilled server, like `run`.
filled() {
  local name=$1
  shift
  echo "=== $name $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$BENCH" "$@" --url "http://127.0.0.1:$port" --database-url "$FILLED_URL" --json \
    >"$OUT/$name.json" 2>"$OUT/$name.log" || echo "!!! $name failed (exit $?): see $OUT/$name.log" >&2
}
rate() { jq -r "$2 // 0" "$OUT/$1.json" 2>/dev/null || echo 0; }
P=() F=() PW=() FW=() PD=() FD=()
for r in $(seq "$ROUNDS"); do
  if [ "$r" = 1 ]; then
    filled "prefilled-$r" inbound --connections 32 --seconds 20 --prefill-events "$EVENTS"
  else
    filled "prefilled-$r" inbound --connections 32 --seconds 20
  fi
  run "fresh-$r" inbound --connections 32 --seconds 20
  filled "prefilled-webhook-$r" inbound --webhook --connections 32 --seconds 20
  run "fresh-webhook-$r" inbound --webhook --connections 32 --seconds 20
  P+=("$(rate "prefilled-$r" .acceptedPerSecond)") F+=("$(rate "fresh-$r" .acceptedPerSecond)")
  PW+=("$(rate "prefilled-webhook-$r" .acceptedPerSecond)") FW+=("$(rate "fresh-webhook-$r" .acceptedPerSecond)")
  PD+=("$(rate "prefilled-webhook-$r" .webhook.deliveriesPerSecond)") FD+=("$(rate "fresh-webhook-$r" .webhook.deliveriesPerSecond)")
  printf 'round %s: inbound only: prefilled %.0f/s, fresh %.0f/s; with webhook: inbound prefilled %.0f/s, fresh %.0f/s; delivered prefilled %.0f/s, fresh %.0f/s\n' \
    "$r" "${P[-1]}" "${F[-1]}" "${PW[-1]}" "${FW[-1]}" "${PD[-1]}" "${FD[-1]}"
done
fill=$(grep -o 'prefill: done in [0-9]* s' "$OUT/prefilled-1.log" | grep -o '[0-9]* s' || echo '?')
stored=$(psql -X -h 127.0.0.1 -p 5499 -U postgres -d prefilled -At -c 'SELECT count(*) FROM events')
echo "prefill of $EVENTS events: $fill; the prefilled database holds $stored events at the end"
p=$(median "${P[@]}") f=$(median "${F[@]}") pw=$(median "${PW[@]}") fw=$(median "${FW[@]}")
pd=$(median "${PD[@]}") fd=$(median "${FD[@]}")
printf 'medians, inbound only:  fresh %.0f/s, prefilled %.0f/s, prefilled/fresh %s\n' "$f" "$p" "$(ratio "$p" "$f")"
printf 'medians, with webhook:  inbound fresh %.0f/s, prefilled %.0f/s, prefilled/fresh %s\n' "$fw" "$pw" "$(ratio "$pw" "$fw")"
printf '                        delivered fresh %.0f/s, prefilled %.0f/s, prefilled/fresh %s\n' "$fd" "$pd" "$(ratio "$pd" "$fd")"
