DROP INDEX visitors_domain_last_seen_idx;
DROP TABLE rate_limits;
