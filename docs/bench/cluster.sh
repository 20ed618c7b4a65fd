# Sourced by ratio.sh, prefill.sh and soak.sh: a private PostgreSQL cluster with initdb's stock
# settings (autovacuum on, shared_buffers 128MB, synchronous commit) on 127.0.0.1:5499, run as
# the postgres user, initialised fresh under /var/tmp/postback-bench-5499 and removed when the
# script exits. Each bench run creates its own fresh database on it (`--database-url`) and drops
# it afterwards. Needs root (the cluster runs as postgres), jq, and PostgreSQL 15's binaries.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=/var/tmp/postback-bench-5499
PG_URL=postgres://postgres@127.0.0.1:5499/postgres

cluster_start() {
  if [ -e "$PG_DIR" ]; then
    echo "$PG_DIR exists: another run is going on, or stop it and remove it first" >&2
    exit 1
  fi
  mkdir -p "$PG_DIR" && chown postgres "$PG_DIR"
  su postgres -c "$PG_BIN/initdb -D $PG_DIR -U postgres --auth=trust -E UTF8 --locale=C" >/dev/null
  # Settings a script adds to the stock ones (statements.sh: pg_stat_statements), one a line.
  [ -z "${PG_CONF:-}" ] || printf '%s\n' "$PG_CONF" >>"$PG_DIR/postgresql.conf"
  su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR -l $PG_DIR/log -o '-p 5499 -k /tmp' -w start" >/dev/null
  trap cluster_stop EXIT
}

cluster_stop() {
  su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR -m fast -w stop" >/dev/null || true
  rm -rf "$PG_DIR"
}

# One bench run on a fresh database of the cluster: `run NAME ARGS…` writes the JSON report to
# $OUT/NAME.json and the bench's progress to $OUT/NAME.log; prints a header line with the time
# and the load average.
run() {
  local name=$1
  shift
  echo "=== $name $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$BENCH" "$@" --binary "$BIN" --database-url "$PG_URL" --json >"$OUT/$name.json" 2>"$OUT/$name.log" ||
    echo "!!! $name failed (exit $?): see $OUT/$name.log" >&2
}

# The median of the numbers given.
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# a / b with the given decimals, or "-" when b is 0 or empty.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.3f\n", a / b }'
}

# The bench next to BIN unless BENCH is set; a directory for the reports.
setup() {
  BIN=$(realpath "${BIN:?the postback binary}")
  BENCH=${BENCH:-$(dirname "$BIN")/postback-bench}
  [ -x "$BENCH" ] || { echo "no postback-bench at $BENCH (set BENCH)" >&2; exit 1; }
  OUT=${OUT:-$(mktemp -d /var/tmp/postback-bench-out.XXXXXX)}
  mkdir -p "$OUT"
  echo "machine: $(nproc) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg); reports in $OUT" >&2
}

# CPU seconds each process used over $1 seconds (PostgreSQL's processes summed under
# "postgres"), from /proc: the 3 busiest as "name seconds" lines (spaces in names become _),
# then "all SECONDS CAPACITY" (every process, and the cores' seconds in the interval).
cpu_seconds() {
  python3 - "$1" <<'PY'
import os, sys, time, collections
def snap():
    d = collections.Counter()
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            s = open(f'/proc/{p}/stat').read()
            name = s[s.index('(') + 1:s.rindex(')')]
            f = s[s.rindex(')') + 2:].split()
            d['postgres' if 'postgres' in name else name] += int(f[11]) + int(f[12])
        except OSError:
            pass
    return d
a = snap(); t = time.time(); time.sleep(float(sys.argv[1])); b = snap()
hz = os.sysconf('SC_CLK_TCK')
used = {k: (b[k] - a.get(k, 0)) / hz for k in b}
for k in sorted(used, key=lambda k: -used[k])[:3]:
    print(k.replace(' ', '_'), used[k])
print('all', sum(used.values()), os.cpu_count() * (time.time() - t))
PY
}
