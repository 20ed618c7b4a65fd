//! Webhook conditions (seed 002): rows of field, operator and value, combined with AND; for the
//! fields that carry the 1st/Last toggle, which click they read. Validated when a webhook is
//! saved, evaluated once when an event arrives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};

/// What a field holds, which decides the operators that fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
}

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The event itself.
    Event,
    /// A touch, first or last click as the condition says (seed 002's toggle).
    Touch,
    /// Always the last touch (no toggle in seed 002).
    LastTouch,
}

/// A condition field. Every match on it is exhaustive: a new field fails to compile until its
/// description ([`FieldName::field`]) and its value (`fact`) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldName {
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmContent,
    UtmTerm,
    Country,
    DeviceType,
    Referrer,
    IsFromGoogleAds,
    IsFromFacebookAds,
    IsFromTikTokAds,
    Revenue,
    Currency,
    Event,
    ConversionCount,
    EventCount,
    QualityScore,
    LinkId,
    TargetId,
    EventNumber,
}

impl FieldName {
    /// Every field, in the order the dashboard offers them.
    pub const ALL: [FieldName; 20] = [
        FieldName::UtmSource,
        FieldName::UtmMedium,
        FieldName::UtmCampaign,
        FieldName::UtmContent,
        FieldName::UtmTerm,
        FieldName::Country,
        FieldName::DeviceType,
        FieldName::Referrer,
        FieldName::IsFromGoogleAds,
        FieldName::IsFromFacebookAds,
        FieldName::IsFromTikTokAds,
        FieldName::Revenue,
        FieldName::Currency,
        FieldName::Event,
        FieldName::ConversionCount,
        FieldName::EventCount,
        FieldName::QualityScore,
        FieldName::LinkId,
        FieldName::TargetId,
        FieldName::EventNumber,
    ];

