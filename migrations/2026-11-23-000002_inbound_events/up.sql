-- The full inbound contract (seeds 000 and 004): normalised fields, idempotency, monthly usage.

-- payload now holds only the body's fields that have no column of their own.
ALTER TABLE events
    ADD COLUMN email_sha256     bytea,
    ADD COLUMN value            double precision,
    ADD COLUMN currency         text NOT NULL DEFAULT 'USD',
    ADD COLUMN order_id         text,
    ADD COLUMN idempotency_key  text,
    ADD COLUMN first_name       text,
    ADD COLUMN last_name        text,
    ADD COLUMN phone            text,
    ADD COLUMN ip               text,
    ADD COLUMN city             text,
    ADD COLUMN country          text,
    ADD COLUMN country_code     text,
    ADD COLUMN state            text,
    ADD COLUMN state_code       text,
    ADD COLUMN guid             text,
    ADD COLUMN product_name     text,
    ADD COLUMN product_link     text,
    ADD COLUMN product_image    text,
    ADD COLUMN products         jsonb NOT NULL DEFAULT '[]';

UPDATE events SET email_sha256 = sha256(convert_to(email, 'UTF8'));
ALTER TABLE events ALTER COLUMN email_sha256 SET NOT NULL;

-- The same orderId + event for a domain, or the same Idempotency-Key, is one event.
CREATE UNIQUE INDEX events_order_idempotency_idx ON events (domain_id, order_id, event_name) WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX events_key_idempotency_idx ON events (domain_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_domain_email_idx ON events (domain_id, email, received_at DESC);
-- The monthly quota lives in usage_counters; received-time reads go through the domain index.
DROP INDEX events_workspace_received_idx;

-- Accepted inbound events per workspace per calendar month (UTC): the quota counter, kept in
-- step with events in the same transaction, so checking the quota never counts rows. Split in
-- shards (one per committer) so concurrent batches of one workspace never wait on one row;
-- the month's usage is the sum of its shards.
CREATE TABLE usage_counters (
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    month         date NOT NULL,
    shard         smallint NOT NULL DEFAULT 0,
    events        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, month, shard)
);
INSERT INTO usage_counters (workspace_id, month, shard, events)
SELECT workspace_id, date_trunc('month', received_at AT TIME ZONE 'UTC')::date, 0, count(*)
FROM events GROUP BY 1, 2;
