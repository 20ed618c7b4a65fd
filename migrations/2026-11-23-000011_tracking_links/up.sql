-- Tracking links (SPEC "Tracking links and click quality"): per domain, a name, a slug and one or
-- more weighted targets. `GET /__cc/go/{slug}` names no domain, so slugs are unique across the
-- installation.
CREATE TABLE links (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    domain_id     uuid NOT NULL,
    name          text NOT NULL,
    slug          text NOT NULL CHECK (slug ~ '^[a-z0-9-]{1,64}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT links_slug_key UNIQUE (slug),
    UNIQUE (workspace_id, id),
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX links_domain_created_idx ON links (domain_id, created_at DESC, id DESC);

CREATE TABLE link_targets (
    id        uuid PRIMARY KEY,
    link_id   uuid NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    url       text NOT NULL,
    weight    integer NOT NULL CHECK (weight > 0),
    -- The order the targets were listed in.
    position  integer NOT NULL
);
CREATE INDEX link_targets_link_idx ON link_targets (link_id, position);

-- A click is a touch before any visitor is known: `t.js` on the landing page joins it to the
-- visitor through `pb_click`. The link and target ids are kept without foreign keys: a deleted
-- link's clicks stay attributed to it, as events keep touch ids that retention purged.
ALTER TABLE touches
    ALTER COLUMN visitor_id DROP NOT NULL,
    ADD COLUMN link_id uuid,
    ADD COLUMN target_id uuid;
CREATE INDEX touches_link_time_idx ON touches (link_id, occurred_at) WHERE link_id IS NOT NULL;

-- Per-link conversions: events attributed to a link's clicks, by first and by last touch.
CREATE INDEX events_first_touch_idx ON events (first_touch_id) WHERE first_touch_id IS NOT NULL;
CREATE INDEX events_last_touch_idx ON events (last_touch_id) WHERE last_touch_id IS NOT NULL;
