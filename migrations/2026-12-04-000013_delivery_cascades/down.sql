CREATE INDEX deliveries_webhook_created_full_idx ON deliveries (webhook_id, created_at DESC, id DESC);
DROP INDEX deliveries_webhook_created_idx;
ALTER INDEX deliveries_webhook_created_full_idx RENAME TO deliveries_webhook_created_idx;

DROP TRIGGER deliveries_delete_attempts ON deliveries;
DROP FUNCTION delete_attempts_of_deleted_deliveries();
DROP TRIGGER events_delete_deliveries ON events;
DROP FUNCTION delete_deliveries_of_deleted_events();

-- Rows whose parent went while there was no constraint (an attempt recorded for a delivery
-- deleted meanwhile) cannot be kept under the constraint.
DELETE FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id);
DELETE FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id);
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES deliveries (id) ON DELETE CASCADE;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
