//! Request budgets shared by every instance: hits per bucket and fixed window, counted in
//! PostgreSQL (`rate_limits`). Instances add what they counted since their last flush and learn
//! the total of every instance in the same statement.

use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;

/// One bucket's hits to add in the window starting at `window_start`.
#[derive(Debug, Clone)]
pub struct Hits {
    pub bucket: String,
    pub window_start: chrono::DateTime<chrono::Utc>,
    pub hits: i32,
}

#[derive(diesel::QueryableByName, Debug)]
pub struct Total {
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Timestamptz)]
    pub window_start: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = Integer)]
    pub hits: i32,
}

/// Adds the hits (a row per bucket, each bucket once) and returns every bucket's total in its
/// window across all instances. A bucket whose stored window is older starts over.
pub async fn add(conn: &mut AsyncPgConnection, hits: &[Hits]) -> DomainResult<Vec<Total>> {
    if hits.is_empty() {
        return Ok(Vec::new());
    }
    let buckets: Vec<&str> = hits.iter().map(|h| h.bucket.as_str()).collect();
    let starts: Vec<chrono::DateTime<chrono::Utc>> = hits.iter().map(|h| h.window_start).collect();
    let counts: Vec<i32> = hits.iter().map(|h| h.hits).collect();
    Ok(diesel::sql_query(
        r#"
        INSERT INTO rate_limits AS r (bucket, window_start, hits)
        SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int4[]) ORDER BY 1
        ON CONFLICT (bucket) DO UPDATE SET
            hits = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.hits + EXCLUDED.hits
                        WHEN r.window_start > EXCLUDED.window_start THEN r.hits
                        ELSE EXCLUDED.hits END,
            window_start = greatest(r.window_start, EXCLUDED.window_start)
        RETURNING bucket, window_start, hits
        "#,
    )
    .bind::<Array<Text>, _>(buckets)
    .bind::<Array<Timestamptz>, _>(starts)
    .bind::<Array<Integer>, _>(counts)
    .load(conn)
    .await?)
}

/// Forgets windows that ended before `before` (a small table stays small).
pub async fn forget_older_than(
    conn: &mut AsyncPgConnection,
    before: chrono::DateTime<chrono::Utc>,
    limit: i64,
) -> DomainResult<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM rate_limits WHERE bucket IN \
         (SELECT bucket FROM rate_limits WHERE window_start < $1 LIMIT $2)",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await?)
}
