-- Mail and the account lifecycle: a durable outbox, single-use account tokens, invitation tokens,
-- verified addresses, notification opt-out and once-a-day notification bookkeeping.

-- citus: reference. Mails waiting to be sent (and a trace of those sent, without their bodies).
CREATE TABLE mail_outbox (
    id               uuid PRIMARY KEY,
    to_address       text NOT NULL,
    kind             text NOT NULL,
    subject          text NOT NULL,
    -- Sealed (AES-256-GCM) until sent, then emptied: the links inside are credentials.
    text_body        text NOT NULL,
    html_body        text NOT NULL,
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status = 'queued';
COMMENT ON TABLE mail_outbox IS 'citus: reference. Mail queued in the transaction that caused it, sent by the mail worker.';

-- citus: reference. Single-use links mailed to a user: address verification, password reset,
-- change of address. Only the token's SHA-256 is kept.
CREATE TABLE account_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify', 'reset', 'email_change')),
    token_hash  bytea NOT NULL UNIQUE,
    new_email   text,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose);
COMMENT ON TABLE account_tokens IS 'citus: reference. Hashed single-use tokens of mailed account links.';

ALTER TABLE users
    ADD COLUMN email_verified_at timestamptz,
    ADD COLUMN notifications_enabled boolean NOT NULL DEFAULT true;

-- Invitations are joined by their mailed token only (7 days, single use).
ALTER TABLE invitations
    ADD COLUMN token_hash bytea UNIQUE,
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now();

-- citus: distributed. One owner notification per cause per day.
CREATE TABLE notifications_sent (
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    cause         text NOT NULL,
    day           date NOT NULL,
    PRIMARY KEY (workspace_id, cause, day)
);
COMMENT ON TABLE notifications_sent IS 'citus: distributed. Owner notifications already mailed today, per cause.';

-- A workspace being deleted keeps its row until its data is gone, invisible to everyone.
ALTER TABLE workspaces DROP CONSTRAINT workspaces_status_check;
ALTER TABLE workspaces ADD CONSTRAINT workspaces_status_check
    CHECK (status IN ('active', 'suspended', 'deleting'));
