//! Newtype ids, so a `DomainId` can never be passed where a `KeyId` is meant.

use diesel_derive_newtype::DieselNewType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($name:ident),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, DieselNewType, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        /// A UUID string in the OpenAPI document.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type!(
    UserId,
    WorkspaceId,
    SessionId,
    DomainId,
    KeyId,
    EventId,
    WebhookId,
    DeliveryId,
    VisitorId,
    TouchId,
    ConnectionId,
    TokenId,
    LinkId,
    LinkTargetId,
);

impl DeliveryId {
    /// Time-ordered like event ids: the queue's primary key grows at its right edge.
    pub fn time_ordered() -> Self {
        Self(Uuid::now_v7())
    }
}

impl EventId {
    /// A UUIDv7: events arrive in time order, so their primary-key index grows at its right
    /// edge instead of touching random pages on every insert.
    pub fn time_ordered() -> Self {
        Self(Uuid::now_v7())
    }
}
