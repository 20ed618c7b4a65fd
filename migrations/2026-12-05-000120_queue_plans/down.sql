ALTER FUNCTION delete_children_of_deleted_deliveries() RESET ALL;
ALTER FUNCTION delete_deliveries_of_deleted_events() RESET ALL;
ALTER FUNCTION delete_keys_of_deleted_events() RESET ALL;
