DROP INDEX touches_visitor_time_idx;
CREATE INDEX touches_visitor_time_idx ON touches (visitor_id, occurred_at);
