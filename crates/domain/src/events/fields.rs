//! An event's documented fields, defined once. The same struct is what the inbound parser
//! produces, what the diesel models embed (`#[diesel(embed)]`), what the management API and the
//! webhook body show (`#[serde(flatten)]`), and, through [`COLUMNS`] and [`FieldArrays`], the
//! column list and parameter arrays of the raw-SQL fast insert. Adding a field means: its rule in
//! the parser (`crate::ingest::parse`), a line here, a migration, and their tests.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::schema::events;

/// One product of an event (`products[]`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub name: String,
    #[schema(min_length = 1, max_length = 2048, pattern = "\\S")]
    pub link: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub price: Option<f64>,
    #[schema(minimum = 0)]
    pub quantity: f64,
}

/// Timestamps as the webhook body and the API have always written them: RFC 3339, UTC,
/// milliseconds.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn serialize_millis<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

/// Defines [`EventFields`], [`COLUMNS`] and [`FieldArrays`] from one list, so the struct, the
/// fast path's column list and its parameter arrays cannot drift apart.
macro_rules! event_fields {
    ($( $(#[$attr:meta])* $field:ident : $ty:ty => $pg:literal ),* $(,)?) => {
        /// The documented fields of a conversion, validated and normalised (seeds 000 and 004).
        #[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, Serialize, utoipa::ToSchema)]
        #[diesel(table_name = events)]
        #[serde(rename_all = "camelCase")]
        pub struct EventFields {
            $( $(#[$attr])* pub $field: $ty, )*
        }

        /// The fields' columns in [`EventFields`] order, with their PostgreSQL array types.
        pub const COLUMNS: &[(&str, &str)] = &[ $( (stringify!($field), $pg) ),* ];

        /// One array per field over a batch of events, for a multi-row insert with `unnest`;
        /// [`FieldArrays::params`] gives them in [`COLUMNS`] order.
        #[derive(Default)]
        pub struct FieldArrays<'a> {
            $( $field: Vec<&'a $ty>, )*
        }

        impl<'a> FieldArrays<'a> {
            pub fn push(&mut self, f: &'a EventFields) {
                $( self.$field.push(&f.$field); )*
            }

            pub fn params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
                vec![ $( &self.$field ),* ]
            }
        }
    };
}

event_fields! {
    #[serde(rename = "event")]
    event_name: String => "text",
    email: String => "text",
    #[serde(skip)]
    email_sha256: Vec<u8> => "bytea",
    value: Option<f64> => "float8",
    currency: String => "text",
    order_id: Option<String> => "text",
    first_name: Option<String> => "text",
    last_name: Option<String> => "text",
    phone: Option<String> => "text",
    #[serde(rename = "timestamp", serialize_with = "serialize_millis")]
    #[schema(value_type = String, format = DateTime)]
    occurred_at: DateTime<Utc> => "timestamptz",
    ip: Option<String> => "text",
    city: Option<String> => "text",
    country: Option<String> => "text",
    country_code: Option<String> => "text",
    state: Option<String> => "text",
    state_code: Option<String> => "text",
    guid: Option<String> => "text",
    product_name: Option<String> => "text",
    product_link: Option<String> => "text",
    product_image: Option<String> => "text",
    /// `products[]` as stored (jsonb); [`EventFields::products`] reads them typed.
    #[schema(value_type = Vec<Product>)]
    products: Value => "jsonb",
}

impl EventFields {
    /// The products, typed (an unreadable stored value reads as none).
    pub fn products(&self) -> Vec<Product> {
        serde_json::from_value(self.products.clone()).unwrap_or_default()
    }
}

/// What the inbound parser makes of a body: the documented fields, and the rest as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub fields: EventFields,
    /// The body's fields that have no column of their own (unknown fields), as received; the
    /// documented fields live in the columns, so the body is not stored twice.
    pub payload: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path's column list names real columns of `events`, in the struct's order, as
    /// diesel's own selection of the struct does.
    #[test]
    fn columns_are_the_structs_columns() {
        use diesel::query_builder::QueryFragment;
        let mut sql = String::new();
        let select = EventFields::as_select();
        let mut qb = diesel::pg::PgQueryBuilder::default();
        select.to_sql(&mut qb, &diesel::pg::Pg).unwrap();
        sql.push_str(&diesel::query_builder::QueryBuilder::finish(qb));
        let diesel_cols: Vec<String> = sql
            .split(", ")
            .map(|c| c.rsplit('.').next().unwrap().trim_matches('"').to_owned())
            .collect();
        let ours: Vec<&str> = COLUMNS.iter().map(|(c, _)| *c).collect();
        assert_eq!(diesel_cols, ours);
    }
}
