#!/usr/bin/env bash
# Where the end-to-end time goes (issue 23): `inbound --webhook` runs with one change applied by
# SQL once the server is ready, beside plain `inbound` and plain `--webhook` runs, in the same
# minutes. Variants:
#   webhook-paused  every webhook is created paused: deliveries are queued (held), none is sent
#                   or recorded, so the run costs ingest plus the queue rows only;
#   webhook-noidx   the queue's, history's and attempts' secondary indexes dropped;
#   webhook-novac   autovacuum off for delivery_queue.
# Each run: a fresh database on one stock cluster (initdb defaults, autovacuum on, port 5499,
# under /var/tmp/postback-variants), a server started here as the bench starts its own, 32
# connections, 20 s; prints accepted/s and delivered/s, and the CPU seconds each process used in
# 15 s of the window (from /proc).
#
# Usage, as root:  docs/bench/variants.sh BIN [ROUNDS]
#   BIN     the release postback binary (the bench is the postback-bench next to it, or BENCH=…)
# With BEFORE=another-postback-binary, each round is a before/after comparison instead:
# `inbound` and `--webhook` with BEFORE, then `--webhook` and `inbound` with BIN, and each
# binary's ratio (delivered/s with the webhook over inbound-only accepted/s).
# With CEILING=a-ceiling-binary, each round runs `inbound` and `--webhook` with BIN, then
# `--webhook` with the ceiling build, and prints both ratios over BIN's inbound-only rate. The
# ceiling build is this checkout with docs/bench/ceiling.patch applied: its deliveries are
# planned and sent as usual but never stored (no queue row at ingest, nothing recorded), so its
# ratio bounds what any storage design for deliveries could reach on the machine. To build it:
#   git worktree add --detach /var/tmp/ceiling HEAD && cd /var/tmp/ceiling &&
#   git apply docs/bench/ceiling.patch && CARGO_TARGET_DIR=/var/tmp/ceiling-target \
#   cargo build --release --locked -p postback   # then CEILING=/var/tmp/ceiling-target/release/postback
set -uo pipefail
. "$(dirname "$0")/cluster.sh" # cpu_seconds
BIN=$(realpath "${1:?usage: variants.sh BIN [ROUNDS]}")
BENCH=${BENCH:-$(dirname "$BIN")/postback-bench}
ROUNDS=${2:-1}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
D=/var/tmp/postback-variants
[ -e "$D" ] && { echo "$D exists: another run is going on, or remove it" >&2; exit 1; }
mkdir -p "$D" && chown postgres "$D"
su postgres -c "$PG_BIN/initdb -D $D -U postgres --auth=trust -E UTF8 --locale=C" >/dev/null
su postgres -c "$PG_BIN/pg_ctl -D $D -l $D/log -o '-p 5499 -k /tmp' -w start" >/dev/null
trap 'su postgres -c "$PG_BIN/pg_ctl -D $D -m fast -w stop" >/dev/null; rm -rf "$D"' EXIT
psql() { /usr/bin/psql -X -h 127.0.0.1 -p 5499 -U postgres -qAt "$@"; }

# CPU seconds per process over $1 seconds, on one line: the 3 busiest, then all of them.
cpu() {
  cpu_seconds "$1" | awk '$1 == "all" { printf " | all %.1f of %.1f CPU-s\n", $2, $3; next }
                          { printf "%s%s %.1f", sep, $1, $2; sep = ", " }'
}

run() { # name sql bench-args...
  local name=$1 sql=$2 db=variants_$RANDOM port
  shift 2
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  psql -d postgres -c "CREATE DATABASE $db"
  local url="postgres://postgres@127.0.0.1:5499/$db"
  DATABASE_URL=$url POSTBACK_ALLOW_PRIVATE_TARGETS=true POSTBACK_CLIENT_RATE_LIMIT=4294967295 \
    POSTBACK_SITE_RATE_LIMIT=4294967295 POSTBACK_SIGNUP_RATE_LIMIT=4294967295 RUST_LOG=warn \
    "$BIN" --listen "127.0.0.1:$port" >"$D/server-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  [ -n "$sql" ] && psql -d "$db" -c "$sql"
  (sleep 6; cpu 15 >"$D/cpu-$name") &
  local cpid=$!
  local r
  r=$("$BENCH" inbound "$@" --url "http://127.0.0.1:$port" --database-url "$url" --connections 32 \
        --seconds 20 --json 2>"$D/bench-$name.log" |
      jq -r '"accepted \(.acceptedPerSecond)/s, delivered \(.webhook.deliveriesPerSecond // "-")/s"')
  LAST=$r
  wait "$cpid"
  echo "$name $(date -u +%T): $r; CPU: $(cat "$D/cpu-$name")"
  kill "$pid"; wait "$pid" 2>/dev/null
  psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"
}

PAUSE="CREATE FUNCTION variants_pause() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.status := 'paused'; RETURN NEW; END \$\$;
CREATE TRIGGER variants_pause BEFORE INSERT ON webhooks FOR EACH ROW EXECUTE FUNCTION variants_pause()"
NOIDX="DROP INDEX delivery_queue_id_lookup, delivery_queue_event_idx, delivery_queue_webhook_created_idx, delivery_history_id_lookup, delivery_history_event_idx, delivery_history_webhook_created_idx, delivery_attempts_id_lookup"
NOVAC="ALTER TABLE delivery_queue SET (autovacuum_enabled = off)"
echo "machine: $(nproc) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
rate() { # the accepted (inbound) or delivered (webhook) figure of the last run
  sed -E "s/.*$1 ([0-9.]+).*/\1/" <<<"$LAST"
}
if [ -n "${CEILING:-}" ]; then
  REAL=$BIN CEILING=$(realpath "$CEILING")
  for r in $(seq "$ROUNDS"); do
    BIN=$REAL run inbound ""; i=$(rate accepted)
    BIN=$REAL run webhook "" --webhook; w=$(rate delivered)
    BIN=$CEILING run ceiling-webhook "" --webhook; c=$(rate delivered)
    echo "round $r: webhook $(jq -n "$w / $i * 1000 | round / 1000"), ceiling $(jq -n "$c / $i * 1000 | round / 1000")"
  done
  exit 0
fi
if [ -n "${BEFORE:-}" ]; then
  AFTER=$BIN BEFORE=$(realpath "$BEFORE")
  for r in $(seq "$ROUNDS"); do
    BIN=$BEFORE run before-inbound ""; bi=$(rate accepted)
    BIN=$BEFORE run before-webhook "" --webhook; bw=$(rate delivered)
    BIN=$AFTER run after-webhook "" --webhook; aw=$(rate delivered)
    BIN=$AFTER run after-inbound ""; ai=$(rate accepted)
    echo "round $r: before $(jq -n "$bw / $bi * 1000 | round / 1000"), after $(jq -n "$aw / $ai * 1000 | round / 1000")"
  done
  exit 0
fi
for _ in $(seq "$ROUNDS"); do
  run inbound ""
  run webhook "" --webhook
  run webhook-paused "$PAUSE" --webhook
  run webhook-noidx "$NOIDX" --webhook
  run webhook-novac "$NOVAC" --webhook
done
