-- Back to the rollups kept by the insert statement: fold what is pending, then the triggers of
-- 000040 again.
SELECT event_rollups_fold(w.workspace_id, 2147483647, true)
FROM (SELECT DISTINCT workspace_id FROM event_rollup_pending) w;
DROP FUNCTION event_rollups_fold(uuid, integer, boolean);
DROP FUNCTION event_rollups_lock(uuid[]);
DROP TABLE event_rollup_pending;

CREATE OR REPLACE FUNCTION event_rollups_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_rollups_apply(array(
        SELECT ROW(n.workspace_id, n.domain_id, n.occurred_at, n.event_name, n.currency, n.value,
                   n.first_touch_id, n.last_touch_id, 1)::event_rollup_change
        FROM new_events n), '{}');
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION event_rollups_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION event_rollups_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION event_rollups_on_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
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
