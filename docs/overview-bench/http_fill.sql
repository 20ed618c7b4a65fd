-- The overview bench's data for an existing workspace (:'ws', made by http.sh through the API):
-- its domains get 20,000 touches and 1,000,000 events over the last 90 days, in 10 statements
-- of 100,000 (the rollup triggers run once per statement), as setup.sql and prefill_batch.sql
-- do for the SQL-level bench. A third of the events are attributed to a first and a last touch.
\set ON_ERROR_STOP on
CREATE TEMP TABLE dd AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM domains WHERE workspace_id = :'ws';
INSERT INTO touches (id, workspace_id, domain_id, occurred_at, device_type, utm_source, utm_medium, utm_campaign, gclid, fbclid)
SELECT gen_random_uuid(), :'ws', (SELECT id FROM dd WHERE n = g % (SELECT count(*) FROM dd)),
       now() - (g % 90 || ' days')::interval, 'desktop',
       (ARRAY['google','facebook','newsletter','bing','tiktok'])[1 + g % 5], (ARRAY['cpc','email','social'])[1 + g % 3],
       'campaign-' || (g % 40), CASE WHEN g % 3 = 0 THEN 'g' || g END, CASE WHEN g % 5 = 1 THEN 'f' || g END
FROM generate_series(1, 20000) g;
CREATE TEMP TABLE tt AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM touches WHERE workspace_id = :'ws';
CREATE INDEX ON tt (n);
ANALYZE tt, dd;
SELECT format($f$
INSERT INTO events (id, workspace_id, domain_id, event_name, email, payload, occurred_at, received_at, email_sha256, value, currency, first_touch_id, last_touch_id)
SELECT gen_random_uuid(), %1$L, (SELECT id FROM dd WHERE n = g %% (SELECT count(*) FROM dd)),
       (ARRAY['purchase','purchase','lead','refund','event1','purchase','lead'])[1 + g %% 7], 'c' || g || '@example.com', '{}',
       now() - ((g %% 129600) || ' minutes')::interval, now() - ((g %% 129600) || ' minutes')::interval, '\x00',
       round((g %% 500)::numeric / 3, 2)::float8, CASE WHEN g %% 11 = 0 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN g %% 3 = 0 THEN (SELECT id FROM tt WHERE n = 1 + (g %% 20000)) END,
       CASE WHEN g %% 3 = 0 THEN (SELECT id FROM tt WHERE n = 1 + ((g * 7) %% 20000)) END
FROM generate_series(%2$s, %3$s) g
$f$, :'ws', b * 100000 + 1, (b + 1) * 100000)
FROM generate_series(0, 9) b \gexec
VACUUM ANALYZE events, touches, event_rollups, event_totals, event_hours, event_days;
SELECT count(*) AS events FROM events WHERE workspace_id = :'ws';
SELECT (SELECT count(*) FROM event_days) AS day_rows, (SELECT count(*) FROM event_hours) AS hour_rows,
       (SELECT count(*) FROM event_rollups) AS rollup_rows, (SELECT count(*) FROM event_totals) AS total_rows;
