//! Response bodies many handlers share (the `{"error"}` envelope, unpaged lists, `{"ok": true}`),
//! as OpenAPI schemas. The document itself is built in `openapi`.

use serde::Serialize;
use utoipa::ToSchema;

/// Every failure: a message that names the field and the problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "name is required")]
    pub error: String,
}

/// A list that is not paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// The answer of the public tracking endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ok {
    #[schema(example = true)]
    pub ok: bool,
}

/// The property names of a type's schema, sorted (tests compare them with what a parser reads).
#[cfg(test)]
pub(crate) fn property_names<T: utoipa::PartialSchema>() -> Vec<String> {
    let schema = serde_json::to_value(T::schema()).unwrap();
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
pub(crate) fn sorted(names: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    out.sort_unstable();
    out
}
