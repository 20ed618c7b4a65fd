-- Each inbound key shows its last event (issue 22): the newest event sent with a key is one
-- probe of this index, however many events the domain holds.
CREATE INDEX events_key_received_idx ON events (key_id, received_at DESC) WHERE key_id IS NOT NULL;