    pub const fn field(self) -> Field {
        match self {
            FieldName::UtmSource => field(
                FieldName::UtmSource,
                "utm_source",
                "UTM source",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::UtmMedium => field(
                FieldName::UtmMedium,
                "utm_medium",
                "UTM medium",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::UtmCampaign => field(
                FieldName::UtmCampaign,
                "utm_campaign",
                "UTM campaign",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::UtmContent => field(
                FieldName::UtmContent,
                "utm_content",
                "UTM content",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::UtmTerm => field(
                FieldName::UtmTerm,
                "utm_term",
                "UTM term",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::Country => field(
                FieldName::Country,
                "country",
                "Country",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::DeviceType => field(
                FieldName::DeviceType,
                "deviceType",
                "Device type",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::Referrer => field(
                FieldName::Referrer,
                "referrer",
                "Referrer",
                Kind::Text,
                Source::Touch,
            ),
            FieldName::IsFromGoogleAds => field(
                FieldName::IsFromGoogleAds,
                "isFromGoogleAds",
                "Is from Google Ads",
                Kind::Bool,
                Source::LastTouch,
            ),
            FieldName::IsFromFacebookAds => field(
                FieldName::IsFromFacebookAds,
                "isFromFacebookAds",
                "Is from Facebook Ads",
                Kind::Bool,
                Source::LastTouch,
            ),
            FieldName::IsFromTikTokAds => field(
                FieldName::IsFromTikTokAds,
                "isFromTikTokAds",
                "Is from TikTok Ads",
                Kind::Bool,
                Source::LastTouch,
            ),
            FieldName::Revenue => field(
                FieldName::Revenue,
                "revenue",
                "Revenue",
                Kind::Number,
                Source::Event,
            ),
            FieldName::Currency => field(
                FieldName::Currency,
                "currency",
                "Currency",
                Kind::Text,
                Source::Event,
            ),
            FieldName::Event => field(
                FieldName::Event,
                "event",
                "Event name",
                Kind::Text,
                Source::Event,
            ),
            FieldName::ConversionCount => field(
                FieldName::ConversionCount,
                "conversionCount",
                "Conversion count",
                Kind::Number,
                Source::Event,
            ),
            FieldName::EventCount => field(
                FieldName::EventCount,
                "eventCount",
                "Event count",
                Kind::Number,
                Source::Event,
            ),
            FieldName::QualityScore => field(
                FieldName::QualityScore,
                "qualityScore",
                "Quality score",
                Kind::Number,
                Source::LastTouch,
            ),
            FieldName::LinkId => field(
                FieldName::LinkId,
                "linkId",
                "Link id",
                Kind::Text,
                Source::LastTouch,
            ),
            FieldName::TargetId => field(
                FieldName::TargetId,
                "targetId",
                "Target id",
                Kind::Text,
                Source::LastTouch,
            ),
            FieldName::EventNumber => field(
                FieldName::EventNumber,
                "eventNumber",
                "Event number",
                Kind::Number,
                Source::Event,
            ),
        }
    }

    pub fn parse(name: &str) -> Option<FieldName> {
        FieldName::ALL.into_iter().find(|f| f.field().name == name)
    }
}

pub struct Field {
    pub id: FieldName,
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub source: Source,
}

/// Every condition field of seed 002, in the order the dashboard offers them.
pub const FIELDS: &[Field] = &{
    const N: usize = FieldName::ALL.len();
    let mut all: [Field; N] =
        [const { field(FieldName::Event, "", "", Kind::Text, Source::Event) }; N];
    let mut i = 0;
    while i < N {
        all[i] = FieldName::ALL[i].field();
        i += 1;
    }
    all
};

const fn field(
    id: FieldName,
    name: &'static str,
    label: &'static str,
    kind: Kind,
    source: Source,
) -> Field {
    Field {
        id,
        name,
        label,
        kind,
        source,
    }
}

pub fn find_field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    GreaterThan,
    LessThan,
    IsEmpty,
    IsNotEmpty,
}

pub const OPERATORS: &[(Operator, &str, &str)] = &[
    (Operator::Equals, "equals", "equals"),
    (Operator::NotEquals, "not_equals", "does not equal"),
    (Operator::Contains, "contains", "contains"),
    (Operator::NotContains, "not_contains", "does not contain"),
    (Operator::StartsWith, "starts_with", "starts with"),
    (Operator::EndsWith, "ends_with", "ends with"),
    (Operator::GreaterThan, "greater_than", "greater than"),
    (Operator::LessThan, "less_than", "less than"),
    (Operator::IsEmpty, "is_empty", "is empty"),
    (Operator::IsNotEmpty, "is_not_empty", "is not empty"),
];

impl Operator {
    pub fn parse(raw: &str) -> Option<Self> {
        OPERATORS
            .iter()
            .find(|(_, name, _)| *name == raw)
            .map(|(op, _, _)| *op)
    }

    pub fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(op, _, _)| *op == self)
            .map_or("equals", |(_, name, _)| name)
    }

    pub fn fits(self, kind: Kind) -> bool {
        use Operator::*;
        match kind {
            Kind::Text => !matches!(self, GreaterThan | LessThan),
            Kind::Number => matches!(
                self,
                Equals | NotEquals | GreaterThan | LessThan | IsEmpty | IsNotEmpty
            ),
            Kind::Bool => matches!(self, Equals | NotEquals),
        }
    }

    fn takes_value(self) -> bool {
        !matches!(self, Operator::IsEmpty | Operator::IsNotEmpty)
    }
}

pub fn operators_for(kind: Kind) -> Vec<&'static str> {
    OPERATORS
        .iter()
        .filter(|(op, _, _)| op.fits(kind))
        .map(|(_, name, _)| *name)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TouchChoice {
    First,
    #[default]
    Last,
}

/// A validated condition, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Condition {
    pub field: String,
    pub op: Operator,
    /// Text as a string, numbers as a number, booleans as a boolean; null for is_empty and
    /// is_not_empty.
    #[serde(default)]
    pub value: Value,
    /// Only on touch fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch: Option<TouchChoice>,
}

const MAX_CONDITIONS: usize = 20;
const MAX_VALUE_CHARS: usize = 500;

/// Reads a webhook's stored conditions with the rules they were saved under; `Err` names what
/// can no longer be read (a field or operator that no longer exists, a damaged row). A webhook
/// whose conditions cannot be read fires for nothing: see [`unreadable_reason`].
pub fn stored(raw: &Value) -> Result<Vec<Condition>, String> {
    validate(raw).map_err(|e| e.to_string())
}

/// How the reason of a webhook paused for unreadable conditions starts.
pub const UNREADABLE: &str = "Its conditions could not be read";

/// What the owner is shown on a webhook paused because its conditions could not be read.
pub fn unreadable_reason(why: &str) -> String {
    format!(
        "{UNREADABLE} ({why}), so no event is sent to it: edit the conditions, save, then resume"
    )
}

/// Validates the `conditions` a client sent: each message names the row and the problem.
pub fn validate(raw: &Value) -> DomainResult<Vec<Condition>> {
    let rows = match raw {
        Value::Null => return Ok(Vec::new()),
        Value::Array(rows) => rows,
        _ => return Err(DomainError::invalid("conditions must be a list")),
    };
    if rows.len() > MAX_CONDITIONS {
        return Err(DomainError::invalid(format!(
            "conditions: at most {MAX_CONDITIONS} conditions per webhook"
        )));
    }
    rows.iter()
        .enumerate()
        .map(|(i, row)| validate_one(i, row))
        .collect()
}

fn validate_one(i: usize, row: &Value) -> DomainResult<Condition> {
    let at = |what: &str, problem: String| {
        DomainError::invalid(format!("conditions[{i}].{what}: {problem}"))
    };
    let Value::Object(obj) = row else {
        return Err(DomainError::invalid(format!(
            "conditions[{i}] must be an object with field, op and value"
        )));
    };
    let name = match obj.get("field") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        _ => return Err(at("field", "is required".into())),
    };
    let field = find_field(name).ok_or_else(|| {
        at(
            "field",
            format!(
                "unknown field \"{name}\"; use one of {}",
                FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let op_raw = match obj.get("op").or_else(|| obj.get("operator")) {
        Some(Value::String(s)) => s.trim(),
        _ => return Err(at("op", "is required".into())),
    };
    let op = Operator::parse(op_raw).ok_or_else(|| {
        at(
            "op",
            format!(
                "unknown operator \"{op_raw}\"; use one of {}",
                operators_for(field.kind).join(", ")
            ),
        )
    })?;
    if !op.fits(field.kind) {
        let kind = match field.kind {
            Kind::Text => "a text field",
            Kind::Number => "a number field",
            Kind::Bool => "a true/false field",
        };
        return Err(at(
            "op",
            format!(
                "{op_raw} does not apply to {name} ({kind}); use one of {}",
                operators_for(field.kind).join(", ")
            ),
        ));
    }
    let value = if !op.takes_value() {
        Value::Null
    } else {
        let raw = obj.get("value").unwrap_or(&Value::Null);
        match field.kind {
            Kind::Number => {
                let n = match raw {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|n| n.is_finite())
                .ok_or_else(|| at("value", format!("{name} needs a number")))?;
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| at("value", format!("{name} needs a number")))?
            }
            Kind::Bool => match raw {
                Value::Bool(b) => Value::Bool(*b),
                Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Value::Bool(true),
                Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Value::Bool(false),
                _ => return Err(at("value", format!("{name} needs true or false"))),
            },
            Kind::Text => {
                let s = match raw {
                    Value::String(s) => s.trim().to_owned(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                if s.is_empty() {
                    return Err(at("value", "is required".into()));
                }
                if s.chars().count() > MAX_VALUE_CHARS {
                    return Err(at(
                        "value",
                        format!("must be at most {MAX_VALUE_CHARS} characters"),
                    ));
                }
                Value::String(s)
            }
        }
    };
    let touch = match (field.source, obj.get("touch")) {
        (Source::Touch, None | Some(Value::Null)) => Some(TouchChoice::Last),
        (Source::Touch, Some(Value::String(s))) => match s.trim().to_ascii_lowercase().as_str() {
            "first" => Some(TouchChoice::First),
            "last" => Some(TouchChoice::Last),
            _ => return Err(at("touch", "must be \"first\" or \"last\"".into())),
        },
        (Source::Touch, Some(_)) => {
            return Err(at("touch", "must be \"first\" or \"last\"".into()))
        }
        (_, None | Some(Value::Null)) => None,
        (_, Some(_)) => {
            return Err(at(
                "touch",
                format!("{name} has no first/last click choice; leave touch out"),
            ))
        }
    };
    Ok(Condition {
        field: field.name.to_owned(),
        op,
        value,
        touch,
    })
}

/// What a touch (a visit with its click data) contributes to conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TouchFacts {
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_content: Option<String>,
    pub utm_term: Option<String>,
    pub country: Option<String>,
    pub device_type: Option<String>,
    pub referrer: Option<String>,
    pub gclid: Option<String>,
    pub gbraid: Option<String>,
    pub wbraid: Option<String>,
    pub fbclid: Option<String>,
    pub ttclid: Option<String>,
    pub quality_score: Option<i32>,
    pub link_id: Option<String>,
    pub target_id: Option<String>,
}

impl TouchFacts {
    pub fn is_from_google_ads(&self) -> bool {
        self.gclid.is_some() || self.gbraid.is_some() || self.wbraid.is_some()
    }
    pub fn is_from_facebook_ads(&self) -> bool {
        self.fbclid.is_some()
    }
    pub fn is_from_tiktok_ads(&self) -> bool {
        self.ttclid.is_some()
    }
}

/// Everything conditions can read about an arriving event.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub event: &'a str,
    pub revenue: Option<f64>,
    pub currency: &'a str,
    pub conversion_count: i64,
    pub event_count: i64,
    pub first_touch: Option<&'a TouchFacts>,
    pub last_touch: Option<&'a TouchFacts>,
}

/// `event1` … `event10` carry their number (seed 002's custom events); `event05` or `event+5`
/// are names of their own.
pub fn event_number(event: &str) -> Option<i64> {
    let digits = event.strip_prefix("event")?;
    let n: i64 = digits.parse().ok()?;
    ((1..=10).contains(&n) && digits == n.to_string()).then_some(n)
}

enum Fact<'a> {
    Text(Option<&'a str>),
    Number(Option<f64>),
    Bool(bool),
}

fn fact<'a>(facts: &Facts<'a>, c: &Condition) -> Fact<'a> {
    let touch = match c.touch {
        Some(TouchChoice::First) => facts.first_touch,
        _ => facts.last_touch,
    };
    let t = |f: fn(&'a TouchFacts) -> &'a Option<String>| {
        Fact::Text(touch.and_then(|t| f(t).as_deref()))
    };
    // Conditions are validated when saved and when read back (`stored` refuses unknown
    // fields), so a name that is no field never reaches here; it would read as empty.
    match FieldName::parse(&c.field) {
        Some(FieldName::UtmSource) => t(|t| &t.utm_source),
        Some(FieldName::UtmMedium) => t(|t| &t.utm_medium),
        Some(FieldName::UtmCampaign) => t(|t| &t.utm_campaign),
        Some(FieldName::UtmContent) => t(|t| &t.utm_content),
        Some(FieldName::UtmTerm) => t(|t| &t.utm_term),
        Some(FieldName::Country) => t(|t| &t.country),
        Some(FieldName::DeviceType) => t(|t| &t.device_type),
        Some(FieldName::Referrer) => t(|t| &t.referrer),
        Some(FieldName::LinkId) => t(|t| &t.link_id),
        Some(FieldName::TargetId) => t(|t| &t.target_id),
        Some(FieldName::IsFromGoogleAds) => {
            Fact::Bool(touch.is_some_and(TouchFacts::is_from_google_ads))
        }
        Some(FieldName::IsFromFacebookAds) => {
            Fact::Bool(touch.is_some_and(TouchFacts::is_from_facebook_ads))
        }
        Some(FieldName::IsFromTikTokAds) => {
            Fact::Bool(touch.is_some_and(TouchFacts::is_from_tiktok_ads))
        }
        Some(FieldName::QualityScore) => {
            Fact::Number(touch.and_then(|t| t.quality_score).map(f64::from))
        }
        Some(FieldName::Revenue) => Fact::Number(facts.revenue),
        Some(FieldName::Currency) => Fact::Text(Some(facts.currency)),
        Some(FieldName::Event) => Fact::Text(Some(facts.event)),
        Some(FieldName::ConversionCount) => Fact::Number(Some(facts.conversion_count as f64)),
        Some(FieldName::EventCount) => Fact::Number(Some(facts.event_count as f64)),
        Some(FieldName::EventNumber) => Fact::Number(event_number(facts.event).map(|n| n as f64)),
        None => Fact::Text(None),
    }
}

/// Lower case, one character at a time: no context rule (`str::to_lowercase` writes a Greek
/// sigma that ends a word as `ς`, so "ΟΔΥΣΣΕΥΣ" would not be a prefix of "ΟΔΥΣΣΕΥΣa" any more).
/// Lowering each character on its own keeps every exact match a match.
fn fold_case(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// True when the event meets this condition. Text compares without regard to case.
pub fn holds(c: &Condition, facts: &Facts) -> bool {
    use Operator::*;
    match fact(facts, c) {
        Fact::Text(actual) => {
            let actual = actual.map(str::trim).filter(|s| !s.is_empty());
            let Some(actual) = actual else {
                return matches!(c.op, IsEmpty | NotEquals | NotContains);
            };
            let actual = fold_case(actual);
            let want = match &c.value {
                Value::String(s) => fold_case(s),
                Value::Null => String::new(),
                other => fold_case(&other.to_string()),
            };
            match c.op {
                Equals => actual == want,
                NotEquals => actual != want,
                Contains => actual.contains(&want),
                NotContains => !actual.contains(&want),
                StartsWith => actual.starts_with(&want),
                EndsWith => actual.ends_with(&want),
                IsEmpty => false,
                IsNotEmpty => true,
                GreaterThan | LessThan => false,
            }
        }
        Fact::Number(actual) => {
            let want = c.value.as_f64();
            match (c.op, actual, want) {
                (IsEmpty, a, _) => a.is_none(),
                (IsNotEmpty, a, _) => a.is_some(),
                (NotEquals, None, _) => true,
                (_, None, _) | (_, _, None) => false,
                (Equals, Some(a), Some(w)) => (a - w).abs() < 1e-9,
                (NotEquals, Some(a), Some(w)) => (a - w).abs() >= 1e-9,
                (GreaterThan, Some(a), Some(w)) => a > w,
                (LessThan, Some(a), Some(w)) => a < w,
                _ => false,
            }
        }
        Fact::Bool(actual) => match (c.op, c.value.as_bool()) {
            (Equals, Some(w)) => actual == w,
            (NotEquals, Some(w)) => actual != w,
            _ => false,
        },
    }
}

/// All conditions hold (AND); no conditions always match.
pub fn all_hold(conditions: &[Condition], facts: &Facts) -> bool {
    conditions.iter().all(|c| holds(c, facts))
}

/// Refunds are events named `refund` or `chargeback` (seed 002's Refund trigger).
pub fn is_refund(event: &str) -> bool {
    event.eq_ignore_ascii_case("refund") || event.eq_ignore_ascii_case("chargeback")
}

/// The trigger groups of seed 002, usable in a webhook's `events` next to exact names:
/// `conversion` (any event that is neither a refund nor event1–10), `refund` (refund,
/// chargeback) and `event` (event1–event10).
pub const TRIGGERS: &[(&str, &str)] = &[
    ("conversion", "Conversion"),
    ("refund", "Refund"),
    ("event", "Event Triggered"),
];

/// True when an event of this name fires a webhook with this `events` filter (empty = all).
pub fn event_matches(filter: &[String], event: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|f| {
            f.eq_ignore_ascii_case(event)
                || match f.as_str() {
                    "conversion" => !is_refund(event) && event_number(event).is_none(),
                    "refund" => is_refund(event),
                    "event" => event_number(event).is_some(),
                    _ => false,
                }
        })
}

/// Validates a webhook's `events` filter: names trimmed, no empties, no duplicates.
pub fn validate_events(raw: &Value) -> DomainResult<Vec<String>> {
    let items = match raw {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(DomainError::invalid("events must be a list of event names")),
    };
    if items.len() > 50 {
        return Err(DomainError::invalid("events: at most 50 event names"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::String(s) = item else {
            return Err(DomainError::invalid(format!(
                "events[{i}] must be a string"
            )));
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(DomainError::invalid(format!("events[{i}] is empty")));
        }
        if s.chars().count() > 100 {
            return Err(DomainError::invalid(format!(
                "events[{i}] must be at most 100 characters"
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Condition {
        validate(&json!([v])).expect("valid").remove(0)
    }

    fn facts<'a>(first: Option<&'a TouchFacts>, last: Option<&'a TouchFacts>) -> Facts<'a> {
        Facts {
            event: "purchase",
            revenue: Some(75.0),
            currency: "USD",
            conversion_count: 2,
            event_count: 5,
            first_touch: first,
            last_touch: last,
        }
    }

    #[test]
    fn seed_002_example_facebook_over_50() {
        let fb = TouchFacts {
            utm_source: Some("Facebook".into()),
            ..Default::default()
        };
        let rules = validate(&json!([
            {"field": "utm_source", "op": "equals", "value": "facebook"},
            {"field": "revenue", "op": "greater_than", "value": 50}
        ]))
        .expect("valid");
        assert!(all_hold(&rules, &facts(None, Some(&fb))));
        let mut cheap = facts(None, Some(&fb));
        cheap.revenue = Some(20.0);
        assert!(!all_hold(&rules, &cheap));
        assert!(!all_hold(&rules, &facts(None, None)));
    }

    #[test]
    fn first_and_last_click_read_different_touches() {
        let first = TouchFacts {
            utm_source: Some("facebook".into()),
            country: Some("DE".into()),
            ..Default::default()
        };
        let last = TouchFacts {
            utm_source: Some("google".into()),
            country: Some("US".into()),
            ..Default::default()
        };
        let f = facts(Some(&first), Some(&last));
        let first_fb = cond(
            json!({"field": "utm_source", "op": "equals", "value": "facebook", "touch": "first"}),
        );
        let last_fb = cond(
            json!({"field": "utm_source", "op": "equals", "value": "facebook", "touch": "last"}),
        );
        let last_us = cond(json!({"field": "country", "op": "equals", "value": "us"}));
        assert!(holds(&first_fb, &f));
        assert!(!holds(&last_fb, &f));
        assert_eq!(last_us.touch, Some(TouchChoice::Last));
        assert!(holds(&last_us, &f));
    }

    #[test]
    fn every_text_operator() {
        let t = TouchFacts {
            referrer: Some("https://www.google.com/search".into()),
            ..Default::default()
        };
        let f = facts(None, Some(&t));
        let check = |op: &str, value: &str| {
            holds(
                &cond(json!({"field": "referrer", "op": op, "value": value})),
                &f,
            )
        };
        assert!(check("equals", "https://www.google.com/search"));
        assert!(check("not_equals", "https://bing.com"));
        assert!(check("contains", "GOOGLE"));
        assert!(!check("not_contains", "google"));
        assert!(check("starts_with", "https://www"));
        assert!(check("ends_with", "/search"));
        assert!(holds(
            &cond(json!({"field": "referrer", "op": "is_not_empty"})),
            &f
        ));
        assert!(!holds(
            &cond(json!({"field": "referrer", "op": "is_empty"})),
            &f
        ));
        let none = facts(None, None);
        assert!(holds(
            &cond(json!({"field": "referrer", "op": "is_empty"})),
            &none
        ));
        assert!(holds(
            &cond(json!({"field": "referrer", "op": "not_contains", "value": "x"})),
            &none
        ));
        assert!(!holds(
            &cond(json!({"field": "referrer", "op": "contains", "value": "x"})),
            &none
        ));
    }

    #[test]
    fn what_matches_exactly_matches_without_case() {
        // Found by fuzz/fuzz_targets/conditions.rs: lowercasing whole strings wrote the last Σ
        // of the value as a final ς but the same Σ inside the longer fact as σ, so a fact
        // starting with the value exactly did not start with it "without regard to case".
        let t = TouchFacts {
            utm_source: Some("\u{39f}\u{394}\u{3a5}\u{3a3}\u{3a3}\u{395}\u{3a5}\u{3a3}oHM".into()),
            ..Default::default()
        };
        let f = facts(None, Some(&t));
        for (op, value) in [
            (
                "starts_with",
                "\u{39f}\u{394}\u{3a5}\u{3a3}\u{3a3}\u{395}\u{3a5}\u{3a3}",
            ),
            ("contains", "\u{3a5}\u{3a3}"),
            ("ends_with", "\u{3a3}oHM"),
            (
                "equals",
                "\u{3bf}\u{3b4}\u{3c5}\u{3c3}\u{3c3}\u{3b5}\u{3c5}\u{3c3}ohm",
            ),
        ] {
            let c = cond(json!({"field": "utm_source", "op": op, "value": value}));
            assert!(holds(&c, &f), "{op} {value}");
        }
    }

    #[test]
    fn number_and_bool_fields() {
        let t = TouchFacts {
            gclid: Some("abc".into()),
            quality_score: Some(80),
            ..Default::default()
        };
        let f = facts(None, Some(&t));
        let check = |v: Value| holds(&cond(v), &f);
        assert!(check(
            json!({"field": "revenue", "op": "equals", "value": "75"})
        ));
        assert!(check(
            json!({"field": "revenue", "op": "less_than", "value": 100})
        ));
        assert!(check(
            json!({"field": "conversionCount", "op": "greater_than", "value": 1})
        ));
        assert!(check(
            json!({"field": "eventCount", "op": "equals", "value": 5})
        ));
        assert!(check(
            json!({"field": "qualityScore", "op": "greater_than", "value": 50})
        ));
        assert!(check(
            json!({"field": "isFromGoogleAds", "op": "equals", "value": true})
        ));
        assert!(check(
            json!({"field": "isFromTikTokAds", "op": "equals", "value": "false"})
        ));
        assert!(check(json!({"field": "eventNumber", "op": "is_empty"})));
        let mut e3 = facts(None, None);
        e3.event = "event3";
        assert!(holds(
            &cond(json!({"field": "eventNumber", "op": "equals", "value": 3})),
            &e3
        ));
        assert!(holds(
            &cond(json!({"field": "revenue", "op": "not_equals", "value": 3})),
            &facts(None, None)
        ));
    }

    #[test]
    fn validation_messages_name_the_row_and_problem() {
        let err = |v: Value| validate(&v).expect_err("invalid").to_string();
        assert!(
            err(json!([{"field": "utm_sauce", "op": "equals", "value": "x"}]))
                .starts_with("conditions[0].field: unknown field \"utm_sauce\"")
        );
        assert!(err(json!([{"field": "revenue", "op": "equals", "value": 1}, {"field": "utm_source", "op": "greater_than", "value": "x"}]))
            .starts_with("conditions[1].op: greater_than does not apply to utm_source (a text field)"));
        assert_eq!(
            err(json!([{"field": "revenue", "op": "greater_than", "value": "lots"}])),
            "conditions[0].value: revenue needs a number"
        );
        assert_eq!(
            err(json!([{"field": "utm_source", "op": "equals", "value": ""}])),
            "conditions[0].value: is required"
        );
        assert!(
            err(json!([{"field": "revenue", "op": "equals", "value": 1, "touch": "first"}]))
                .starts_with("conditions[0].touch: revenue has no first/last click choice")
        );
        assert_eq!(err(json!({"field": "x"})), "conditions must be a list");
    }

    #[test]
    fn trigger_groups_and_names() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(event_matches(&[], "anything"));
        assert!(event_matches(&f(&["purchase"]), "Purchase"));
        assert!(!event_matches(&f(&["purchase"]), "lead"));
        assert!(event_matches(&f(&["conversion"]), "lead"));
        assert!(!event_matches(&f(&["conversion"]), "refund"));
        assert!(!event_matches(&f(&["conversion"]), "event4"));
        assert!(event_matches(&f(&["refund"]), "chargeback"));
        assert!(event_matches(&f(&["event"]), "event10"));
        assert!(!event_matches(&f(&["event"]), "event11"));
        assert_eq!(event_number("event7"), Some(7));
        assert_eq!(event_number("event0"), None);
        // Written down with the invariant of fuzz/fuzz_targets/conditions.rs (only `event1` …
        // `event10` carry a number): `i64::from_str` also read these as 5.
        for other in ["event05", "event+5", "event005"] {
            assert_eq!(event_number(other), None, "{other}");
            assert!(event_matches(&f(&["conversion"]), other), "{other}");
            assert!(!event_matches(&f(&["event"]), other), "{other}");
        }
    }

    #[test]
    fn every_field_is_described_once_and_found_by_its_name() {
        assert_eq!(FIELDS.len(), FieldName::ALL.len());
        for (f, id) in FIELDS.iter().zip(FieldName::ALL) {
            assert_eq!(f.id, id);
            assert_eq!(FieldName::parse(f.name), Some(id));
            assert_eq!(find_field(f.name).map(|f| f.id), Some(id));
        }
        assert_eq!(FieldName::parse("utm_sauce"), None);
    }
}
