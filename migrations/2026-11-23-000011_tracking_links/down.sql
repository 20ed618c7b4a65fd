DROP INDEX events_last_touch_idx;
DROP INDEX events_first_touch_idx;
DROP INDEX touches_link_time_idx;
DELETE FROM touches WHERE visitor_id IS NULL;
ALTER TABLE touches
    DROP COLUMN target_id,
    DROP COLUMN link_id,
    ALTER COLUMN visitor_id SET NOT NULL;
DROP TABLE link_targets;
DROP TABLE links;
