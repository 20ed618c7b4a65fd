-- Back to the single-node keys of 000059 and before.

DROP TRIGGER sessions_routing_key ON sessions;
DROP TRIGGER inbound_keys_routing_key ON inbound_keys;
DROP TRIGGER api_tokens_routing_key ON api_tokens;
DROP TRIGGER invitations_routing_key ON invitations;
DROP TRIGGER oauth_flows_routing_key ON oauth_flows;
DROP TRIGGER links_routing_key ON links;
DROP TRIGGER domains_routing_key ON domains;
DROP FUNCTION routing_keys_keep();
DROP FUNCTION routing_key(text, text);
DROP TABLE routing_keys;

ALTER TABLE oauth_flows DROP CONSTRAINT oauth_flows_domain_id_fkey;
ALTER TABLE event_rollups DROP CONSTRAINT event_rollups_workspace_id_domain_id_fkey;
ALTER TABLE inbound_keys DROP CONSTRAINT inbound_keys_workspace_id_domain_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_workspace_id_domain_id_fkey;
ALTER TABLE webhooks DROP CONSTRAINT webhooks_workspace_id_domain_id_fkey;
ALTER TABLE visitors DROP CONSTRAINT visitors_workspace_id_domain_id_fkey;
ALTER TABLE connections DROP CONSTRAINT connections_workspace_id_domain_id_fkey;
ALTER TABLE event_totals DROP CONSTRAINT event_totals_workspace_id_domain_id_fkey;
ALTER TABLE links DROP CONSTRAINT links_workspace_id_domain_id_fkey;
ALTER TABLE webhook_recoveries DROP CONSTRAINT webhook_recoveries_workspace_id_webhook_id_fkey;
ALTER TABLE webhook_slots DROP CONSTRAINT webhook_slots_webhook_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_workspace_id_webhook_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_connection_fkey;
ALTER TABLE visitor_emails DROP CONSTRAINT visitor_emails_visitor_id_fkey;
ALTER TABLE touches DROP CONSTRAINT touches_visitor_id_fkey;
ALTER TABLE link_targets DROP CONSTRAINT link_targets_link_id_fkey;

DROP INDEX sessions_token_hash_idx;
ALTER TABLE sessions ADD CONSTRAINT sessions_token_hash_key UNIQUE (token_hash);
DROP INDEX inbound_keys_key_hash_idx;
ALTER TABLE inbound_keys ADD CONSTRAINT inbound_keys_key_hash_key UNIQUE (key_hash);
DROP INDEX api_tokens_token_hash_idx;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash);
DROP INDEX invitations_token_hash_idx;
ALTER TABLE invitations ADD CONSTRAINT invitations_token_hash_key UNIQUE (token_hash);
DROP INDEX links_slug_idx;
ALTER TABLE links ADD CONSTRAINT links_slug_key UNIQUE (slug);
DROP INDEX domains_site_id_idx;
ALTER TABLE domains ADD CONSTRAINT domains_site_id_key UNIQUE (site_id);
DROP INDEX oauth_flows_state_sha256_idx;
ALTER TABLE oauth_flows ADD CONSTRAINT oauth_flows_state_sha256_key UNIQUE (state_sha256);

ALTER TABLE visitors DROP CONSTRAINT visitors_domain_id_browser_id_key,
    ADD CONSTRAINT visitors_domain_id_browser_id_key UNIQUE (domain_id, browser_id);
ALTER TABLE connections DROP CONSTRAINT connections_domain_id_platform_key,
    ADD CONSTRAINT connections_domain_id_platform_key UNIQUE (domain_id, platform);
DROP INDEX events_order_idempotency_idx;
CREATE UNIQUE INDEX events_order_idempotency_idx ON events (domain_id, order_id, event_name)
    WHERE order_id IS NOT NULL;
DROP INDEX events_key_idempotency_idx;
CREATE UNIQUE INDEX events_key_idempotency_idx ON events (domain_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE domains DROP CONSTRAINT domains_pkey, ADD CONSTRAINT domains_pkey PRIMARY KEY (id),
    ADD CONSTRAINT domains_workspace_id_id_key UNIQUE (workspace_id, id);
ALTER TABLE webhooks DROP CONSTRAINT webhooks_pkey, ADD CONSTRAINT webhooks_pkey PRIMARY KEY (id),
    ADD CONSTRAINT webhooks_workspace_id_id_key UNIQUE (workspace_id, id);
ALTER TABLE connections DROP CONSTRAINT connections_pkey,
    ADD CONSTRAINT connections_pkey PRIMARY KEY (id),
    ADD CONSTRAINT connections_workspace_id_id_key UNIQUE (workspace_id, id);
ALTER TABLE links DROP CONSTRAINT links_pkey, ADD CONSTRAINT links_pkey PRIMARY KEY (id),
    ADD CONSTRAINT links_workspace_id_id_key UNIQUE (workspace_id, id);
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey, ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);
ALTER TABLE inbound_keys DROP CONSTRAINT inbound_keys_pkey, ADD CONSTRAINT inbound_keys_pkey PRIMARY KEY (id);
ALTER TABLE events DROP CONSTRAINT events_pkey, ADD CONSTRAINT events_pkey PRIMARY KEY (id);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey, ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_pkey,
    ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (id);
