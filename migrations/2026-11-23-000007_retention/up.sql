-- The retention job deletes a domain's touches by age in small batches.
CREATE INDEX touches_domain_time_idx ON touches (domain_id, occurred_at);
