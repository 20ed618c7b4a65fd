DROP TABLE oauth_flows;
