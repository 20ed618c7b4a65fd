-- Issue 18: secret rotation with an overlap, per-webhook rate limit and concurrency cap, a
-- circuit breaker after consecutive timeouts, custom headers, and bulk recovery.

ALTER TABLE webhooks
    -- The secret before the last rotation (sealed, like `secret`), still signing deliveries
    -- until `previous_secret_until`.
    ADD COLUMN previous_secret        text,
    ADD COLUMN previous_secret_until  timestamptz,
    -- Deliveries started per second, across every instance (NULL: no limit).
    ADD COLUMN rate_limit             integer CHECK (rate_limit BETWEEN 1 AND 10000),
    -- Attempts in flight at once, across every instance (NULL: the worker's fair share).
    ADD COLUMN max_in_flight          integer CHECK (max_in_flight BETWEEN 1 AND 1000),
    -- Custom request headers, sealed JSON `[{"name", "value"}]` (values may be credentials).
    ADD COLUMN headers                text,
    -- The circuit breaker: attempts in a row that timed out; while `circuit_open_until` is in
    -- the future nothing is sent, after it one probe at a time until an attempt succeeds.
    ADD COLUMN consecutive_timeouts   integer NOT NULL DEFAULT 0,
    ADD COLUMN circuit_open_until     timestamptz;

-- Attempts to webhooks with a rate limit, a concurrency cap or a tripped breaker ("governed"),
-- so every instance counts the same: in flight while `held_until` is ahead (the claim's lease,
-- set to the finish when the result is written), and started in the last second.
CREATE TABLE webhook_slots (
    delivery_id  uuid NOT NULL,
    attempt      integer NOT NULL,
    webhook_id   uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    started_at   timestamptz NOT NULL DEFAULT now(),
    held_until   timestamptz NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX webhook_slots_webhook_idx ON webhook_slots (webhook_id, started_at);

-- "Resend failed since …": one row per request, its deliveries marked for the progress bar.
CREATE TABLE webhook_recoveries (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    webhook_id    uuid NOT NULL,
    since         timestamptz NOT NULL,
    until         timestamptz,
    queued        integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_recoveries_webhook_idx ON webhook_recoveries (webhook_id, created_at DESC);

ALTER TABLE deliveries ADD COLUMN recovery_id uuid;
CREATE INDEX deliveries_recovery_idx ON deliveries (recovery_id) WHERE recovery_id IS NOT NULL;
