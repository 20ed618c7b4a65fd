-- Migration 000060 made workspace_id lead every key of the distributed tables (Citus needs the
-- distribution column in each primary and unique key). Many queries still find a row by its id
-- alone (the delivery recorder and claim by delivery and event id, webhooks and connections by
-- id, attribution by domain and email hash), and a key that starts with workspace_id cannot
-- serve them: PostgreSQL scanned whole tables there (the end-to-end bench's recorder fell
-- behind by 60,000 rows in 10 s). These plain indexes (not unique, which Citus allows on a
-- distributed table) restore the lookups the old keys served.

CREATE INDEX domains_id_lookup ON domains (id);
CREATE INDEX webhooks_id_lookup ON webhooks (id);
CREATE INDEX connections_id_lookup ON connections (id);
CREATE INDEX links_id_lookup ON links (id);
CREATE INDEX sessions_id_lookup ON sessions (id);
CREATE INDEX inbound_keys_id_lookup ON inbound_keys (id);
CREATE INDEX events_id_lookup ON events (id);
CREATE INDEX deliveries_id_lookup ON deliveries (id);
CREATE INDEX delivery_attempts_id_lookup ON delivery_attempts (id);
CREATE INDEX visitors_id_lookup ON visitors (id);
CREATE INDEX touches_id_lookup ON touches (id);
CREATE INDEX api_tokens_id_lookup ON api_tokens (id);
CREATE INDEX invitations_id_lookup ON invitations (id);
CREATE INDEX webhook_recoveries_id_lookup ON webhook_recoveries (id);
CREATE INDEX oauth_flows_id_lookup ON oauth_flows (id);
CREATE INDEX link_targets_id_lookup ON link_targets (id);
CREATE INDEX visitor_emails_lookup ON visitor_emails (domain_id, email_sha256, visitor_id);
CREATE INDEX webhook_slots_lookup ON webhook_slots (delivery_id, attempt);
CREATE INDEX visitors_browser_lookup ON visitors (domain_id, browser_id);
