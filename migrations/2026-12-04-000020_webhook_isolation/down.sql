DROP INDEX deliveries_recovery_idx;
ALTER TABLE deliveries DROP COLUMN recovery_id;
DROP TABLE webhook_recoveries;
DROP TABLE webhook_slots;
ALTER TABLE webhooks
    DROP COLUMN previous_secret,
    DROP COLUMN previous_secret_until,
    DROP COLUMN rate_limit,
    DROP COLUMN max_in_flight,
    DROP COLUMN headers,
    DROP COLUMN consecutive_timeouts,
    DROP COLUMN circuit_open_until;
