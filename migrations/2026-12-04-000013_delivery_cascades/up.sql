-- Deliveries and delivery attempts are written on the hot path: a delivery in the statement (or
-- transaction) that stores its event, an attempt by the worker that claimed its delivery. As
-- foreign keys, deliveries.event_id and delivery_attempts.delivery_id made PostgreSQL run a
-- referential check for every such row, locking the parent row it had just written; with one
-- webhook and one platform per event that cost about a tenth of the end-to-end rate (bench
-- `inbound --webhook --platform`, 32 connections: 4,840-5,030 events/s with them, 5,420-5,460
-- without). The parent always exists when the row is written, so the checks go; the cascades
-- they gave stay, as statement-level triggers that delete the children of the rows deleted
-- (retention, a deleted domain or workspace), including in the deletes that cascade further.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey;

CREATE FUNCTION delete_deliveries_of_deleted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deliveries d USING deleted_events e WHERE d.event_id = e.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_delete_deliveries
    AFTER DELETE ON events
    REFERENCING OLD TABLE AS deleted_events
    FOR EACH STATEMENT EXECUTE FUNCTION delete_deliveries_of_deleted_events();

CREATE FUNCTION delete_attempts_of_deleted_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_attempts a USING deleted_deliveries d WHERE a.delivery_id = d.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_delete_attempts
    AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS deleted_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION delete_attempts_of_deleted_deliveries();

-- Platform deliveries have no webhook: they need no entry in the per-webhook list's index.
CREATE INDEX deliveries_webhook_created_partial_idx ON deliveries (webhook_id, created_at DESC, id DESC)
    WHERE webhook_id IS NOT NULL;
DROP INDEX deliveries_webhook_created_idx;
ALTER INDEX deliveries_webhook_created_partial_idx RENAME TO deliveries_webhook_created_idx;
