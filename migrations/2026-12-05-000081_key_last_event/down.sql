DROP INDEX events_key_received_idx;
