//! States stored as text, as enums: every match on them is exhaustive, so a new state fails to
//! compile until each place handles it. The text forms are the ones the tables' CHECK
//! constraints allow.

use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;

/// A text-backed state enum with diesel and serde mappings.
macro_rules! text_state {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$( $name::$variant ),+];

            /// The stored text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// A string with the stored values, in the OpenAPI document.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([$( $text ),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {}: {text:?}", stringify!($name)))
                })
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                let text = std::str::from_utf8(value.as_bytes())?;
                Self::parse(text).ok_or_else(|| {
                    format!("unknown {} in the database: {text:?}", stringify!($name)).into()
                })
            }
        }
    };
}

text_state! {
    /// Where a delivery stands (`deliveries.status`; pending and held rows are in
    /// `delivery_queue`, succeeded and failed ones in `delivery_history`).
    DeliveryStatus {
        /// Waiting for its next attempt (or leased to a worker until `leased_until`).
        Pending => "pending",
        /// Its webhook is paused; sent when it resumes.
        Held => "held",
        Succeeded => "succeeded",
        /// No attempt of its round is left.
        Failed => "failed",
    }
}

text_state! {
    /// Whether a webhook sends (`webhooks.status`).
    WebhookStatus {
        Active => "active",
        Paused => "paused",
    }
}

/// What one attempt came to, and so the delivery's next status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed with no attempt of the round left.
    Failed,
    /// Failed; another attempt is due at the result's `retry_at`.
    Retry,
}

impl AttemptOutcome {
    pub const fn status(self) -> DeliveryStatus {
        match self {
            AttemptOutcome::Succeeded => DeliveryStatus::Succeeded,
            AttemptOutcome::Failed => DeliveryStatus::Failed,
            AttemptOutcome::Retry => DeliveryStatus::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(*s));
        }
        for s in WebhookStatus::ALL {
            assert_eq!(WebhookStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(DeliveryStatus::parse("leased"), None);
        assert_eq!(
            serde_json::to_string(&DeliveryStatus::Succeeded).unwrap(),
            "\"succeeded\""
        );
    }
}
