-- Google's Data Manager API answers events:ingest with a requestId and processes the events
-- later (issue 19): each accepted platform delivery whose answer carried a request id is
-- followed here until requestStatus:retrieve reports the outcome, which is recorded on the
-- delivery (a failed processing fails the delivery with Google's reason).
CREATE TABLE platform_requests (
    workspace_id  uuid NOT NULL,
    delivery_id   uuid NOT NULL,
    request_id    text NOT NULL,
    -- processing: not known yet; then Google's outcome, or unknown when it never said.
    status        text NOT NULL DEFAULT 'processing'
                  CHECK (status IN ('processing', 'succeeded', 'partially_succeeded', 'failed', 'unknown')),
    -- Google's reasons and counts, as shown on the delivery.
    detail        text,
    checks        integer NOT NULL DEFAULT 0,
    next_check_at timestamptz NOT NULL,
    checked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, delivery_id),
    FOREIGN KEY (workspace_id, delivery_id) REFERENCES deliveries (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX platform_requests_due_idx ON platform_requests (next_check_at) WHERE status = 'processing';
COMMENT ON TABLE platform_requests IS 'citus: distributed. The asynchronous outcome of a platform delivery (Data Manager request status), per workspace like its delivery.';
