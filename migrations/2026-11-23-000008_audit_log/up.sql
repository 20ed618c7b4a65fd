-- Who changed what and when: admin and owner actions, with the value before and after.
CREATE TABLE audit_log (
    id            uuid PRIMARY KEY,
    -- The workspace the action concerns (NULL for platform-wide ones such as plan limits).
    workspace_id  uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    actor_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_email   text NOT NULL,
    action        text NOT NULL,
    target        text NOT NULL,
    before        jsonb,
    after         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);
CREATE INDEX audit_log_workspace_idx ON audit_log (workspace_id, created_at DESC, id DESC);
