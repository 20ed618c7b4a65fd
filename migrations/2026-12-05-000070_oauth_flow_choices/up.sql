-- The values a sign-in offered the user to pick from (account › conversion action, ad account ›
-- pixel, advertiser › pixel), kept with the flow after the callback: the pick must be one of
-- them. Not secret (ids). oauth_flows stays as it is for Citus (distributed by workspace_id).
ALTER TABLE oauth_flows ADD COLUMN choices jsonb;
