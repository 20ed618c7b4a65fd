-- citus: distributed. An ad platform sign-in under way: its state (hashed) and PKCE verifier
-- (sealed), bound to the session that started it; after the callback, the refresh token
-- (sealed) until the user picks the account and conversion action.
CREATE TABLE oauth_flows (
    id             uuid PRIMARY KEY,
    workspace_id   uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id     uuid NOT NULL,
    domain_id      uuid NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    platform       text NOT NULL,
    state_sha256   bytea NOT NULL UNIQUE,
    code_verifier  jsonb NOT NULL,
    refresh_token  jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    used_at        timestamptz
);
CREATE INDEX oauth_flows_workspace_idx ON oauth_flows (workspace_id);
COMMENT ON TABLE oauth_flows IS 'citus: distributed. Ad platform sign-ins under way (state, PKCE verifier, refresh token until picked).';
