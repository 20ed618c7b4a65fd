-- The hot delivery queue apart from append-only history (issue 23). What is pending or held
-- lives in delivery_queue, a small table whose size follows pending work: a claim takes a row
-- by setting its lease (leased_until, attempts), which no index covers, so the update stays HOT
-- on a half-empty page (fillfactor 50). A delivery claimed as it is inserted (sent straight after
-- ingest commits) is inserted due at its lease's end, so a burst not sent yet stays out of the
-- due index the claimer scans. A final outcome (succeeded, failed) deletes the queue
-- row and inserts it into delivery_history, partitioned by month of created_at, in the same
-- statement. `deliveries` becomes a view over both for every read.
--
-- Scheduling a retry changes next_attempt_at, which the due index covers: that update is not
-- HOT (one per failed attempt, not one per attempt). Holding and releasing (status) are not
-- HOT either: the due and held indexes are partial on status.

CREATE TABLE delivery_queue (
    id                uuid NOT NULL,
    workspace_id      uuid NOT NULL,
    webhook_id        uuid,
    event_id          uuid NOT NULL,
    url               text NOT NULL,
    status            text NOT NULL,
    attempts          integer NOT NULL DEFAULT 0,
    round_attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    connection_id     uuid,
    recovery_id       uuid,
    event_received_at timestamptz NOT NULL,
    -- Claimed by a worker until then (NULL: not claimed). Deliberately in no index.
    leased_until      timestamptz,
    CONSTRAINT delivery_queue_pkey PRIMARY KEY (workspace_id, id),
    CONSTRAINT delivery_queue_status_check CHECK (status IN ('pending', 'held')),
    CONSTRAINT delivery_queue_one_target CHECK (num_nonnulls(webhook_id, connection_id) = 1),
    CONSTRAINT delivery_queue_webhook_fkey FOREIGN KEY (workspace_id, webhook_id)
        REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT delivery_queue_connection_fkey FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) WITH (fillfactor = 50);
