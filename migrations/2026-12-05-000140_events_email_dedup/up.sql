-- The events' email index without the time column (issue 23). The index serves the look-ups of
-- one customer's events on a domain: the dashboard's and the API's email filter, and the count
-- of a customer's earlier events that rules may ask for. With received_at in its key every
-- event was a new key, inserted at its customer's place in the index, so inserts spread over the
-- whole index: after each checkpoint nearly every insert dirtied a page not yet written since,
-- and PostgreSQL wrote that page whole to the WAL (94 % of the full-page images of an ingest
-- measured in November came from this index). As the month's partition grew past what a
-- checkpoint interval touches, WAL per event rose by about half and the soak's rate fell.
--
-- Keyed on (domain_id, email) alone, a customer's events are equal keys: B-tree deduplication
-- keeps them as one key with a list of row pointers, six bytes an event instead of a whole
-- entry, so the index is several times smaller and an insert touches few distinct pages.
-- A customer's events are then sorted by time after the look-up, which costs little for one
-- customer's events.
DROP INDEX events_domain_email_idx;
CREATE INDEX events_domain_email_idx ON events (domain_id, email);
