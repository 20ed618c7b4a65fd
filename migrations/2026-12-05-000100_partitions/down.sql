-- Back to plain tables, the idempotency keys back on events.
CREATE TEMPORARY TABLE saved_functions AS
    SELECT pg_get_functiondef('event_rollups_apply'::regproc) AS def;
DROP FUNCTION event_rollups_apply(event_rollup_change[], touches[]);
DROP TRIGGER event_rollups_delete ON events;
DROP TRIGGER event_rollups_insert ON events;
DROP TRIGGER event_rollups_update ON events;
DROP TRIGGER events_delete_deliveries ON events;
DROP TRIGGER events_delete_keys ON events;
DROP TRIGGER event_rollups_touch_delete ON touches;
DROP FUNCTION delete_keys_of_deleted_events();
DROP FUNCTION IF EXISTS event_rollups_drop_events_partition(regclass);
DROP FUNCTION IF EXISTS event_rollups_drop_touches_partition(regclass, timestamptz);

ALTER TABLE events RENAME TO events_partitioned;
ALTER TABLE touches RENAME TO touches_partitioned;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_partitioned;
ALTER TABLE events_partitioned RENAME CONSTRAINT events_pkey TO events_partitioned_pkey;
ALTER TABLE touches_partitioned RENAME CONSTRAINT touches_pkey TO touches_partitioned_pkey;
ALTER TABLE delivery_attempts_partitioned
    RENAME CONSTRAINT delivery_attempts_pkey TO delivery_attempts_partitioned_pkey;
ALTER TABLE touches_partitioned DROP CONSTRAINT touches_visitor_id_fkey;
ALTER TABLE events_partitioned DROP CONSTRAINT events_workspace_id_domain_id_fkey;
DROP INDEX events_domain_email_idx, events_domain_received_idx, events_first_touch_idx,
    events_id_lookup, events_key_received_idx, events_last_touch_idx, touches_domain_time_idx,
    touches_id_lookup, touches_link_time_idx, touches_visitor_time_idx,
    delivery_attempts_delivery_idx, delivery_attempts_id_lookup;

CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                     INCLUDING STORAGE INCLUDING COMMENTS);
CREATE TABLE touches (LIKE touches_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                      INCLUDING STORAGE INCLUDING COMMENTS);
CREATE TABLE delivery_attempts (LIKE delivery_attempts_partitioned INCLUDING DEFAULTS
                                INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS);
INSERT INTO events SELECT * FROM events_partitioned;
INSERT INTO touches SELECT * FROM touches_partitioned;
INSERT INTO delivery_attempts SELECT * FROM delivery_attempts_partitioned;
DROP TABLE events_partitioned, touches_partitioned, delivery_attempts_partitioned, event_keys;
DROP FUNCTION postback_partitions_ensure(timestamptz, timestamptz);

COMMENT ON TABLE events IS 'citus: distributed. Stored inbound events: the largest table, always read per workspace.';
COMMENT ON TABLE touches IS 'citus: distributed. Landings and clicks used for attribution.';
COMMENT ON TABLE delivery_attempts IS 'citus: distributed. One row per delivery attempt (history).';
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE touches ADD CONSTRAINT touches_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (workspace_id, id);
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
CREATE UNIQUE INDEX events_order_idempotency_idx ON events (workspace_id, domain_id, order_id, event_name)
    WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX events_key_idempotency_idx ON events (workspace_id, domain_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX touches_domain_time_idx ON touches (domain_id, occurred_at);
CREATE INDEX touches_id_lookup ON touches (id);
CREATE INDEX touches_link_time_idx ON touches (link_id, occurred_at) WHERE link_id IS NOT NULL;
CREATE INDEX touches_visitor_time_idx ON touches (visitor_id, occurred_at) WHERE visitor_id IS NOT NULL;
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_id_lookup ON delivery_attempts (id);

DO $$ BEGIN EXECUTE (SELECT def FROM saved_functions); END $$;
DROP TABLE saved_functions;

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
CREATE TRIGGER event_rollups_touch_delete AFTER DELETE ON touches
    REFERENCING OLD TABLE AS old_touches
    FOR EACH STATEMENT EXECUTE FUNCTION event_rollups_on_touch_delete();
