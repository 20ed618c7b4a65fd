DROP TABLE usage_counters;
CREATE INDEX events_workspace_received_idx ON events (workspace_id, received_at);
DROP INDEX events_domain_email_idx;
DROP INDEX events_key_idempotency_idx;
DROP INDEX events_order_idempotency_idx;
ALTER TABLE events
    DROP COLUMN email_sha256, DROP COLUMN value, DROP COLUMN currency, DROP COLUMN order_id,
    DROP COLUMN idempotency_key, DROP COLUMN first_name, DROP COLUMN last_name, DROP COLUMN phone,
    DROP COLUMN ip, DROP COLUMN city, DROP COLUMN country, DROP COLUMN country_code,
    DROP COLUMN state, DROP COLUMN state_code, DROP COLUMN guid, DROP COLUMN product_name,
    DROP COLUMN product_link, DROP COLUMN product_image, DROP COLUMN products;
