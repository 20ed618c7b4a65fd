-- A connection whose platform refused its token (revoked, expired, the operator's app
-- credentials refused): "Reconnect needed", its deliveries held until it is saved again.
ALTER TABLE connections
    ADD COLUMN reconnect_reason text,
    ADD COLUMN reconnect_since timestamptz;
