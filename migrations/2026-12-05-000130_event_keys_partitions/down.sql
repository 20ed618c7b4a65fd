-- Back to one unpartitioned event_keys with table-wide unique indexes (as in migration 000100).
ALTER TABLE event_keys RENAME TO event_keys_partitioned;
ALTER TABLE event_keys_partitioned RENAME CONSTRAINT event_keys_pkey TO event_keys_partitioned_pkey;
ALTER TABLE event_keys_partitioned RENAME CONSTRAINT event_keys_some_key TO event_keys_partitioned_some_key;
ALTER TABLE event_keys_partitioned DROP CONSTRAINT event_keys_domain_fkey;

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
INSERT INTO event_keys SELECT * FROM event_keys_partitioned;
DROP TABLE event_keys_partitioned;

CREATE OR REPLACE FUNCTION postback_partitions_ensure(from_ts timestamptz, to_ts timestamptz)
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
DROP FUNCTION postback_partition_created(text, text);

CREATE OR REPLACE FUNCTION delete_keys_of_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_keys k USING deleted_events o
    WHERE k.workspace_id = o.workspace_id AND k.event_id = o.id;
    RETURN NULL;
END
$$;
ALTER FUNCTION delete_keys_of_deleted_events()
    SET enable_seqscan = off SET enable_bitmapscan = off
    SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;

CREATE OR REPLACE FUNCTION event_rollups_drop_events_partition(part regclass) RETURNS bigint
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
