-- Native time partitioning of the append-only, high-volume tables (issue 23): events by
-- received_at, touches by occurred_at, delivery_attempts by started_at. One partition per UTC
-- month (`<table>_pYYYYMM`) plus a default partition that catches anything outside them (it stays
-- empty while the runtime keeps partitions ahead, see postback_partitions_ensure). Retention drops
-- whole partitions (crates/domain/src/store/retention.rs).
--
-- PostgreSQL requires every unique constraint of a partitioned table to include the partition
-- key, so idempotency (orderId + event, Idempotency-Key) moves to a compact table of its own,
-- event_keys, written in the event's statement and kept as long as the event's plan keeps it.

-- Months [from, to) of every range-partitioned table in this schema: creates what is missing and
-- returns how many it created. Rows of a month that reached the default partition first are
-- moved into the new month's partition in the same transaction. Called by the migration, by the
-- runtime a few months ahead (runtime/src/partitions.rs) and by anything that writes old rows.
CREATE FUNCTION postback_partitions_ensure(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent record;
    month timestamptz;
    part text;
    def text;
    strays boolean;
    created integer := 0;
BEGIN
    FOR parent IN
        SELECT c.oid::regclass AS rel, c.relname AS name, a.attname AS col
        FROM pg_partitioned_table pt
        JOIN pg_class c ON c.oid = pt.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
        WHERE pt.partstrat = 'r' AND pt.partnatts = 1
        ORDER BY c.relname
    LOOP
        month := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        WHILE month < to_ts LOOP
            part := parent.name || '_p' || to_char(month AT TIME ZONE 'UTC', 'YYYYMM');
            IF to_regclass(quote_ident(part)) IS NULL THEN
                strays := false;
                def := parent.name || '_default';
                IF to_regclass(quote_ident(def)) IS NOT NULL THEN
                    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= %L AND %I < %L)',
                                   def, parent.col, month, parent.col, month + interval '1 month')
                        INTO strays;
                END IF;
                IF strays THEN
                    EXECUTE format('ALTER TABLE %s DETACH PARTITION %I', parent.rel, def);
                    EXECUTE format(
                        'CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                        part, parent.rel, month, month + interval '1 month');
                    EXECUTE format(
                        'WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) '
                        'INSERT INTO %I SELECT * FROM moved',
                        def, parent.col, month, parent.col, month + interval '1 month', part);
                    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I DEFAULT', parent.rel, def);
                ELSE
                    EXECUTE format(
                        'CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                        part, parent.rel, month, month + interval '1 month');
                END IF;
                created := created + 1;
            END IF;
            month := month + interval '1 month';
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- event_rollups_apply takes touches' row type: it is recreated from its own definition once the
-- new touches table exists.
CREATE TEMPORARY TABLE saved_functions AS
    SELECT pg_get_functiondef('event_rollups_apply'::regproc) AS def;
DROP FUNCTION event_rollups_apply(event_rollup_change[], touches[]);

-- Triggers and the old tables' names out of the way.
DROP TRIGGER event_rollups_delete ON events;
DROP TRIGGER event_rollups_insert ON events;
DROP TRIGGER event_rollups_update ON events;
DROP TRIGGER events_delete_deliveries ON events;
DROP TRIGGER event_rollups_touch_delete ON touches;
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE touches RENAME TO touches_unpartitioned;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER TABLE touches_unpartitioned RENAME CONSTRAINT touches_pkey TO touches_unpartitioned_pkey;
ALTER TABLE delivery_attempts_unpartitioned
    RENAME CONSTRAINT delivery_attempts_pkey TO delivery_attempts_unpartitioned_pkey;
ALTER TABLE touches_unpartitioned DROP CONSTRAINT touches_visitor_id_fkey;
ALTER TABLE events_unpartitioned DROP CONSTRAINT events_workspace_id_domain_id_fkey;
DROP INDEX events_domain_email_idx, events_domain_received_idx, events_first_touch_idx,
    events_id_lookup, events_key_idempotency_idx, events_key_received_idx, events_last_touch_idx,
    events_order_idempotency_idx, touches_domain_time_idx, touches_id_lookup,
    touches_link_time_idx, touches_visitor_time_idx, delivery_attempts_delivery_idx,
    delivery_attempts_id_lookup;

-- The partitioned tables: the same columns, in the same order.
CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                     INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (received_at);
CREATE TABLE touches (LIKE touches_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                      INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (occurred_at);
CREATE TABLE delivery_attempts (LIKE delivery_attempts_unpartitioned INCLUDING DEFAULTS
                                INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (started_at);
COMMENT ON TABLE events IS 'citus: distributed. Stored inbound events: the largest table, always read per workspace. Partitioned by month of received_at; retention drops whole partitions.';
COMMENT ON TABLE touches IS 'citus: distributed. Landings and clicks used for attribution. Partitioned by month of occurred_at; retention drops whole partitions.';
COMMENT ON TABLE delivery_attempts IS 'citus: distributed. One row per delivery attempt (history). Partitioned by month of started_at; retention drops whole partitions.';

ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (workspace_id, id, received_at);
ALTER TABLE touches ADD CONSTRAINT touches_pkey PRIMARY KEY (workspace_id, id, occurred_at);
ALTER TABLE delivery_attempts
    ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (workspace_id, id, started_at);
ALTER TABLE events ADD CONSTRAINT events_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE touches ADD CONSTRAINT touches_visitor_id_fkey
    FOREIGN KEY (workspace_id, visitor_id) REFERENCES visitors (workspace_id, id) ON DELETE CASCADE;
CREATE INDEX events_domain_email_idx ON events (domain_id, email, received_at DESC);
CREATE INDEX events_domain_received_idx ON events (domain_id, received_at, id);
CREATE INDEX events_first_touch_idx ON events (first_touch_id) WHERE first_touch_id IS NOT NULL;
CREATE INDEX events_last_touch_idx ON events (last_touch_id) WHERE last_touch_id IS NOT NULL;
CREATE INDEX events_id_lookup ON events (id);
CREATE INDEX events_key_received_idx ON events (key_id, received_at DESC) WHERE key_id IS NOT NULL;
CREATE INDEX touches_domain_time_idx ON touches (domain_id, occurred_at);
CREATE INDEX touches_id_lookup ON touches (id);
CREATE INDEX touches_link_time_idx ON touches (link_id, occurred_at) WHERE link_id IS NOT NULL;
CREATE INDEX touches_visitor_time_idx ON touches (visitor_id, occurred_at) WHERE visitor_id IS NOT NULL;
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_id_lookup ON delivery_attempts (id);

CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE touches_default PARTITION OF touches DEFAULT;
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;
SELECT postback_partitions_ensure(
    least(now(), (SELECT min(received_at) FROM events_unpartitioned),
          (SELECT min(occurred_at) FROM touches_unpartitioned),
          (SELECT min(started_at) FROM delivery_attempts_unpartitioned)),
    now() + interval '3 months');

-- Idempotency: one row per event that has an orderId or an Idempotency-Key.
CREATE TABLE event_keys (
    workspace_id     uuid NOT NULL,
    event_id         uuid NOT NULL,
    domain_id        uuid NOT NULL,
    received_at      timestamptz NOT NULL,
    order_id         text,
    event_name       text NOT NULL,
    idempotency_key  text,
    CONSTRAINT event_keys_pkey PRIMARY KEY (workspace_id, event_id),
    CONSTRAINT event_keys_some_key CHECK (num_nonnulls(order_id, idempotency_key) > 0),
    CONSTRAINT event_keys_domain_fkey FOREIGN KEY (workspace_id, domain_id)
        REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE event_keys IS 'citus: distributed. Idempotency of stored events (orderId + event, Idempotency-Key): unique here because a partitioned events table cannot hold these unique keys. A key goes with its event: deleted by the events delete trigger, by the function that drops a month of events, by the domain''s foreign key.';
CREATE UNIQUE INDEX event_keys_order_idx ON event_keys (workspace_id, domain_id, order_id, event_name)
    WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX event_keys_key_idx ON event_keys (workspace_id, domain_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The rows, into their months.
INSERT INTO events SELECT * FROM events_unpartitioned;
INSERT INTO touches SELECT * FROM touches_unpartitioned;
INSERT INTO delivery_attempts SELECT * FROM delivery_attempts_unpartitioned;
INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, order_id, event_name,
                        idempotency_key)
SELECT workspace_id, id, domain_id, received_at, order_id, event_name, idempotency_key
FROM events WHERE order_id IS NOT NULL OR idempotency_key IS NOT NULL;
DROP TABLE events_unpartitioned, touches_unpartitioned, delivery_attempts_unpartitioned;

DO $$ BEGIN EXECUTE (SELECT def FROM saved_functions); END $$;
DROP TABLE saved_functions;

-- An event's keys go with it (partitions dropped by retention take theirs by time instead).
CREATE FUNCTION delete_keys_of_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_keys k USING deleted_events o
    WHERE k.workspace_id = o.workspace_id AND k.event_id = o.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_rollups_delete AFTER DELETE ON events REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_delete();
CREATE TRIGGER event_rollups_insert AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_insert();
CREATE TRIGGER event_rollups_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_update();
CREATE TRIGGER events_delete_deliveries AFTER DELETE ON events
    REFERENCING OLD TABLE AS deleted_events
    FOR EACH STATEMENT EXECUTE FUNCTION delete_deliveries_of_deleted_events();
CREATE TRIGGER events_delete_keys AFTER DELETE ON events REFERENCING OLD TABLE AS deleted_events
    FOR EACH STATEMENT EXECUTE FUNCTION delete_keys_of_deleted_events();
CREATE TRIGGER event_rollups_touch_delete AFTER DELETE ON touches
    REFERENCING OLD TABLE AS old_touches
    FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_touch_delete();

-- Retention drops a partition of events or touches only together with what its rows count for
-- in the overview's rollups, exactly as the row-delete triggers above would have (in one
-- transaction: the caller's). Both return how many rows the partition held.

-- An events partition: its folded events leave the rollups, its pending ones leave the queue
-- of events to fold, its idempotency keys go, then the partition is dropped (last, so the lock
-- on events that DROP takes is held only until the caller commits).
CREATE FUNCTION event_rollups_drop_events_partition(part regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    changes event_rollup_change[];
    held bigint;
BEGIN
    EXECUTE format('SELECT event_rollups_lock(array(SELECT DISTINCT workspace_id FROM %s))', part);
    EXECUTE format(
        'WITH d AS (DELETE FROM event_rollup_pending p USING %s o '
        '           WHERE p.workspace_id = o.workspace_id AND p.event_id = o.id RETURNING 1) '
        'SELECT count(*) FROM d', part) INTO held;
    EXECUTE format(
        'SELECT array(SELECT ROW(o.workspace_id, o.domain_id, o.occurred_at, o.event_name, '
        '       o.currency, o.value, o.first_touch_id, o.last_touch_id, -1)::event_rollup_change '
        '  FROM %s o)', part) INTO changes;
    IF cardinality(changes) > 0 THEN
        PERFORM event_rollups_apply(changes, '{}');
        PERFORM event_rollups_compact(array(SELECT c.domain_id FROM unnest(changes) c),
            array(SELECT date_trunc('hour', c.occurred_at, 'UTC') FROM unnest(changes) c));
    END IF;
    EXECUTE format('DELETE FROM event_keys k USING %s o '
                   'WHERE k.workspace_id = o.workspace_id AND k.event_id = o.id', part);
    EXECUTE format('DROP TABLE %s', part);
    RETURN held + cardinality(changes);
END
$$;

-- A touches partition: the stored events it credited (received since the partition's month
-- began: a touch precedes its conversion) are credited again without it.
CREATE FUNCTION event_rollups_drop_touches_partition(part regclass, since timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    affected event_rollup_change[];
    gone touches[];
    n bigint;
BEGIN
    EXECUTE format('SELECT event_rollups_lock(array(SELECT DISTINCT workspace_id FROM %s))', part);
    EXECUTE format('SELECT count(*) FROM %s', part) INTO n;
    EXECUTE format(
        'SELECT array(SELECT ROW(e.workspace_id, e.domain_id, e.occurred_at, e.event_name, '
        '       e.currency, e.value, e.first_touch_id, e.last_touch_id, 1)::event_rollup_change '
        '  FROM events e '
        '  WHERE e.received_at >= $1 '
        '    AND (EXISTS (SELECT 1 FROM %1$s o WHERE o.id = e.first_touch_id) '
        '         OR EXISTS (SELECT 1 FROM %1$s o WHERE o.id = e.last_touch_id)) '
        '    AND NOT EXISTS (SELECT 1 FROM event_rollup_pending p '
        '                    WHERE p.event_id = e.id AND p.workspace_id = e.workspace_id))',
        part) INTO affected USING since;
    IF cardinality(affected) > 0 THEN
        EXECUTE format(
            'SELECT array(SELECT ROW(o.*)::touches FROM %s o '
            '  WHERE o.id IN (SELECT a.first_touch_id FROM unnest($1) a '
            '                 UNION SELECT a.last_touch_id FROM unnest($1) a))',
            part) INTO gone USING affected;
    END IF;
    EXECUTE format('DROP TABLE %s', part);
    IF cardinality(affected) > 0 THEN
        -- Out with the touches as they were, in with them gone.
        PERFORM event_rollups_apply(
            array(SELECT ROW(a.workspace_id, a.domain_id, a.occurred_at, a.event_name, a.currency,
                             a.value, a.first_touch_id, a.last_touch_id, -1)::event_rollup_change
                  FROM unnest(affected) a),
            gone);
        PERFORM event_rollups_apply(affected, '{}');
        PERFORM event_rollups_compact(array(SELECT a.domain_id FROM unnest(affected) a),
            array(SELECT date_trunc('hour', a.occurred_at, 'UTC') FROM unnest(affected) a));
    END IF;
    RETURN n;
END
$$;
