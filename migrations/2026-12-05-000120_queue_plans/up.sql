-- The statement triggers that follow a delete into other tables join their transition table
-- (a handful of rows for a recorded batch) against tables of any size: plan them with index
-- scans and nested loops only. A plpgsql function keeps its plan for the session, and a plan
-- made while these tables were small (a fresh database, an empty queue) hashed the whole of
-- delivery_queue, delivery_history, delivery_attempts and platform_requests at every batch
-- once they had grown (seen at 195 ms for a 32-row batch on the bench). Every probe here has
-- an index, so the pinned plan is right at any size, and a mass delete (a workspace, a
-- retention pass inside a mixed month) becomes one index probe per row instead of a hash of
-- the table.
ALTER FUNCTION delete_children_of_deleted_deliveries()
    SET enable_seqscan = off SET enable_bitmapscan = off
    SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;
ALTER FUNCTION delete_deliveries_of_deleted_events()
    SET enable_seqscan = off SET enable_bitmapscan = off
    SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;
ALTER FUNCTION delete_keys_of_deleted_events()
    SET enable_seqscan = off SET enable_bitmapscan = off
    SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;
