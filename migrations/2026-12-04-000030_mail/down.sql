DELETE FROM workspaces WHERE status = 'deleting';
ALTER TABLE workspaces DROP CONSTRAINT workspaces_status_check;
ALTER TABLE workspaces ADD CONSTRAINT workspaces_status_check
    CHECK (status IN ('active', 'suspended'));
DROP TABLE notifications_sent;
ALTER TABLE invitations DROP COLUMN token_hash, DROP COLUMN expires_at;
ALTER TABLE users DROP COLUMN email_verified_at, DROP COLUMN notifications_enabled;
DROP TABLE account_tokens;
DROP TABLE mail_outbox;
