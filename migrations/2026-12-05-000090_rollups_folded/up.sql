-- The overview's rollups off the insert path (issues 21 and 23). Until now every statement that
-- stored events also upserted event_rollups, event_totals, event_hours and event_days from a
-- statement trigger, which cost a quarter of inbound throughput. Now the insert trigger only
-- notes which events are new; the runtime folds them into the rollups in the background, in
-- batches, and every read of the overview folds its workspace's pending events first, so the
-- numbers stay exact and current.
--
-- Who may change a workspace's rollups: a folder, and the delete/update triggers, each holding
-- the workspace's transaction-scoped advisory lock (class 727090, key hashtext(workspace id)).
-- While one holds it no other can fold or adjust that workspace, so an event is counted once:
-- either it is still pending (nobody has counted it; the fold will, from the event and its
-- touches as they are then) or it was folded (the triggers adjust the rollups as before).

-- citus: distributed like the events it points at. No key: the insert is the hot path, the
-- table holds what arrived since the last fold (about a second), and it is read whole or by
-- workspace.
CREATE TABLE event_rollup_pending (
    workspace_id    uuid NOT NULL,
    event_id        uuid NOT NULL
);
COMMENT ON TABLE event_rollup_pending IS 'citus: distributed. Events stored but not yet folded into the overview''s rollups (event_rollups, event_totals, event_hours, event_days); written by the insert trigger, emptied by event_rollups_fold.';

-- Takes the rollups lock of each workspace, in order (so two takers never wait on each other).
CREATE FUNCTION event_rollups_lock(workspaces uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    w uuid;
BEGIN
    FOR w IN SELECT DISTINCT x FROM unnest(workspaces) x WHERE x IS NOT NULL ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock(727090, hashtext(w::text));
    END LOOP;
END
$$;

-- Folds up to `max_events` pending events of a workspace into the rollups; returns how many,
-- or -1 when `wait` is false and another session holds the workspace's lock. Run it as its own
-- statement (or transaction): the lock is held until the transaction ends. A folder that does
-- not wait gives up on any row lock after 500 ms (before the 1 s deadlock check), so that a
-- deletion it meets (a domain deleted while its events are folded) wins and the folder retries.
CREATE FUNCTION event_rollups_fold(ws uuid, max_events integer, wait boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    taken uuid[];
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(727090, hashtext(ws::text));
    ELSE
        IF NOT pg_try_advisory_xact_lock(727090, hashtext(ws::text)) THEN
            RETURN -1;
        END IF;
        PERFORM set_config('lock_timeout', '500ms', true);
    END IF;
    -- A new snapshot from here on (READ COMMITTED): whatever a previous holder of the lock did
    -- is visible.
    WITH t AS (
        DELETE FROM event_rollup_pending p
        WHERE p.ctid IN (SELECT q.ctid FROM event_rollup_pending q
                         WHERE q.workspace_id = ws LIMIT max_events)
        RETURNING p.event_id)
    SELECT coalesce(array_agg(t.event_id), '{}') INTO taken FROM t;
    IF cardinality(taken) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM event_rollups_apply(array(
        SELECT ROW(e.workspace_id, e.domain_id, e.occurred_at, e.event_name, e.currency, e.value,
                   e.first_touch_id, e.last_touch_id, 1)::event_rollup_change
        FROM events e
        WHERE e.id = ANY(taken) AND e.workspace_id = ws), '{}');
    RETURN cardinality(taken);
END
$$;

-- Inserting events only notes them.
CREATE OR REPLACE FUNCTION event_rollups_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_rollup_pending (workspace_id, event_id)
    SELECT n.workspace_id, n.id FROM new_events n;
    RETURN NULL;
END
$$;

-- A deleted event still pending is forgotten; a folded one is taken out of the rollups.
CREATE OR REPLACE FUNCTION event_rollups_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pending uuid[];
BEGIN
    PERFORM event_rollups_lock(array(SELECT o.workspace_id FROM old_events o));
    WITH d AS (
        DELETE FROM event_rollup_pending p USING old_events o
        WHERE p.event_id = o.id AND p.workspace_id = o.workspace_id
        RETURNING p.event_id)
    SELECT coalesce(array_agg(d.event_id), '{}') INTO pending FROM d;
    PERFORM event_rollups_apply(array(
        SELECT ROW(o.workspace_id, o.domain_id, o.occurred_at, o.event_name, o.currency, o.value,
                   o.first_touch_id, o.last_touch_id, -1)::event_rollup_change
        FROM old_events o
        WHERE NOT o.id = ANY(pending)), '{}');
    PERFORM event_rollups_compact(
        array(SELECT o.domain_id FROM old_events o WHERE NOT o.id = ANY(pending)),
        array(SELECT date_trunc('hour', o.occurred_at, 'UTC') FROM old_events o
              WHERE NOT o.id = ANY(pending)));
    RETURN NULL;
END
$$;

-- An updated event still pending is folded as it is then; a folded one is moved.
CREATE OR REPLACE FUNCTION event_rollups_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pending uuid[];
BEGIN
    PERFORM event_rollups_lock(array(SELECT o.workspace_id FROM old_events o
                                     UNION SELECT n.workspace_id FROM new_events n));
    pending := array(
        SELECT p.event_id FROM event_rollup_pending p
        WHERE p.event_id IN (SELECT o.id FROM old_events o UNION SELECT n.id FROM new_events n));
    PERFORM event_rollups_apply(array(
        SELECT ROW(o.workspace_id, o.domain_id, o.occurred_at, o.event_name, o.currency, o.value,
                   o.first_touch_id, o.last_touch_id, -1)::event_rollup_change
        FROM old_events o
        WHERE NOT o.id = ANY(pending)
        UNION ALL
        SELECT ROW(n.workspace_id, n.domain_id, n.occurred_at, n.event_name, n.currency, n.value,
                   n.first_touch_id, n.last_touch_id, 1)::event_rollup_change
        FROM new_events n
        WHERE NOT n.id = ANY(pending)), '{}');
    PERFORM event_rollups_compact(
        array(SELECT o.domain_id FROM old_events o WHERE NOT o.id = ANY(pending)),
        array(SELECT date_trunc('hour', o.occurred_at, 'UTC') FROM old_events o
              WHERE NOT o.id = ANY(pending)));
    RETURN NULL;
END
$$;

-- A deleted touch no longer attributes the folded events that point at it; pending ones are
-- folded later without it.
CREATE OR REPLACE FUNCTION event_rollups_on_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    affected event_rollup_change[];
BEGIN
    PERFORM event_rollups_lock(array(SELECT o.workspace_id FROM old_touches o));
    affected := array(
        SELECT ROW(e.workspace_id, e.domain_id, e.occurred_at, e.event_name, e.currency, e.value,
                   e.first_touch_id, e.last_touch_id, 1)::event_rollup_change
        FROM events e
        WHERE e.id IN (SELECT e2.id FROM events e2 JOIN old_touches o ON o.id = e2.first_touch_id
                       UNION
                       SELECT e3.id FROM events e3 JOIN old_touches o ON o.id = e3.last_touch_id)
          AND NOT EXISTS (SELECT 1 FROM event_rollup_pending p
                          WHERE p.event_id = e.id AND p.workspace_id = e.workspace_id));
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
