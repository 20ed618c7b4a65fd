-- Idempotency keys partitioned by month like the events they belong to (issue 23): retention
-- drops a month of keys with its month of events instead of deleting them row by row (which left
-- the table and its indexes as large as before).
--
-- A partitioned table's unique indexes must include the partition key, so each month's
-- partition carries its own unique indexes (created with the partition, below), and a key is
-- unique across months this way:
-- * within a month, by that partition's unique indexes: INSERT ... ON CONFLICT DO NOTHING uses
--   them as arbiters, so of concurrent duplicates exactly one is stored (as before);
-- * across months, by the insert's own check that no other month holds the key (one index probe
--   per month kept);
-- * two duplicates on either side of a month's start, in flight at once, cannot see each other
--   either way: around each month boundary (ingest's KEYS_NEAR_BOUNDARY) keyed inserts first
--   take a transaction lock per domain, so the later one checks after the earlier commits.
-- A key's received_at is its event's, so a month of keys holds exactly the keys of that month
-- of events.

ALTER TABLE event_keys RENAME TO event_keys_unpartitioned;
ALTER TABLE event_keys_unpartitioned RENAME CONSTRAINT event_keys_pkey TO event_keys_unpartitioned_pkey;
ALTER TABLE event_keys_unpartitioned RENAME CONSTRAINT event_keys_some_key TO event_keys_unpartitioned_some_key;
ALTER TABLE event_keys_unpartitioned DROP CONSTRAINT event_keys_domain_fkey;
DROP INDEX event_keys_order_idx, event_keys_key_idx;

CREATE TABLE event_keys (
    workspace_id     uuid NOT NULL,
    event_id         uuid NOT NULL,
    domain_id        uuid NOT NULL,
    received_at      timestamptz NOT NULL,
    order_id         text,
    event_name       text NOT NULL,
    idempotency_key  text,
    CONSTRAINT event_keys_pkey PRIMARY KEY (workspace_id, event_id, received_at),
    CONSTRAINT event_keys_some_key CHECK (num_nonnulls(order_id, idempotency_key) > 0),
    CONSTRAINT event_keys_domain_fkey FOREIGN KEY (workspace_id, domain_id)
        REFERENCES domains (workspace_id, id) ON DELETE CASCADE
) PARTITION BY RANGE (received_at);
COMMENT ON TABLE event_keys IS 'citus: distributed. Idempotency of stored events (orderId + event, Idempotency-Key), partitioned by month of the event''s received_at: each month''s partition has its own unique indexes, and ingest checks the other months (migration 000130). A key goes with its event: deleted by the events delete trigger, dropped with its month of events, deleted by the domain''s foreign key.';

-- What a new partition of a range-partitioned table needs beyond what its parent gives it:
-- for event_keys, the month's unique indexes.
CREATE FUNCTION postback_partition_created(parent text, part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF parent = 'event_keys' THEN
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (workspace_id, domain_id, order_id, event_name) '
                       'WHERE order_id IS NOT NULL', part || '_order_idx', part);
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (workspace_id, domain_id, idempotency_key) '
                       'WHERE idempotency_key IS NOT NULL', part || '_key_idx', part);
    END IF;
END
$$;

-- As in migration 000100, plus postback_partition_created for each partition it creates.
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
                PERFORM postback_partition_created(parent.name, part);
                created := created + 1;
            END IF;
            month := month + interval '1 month';
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

CREATE TABLE event_keys_default PARTITION OF event_keys DEFAULT;
SELECT postback_partition_created('event_keys', 'event_keys_default');
SELECT postback_partitions_ensure(
    least(now(), (SELECT min(received_at) FROM event_keys_unpartitioned)),
    now() + interval '3 months');
INSERT INTO event_keys SELECT workspace_id, event_id, domain_id, received_at, order_id, event_name,
                              idempotency_key
FROM event_keys_unpartitioned;
DROP TABLE event_keys_unpartitioned;

-- An event's keys go with it; the month narrows the probe to one partition.
CREATE OR REPLACE FUNCTION delete_keys_of_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_keys k USING deleted_events o
    WHERE k.workspace_id = o.workspace_id AND k.event_id = o.id AND k.received_at = o.received_at;
    RETURN NULL;
END
$$;
ALTER FUNCTION delete_keys_of_deleted_events()
    SET enable_seqscan = off SET enable_bitmapscan = off
    SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;

-- A month of events takes its month of keys with it: the partition is dropped, not emptied.
CREATE OR REPLACE FUNCTION event_rollups_drop_events_partition(part regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    changes event_rollup_change[];
    held bigint;
    keys regclass;
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
    -- The month's keys are the keys of this month's events: dropped whole (keys of a month
    -- with no partition of its own, in the default partition, are deleted).
    keys := to_regclass(quote_ident('event_keys_' || substring(part::text FROM 'p[0-9]{6}$')));
    IF keys IS NOT NULL THEN
        EXECUTE format('DROP TABLE %s', keys);
    ELSE
        EXECUTE format('DELETE FROM event_keys k USING %s o '
                       'WHERE k.workspace_id = o.workspace_id AND k.event_id = o.id '
                       '  AND k.received_at = o.received_at', part);
    END IF;
    EXECUTE format('DROP TABLE %s', part);
    RETURN held + cardinality(changes);
END
$$;
