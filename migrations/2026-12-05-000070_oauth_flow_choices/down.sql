ALTER TABLE oauth_flows DROP COLUMN choices;
