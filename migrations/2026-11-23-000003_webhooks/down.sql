DROP INDEX events_domain_received_idx;
CREATE INDEX events_domain_received_idx ON events (domain_id, received_at DESC, id DESC);
UPDATE events SET key_id = NULL WHERE key_id IS NOT NULL AND key_id NOT IN (SELECT id FROM inbound_keys);
ALTER TABLE events ADD CONSTRAINT events_key_id_fkey FOREIGN KEY (key_id) REFERENCES inbound_keys (id) ON DELETE SET NULL;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE webhooks;
