DROP TABLE events;
DROP TABLE inbound_keys;
DROP TABLE domains;
DROP TABLE sessions;
DROP TABLE memberships;
DROP TABLE workspaces;
DROP TABLE users;
DROP TABLE plans;
