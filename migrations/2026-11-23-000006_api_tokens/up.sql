-- Personal access tokens for the management API (`Authorization: Bearer pb_…`): shown once,
-- stored as their SHA-256; a token acts as its user in one workspace.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    -- The first characters, to recognise a token in the list.
    prefix        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX api_tokens_workspace_idx ON api_tokens (workspace_id, created_at DESC, id DESC);
