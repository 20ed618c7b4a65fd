-- The marketer's overview (issue 22): per-hour rollups of events kept in step with the events
-- by triggers, and the workspace's time zone the overview counts days in.

ALTER TABLE workspaces ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- Events per UTC hour, domain, event name, currency and the first and last touch's source,
-- medium, campaign, tracking link and ad platform (from the touch's click id). Hours rather than
-- days so that any time zone with a whole-hour offset gets exact days. Each committer adds to
-- its own shard (backend pid mod 8), so concurrent batches of one domain never wait on one row;
-- a number is the sum over shards (a shard may go negative after deletions).
CREATE TABLE event_rollups (
    workspace_id    uuid NOT NULL,
    domain_id       uuid NOT NULL,
    hour            timestamptz NOT NULL,
    shard           smallint NOT NULL,
    event_name      text NOT NULL,
    currency        text NOT NULL,
    first_source    text,
    first_medium    text,
    first_campaign  text,
    first_link_id   uuid,
    first_click     text,
    last_source     text,
    last_medium     text,
    last_campaign   text,
    last_link_id    uuid,
    last_click      text,
    events          bigint NOT NULL DEFAULT 0,
    valued          bigint NOT NULL DEFAULT 0,
    value_sum       numeric NOT NULL DEFAULT 0,
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT event_rollups_key UNIQUE NULLS NOT DISTINCT (workspace_id, domain_id, hour, event_name,
        currency, first_source, first_medium, first_campaign, first_link_id, first_click,
        last_source, last_medium, last_campaign, last_link_id, last_click, shard)
);
CREATE INDEX event_rollups_workspace_hour_idx ON event_rollups (workspace_id, hour);
COMMENT ON TABLE event_rollups IS 'citus: distributed. Events per hour and attribution, kept in step with events by triggers; the overview and /v1/stats read these, not events.';

-- The same without the touches' source, medium, campaign and link: at most hours × domains ×
-- event names × currencies × click platforms rows, what the totals and per-day numbers read.
CREATE TABLE event_totals (
    workspace_id    uuid NOT NULL,
    domain_id       uuid NOT NULL,
    hour            timestamptz NOT NULL,
    shard           smallint NOT NULL,
    event_name      text NOT NULL,
    currency        text NOT NULL,
    first_click     text,
    last_click      text,
    events          bigint NOT NULL DEFAULT 0,
    valued          bigint NOT NULL DEFAULT 0,
    value_sum       numeric NOT NULL DEFAULT 0,
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT event_totals_key UNIQUE NULLS NOT DISTINCT (workspace_id, domain_id, hour,
        event_name, currency, first_click, last_click, shard)
);
CREATE INDEX event_totals_workspace_hour_idx ON event_totals (workspace_id, hour);
COMMENT ON TABLE event_totals IS 'citus: distributed. event_rollups without the touch columns, kept by the same triggers; the overview''s totals and days read these.';

-- The ad platform a touch's click id belongs to.
CREATE FUNCTION touch_click_platform(gclid text, gbraid text, wbraid text, fbclid text,
                                     ttclid text, msclkid text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN gclid IS NOT NULL OR gbraid IS NOT NULL OR wbraid IS NOT NULL THEN 'googleads'
        WHEN fbclid IS NOT NULL THEN 'meta'
        WHEN ttclid IS NOT NULL THEN 'tiktok'
        WHEN msclkid IS NOT NULL THEN 'microsoft'
    END
$$;

-- One event's contribution: +1 when stored, -1 when deleted.
CREATE TYPE event_rollup_change AS (
    workspace_id    uuid,
    domain_id       uuid,
    occurred_at     timestamptz,
    event_name      text,
    currency        text,
    value           double precision,
    first_touch_id  uuid,
    last_touch_id   uuid,
    sign            integer
);

-- Adds changes to the rollups. Touches are looked up in `touches` and, for touches being
-- deleted, in `gone`. Rows are locked in key order so concurrent statements cannot deadlock;
-- a domain deleted in this statement is skipped (its rollups go with it).
CREATE FUNCTION event_rollups_apply(changes event_rollup_change[], gone touches[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    deltas event_rollups[];
BEGIN
    -- The common case (events stored or deleted) looks touches up by primary key; only a
    -- deletion of touches needs the rows being deleted as well.
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
END
$$;

-- Folds the shards of the given hours into one row per key and drops keys whose sums are all
-- zero: after deletions, the shards of a key may hold +n and -n, which would otherwise stay
-- forever. A domain deleted in this statement is skipped (its rollups go with it).
CREATE FUNCTION event_rollups_compact(domain_ids uuid[], hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    merged event_rollups[];
    merged_totals event_totals[];
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
END
$$;

CREATE FUNCTION event_rollups_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_rollups_apply(array(
        SELECT ROW(n.workspace_id, n.domain_id, n.occurred_at, n.event_name, n.currency, n.value,
                   n.first_touch_id, n.last_touch_id, 1)::event_rollup_change
        FROM new_events n), '{}');
    RETURN NULL;
END
$$;

CREATE FUNCTION event_rollups_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_rollups_apply(array(
        SELECT ROW(o.workspace_id, o.domain_id, o.occurred_at, o.event_name, o.currency, o.value,
                   o.first_touch_id, o.last_touch_id, -1)::event_rollup_change
        FROM old_events o), '{}');
    PERFORM event_rollups_compact(
        array(SELECT o.domain_id FROM old_events o),
        array(SELECT date_trunc('hour', o.occurred_at, 'UTC') FROM old_events o));
    RETURN NULL;
END
$$;

-- Events are not updated by Postback itself; this keeps the rollups right when an operator does.
CREATE FUNCTION event_rollups_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_rollups_apply(array(
        SELECT ROW(o.workspace_id, o.domain_id, o.occurred_at, o.event_name, o.currency, o.value,
                   o.first_touch_id, o.last_touch_id, -1)::event_rollup_change
        FROM old_events o
        UNION ALL
        SELECT ROW(n.workspace_id, n.domain_id, n.occurred_at, n.event_name, n.currency, n.value,
                   n.first_touch_id, n.last_touch_id, 1)::event_rollup_change
        FROM new_events n), '{}');
    RETURN NULL;
END
$$;

-- A deleted touch (retention) no longer attributes the events that point at it: their share
-- moves from the touch's source/medium/campaign to none, as a join of events with touches shows.
CREATE FUNCTION event_rollups_on_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    affected event_rollup_change[];
BEGIN
    affected := array(
        SELECT ROW(e.workspace_id, e.domain_id, e.occurred_at, e.event_name, e.currency, e.value,
                   e.first_touch_id, e.last_touch_id, 1)::event_rollup_change
        FROM events e
        WHERE e.id IN (SELECT e2.id FROM events e2 JOIN old_touches o ON o.id = e2.first_touch_id
                       UNION
                       SELECT e3.id FROM events e3 JOIN old_touches o ON o.id = e3.last_touch_id));
    IF cardinality(affected) = 0 THEN
        RETURN NULL;
    END IF;
    -- Out with the touches as they were, in with them gone.
    PERFORM event_rollups_apply(
        array(SELECT ROW(a.workspace_id, a.domain_id, a.occurred_at, a.event_name, a.currency,
                         a.value, a.first_touch_id, a.last_touch_id, -1)::event_rollup_change
              FROM unnest(affected) a),
        array(SELECT o::touches FROM old_touches o));
    PERFORM event_rollups_apply(affected, '{}');
    PERFORM event_rollups_compact(
        array(SELECT a.domain_id FROM unnest(affected) a),
        array(SELECT date_trunc('hour', a.occurred_at, 'UTC') FROM unnest(affected) a));
    RETURN NULL;
END
$$;

CREATE TRIGGER event_rollups_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_insert();
CREATE TRIGGER event_rollups_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_delete();
CREATE TRIGGER event_rollups_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_update();
CREATE TRIGGER event_rollups_touch_delete AFTER DELETE ON touches
    REFERENCING OLD TABLE AS old_touches FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_touch_delete();

-- The events stored so far.
SELECT event_rollups_apply(array(
    SELECT ROW(e.workspace_id, e.domain_id, e.occurred_at, e.event_name, e.currency, e.value,
               e.first_touch_id, e.last_touch_id, 1)::event_rollup_change
    FROM events e), '{}');
