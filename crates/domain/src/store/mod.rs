//! PostgreSQL access shared by every capability: the diesel pool, raw tokio-postgres
//! connections (with TLS), keyset paging, shared rate-limit counters and retention's deletes.

pub mod churn;
pub mod db;
pub mod limits;
pub mod paging;
pub mod partitions;
pub mod pg;
pub mod pooler;
pub mod retention;
