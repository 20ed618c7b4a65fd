-- Back to the hourly rollups of 000040.
CREATE OR REPLACE FUNCTION event_rollups_apply(changes event_rollup_change[], gone touches[])
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

CREATE OR REPLACE FUNCTION event_rollups_compact(domain_ids uuid[], hours timestamptz[])
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

DROP TABLE event_days;
DROP TABLE event_hours;
DROP FUNCTION event_kind(text);
