-- Attribution (seed 000 "How Attribution Works") and connected ad platforms.

-- The browser's User-Agent of a landing, for the platforms that take it (Meta, TikTok).
ALTER TABLE touches ADD COLUMN user_agent text;

-- The first and last touch inside the domain's attribution window before the event, found
-- through the email's hash when the event arrived. No foreign key: retention may purge touches
-- before the events that point at them.
ALTER TABLE events ADD COLUMN first_touch_id uuid, ADD COLUMN last_touch_id uuid;

-- One connection per (domain, platform). settings are shown; credentials are write-only.
CREATE TABLE connections (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    domain_id     uuid NOT NULL,
    platform      text NOT NULL CHECK (platform IN ('googleads', 'meta', 'tiktok')),
    enabled       boolean NOT NULL DEFAULT true,
    settings      jsonb NOT NULL DEFAULT '{}',
    credentials   jsonb NOT NULL DEFAULT '{}',
    -- Postback event name -> platform event name (Google Ads: conversion action id);
    -- an empty name means "do not send this event".
    event_map     jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, platform),
    UNIQUE (workspace_id, id),
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);

-- A delivery goes to a webhook or to a platform connection, through the same queue.
ALTER TABLE deliveries
    ALTER COLUMN webhook_id DROP NOT NULL,
    ADD COLUMN connection_id uuid,
    ADD CONSTRAINT deliveries_one_target CHECK (num_nonnulls(webhook_id, connection_id) = 1),
    ADD CONSTRAINT deliveries_connection_fkey FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE;
CREATE INDEX deliveries_connection_created_idx ON deliveries (connection_id, created_at DESC, id DESC)
    WHERE connection_id IS NOT NULL;
