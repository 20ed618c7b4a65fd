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
