-- The overview's reads over long ranges (issue 22): per-UTC-day rollups, one narrow row per
-- grouping (the totals, and each of the first and last touch's source, medium, campaign, link
-- and click platform) instead of one wide row per combination of both touches. A 90-day
-- campaign report reads the days of one grouping; the hourly tables stay for the parts of a
-- range that do not cover a whole UTC day (workspaces in other time zones) and for per-day
-- counts in a zone other than UTC. Kept by the same statement triggers as the hourly tables.

-- An event's kind as the overview counts it (README "Outbound webhooks": refunds, custom
-- events, and conversions for everything else).
CREATE FUNCTION event_kind(event_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN event_name ~* '^(refund|chargeback)$' THEN 'refund'
                WHEN event_name ~ '^event([1-9]|10)$' THEN 'custom'
                ELSE 'conversion' END
$$;

-- `grouping` is 'total' (key NULL) or '<first|last>_<source|medium|campaign|link|click>'; the
-- key is that value of the touch (the link's id as text, the click's ad platform), NULL for
-- events without one. Shards as in event_rollups; a number is the sum over shards.
CREATE TABLE event_days (
    workspace_id    uuid NOT NULL,
    grouping        text NOT NULL,
    day             date NOT NULL,
    domain_id       uuid NOT NULL,
    key             text,
    kind            text NOT NULL,
    currency        text NOT NULL,
    shard           smallint NOT NULL,
    events          bigint NOT NULL DEFAULT 0,
    first_clicked   bigint NOT NULL DEFAULT 0,
    last_clicked    bigint NOT NULL DEFAULT 0,
    valued          bigint NOT NULL DEFAULT 0,
    value_sum       numeric NOT NULL DEFAULT 0,
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT event_days_grouping CHECK (grouping IN ('total',
        'first_source', 'first_medium', 'first_campaign', 'first_link', 'first_click',
        'last_source', 'last_medium', 'last_campaign', 'last_link', 'last_click')),
    CONSTRAINT event_days_kind CHECK (kind IN ('conversion', 'refund', 'custom')),
    -- Reads are by workspace, grouping and a range of days (then, optionally, a domain): the
    -- key's order serves them.
    CONSTRAINT event_days_key UNIQUE NULLS NOT DISTINCT (workspace_id, grouping, day, domain_id,
        key, kind, currency, shard)
);
-- Deleting a domain's rows (the cascade) and folding the shards of a day after deletions find
-- them by domain and day.
CREATE INDEX event_days_domain_day_idx ON event_days (domain_id, day);

-- The totals per UTC hour, domain, kind and currency (event_totals without the event name and
-- the click platforms): per-day counts in a zone other than UTC, and the hours at the edges of
-- a range, read a few dozen rows per hour here.
CREATE TABLE event_hours (
    workspace_id    uuid NOT NULL,
    hour            timestamptz NOT NULL,
    domain_id       uuid NOT NULL,
    kind            text NOT NULL,
    currency        text NOT NULL,
    shard           smallint NOT NULL,
    events          bigint NOT NULL DEFAULT 0,
    first_clicked   bigint NOT NULL DEFAULT 0,
    last_clicked    bigint NOT NULL DEFAULT 0,
    valued          bigint NOT NULL DEFAULT 0,
    value_sum       numeric NOT NULL DEFAULT 0,
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT event_hours_kind CHECK (kind IN ('conversion', 'refund', 'custom')),
    CONSTRAINT event_hours_key UNIQUE (workspace_id, hour, domain_id, kind, currency, shard)
);
CREATE INDEX event_hours_domain_hour_idx ON event_hours (domain_id, hour);
COMMENT ON TABLE event_hours IS 'citus: distributed. Events per UTC hour, domain, kind and currency, kept in step with events by triggers; per-day counts in other zones and the edges of ranges read these.';
COMMENT ON TABLE event_days IS 'citus: distributed. Events per UTC day and grouping (totals, first/last touch source, medium, campaign, link, click platform), kept in step with events by triggers; the overview reads whole UTC days here.';

-- Adds changes to the rollups, hourly and daily. Unchanged from 000040 but for the event_hours
-- and event_days inserts at the end.
CREATE OR REPLACE FUNCTION event_rollups_apply(changes event_rollup_change[], gone touches[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    deltas event_rollups[];
BEGIN
    IF cardinality(gone) = 0 THEN
        deltas := array(
        SELECT ROW(e.workspace_id, e.domain_id, date_trunc('hour', e.occurred_at, 'UTC'),
               (pg_backend_pid() % 8)::smallint, e.event_name, e.currency,
               ft.utm_source, ft.utm_medium, ft.utm_campaign, ft.link_id,
               touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid),
               lt.utm_source, lt.utm_medium, lt.utm_campaign, lt.link_id,
               touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid),
               sum(e.sign), sum(CASE WHEN e.value IS NULL THEN 0 ELSE e.sign END),
               coalesce(sum(e.sign * e.value::numeric), 0))::event_rollups
        FROM unnest(changes) e
        JOIN domains dm ON dm.id = e.domain_id
        LEFT JOIN touches ft ON ft.id = e.first_touch_id AND ft.workspace_id = e.workspace_id
        LEFT JOIN touches lt ON lt.id = e.last_touch_id AND lt.workspace_id = e.workspace_id
        GROUP BY e.workspace_id, e.domain_id, date_trunc('hour', e.occurred_at, 'UTC'),
                 e.event_name, e.currency,
                 ft.utm_source, ft.utm_medium, ft.utm_campaign, ft.link_id,
                 touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid),
                 lt.utm_source, lt.utm_medium, lt.utm_campaign, lt.link_id,
                 touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid));
    ELSE
        deltas := array(
        SELECT ROW(e.workspace_id, e.domain_id, date_trunc('hour', e.occurred_at, 'UTC'),
               (pg_backend_pid() % 8)::smallint, e.event_name, e.currency,
               ft.utm_source, ft.utm_medium, ft.utm_campaign, ft.link_id,
               touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid),
               lt.utm_source, lt.utm_medium, lt.utm_campaign, lt.link_id,
               touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid),
               sum(e.sign), sum(CASE WHEN e.value IS NULL THEN 0 ELSE e.sign END),
               coalesce(sum(e.sign * e.value::numeric), 0))::event_rollups
        FROM unnest(changes) e
        JOIN domains dm ON dm.id = e.domain_id
        LEFT JOIN (SELECT t.* FROM touches t UNION ALL SELECT g.* FROM unnest(gone) g) ft
               ON ft.id = e.first_touch_id AND ft.workspace_id = e.workspace_id
        LEFT JOIN (SELECT t.* FROM touches t UNION ALL SELECT g.* FROM unnest(gone) g) lt
               ON lt.id = e.last_touch_id AND lt.workspace_id = e.workspace_id
        GROUP BY e.workspace_id, e.domain_id, date_trunc('hour', e.occurred_at, 'UTC'),
                 e.event_name, e.currency,
                 ft.utm_source, ft.utm_medium, ft.utm_campaign, ft.link_id,
                 touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid),
                 lt.utm_source, lt.utm_medium, lt.utm_campaign, lt.link_id,
                 touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid));
    END IF;
    INSERT INTO event_rollups AS r
    SELECT d.* FROM unnest(deltas) d
    ORDER BY d.workspace_id, d.domain_id, d.hour, d.event_name, d.currency, d.first_source,
             d.first_medium, d.first_campaign, d.first_link_id, d.first_click, d.last_source,
             d.last_medium, d.last_campaign, d.last_link_id, d.last_click, d.shard
    ON CONFLICT ON CONSTRAINT event_rollups_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
    INSERT INTO event_totals AS r (workspace_id, domain_id, hour, shard, event_name, currency,
        first_click, last_click, events, valued, value_sum)
    SELECT d.workspace_id, d.domain_id, d.hour, d.shard, d.event_name, d.currency,
           d.first_click, d.last_click, sum(d.events), sum(d.valued), sum(d.value_sum)
    FROM unnest(deltas) d
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ORDER BY 1, 2, 3, 5, 6, 7, 8, 4
    ON CONFLICT ON CONSTRAINT event_totals_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
    INSERT INTO event_hours AS r (workspace_id, hour, domain_id, kind, currency, shard, events,
        first_clicked, last_clicked, valued, value_sum)
    SELECT d.workspace_id, d.hour, d.domain_id, event_kind(d.event_name), d.currency, d.shard,
           sum(d.events), sum(CASE WHEN d.first_click IS NULL THEN 0 ELSE d.events END),
           sum(CASE WHEN d.last_click IS NULL THEN 0 ELSE d.events END),
           sum(d.valued), sum(d.value_sum)
    FROM unnest(deltas) d
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT ON CONSTRAINT event_hours_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        first_clicked = r.first_clicked + EXCLUDED.first_clicked,
        last_clicked = r.last_clicked + EXCLUDED.last_clicked,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
    INSERT INTO event_days AS r (workspace_id, grouping, day, domain_id, key, kind, currency,
        shard, events, first_clicked, last_clicked, valued, value_sum)
    SELECT d.workspace_id, g.grouping, (d.hour AT TIME ZONE 'UTC')::date, d.domain_id, g.key,
           event_kind(d.event_name), d.currency, d.shard, sum(d.events),
           sum(CASE WHEN d.first_click IS NULL THEN 0 ELSE d.events END),
           sum(CASE WHEN d.last_click IS NULL THEN 0 ELSE d.events END),
           sum(d.valued), sum(d.value_sum)
    FROM unnest(deltas) d
    CROSS JOIN LATERAL (VALUES ('total', NULL::text),
        ('first_source', d.first_source), ('first_medium', d.first_medium),
        ('first_campaign', d.first_campaign), ('first_link', d.first_link_id::text),
        ('first_click', d.first_click),
        ('last_source', d.last_source), ('last_medium', d.last_medium),
        ('last_campaign', d.last_campaign), ('last_link', d.last_link_id::text),
        ('last_click', d.last_click)) g(grouping, key)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT ON CONSTRAINT event_days_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        first_clicked = r.first_clicked + EXCLUDED.first_clicked,
        last_clicked = r.last_clicked + EXCLUDED.last_clicked,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
