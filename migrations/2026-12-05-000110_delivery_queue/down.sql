-- One deliveries table again, holding the queue and history.
DROP VIEW deliveries;
CREATE TABLE deliveries (
    id               uuid NOT NULL,
    workspace_id     uuid NOT NULL,
    webhook_id       uuid,
    event_id         uuid NOT NULL,
    url              text NOT NULL,
    status           text NOT NULL CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'held', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    round_attempts   integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    connection_id    uuid,
    recovery_id      uuid,
    CONSTRAINT deliveries_pkey PRIMARY KEY (workspace_id, id),
    CONSTRAINT deliveries_one_target CHECK (num_nonnulls(webhook_id, connection_id) = 1),
    CONSTRAINT deliveries_workspace_id_webhook_id_fkey FOREIGN KEY (workspace_id, webhook_id)
        REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE,
    CONSTRAINT deliveries_connection_fkey FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE deliveries IS 'citus: distributed. The delivery queue and its outcomes, per workspace like the events they carry.';
INSERT INTO deliveries
SELECT id, workspace_id, webhook_id, event_id, url, status, attempts, round_attempts,
       GREATEST(next_attempt_at, leased_until), last_status_code, last_error, created_at,
       completed_at, connection_id, recovery_id
FROM delivery_queue;
INSERT INTO deliveries
SELECT id, workspace_id, webhook_id, event_id, url, status, attempts, round_attempts,
       next_attempt_at, last_status_code, last_error, created_at, completed_at, connection_id,
       recovery_id
FROM delivery_history;
CREATE INDEX deliveries_connection_created_idx ON deliveries (connection_id, created_at DESC, id DESC)
    WHERE connection_id IS NOT NULL;
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_event_idx ON deliveries (event_id);
CREATE INDEX deliveries_held_idx ON deliveries (webhook_id) WHERE status = 'held';
CREATE INDEX deliveries_id_lookup ON deliveries (id);
CREATE INDEX deliveries_recovery_idx ON deliveries (recovery_id) WHERE recovery_id IS NOT NULL;
CREATE INDEX deliveries_webhook_created_idx ON deliveries (webhook_id, created_at DESC, id DESC)
    WHERE webhook_id IS NOT NULL;

DROP TRIGGER delivery_queue_delete_children ON delivery_queue;
DROP TRIGGER delivery_history_delete_children ON delivery_history;
DROP TABLE delivery_queue, delivery_history;
DROP FUNCTION delete_children_of_deleted_deliveries();

DELETE FROM platform_requests p
WHERE NOT EXISTS (SELECT 1 FROM deliveries d
                  WHERE d.workspace_id = p.workspace_id AND d.id = p.delivery_id);
ALTER TABLE platform_requests ADD CONSTRAINT platform_requests_workspace_id_delivery_id_fkey
    FOREIGN KEY (workspace_id, delivery_id) REFERENCES deliveries (workspace_id, id)
    ON DELETE CASCADE;

CREATE OR REPLACE FUNCTION delete_deliveries_of_deleted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deliveries d USING deleted_events e WHERE d.event_id = e.id;
    RETURN NULL;
END
$$;
CREATE FUNCTION delete_attempts_of_deleted_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_attempts a USING deleted_deliveries d WHERE a.delivery_id = d.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_delete_attempts AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS deleted_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION delete_attempts_of_deleted_deliveries();
