-- The tracking snippet (seed 000 "How Attribution Works"): visitors of a domain, each landing
-- as a touch with its click ids and UTMs, and the email hashes a visitor identified with.

CREATE TABLE visitors (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    domain_id     uuid NOT NULL,
    -- The first-party `_pb_vid` cookie's value, chosen by the browser.
    browser_id    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, browser_id),
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);

CREATE TABLE touches (
    id             uuid PRIMARY KEY,
    workspace_id   uuid NOT NULL,
    domain_id      uuid NOT NULL,
    visitor_id     uuid NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    landing_page   text,
    referrer       text,
    utm_source     text,
    utm_medium     text,
    utm_campaign   text,
    utm_content    text,
    utm_term       text,
    gclid          text,
    gbraid         text,
    wbraid         text,
    fbclid         text,
    ttclid         text,
    msclkid        text,
    device_type    text NOT NULL,
    country        text,
    -- Reported by the snippet: the browser says it is automated.
    webdriver      boolean NOT NULL DEFAULT false
);
CREATE INDEX touches_visitor_time_idx ON touches (visitor_id, occurred_at);

CREATE TABLE visitor_emails (
    domain_id     uuid NOT NULL,
    email_sha256  bytea NOT NULL,
    visitor_id    uuid NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    workspace_id  uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, email_sha256, visitor_id)
);