END
$$;

-- Folds the shards of the given hours (and of their UTC days) into one row per key and drops
-- keys whose sums are all zero. Unchanged from 000040 but for the event_hours and event_days
-- parts at the end.
CREATE OR REPLACE FUNCTION event_rollups_compact(domain_ids uuid[], hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    merged event_rollups[];
    merged_totals event_totals[];
    merged_hours event_hours[];
    merged_days event_days[];
BEGIN
    merged := array(
        SELECT ROW(r.workspace_id, r.domain_id, r.hour, min(r.shard), r.event_name, r.currency,
                   r.first_source, r.first_medium, r.first_campaign, r.first_link_id, r.first_click,
                   r.last_source, r.last_medium, r.last_campaign, r.last_link_id, r.last_click,
                   sum(r.events), sum(r.valued), sum(r.value_sum))::event_rollups
        FROM event_rollups r
        JOIN (SELECT DISTINCT * FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
          ON r.domain_id = k.domain_id AND r.hour = k.hour
        JOIN domains dm ON dm.id = r.domain_id
        GROUP BY r.workspace_id, r.domain_id, r.hour, r.event_name, r.currency,
                 r.first_source, r.first_medium, r.first_campaign, r.first_link_id, r.first_click,
                 r.last_source, r.last_medium, r.last_campaign, r.last_link_id, r.last_click
        HAVING sum(r.events) <> 0 OR sum(r.valued) <> 0 OR sum(r.value_sum) <> 0);
    DELETE FROM event_rollups r
    USING (SELECT DISTINCT * FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
    WHERE r.domain_id = k.domain_id AND r.hour = k.hour;
    INSERT INTO event_rollups AS r
    SELECT m.* FROM unnest(merged) m
    ORDER BY m.workspace_id, m.domain_id, m.hour, m.event_name, m.currency
    ON CONFLICT ON CONSTRAINT event_rollups_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
    merged_totals := array(
        SELECT ROW(r.workspace_id, r.domain_id, r.hour, min(r.shard), r.event_name, r.currency,
                   r.first_click, r.last_click,
                   sum(r.events), sum(r.valued), sum(r.value_sum))::event_totals
        FROM event_totals r
        JOIN (SELECT DISTINCT * FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
          ON r.domain_id = k.domain_id AND r.hour = k.hour
        JOIN domains dm ON dm.id = r.domain_id
        GROUP BY r.workspace_id, r.domain_id, r.hour, r.event_name, r.currency,
                 r.first_click, r.last_click
        HAVING sum(r.events) <> 0 OR sum(r.valued) <> 0 OR sum(r.value_sum) <> 0);
    DELETE FROM event_totals r
    USING (SELECT DISTINCT * FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
    WHERE r.domain_id = k.domain_id AND r.hour = k.hour;
    INSERT INTO event_totals AS r
    SELECT m.* FROM unnest(merged_totals) m
    ORDER BY m.workspace_id, m.domain_id, m.hour, m.event_name, m.currency
    ON CONFLICT ON CONSTRAINT event_totals_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
    merged_hours := array(
        SELECT ROW(r.workspace_id, r.hour, r.domain_id, r.kind, r.currency, min(r.shard),
                   sum(r.events), sum(r.first_clicked), sum(r.last_clicked),
                   sum(r.valued), sum(r.value_sum))::event_hours
        FROM event_hours r
        JOIN (SELECT DISTINCT * FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
          ON r.domain_id = k.domain_id AND r.hour = k.hour
        JOIN domains dm ON dm.id = r.domain_id
        GROUP BY r.workspace_id, r.hour, r.domain_id, r.kind, r.currency
        HAVING sum(r.events) <> 0 OR sum(r.valued) <> 0 OR sum(r.value_sum) <> 0
            OR sum(r.first_clicked) <> 0 OR sum(r.last_clicked) <> 0);
    DELETE FROM event_hours r
    USING (SELECT DISTINCT * FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
    WHERE r.domain_id = k.domain_id AND r.hour = k.hour;
    INSERT INTO event_hours AS r
    SELECT m.* FROM unnest(merged_hours) m
    ORDER BY m.workspace_id, m.hour, m.domain_id, m.kind, m.currency
    ON CONFLICT ON CONSTRAINT event_hours_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        first_clicked = r.first_clicked + EXCLUDED.first_clicked,
        last_clicked = r.last_clicked + EXCLUDED.last_clicked,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
    merged_days := array(
        SELECT ROW(r.workspace_id, r.grouping, r.day, r.domain_id, r.key, r.kind, r.currency,
                   min(r.shard), sum(r.events), sum(r.first_clicked), sum(r.last_clicked),
                   sum(r.valued), sum(r.value_sum))::event_days
        FROM event_days r
        JOIN (SELECT DISTINCT k.domain_id, (k.hour AT TIME ZONE 'UTC')::date AS day
              FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
          ON r.domain_id = k.domain_id AND r.day = k.day
        JOIN domains dm ON dm.id = r.domain_id
        GROUP BY r.workspace_id, r.grouping, r.day, r.domain_id, r.key, r.kind, r.currency
        HAVING sum(r.events) <> 0 OR sum(r.valued) <> 0 OR sum(r.value_sum) <> 0
            OR sum(r.first_clicked) <> 0 OR sum(r.last_clicked) <> 0);
    DELETE FROM event_days r
    USING (SELECT DISTINCT k.domain_id, (k.hour AT TIME ZONE 'UTC')::date AS day
           FROM unnest(domain_ids, hours) AS k(domain_id, hour)) k
    WHERE r.domain_id = k.domain_id AND r.day = k.day;
    INSERT INTO event_days AS r
    SELECT m.* FROM unnest(merged_days) m
    ORDER BY m.workspace_id, m.grouping, m.day, m.domain_id, m.key, m.kind, m.currency
    ON CONFLICT ON CONSTRAINT event_days_key DO UPDATE
    SET events = r.events + EXCLUDED.events,
        first_clicked = r.first_clicked + EXCLUDED.first_clicked,
        last_clicked = r.last_clicked + EXCLUDED.last_clicked,
        valued = r.valued + EXCLUDED.valued,
        value_sum = r.value_sum + EXCLUDED.value_sum;
END
$$;

-- The hours and days of the events stored so far, from the hourly rollups.
INSERT INTO event_hours (workspace_id, hour, domain_id, kind, currency, shard, events,
    first_clicked, last_clicked, valued, value_sum)
SELECT r.workspace_id, r.hour, r.domain_id, event_kind(r.event_name), r.currency, 0,
       sum(r.events), sum(CASE WHEN r.first_click IS NULL THEN 0 ELSE r.events END),
       sum(CASE WHEN r.last_click IS NULL THEN 0 ELSE r.events END),
       sum(r.valued), sum(r.value_sum)
FROM event_totals r
GROUP BY 1, 2, 3, 4, 5
HAVING sum(r.events) <> 0 OR sum(r.valued) <> 0 OR sum(r.value_sum) <> 0;

INSERT INTO event_days (workspace_id, grouping, day, domain_id, key, kind, currency, shard,
    events, first_clicked, last_clicked, valued, value_sum)
SELECT r.workspace_id, g.grouping, (r.hour AT TIME ZONE 'UTC')::date, r.domain_id, g.key,
       event_kind(r.event_name), r.currency, 0, sum(r.events),
       sum(CASE WHEN r.first_click IS NULL THEN 0 ELSE r.events END),
       sum(CASE WHEN r.last_click IS NULL THEN 0 ELSE r.events END),
       sum(r.valued), sum(r.value_sum)
FROM event_rollups r
CROSS JOIN LATERAL (VALUES ('total', NULL::text),
    ('first_source', r.first_source), ('first_medium', r.first_medium),
    ('first_campaign', r.first_campaign), ('first_link', r.first_link_id::text),
    ('first_click', r.first_click),
    ('last_source', r.last_source), ('last_medium', r.last_medium),
    ('last_campaign', r.last_campaign), ('last_link', r.last_link_id::text),
    ('last_click', r.last_click)) g(grouping, key)
GROUP BY 1, 2, 3, 4, 5, 6, 7
HAVING sum(r.events) <> 0 OR sum(r.valued) <> 0 OR sum(r.value_sum) <> 0;
