DROP TABLE connection_operations;
DROP TABLE connection_limits;
