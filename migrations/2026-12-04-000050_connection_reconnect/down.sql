ALTER TABLE connections
    DROP COLUMN reconnect_since,
    DROP COLUMN reconnect_reason;
