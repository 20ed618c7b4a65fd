-- A schema Citus can distribute with workspace_id as the distribution column (docs/scaling.md).
--
-- Rules kept from here on (tests/e2e/citus.rs reads the catalog and fails on a break):
-- * every table's comment starts `citus: distributed`, `citus: reference` or `citus: local`;
-- * a distributed table's distribution column (workspace_id; `workspaces` itself by id) is
--   NOT NULL and in every primary key, unique constraint and unique index;
-- * a foreign key between distributed tables pairs the two distribution columns; a reference
--   or local table never points at a distributed one.
-- Ids stay unique on their own (random or time-ordered UUIDs), so diesel's `table!` keeps
-- `(id)` as its key while the database's key is `(workspace_id, id)`.

-- 1. Foreign keys that point at keys about to change.
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
-- The platform's audit log stays on the coordinator (citus: local), which cannot point at a
-- distributed table: deleting a workspace deletes its entries in the same transaction instead.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_workspace_id_fkey;

-- 2. Children that lacked the distribution column get it, filled from their parent.
ALTER TABLE link_targets ADD COLUMN workspace_id uuid;
UPDATE link_targets t SET workspace_id = l.workspace_id FROM links l WHERE l.id = t.link_id;
ALTER TABLE link_targets ALTER COLUMN workspace_id SET NOT NULL;

ALTER TABLE webhook_slots ADD COLUMN workspace_id uuid;
UPDATE webhook_slots s SET workspace_id = w.workspace_id FROM webhooks w WHERE w.id = s.webhook_id;
DELETE FROM webhook_slots WHERE workspace_id IS NULL;
ALTER TABLE webhook_slots ALTER COLUMN workspace_id SET NOT NULL;

-- 3. Primary keys lead with workspace_id; the former (workspace_id, id) unique keys become them.
ALTER TABLE domains DROP CONSTRAINT domains_pkey, DROP CONSTRAINT domains_workspace_id_id_key,
    ADD CONSTRAINT domains_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE webhooks DROP CONSTRAINT webhooks_pkey, DROP CONSTRAINT webhooks_workspace_id_id_key,
    ADD CONSTRAINT webhooks_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE connections DROP CONSTRAINT connections_pkey,
    DROP CONSTRAINT connections_workspace_id_id_key,
    ADD CONSTRAINT connections_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE links DROP CONSTRAINT links_pkey, DROP CONSTRAINT links_workspace_id_id_key,
    ADD CONSTRAINT links_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey,
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE inbound_keys DROP CONSTRAINT inbound_keys_pkey,
    ADD CONSTRAINT inbound_keys_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE events DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey,
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_pkey,
    ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE visitors DROP CONSTRAINT visitors_pkey,
    ADD CONSTRAINT visitors_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE touches DROP CONSTRAINT touches_pkey,
    ADD CONSTRAINT touches_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE visitor_emails DROP CONSTRAINT visitor_emails_pkey,
    ADD CONSTRAINT visitor_emails_pkey PRIMARY KEY (workspace_id, domain_id, email_sha256, visitor_id);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_pkey,
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE invitations DROP CONSTRAINT invitations_pkey,
    ADD CONSTRAINT invitations_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE webhook_recoveries DROP CONSTRAINT webhook_recoveries_pkey,
    ADD CONSTRAINT webhook_recoveries_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE oauth_flows DROP CONSTRAINT oauth_flows_pkey,
    ADD CONSTRAINT oauth_flows_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE link_targets DROP CONSTRAINT link_targets_pkey,
    ADD CONSTRAINT link_targets_pkey PRIMARY KEY (workspace_id, id);
ALTER TABLE webhook_slots DROP CONSTRAINT webhook_slots_pkey,
    ADD CONSTRAINT webhook_slots_pkey PRIMARY KEY (workspace_id, delivery_id, attempt);

-- 4. Per-tenant unique keys include workspace_id.
ALTER TABLE visitors DROP CONSTRAINT visitors_domain_id_browser_id_key,
    ADD CONSTRAINT visitors_domain_id_browser_id_key UNIQUE (workspace_id, domain_id, browser_id);
ALTER TABLE connections DROP CONSTRAINT connections_domain_id_platform_key,
    ADD CONSTRAINT connections_domain_id_platform_key UNIQUE (workspace_id, domain_id, platform);
DROP INDEX events_order_idempotency_idx;
CREATE UNIQUE INDEX events_order_idempotency_idx ON events (workspace_id, domain_id, order_id, event_name)
    WHERE order_id IS NOT NULL;
