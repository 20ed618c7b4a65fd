DELETE FROM deliveries WHERE connection_id IS NOT NULL;
ALTER TABLE deliveries DROP COLUMN connection_id;
ALTER TABLE deliveries ALTER COLUMN webhook_id SET NOT NULL;
DROP TABLE connections;
ALTER TABLE events DROP COLUMN first_touch_id, DROP COLUMN last_touch_id;
ALTER TABLE touches DROP COLUMN user_agent;