-- A queue table turns over its rows many times a second: vacuum it by a fixed number of dead
-- rows rather than a fraction of its (small) size, and without the cost delay, so dead versions
-- do not pile up in its indexes between passes.
ALTER TABLE delivery_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                                autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                                autovacuum_analyze_threshold = 5000);
COMMENT ON TABLE delivery_queue IS 'citus: distributed. Deliveries pending or held: the hot queue, claimed by lease; a delivery leaves it for delivery_history when it succeeds or fails.';
CREATE INDEX delivery_queue_due_idx ON delivery_queue (next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_queue_held_idx ON delivery_queue (webhook_id) WHERE status = 'held';
CREATE INDEX delivery_queue_id_lookup ON delivery_queue (id);
CREATE INDEX delivery_queue_event_idx ON delivery_queue (event_id);
CREATE INDEX delivery_queue_webhook_created_idx ON delivery_queue (webhook_id, created_at DESC, id DESC)
    WHERE webhook_id IS NOT NULL;
CREATE INDEX delivery_queue_connection_created_idx
    ON delivery_queue (connection_id, created_at DESC, id DESC) WHERE connection_id IS NOT NULL;
CREATE INDEX delivery_queue_recovery_idx ON delivery_queue (recovery_id) WHERE recovery_id IS NOT NULL;

CREATE TABLE delivery_history (
    id                uuid NOT NULL,
    workspace_id      uuid NOT NULL,
    webhook_id        uuid,
    event_id          uuid NOT NULL,
    url               text NOT NULL,
    status            text NOT NULL,
    attempts          integer NOT NULL DEFAULT 0,
    round_attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    connection_id     uuid,
    recovery_id       uuid,
    event_received_at timestamptz NOT NULL,
    CONSTRAINT delivery_history_pkey PRIMARY KEY (workspace_id, id, created_at),
    CONSTRAINT delivery_history_status_check CHECK (status IN ('succeeded', 'failed')),
    CONSTRAINT delivery_history_one_target CHECK (num_nonnulls(webhook_id, connection_id) = 1),
    CONSTRAINT delivery_history_webhook_fkey FOREIGN KEY (workspace_id, webhook_id)
        REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT delivery_history_connection_fkey FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE delivery_history IS 'citus: distributed. Deliveries that succeeded or failed, appended as they leave delivery_queue. Partitioned by month of created_at.';
CREATE INDEX delivery_history_id_lookup ON delivery_history (id);
CREATE INDEX delivery_history_event_idx ON delivery_history (event_id);
CREATE INDEX delivery_history_webhook_created_idx
    ON delivery_history (webhook_id, created_at DESC, id DESC) WHERE webhook_id IS NOT NULL;
CREATE INDEX delivery_history_connection_created_idx
    ON delivery_history (connection_id, created_at DESC, id DESC) WHERE connection_id IS NOT NULL;
CREATE INDEX delivery_history_recovery_idx ON delivery_history (recovery_id)
    WHERE recovery_id IS NOT NULL;
CREATE TABLE delivery_history_default PARTITION OF delivery_history DEFAULT;
SELECT postback_partitions_ensure(
    least(now() - interval '1 month', (SELECT min(created_at) FROM deliveries)),
    now() + interval '3 months');

-- The rows, where they belong.
INSERT INTO delivery_queue
SELECT d.id, d.workspace_id, d.webhook_id, d.event_id, d.url, d.status, d.attempts,
       d.round_attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at,
       d.completed_at, d.connection_id, d.recovery_id, COALESCE(e.received_at, d.created_at), NULL
FROM deliveries d
LEFT JOIN events e ON e.workspace_id = d.workspace_id AND e.id = d.event_id
WHERE d.status IN ('pending', 'held');
INSERT INTO delivery_history
SELECT d.id, d.workspace_id, d.webhook_id, d.event_id, d.url, d.status, d.attempts,
       d.round_attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at,
       d.completed_at, d.connection_id, d.recovery_id, COALESCE(e.received_at, d.created_at)
FROM deliveries d
LEFT JOIN events e ON e.workspace_id = d.workspace_id AND e.id = d.event_id
WHERE d.status IN ('succeeded', 'failed');

ALTER TABLE platform_requests DROP CONSTRAINT platform_requests_workspace_id_delivery_id_fkey;
DROP TABLE deliveries;

-- Every read sees one relation, as before. A claimed row shows its lease end as its next
-- attempt, as the single table did.
CREATE VIEW deliveries AS
SELECT id, workspace_id, webhook_id, event_id, url, status, attempts, round_attempts,
       GREATEST(next_attempt_at, leased_until) AS next_attempt_at, last_status_code, last_error,
       created_at, completed_at, connection_id, recovery_id, event_received_at
FROM delivery_queue
UNION ALL
SELECT id, workspace_id, webhook_id, event_id, url, status, attempts, round_attempts,
       next_attempt_at, last_status_code, last_error, created_at, completed_at, connection_id,
       recovery_id, event_received_at
FROM delivery_history;

-- An event's deliveries go with it, from the queue and from history.
CREATE OR REPLACE FUNCTION delete_deliveries_of_deleted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_queue d USING deleted_events e
    WHERE d.workspace_id = e.workspace_id AND d.event_id = e.id;
    DELETE FROM delivery_history d USING deleted_events e
    WHERE d.workspace_id = e.workspace_id AND d.event_id = e.id;
    RETURN NULL;
END
$$;

-- A delivery's attempts and platform request go with it, unless it only moved between the queue
-- and history in the same statement (the row exists on the other side; a moved row keeps its
-- created_at, so history is looked up in that month's partition only).
CREATE FUNCTION delete_children_of_deleted_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT d.workspace_id, d.id FROM deleted_deliveries d
        WHERE NOT EXISTS (SELECT 1 FROM delivery_queue q
                          WHERE q.workspace_id = d.workspace_id AND q.id = d.id)
          AND NOT EXISTS (SELECT 1 FROM delivery_history h
                          WHERE h.workspace_id = d.workspace_id AND h.id = d.id
                            AND h.created_at = d.created_at)
    ),
    attempts AS (
        DELETE FROM delivery_attempts a USING gone g
        WHERE a.workspace_id = g.workspace_id AND a.delivery_id = g.id
    )
    DELETE FROM platform_requests p USING gone g
    WHERE p.workspace_id = g.workspace_id AND p.delivery_id = g.id;
    RETURN NULL;
END
$$;
DROP FUNCTION delete_attempts_of_deleted_deliveries();
CREATE TRIGGER delivery_queue_delete_children AFTER DELETE ON delivery_queue
    REFERENCING OLD TABLE AS deleted_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION delete_children_of_deleted_deliveries();
CREATE TRIGGER delivery_history_delete_children AFTER DELETE ON delivery_history
    REFERENCING OLD TABLE AS deleted_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION delete_children_of_deleted_deliveries();
