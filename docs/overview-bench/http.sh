#!/bin/sh
# The overview's HTTP figures (issue 22): signs up through the API on a running postback, adds
# five domains, fills them with 1,000,000 events (http_fill.sql), then times N sequential
# requests (after 5 warm-up ones) of /v1/stats and of the overview page for 30 and 90 days and
# prints p50 / p95 / max in ms (curl's time_total: request sent to last byte received).
# Usage: http.sh BASE_URL DATABASE_URL [N]   e.g. http.sh http://127.0.0.1:8080 postgres://… 200
# JAR=file keeps the session's cookie jar there; with an existing JAR the sign-up and fill are
# skipped and the same workspace is measured again. ZONE=Europe/Berlin also measures after
# setting the workspace's time zone.
set -e
base=$1 db=$2 n=${3:-200}
dir=$(dirname "$0")
run=$(date +%s)
json='content-type: application/json'
if [ -n "$JAR" ] && [ -s "$JAR" ]; then
  jar=$JAR
else
jar=${JAR:-$(mktemp)}
curl -sf -c "$jar" -H "$json" -d "{\"email\":\"overview-$run@example.com\",\"password\":\"benchmark password, long enough\",\"workspaceName\":\"Overview bench\"}" "$base/v1/auth/signup" >"$jar.signup"
ws=$(sed 's/.*"workspaceId":"\([^"]*\)".*/\1/' "$jar.signup")
# Command: no monthly quota and room for five domains.
psql "$db" -q -c "UPDATE workspaces SET plan = 'command' WHERE id = '$ws'"
for i in 1 2 3 4 5; do
  curl -sf -b "$jar" -H "$json" -d "{\"hostname\":\"d$i-$run.example.com\"}" "$base/v1/domains" >/dev/null
done
if [ -z "$SKIP_FILL" ]; then
  start=$(date +%s)
  psql "$db" -q -v ws="$ws" -f "$dir/http_fill.sql"
  echo "fill: $(( $(date +%s) - start )) s"
fi
fi
today=$(date -u +%F)
d29=$(date -u -d "$today - 29 days" +%F) d89=$(date -u -d "$today - 89 days" +%F)
measure() { # label path
  for i in 1 2 3 4 5; do curl -s -o /dev/null -b "$jar" "$base$2"; done
  for i in $(seq "$n"); do
    curl -s -o /dev/null -b "$jar" -w '%{http_code} %{time_total}\n' "$base$2"
  done | awk -v label="$1" '
    $1 != 200 { bad++ } { t[NR] = $2 * 1000 }
    END { n = asort(t); printf "%-34s n=%d p50=%.1f ms p95=%.1f ms max=%.1f ms non-200=%d\n", label, n, t[int(n * 0.5 + 0.5)], t[int(n * 0.95 + 0.5)], t[n], bad }'
}
measure "/v1/stats groupBy=day 30 days" "/v1/stats?groupBy=day&from=$d29&to=$today"
measure "/v1/stats groupBy=campaign 30 days" "/v1/stats?groupBy=campaign&from=$d29&to=$today"
measure "/v1/stats groupBy=day 90 days" "/v1/stats?groupBy=day&from=$d89&to=$today"
measure "/v1/stats groupBy=campaign 90 days" "/v1/stats?groupBy=campaign&from=$d89&to=$today"
measure "GET / (overview) 30 days" "/?range=30"
measure "GET / (overview) 90 days" "/?range=90"
if [ -n "$ZONE" ]; then
  curl -sf -b "$jar" -X PATCH -H "$json" -d "{\"timeZone\":\"$ZONE\"}" "$base/v1/workspace/settings" >/dev/null
  measure "[$ZONE] /v1/stats day 30" "/v1/stats?groupBy=day&from=$d29&to=$today"
  measure "[$ZONE] /v1/stats day 90" "/v1/stats?groupBy=day&from=$d89&to=$today"
  measure "[$ZONE] /v1/stats campaign 90" "/v1/stats?groupBy=campaign&from=$d89&to=$today"
  measure "[$ZONE] GET / 30 days" "/?range=30"
  measure "[$ZONE] GET / 90 days" "/?range=90"
fi
rm -f "$jar.signup"
[ -n "$JAR" ] || rm -f "$jar"
