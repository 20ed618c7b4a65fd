DROP INDEX touches_domain_time_idx;
