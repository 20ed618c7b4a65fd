-- Request budgets shared by every instance (crates/api/src/shared_limit.rs): one row per bucket
-- (what is counted, e.g. `collect:client:203.0.113.7`) and fixed window. UNLOGGED: counters are
-- not worth WAL, and a PostgreSQL crash only starts the windows over.
CREATE UNLOGGED TABLE rate_limits (
    bucket        text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL
);

-- Retention finds visitors not seen for the plan's retention, per domain.
CREATE INDEX visitors_domain_last_seen_idx ON visitors (domain_id, last_seen_at);
