#!/usr/bin/env bash
# A/B: the same release binary, inbound only, on a database with migration 000060 (new) or with
# it reverted by its down.sql after the server migrated (old). CPU of PostgreSQL and the server.
set -euo pipefail
PG=${PG:-postgres://postgres@127.0.0.1:5439}   # the stock cluster of docs/scaling.md
BIN=${BIN:-target/release}   # postback and postback-bench, release build
DOWN=migrations/2026-12-05-000060_citus_ready/down.sql   # run from the repository root
PM=$(head -1 ${PGDATA:-/var/tmp/citusbench/data}/postmaster.pid)
tick=$(getconf CLK_TCK)
pgcpu() { python3 - "$PM" <<'PY'
import os,sys
pm=int(sys.argv[1]); T=os.sysconf('SC_CLK_TCK')
def st(p):
    s=open(f'/proc/{p}/stat').read(); f=s[s.rindex(')')+2:].split()
    return [int(f[i-3]) for i in (14,15,16,17)], int(f[1])
(u,s,cu,cs),_=st(pm); t=u+s+cu+cs
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            (a,b,_,_),pp=st(p)
        except Exception: continue
        if pp==pm: t+=a+b
print(t/T)
PY
}
proccpu() { awk -v t="$tick" '{ sub(/^.*\) /, ""); print ($12+$13)/t }' /proc/$1/stat; }
for round in 1 2; do
  for variant in new old; do
    db=ab_${variant}_${round}
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    DATABASE_URL="$PG/$db" POSTBACK_LISTEN=127.0.0.1:18091 $BIN/postback >/tmp/citus_ab_server.log 2>&1 &
    srv=$!
    for i in $(seq 1 100); do curl -sf http://127.0.0.1:18091/readyz >/dev/null && break; sleep 0.2; done
    if [ $variant = old ]; then psql -q -v ON_ERROR_STOP=1 "$PG/$db" -f $DOWN; fi
    p0=$(pgcpu); s0=$(proccpu $srv)
    out=$($BIN/postback-bench inbound --connections 32 --seconds 20 --url http://127.0.0.1:18091 --database-url "$PG/$db" 2>&1)
    p1=$(pgcpu); s1=$(proccpu $srv)
    kill $srv; wait $srv || true
    acc=$(echo "$out" | grep '^accepted:'); lat=$(echo "$out" | grep '^latency:'); ver=$(echo "$out" | grep '^verified' || echo "$out" | tail -3)
    echo "$(date -u +%H:%M:%S) $variant round $round | $acc | $lat | $ver | PG CPU $(echo "$p1 - $p0" | bc) s | server CPU $(echo "$s1 - $s0" | bc) s | load $(cut -d' ' -f1 /proc/loadavg)"
    psql -q "$PG/postgres" -c "DROP DATABASE $db"
  done
done
