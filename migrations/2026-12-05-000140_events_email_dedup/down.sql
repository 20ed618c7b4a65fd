DROP INDEX events_domain_email_idx;
CREATE INDEX events_domain_email_idx ON events (domain_id, email, received_at DESC);