ALTER TABLE visitors DROP CONSTRAINT visitors_pkey, ADD CONSTRAINT visitors_pkey PRIMARY KEY (id);
ALTER TABLE touches DROP CONSTRAINT touches_pkey, ADD CONSTRAINT touches_pkey PRIMARY KEY (id);
ALTER TABLE visitor_emails DROP CONSTRAINT visitor_emails_pkey,
    ADD CONSTRAINT visitor_emails_pkey PRIMARY KEY (domain_id, email_sha256, visitor_id);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_pkey, ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);
ALTER TABLE invitations DROP CONSTRAINT invitations_pkey, ADD CONSTRAINT invitations_pkey PRIMARY KEY (id);
ALTER TABLE webhook_recoveries DROP CONSTRAINT webhook_recoveries_pkey,
    ADD CONSTRAINT webhook_recoveries_pkey PRIMARY KEY (id);
ALTER TABLE oauth_flows DROP CONSTRAINT oauth_flows_pkey, ADD CONSTRAINT oauth_flows_pkey PRIMARY KEY (id);
ALTER TABLE link_targets DROP CONSTRAINT link_targets_pkey, ADD CONSTRAINT link_targets_pkey PRIMARY KEY (id);
ALTER TABLE webhook_slots DROP CONSTRAINT webhook_slots_pkey,
    ADD CONSTRAINT webhook_slots_pkey PRIMARY KEY (delivery_id, attempt);

ALTER TABLE link_targets DROP COLUMN workspace_id;
ALTER TABLE webhook_slots DROP COLUMN workspace_id;

ALTER TABLE oauth_flows ADD CONSTRAINT oauth_flows_domain_id_fkey
    FOREIGN KEY (domain_id) REFERENCES domains (id) ON DELETE CASCADE;
ALTER TABLE event_rollups ADD CONSTRAINT event_rollups_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE inbound_keys ADD CONSTRAINT inbound_keys_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE events ADD CONSTRAINT events_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE visitors ADD CONSTRAINT visitors_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE connections ADD CONSTRAINT connections_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE event_totals ADD CONSTRAINT event_totals_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE links ADD CONSTRAINT links_workspace_id_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE webhook_recoveries ADD CONSTRAINT webhook_recoveries_workspace_id_webhook_id_fkey
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE webhook_slots ADD CONSTRAINT webhook_slots_webhook_id_fkey
    FOREIGN KEY (webhook_id) REFERENCES webhooks (id) ON DELETE CASCADE;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_workspace_id_webhook_id_fkey
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_connection_fkey
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE visitor_emails ADD CONSTRAINT visitor_emails_visitor_id_fkey
    FOREIGN KEY (visitor_id) REFERENCES visitors (id) ON DELETE CASCADE;
ALTER TABLE touches ADD CONSTRAINT touches_visitor_id_fkey
    FOREIGN KEY (visitor_id) REFERENCES visitors (id) ON DELETE CASCADE;
ALTER TABLE link_targets ADD CONSTRAINT link_targets_link_id_fkey
    FOREIGN KEY (link_id) REFERENCES links (id) ON DELETE CASCADE;
DELETE FROM audit_log a WHERE a.workspace_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = a.workspace_id);
ALTER TABLE audit_log ADD CONSTRAINT audit_log_workspace_id_fkey
    FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE;

COMMENT ON TABLE mail_outbox IS 'citus: reference. Mail queued in the transaction that caused it, sent by the mail worker.';
COMMENT ON TABLE plans IS NULL;
COMMENT ON TABLE users IS NULL;
COMMENT ON TABLE workspaces IS NULL;
COMMENT ON TABLE memberships IS NULL;
COMMENT ON TABLE sessions IS NULL;
COMMENT ON TABLE domains IS NULL;
COMMENT ON TABLE inbound_keys IS NULL;
COMMENT ON TABLE events IS NULL;
COMMENT ON TABLE usage_counters IS NULL;
COMMENT ON TABLE webhooks IS NULL;
COMMENT ON TABLE webhook_slots IS NULL;
COMMENT ON TABLE webhook_recoveries IS NULL;
COMMENT ON TABLE deliveries IS NULL;
COMMENT ON TABLE delivery_attempts IS NULL;
COMMENT ON TABLE visitors IS NULL;
COMMENT ON TABLE touches IS NULL;
COMMENT ON TABLE visitor_emails IS NULL;
COMMENT ON TABLE connections IS NULL;
COMMENT ON TABLE api_tokens IS NULL;
COMMENT ON TABLE audit_log IS NULL;
COMMENT ON TABLE invitations IS NULL;
COMMENT ON TABLE links IS NULL;
COMMENT ON TABLE link_targets IS NULL;
COMMENT ON TABLE rate_limits IS NULL;
