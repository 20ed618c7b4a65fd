-- Outbound webhooks (seeds 002 and 003): configuration, the delivery queue, and every attempt.

CREATE TABLE webhooks (
    id                    uuid PRIMARY KEY,
    workspace_id          uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- NULL: every domain of the workspace.
    domain_id             uuid,
    name                  text NOT NULL DEFAULT '',
    url                   text NOT NULL,
    -- Needed in clear to sign each delivery; never shown in lists, revealed on demand.
    secret                text,
    -- Event names (and the trigger groups conversion / refund / event); empty = all events.
    events                text[] NOT NULL DEFAULT '{}',
    conditions            jsonb NOT NULL DEFAULT '[]',
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    paused_reason         text,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, id),
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX webhooks_workspace_created_idx ON webhooks (workspace_id, created_at DESC, id DESC);

-- One row per (event, webhook) that matched when the event arrived: the durable queue.
-- pending: waiting for next_attempt_at (a claim pushes next_attempt_at out by the lease, so a
-- worker that dies mid-attempt leaves it due again); held: the webhook is paused;
-- succeeded / failed: done (failed = every attempt of the round failed).
CREATE TABLE deliveries (
    id                uuid PRIMARY KEY,
    workspace_id      uuid NOT NULL,
    webhook_id        uuid NOT NULL,
    event_id          uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- The target with its URL tokens filled in when the event arrived.
    url               text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'held', 'succeeded', 'failed')),
    -- Attempts in all; round_attempts since the last (re)delivery or resume, for the schedule.
    attempts          integer NOT NULL DEFAULT 0,
    round_attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_held_idx ON deliveries (webhook_id) WHERE status = 'held';
CREATE INDEX deliveries_webhook_created_idx ON deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);

CREATE TABLE delivery_attempts (
    id             uuid PRIMARY KEY,
    workspace_id   uuid NOT NULL,
    delivery_id    uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt        integer NOT NULL,
    started_at     timestamptz NOT NULL,
    duration_ms    integer NOT NULL,
    status_code    integer,
    -- The first few KiB of the receiver's answer.
    response_body  text,
    error          text
);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);

-- Inbound hot path (measured with pg_waldump and EXPLAIN (ANALYZE, WAL) at 1M events):
-- the key foreign key fired a trigger per row that locked the key row, which each batch also
-- updates (last used), creating a MultiXact per batch; the ingest statement already checks the
-- key, and key_id is only a reference kept for the record. And a DESC index on ascending
-- times splits pages in half (53 % full); ascending, it fills them, and scans backwards.
ALTER TABLE events DROP CONSTRAINT events_key_id_fkey;
DROP INDEX events_domain_received_idx;
CREATE INDEX events_domain_received_idx ON events (domain_id, received_at, id);
