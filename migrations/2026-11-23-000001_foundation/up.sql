-- Foundation: plans, accounts, tenants, sessions, domains, inbound integration keys, events.
-- Every tenant-owned table carries workspace_id so the schema can later be distributed by workspace.

CREATE TABLE plans (
    tier                  text PRIMARY KEY,
    name                  text NOT NULL,
    position              integer NOT NULL,
    -- NULL means unlimited.
    max_keys_per_domain   integer CHECK (max_keys_per_domain >= 0),
    max_domains           integer CHECK (max_domains >= 0),
    max_webhooks          integer CHECK (max_webhooks >= 0),
    max_events_per_month  bigint CHECK (max_events_per_month >= 0),
    retention_days        integer NOT NULL CHECK (retention_days > 0),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (tier, name, position, max_keys_per_domain, max_domains, max_webhooks, max_events_per_month, retention_days) VALUES
    ('pulse',   'Pulse',   1, 2,    1,    2,    10000,   30),
    ('signal',  'Signal',  2, 5,    3,    5,    100000,  90),
    ('clarity', 'Clarity', 3, 10,   10,   20,   1000000, 365),
    ('command', 'Command', 4, NULL, NULL, NULL, NULL,    730);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    password_hash  text NOT NULL,
    is_admin       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE workspaces (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    plan              text NOT NULL REFERENCES plans (tier),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    suspended_reason  text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          text NOT NULL CHECK (role IN ('owner', 'member')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    token_hash    bytea NOT NULL UNIQUE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE domains (
    id                       uuid PRIMARY KEY,
    workspace_id             uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    hostname                 text NOT NULL,
    site_id                  text NOT NULL UNIQUE,
    attribution_window_days  integer NOT NULL DEFAULT 90 CHECK (attribution_window_days BETWEEN 1 AND 730),
    created_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, hostname),
    UNIQUE (workspace_id, id)
);
CREATE INDEX domains_workspace_created_idx ON domains (workspace_id, created_at DESC, id DESC);

CREATE TABLE inbound_keys (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    domain_id     uuid NOT NULL,
    name          text NOT NULL,
    -- SHA-256 of the full key; the key itself is never stored.
    key_hash      bytea NOT NULL UNIQUE,
    prefix        text NOT NULL,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX inbound_keys_domain_created_idx ON inbound_keys (domain_id, created_at DESC, id DESC);

CREATE TABLE events (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    domain_id     uuid NOT NULL,
    key_id        uuid REFERENCES inbound_keys (id) ON DELETE SET NULL,
    event_name    text NOT NULL,
    email         text NOT NULL,
    payload       jsonb NOT NULL,
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX events_domain_received_idx ON events (domain_id, received_at DESC, id DESC);
CREATE INDEX events_workspace_received_idx ON events (workspace_id, received_at);