DROP INDEX events_key_idempotency_idx;
CREATE UNIQUE INDEX events_key_idempotency_idx ON events (workspace_id, domain_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- 5. Globally unique secrets and public ids: unique in routing_keys (below), indexed here.
ALTER TABLE sessions DROP CONSTRAINT sessions_token_hash_key;
CREATE INDEX sessions_token_hash_idx ON sessions (token_hash);
ALTER TABLE inbound_keys DROP CONSTRAINT inbound_keys_key_hash_key;
CREATE INDEX inbound_keys_key_hash_idx ON inbound_keys (key_hash);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_token_hash_key;
CREATE INDEX api_tokens_token_hash_idx ON api_tokens (token_hash);
ALTER TABLE invitations DROP CONSTRAINT invitations_token_hash_key;
CREATE INDEX invitations_token_hash_idx ON invitations (token_hash);
ALTER TABLE links DROP CONSTRAINT links_slug_key;
CREATE INDEX links_slug_idx ON links (slug);
ALTER TABLE domains DROP CONSTRAINT domains_site_id_key;
CREATE INDEX domains_site_id_idx ON domains (site_id);
ALTER TABLE oauth_flows DROP CONSTRAINT oauth_flows_state_sha256_key;
CREATE INDEX oauth_flows_state_sha256_idx ON oauth_flows (state_sha256);

-- 6. Foreign keys again, each pairing workspace_id with its parent's distribution column.
ALTER TABLE oauth_flows ADD CONSTRAINT oauth_flows_domain_id_fkey
    FOREIGN KEY (workspace_id, domain_id) REFERENCES domains (workspace_id, id) ON DELETE CASCADE;
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
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_workspace_id_webhook_id_fkey
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_connection_fkey
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE visitor_emails ADD CONSTRAINT visitor_emails_visitor_id_fkey
    FOREIGN KEY (workspace_id, visitor_id) REFERENCES visitors (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE touches ADD CONSTRAINT touches_visitor_id_fkey
    FOREIGN KEY (workspace_id, visitor_id) REFERENCES visitors (workspace_id, id) ON DELETE CASCADE;
ALTER TABLE link_targets ADD CONSTRAINT link_targets_link_id_fkey
    FOREIGN KEY (workspace_id, link_id) REFERENCES links (workspace_id, id) ON DELETE CASCADE;

-- 7. Which workspace a global secret or public id belongs to: a small reference table, kept in
-- step by triggers in the writing transaction, that also keeps each one unique across tenants.
-- `key` is the hash (bytea columns) or the UTF-8 text (slug, site id).
CREATE TABLE routing_keys (
    kind          text NOT NULL,
    key           bytea NOT NULL,
    workspace_id  uuid NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Arguments: kind, column, the unique constraint a clash reports (the name the column's own
-- unique key had, so callers matching on it keep working), and 'bytea' or 'text'.
CREATE FUNCTION routing_keys_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_kind text := TG_ARGV[0];
    col text := TG_ARGV[1];
    clash text := TG_ARGV[2];
    old_value text;
    new_value text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_value := to_jsonb(OLD) ->> col;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_value := to_jsonb(NEW) ->> col;
    END IF;
    IF TG_OP = 'UPDATE' AND old_value IS NOT DISTINCT FROM new_value THEN
        RETURN NULL;
    END IF;
    IF old_value IS NOT NULL THEN
        DELETE FROM routing_keys r
        WHERE r.kind = v_kind
          AND r.key = routing_key(old_value, TG_ARGV[3])
          AND r.workspace_id = OLD.workspace_id;
    END IF;
    IF new_value IS NOT NULL THEN
        INSERT INTO routing_keys (kind, key, workspace_id)
        VALUES (v_kind, routing_key(new_value, TG_ARGV[3]), NEW.workspace_id)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'duplicate key value violates unique constraint "%"', clash
                USING ERRCODE = 'unique_violation', CONSTRAINT = clash,
                      TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA,
                      DETAIL = format('%s is already taken', col);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- A column's value (as to_jsonb renders it) as routing_keys.key.
CREATE FUNCTION routing_key(value text, type text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN type = 'bytea' THEN decode(substr(value, 3), 'hex')
                ELSE convert_to(value, 'UTF8') END
$$;

CREATE TRIGGER sessions_routing_key AFTER INSERT OR DELETE OR UPDATE OF token_hash ON sessions
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('session', 'token_hash', 'sessions_token_hash_key', 'bytea');
CREATE TRIGGER inbound_keys_routing_key AFTER INSERT OR DELETE OR UPDATE OF key_hash ON inbound_keys
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('inbound_key', 'key_hash', 'inbound_keys_key_hash_key', 'bytea');
CREATE TRIGGER api_tokens_routing_key AFTER INSERT OR DELETE OR UPDATE OF token_hash ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('api_token', 'token_hash', 'api_tokens_token_hash_key', 'bytea');
CREATE TRIGGER invitations_routing_key AFTER INSERT OR DELETE OR UPDATE OF token_hash ON invitations
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('invitation', 'token_hash', 'invitations_token_hash_key', 'bytea');
CREATE TRIGGER oauth_flows_routing_key AFTER INSERT OR DELETE OR UPDATE OF state_sha256 ON oauth_flows
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('oauth_state', 'state_sha256', 'oauth_flows_state_sha256_key', 'bytea');
CREATE TRIGGER links_routing_key AFTER INSERT OR DELETE OR UPDATE OF slug ON links
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('link_slug', 'slug', 'links_slug_key', 'text');
CREATE TRIGGER domains_routing_key AFTER INSERT OR DELETE OR UPDATE OF site_id ON domains
    FOR EACH ROW EXECUTE FUNCTION routing_keys_keep('site_id', 'site_id', 'domains_site_id_key', 'text');

INSERT INTO routing_keys (kind, key, workspace_id)
SELECT 'session', token_hash, workspace_id FROM sessions
UNION ALL SELECT 'inbound_key', key_hash, workspace_id FROM inbound_keys
UNION ALL SELECT 'api_token', token_hash, workspace_id FROM api_tokens
UNION ALL SELECT 'invitation', token_hash, workspace_id FROM invitations WHERE token_hash IS NOT NULL
UNION ALL SELECT 'oauth_state', state_sha256, workspace_id FROM oauth_flows
UNION ALL SELECT 'link_slug', convert_to(slug, 'UTF8'), workspace_id FROM links
UNION ALL SELECT 'site_id', convert_to(site_id, 'UTF8'), workspace_id FROM domains;

-- 8. What each table would be under Citus.
COMMENT ON TABLE plans IS 'citus: reference. Plan tiers and limits: small, global, joined from every workspace.';
COMMENT ON TABLE users IS 'citus: reference. People sign in once and belong to several workspaces; looked up by email on every node.';
COMMENT ON TABLE workspaces IS 'citus: distributed by id. The tenant itself, colocated with every table distributed by workspace_id.';
COMMENT ON TABLE memberships IS 'citus: distributed. Who belongs to a workspace; a user''s list of workspaces fans out to all shards (a sign-in, not a hot path).';
COMMENT ON TABLE sessions IS 'citus: distributed. Dashboard sessions, one per user and current workspace; found by token hash through routing_keys.';
COMMENT ON TABLE domains IS 'citus: distributed. A workspace''s sites; found by site id through routing_keys.';
COMMENT ON TABLE inbound_keys IS 'citus: distributed. Inbound API keys of a domain; found by key hash through routing_keys.';
COMMENT ON TABLE events IS 'citus: distributed. Stored inbound events: the largest table, always read per workspace.';
COMMENT ON TABLE usage_counters IS 'citus: distributed. Events counted per workspace and month (sharded rows against hot spots).';
COMMENT ON TABLE webhooks IS 'citus: distributed. A workspace''s webhook endpoints and their breaker state.';
COMMENT ON TABLE webhook_slots IS 'citus: distributed. Attempts in flight per webhook (its max_in_flight cap), colocated with the webhook.';
COMMENT ON TABLE webhook_recoveries IS 'citus: distributed. Replays of a webhook''s failed deliveries.';
COMMENT ON TABLE deliveries IS 'citus: distributed. The delivery queue and its outcomes, per workspace like the events they carry.';
COMMENT ON TABLE delivery_attempts IS 'citus: distributed. One row per delivery attempt (history).';
COMMENT ON TABLE visitors IS 'citus: distributed. Browsers seen by the tracking tag, per domain.';
COMMENT ON TABLE touches IS 'citus: distributed. Landings and clicks used for attribution.';
COMMENT ON TABLE visitor_emails IS 'citus: distributed. Which visitor an email hash was seen with (attribution by email).';
COMMENT ON TABLE connections IS 'citus: distributed. Ad platform connections of a domain.';
COMMENT ON TABLE api_tokens IS 'citus: distributed. /v1 bearer tokens; found by token hash through routing_keys.';
COMMENT ON TABLE audit_log IS 'citus: local. The platform''s audit log on the coordinator: human-rate writes, entries without a workspace (account changes, deleted workspaces), read across tenants by the platform admin.';
COMMENT ON TABLE invitations IS 'citus: distributed. Pending team invitations; accepted by token hash through routing_keys.';
COMMENT ON TABLE links IS 'citus: distributed. Tracking links; redirected by slug through routing_keys.';
COMMENT ON TABLE link_targets IS 'citus: distributed. A link''s weighted destinations, colocated with the link.';
COMMENT ON TABLE mail_outbox IS 'citus: local. The platform''s mail queue on the coordinator: claimed with FOR UPDATE SKIP LOCKED, which a replicated reference table does not offer.';
COMMENT ON TABLE rate_limits IS 'citus: local. Shared rate-limit counters (unlogged, hot): one small table on the coordinator, never joined with tenant rows.';
COMMENT ON TABLE routing_keys IS 'citus: reference. Global secret or public id (hash, slug, site id) to its workspace: the first step of a look-up that does not know the tenant yet; keeps each one unique across tenants.';
