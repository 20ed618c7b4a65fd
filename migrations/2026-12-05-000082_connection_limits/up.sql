-- Per-connection rate limits and quotas (issue 19). A platform's throttling answer (HTTP 429,
-- Meta's and TikTok's rate-limit codes) holds the connection until `held_until`; Google Ads
-- basic access allows 15,000 operations a day, counted per hour in `connection_operations` so
-- the last 24 hours can be summed (Google counts a sliding 24 hours). Both are shared by every
-- instance.
CREATE TABLE connection_limits (
    workspace_id uuid NOT NULL,
    connection_id uuid NOT NULL,
    held_until timestamptz NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (workspace_id, connection_id),
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE connection_limits IS 'citus: distributed. A connection held by its platform''s rate limit or quota.';

CREATE TABLE connection_operations (
    workspace_id uuid NOT NULL,
    connection_id uuid NOT NULL,
    hour timestamptz NOT NULL,
    operations integer NOT NULL,
    PRIMARY KEY (workspace_id, connection_id, hour),
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE connection_operations IS 'citus: distributed. Operations sent per connection and hour, for daily quotas.';
