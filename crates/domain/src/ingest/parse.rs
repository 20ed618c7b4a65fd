//! The inbound event contract of seeds 000 and 004: bodies in JSON or bracket-notation forms,
//! every documented field validated and normalised, unknown fields kept.

use chrono::{DateTime, Duration, TimeZone, Utc};

use serde_json::{Map, Value};

use crate::error::{DomainError, DomainResult};
pub use crate::events::{EventFields, ParsedEvent, Product};
use crate::secrets::sha256;
use crate::tenancy::accounts::is_valid_email;
use crate::tracking::geo;

pub const MAX_DEPTH: usize = 32;
const MAX_TEXT: usize = 1024;
const MAX_URL: usize = 2048;
const MAX_PRODUCTS: usize = 100;
const MAX_FORM_INDEX: usize = 999;

/// The documented fields of seeds 000 and 004; everything else in a body is kept as sent.
pub const KNOWN_FIELDS: [&str; 21] = [
    "email",
    "event",
    "value",
    "total",
    "currency",
    "orderId",
    "firstName",
    "lastName",
    "phone",
    "timestamp",
    "ip",
    "city",
    "country",
    "countryCode",
    "state",
    "stateCode",
    "guid",
    "productName",
    "productLink",
    "productImage",
    "products",
];

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::Invalid(message.into())
}

/// How deeply a value nests (a scalar is 0, `{"a": 1}` is 1).
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Turns `application/x-www-form-urlencoded` pairs into a JSON object, with bracket notation
/// for nesting: `products[0][name]=T-Shirt` becomes `{"products": [{"name": "T-Shirt"}]}`.
/// Values stay strings; the field rules accept numbers written as strings.
pub fn form_to_json(body: &[u8]) -> DomainResult<Value> {
    let mut root = Value::Object(Map::new());
    for (key, value) in url::form_urlencoded::parse(body) {
        let segments = split_brackets(&key)?;
        insert_path(&mut root, &segments, Value::String(value.into_owned()))?;
    }
    // The body itself stays an object even when every field name is a number (`0=a&1=b`), as
    // the same fields sent as JSON would be; only groups become arrays.
    let Value::Object(fields) = root else {
        return Ok(root);
    };
    Ok(Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k, arrays_from_indexed_objects(v)))
            .collect(),
    ))
}

fn split_brackets(key: &str) -> DomainResult<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    let mut segments = vec![head.to_owned()];
    while let Some(stripped) = rest.strip_prefix('[') {
        let end = stripped
            .find(']')
            .ok_or_else(|| bad(format!("form field {key:?} has an unclosed '['")))?;
        segments.push(stripped[..end].to_owned());
        rest = &stripped[end + 1..];
    }
    if !rest.is_empty() || segments.len() > MAX_DEPTH {
        return Err(bad(format!(
            "form field {key:?} is not valid bracket notation"
        )));
    }
    Ok(segments)
}

fn insert_path(node: &mut Value, segments: &[String], value: Value) -> DomainResult<()> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    let Value::Object(map) = node else {
        return Err(bad(format!(
            "form field {first:?} is given both as a value and as a group"
        )));
    };
    // `a[]=x&a[]=y` appends.
    let key = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        map.insert(key, value);
        return Ok(());
    }
    let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    insert_path(child, rest, value)
}

/// Objects whose keys are all small indexes become arrays, in index order.
fn arrays_from_indexed_objects(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let indexed = !map.is_empty()
                && map
                    .keys()
                    .all(|k| k.parse::<usize>().is_ok_and(|i| i <= MAX_FORM_INDEX));
            if indexed {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, arrays_from_indexed_objects(v))))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, arrays_from_indexed_objects(v)))
                        .collect(),
                )
            }
        }
        other => other,
    }
}

/// Text: strings (trimmed; empty means absent) and numbers written as text.
fn text(obj: &Map<String, Value>, field: &str, max: usize) -> DomainResult<Option<String>> {
    let s = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(bad(format!("{field} must be a string"))),
    };
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > max {
        return Err(bad(format!("{field} must be at most {max} characters")));
    }
    Ok(Some(s))
}

/// Numbers, or strings holding a number (forms send everything as text).
fn number(obj: &Map<String, Value>, field: &str) -> DomainResult<Option<f64>> {
    let n = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n.is_finite() && n.abs() < 1e15 => Ok(Some(n)),
        _ => Err(bad(format!("{field} must be a number"))),
    }
}

fn url_text(obj: &Map<String, Value>, field: &str) -> DomainResult<Option<String>> {
    text(obj, field, MAX_URL)
}

/// Seconds or milliseconds since the epoch (numbers or numeric strings), or RFC 3339.
pub fn parse_timestamp(raw: &Value, now: DateTime<Utc>) -> DomainResult<DateTime<Utc>> {
    let invalid = || {
        bad("timestamp must be milliseconds or seconds since the epoch, or an RFC 3339 date such as 2026-11-23T10:00:00Z")
    };
    let from_number = |n: f64| -> DomainResult<DateTime<Utc>> {
        if !n.is_finite() || n <= 0.0 {
            return Err(invalid());
        }
        // Below 1e11 a number is seconds (that is the year 5138 in seconds); above, milliseconds.
        let millis = if n < 1e11 { n * 1000.0 } else { n };
        Utc.timestamp_millis_opt(millis as i64)
            .single()
            .ok_or_else(invalid)
    };
    let at = match raw {
        Value::Number(n) => from_number(n.as_f64().ok_or_else(invalid)?)?,
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<f64>() {
                Ok(n) => from_number(n)?,
                Err(_) => DateTime::parse_from_rfc3339(s)
                    .map_err(|_| invalid())?
                    .with_timezone(&Utc),
            }
        }
        _ => return Err(invalid()),
    };
    if at > now + Duration::days(1) {
        return Err(bad("timestamp is more than a day in the future"));
    }
    if at.timestamp() < 946_684_800 {
        return Err(bad(
            "timestamp is before the year 2000; send milliseconds or seconds since the epoch",
        ));
    }
    Ok(at)
}

/// The first email address anywhere in the payload (seed 004: "we search for an email address
/// inside the webhook data"). Order: the body's values as sent, depth first (an object's fields
/// in their order, an array's items in theirs); inside one text, the first address in reading
/// order, whether the text is the address itself, `Name <addr>`, `mailto:addr` or a sentence.
pub fn find_email(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => email_in_text(s),
        Value::Array(a) => a.iter().find_map(find_email),
        Value::Object(o) => o.values().find_map(find_email),
        _ => None,
    }
}

/// The first valid address in a text, lowercased. Addresses are cut out at characters that
/// delimit them in writing (spaces, `<>()[]{}`, quotes, `,;:`, `?&=/`), so `mailto:` and
/// query strings give up their address; a sentence's closing dot is not part of it.
pub fn email_in_text(text: &str) -> Option<String> {
    let whole = text.trim().to_lowercase();
    if is_valid_email(&whole) {
        return Some(whole);
    }
    text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '"'
                    | '\''
                    | '`'
                    | ','
                    | ';'
                    | ':'
                    | '?'
                    | '&'
                    | '='
                    | '/'
                    | '|'
            )
    })
    .filter(|part| part.contains('@'))
    .map(|part| part.trim_end_matches(['.', '!']).to_lowercase())
    .find(|candidate| is_valid_email(candidate))
}

pub fn validate_event_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(bad(
            "event is required (in the body or as ?event= in the URL)",
        ));
    }
    if name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
    {
        return Err(bad(
            "event must be 1-64 characters of letters, digits, '_', '.', ':' or '-'",
        ));
    }
    Ok(name.to_owned())
}

fn parse_products(raw: Option<&Value>) -> DomainResult<Vec<Product>> {
    let items = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        // A single product object is accepted as a list of one.
        Some(obj @ Value::Object(_)) => std::slice::from_ref(obj),
        Some(_) => return Err(bad("products must be an array of objects")),
    };
    if items.len() > MAX_PRODUCTS {
        return Err(bad(format!(
            "products may list at most {MAX_PRODUCTS} items"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(p) = item else {
                return Err(bad(format!("products[{i}] must be an object")));
            };
            let field = |name: &str| format!("products[{i}].{name}");
            let req = |name: &str, max: usize| -> DomainResult<String> {
                text(p, name, max)
                    .map_err(|e| bad(e.to_string().replacen(name, &field(name), 1)))?
                    .ok_or_else(|| bad(format!("{} is required", field(name))))
            };
            let opt_text = |name: &str, max: usize| {
                text(p, name, max).map_err(|e| bad(e.to_string().replacen(name, &field(name), 1)))
            };
            let opt_num = |name: &str| {
                number(p, name).map_err(|e| bad(e.to_string().replacen(name, &field(name), 1)))
            };
            let quantity = opt_num("quantity")?.unwrap_or(1.0);
            if quantity < 0.0 {
                return Err(bad(format!("{} must not be negative", field("quantity"))));
            }
            // The OpenAPI schema of `Product` says minimum 0 for the price too.
            let price = opt_num("price")?;
            if price.is_some_and(|p| p < 0.0) {
                return Err(bad(format!("{} must not be negative", field("price"))));
            }
            Ok(Product {
                name: req("name", MAX_TEXT)?,
                link: req("link", MAX_URL)?,
                id: opt_text("id", MAX_TEXT)?,
                image: opt_text("image", MAX_URL)?,
                price,
                quantity,
            })
        })
        .collect()
}

/// The most expensive product with a price, else the first (seed 004).
pub fn primary_product(products: &[Product]) -> Option<&Product> {
    products
        .iter()
        .filter(|p| p.price.is_some())
        .max_by(|a, b| {
            a.price
                .partial_cmp(&b.price)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .or_else(|| products.first())
}

/// Validates and normalises an inbound body. `query_event` is `?event=` from the URL.
pub fn parse(
    payload: Value,
    query_event: Option<&str>,
    now: DateTime<Utc>,
) -> DomainResult<ParsedEvent> {
    if depth(&payload) > MAX_DEPTH {
        return Err(bad(format!(
            "body is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let Value::Object(obj) = &payload else {
        return Err(bad("body must be a JSON object"));
    };
    // Every field, known or kept as sent, is stored: none may hold what PostgreSQL refuses.
    crate::text::check_json(&payload)?;
    // userAgent, sourceUrl, consent: kept with the extra fields, for the ad platforms.
    crate::platforms::inbound_fields::check(obj).map_err(bad)?;

    let email = match obj.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let e = s.trim().to_lowercase();
            if !is_valid_email(&e) {
                return Err(bad("email must be a valid email address"));
            }
            e
        }
        Some(Value::String(_)) | Some(Value::Null) | None => find_email(&payload)
            .ok_or_else(|| bad("email is required: no email address was found in the payload"))?,
        Some(_) => return Err(bad("email must be a string")),
    };
    let event = match obj.get("event") {
        Some(Value::String(s)) if !s.trim().is_empty() => validate_event_name(s)?,
        Some(Value::String(_)) | Some(Value::Null) | None => {
            validate_event_name(query_event.unwrap_or(""))?
        }
        Some(_) => return Err(bad("event must be a string")),
    };

    let products = parse_products(obj.get("products"))?;
    let value = match number(obj, "value")? {
        Some(v) => Some(v),
        None => number(obj, "total")?,
    };
    let value = value.or_else(|| {
        let priced: Vec<&Product> = products.iter().filter(|p| p.price.is_some()).collect();
        (!priced.is_empty()).then(|| {
            let sum: f64 = priced
                .iter()
                .map(|p| p.price.unwrap_or(0.0) * p.quantity)
                .sum();
            (sum * 100.0).round() / 100.0
        })
    });

    let currency = match text(obj, "currency", 16)? {
        None => "USD".to_owned(),
        Some(c) => {
            let upper = c.to_ascii_uppercase();
            if iso_currency::Currency::from_code(&upper).is_none() {
                return Err(bad(format!(
                    "currency {c:?} is not an ISO 4217 code such as USD or EUR"
                )));
            }
            upper
        }
    };

    let occurred_at = match obj.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) if s.trim().is_empty() => now,
        Some(raw) => parse_timestamp(raw, now)?,
    };

    let ip = match text(obj, "ip", 64)? {
        None => None,
        Some(raw) => Some(
            raw.parse::<std::net::IpAddr>()
                .map_err(|_| bad("ip must be an IPv4 or IPv6 address"))?
                .to_string(),
        ),
    };

    let mut country = text(obj, "country", 100)?;
    let mut country_code = match text(obj, "countryCode", 3)? {
        None => None,
        Some(c) => Some(
            geo::country_code(&c)
                .ok_or_else(|| {
                    bad(format!(
                        "countryCode {c:?} is not an ISO 3166 country code such as US"
                    ))
                })?
                .to_owned(),
        ),
    };
    match (&country, &country_code) {
        (None, Some(code)) => country = geo::country_name(code).map(str::to_owned),
        (Some(name), None) => country_code = geo::country_code_for_name(name).map(str::to_owned),
        _ => {}
    }
    let mut state = text(obj, "state", 100)?;
    let mut state_code = text(obj, "stateCode", 10)?.map(|s| s.to_ascii_uppercase());
    if matches!(country_code.as_deref(), None | Some("US")) {
        match (&state, &state_code) {
            (None, Some(code)) => state = geo::us_state_name(code),
            (Some(name), None) => state_code = geo::us_state_code(name),
            _ => {}
        }
    }

    let primary = primary_product(&products).cloned();
    let product_name =
        text(obj, "productName", MAX_TEXT)?.or_else(|| primary.as_ref().map(|p| p.name.clone()));
    let product_link =
        url_text(obj, "productLink")?.or_else(|| primary.as_ref().map(|p| p.link.clone()));
    let product_image = url_text(obj, "productImage")?.or_else(|| primary.and_then(|p| p.image));

    let unknown: serde_json::Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    Ok(ParsedEvent {
        fields: EventFields {
            email_sha256: sha256(email.as_bytes()),
            email,
            event_name: event,
            value,
            currency,
            order_id: text(obj, "orderId", 255)?,
            first_name: text(obj, "firstName", 200)?,
            last_name: text(obj, "lastName", 200)?,
            phone: text(obj, "phone", 64)?,
            occurred_at,
            ip,
            city: text(obj, "city", 200)?,
            country,
            country_code,
            state,
            state_code,
            guid: text(obj, "guid", 255)?,
            product_name,
            product_link,
            product_image,
            products: serde_json::to_value(&products).unwrap_or_else(|_| Value::Array(vec![])),
        },
        payload: Value::Object(unknown),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn ok(v: Value) -> ParsedEvent {
        parse(v, None, now()).unwrap()
    }

    fn err(v: Value) -> String {
        parse(v, None, now()).unwrap_err().to_string()
    }

    #[test]
    fn seed_000_body_is_accepted_and_normalised() {
        let e = ok(
            json!({"email": " Customer@Example.com ", "event": "purchase", "value": 149.99, "currency": "usd", "orderId": "ORD-12345"}),
        );
        assert_eq!(e.fields.email, "customer@example.com");
        assert_eq!(e.fields.currency, "USD");
        assert_eq!(e.fields.value, Some(149.99));
        assert_eq!(e.fields.order_id.as_deref(), Some("ORD-12345"));
        assert_eq!(e.fields.occurred_at, now());
        assert_eq!(
            e.payload,
            json!({}),
            "documented fields are stored once, in their columns"
        );
        let other =
            ok(json!({"email": "a@b.co", "event": "x", "utm": {"source": "g"}, "plan": "pro"}));
        assert_eq!(
            other.payload,
            json!({"utm": {"source": "g"}, "plan": "pro"}),
            "unknown fields kept as sent"
        );
        assert_eq!(
            hex::encode(&e.fields.email_sha256),
            "e233d4a29013e9d87150c6237c6777bedf379ebf1acdc5d6126fec7e8bb74fb5"
        );
    }

    #[test]
    fn currency_defaults_to_usd_and_must_be_iso_4217() {
        assert_eq!(
            ok(json!({"email": "a@b.co", "event": "x"})).fields.currency,
            "USD"
        );
        assert!(
            err(json!({"email": "a@b.co", "event": "x", "currency": "DOLLARS"}))
                .contains("currency")
        );
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_and_rfc3339() {
        let ms = ok(json!({"email": "a@b.co", "event": "x", "timestamp": 1528611279398u64}));
        assert_eq!(ms.fields.occurred_at.timestamp_millis(), 1528611279398);
        let s = ok(json!({"email": "a@b.co", "event": "x", "timestamp": "1528611279"}));
        assert_eq!(s.fields.occurred_at.timestamp(), 1528611279);
        let r =
            ok(json!({"email": "a@b.co", "event": "x", "timestamp": "2026-11-20T10:00:00+01:00"}));
        assert_eq!(
            r.fields.occurred_at.to_rfc3339(),
            "2026-11-20T09:00:00+00:00"
        );
        assert!(
            err(json!({"email": "a@b.co", "event": "x", "timestamp": "2026-11-25T12:00:00Z"}))
                .contains("future")
        );
        assert!(
            err(json!({"email": "a@b.co", "event": "x", "timestamp": "yesterday"}))
                .contains("timestamp")
        );
    }

    #[test]
    fn email_is_searched_for_when_absent() {
        let e = ok(
            json!({"event": "lead", "contact": {"name": "Jo", "emails": ["not-an-email", "Jo@Example.org"]}}),
        );
        assert_eq!(e.fields.email, "jo@example.org");
        assert!(err(json!({"event": "lead", "name": "nobody"})).contains("email is required"));
        assert!(err(json!({"email": "nope", "event": "x"})).contains("valid email"));
        assert!(err(json!({"email": 5, "event": "x"})).contains("email must be a string"));
    }

    #[test]
    fn an_address_inside_text_is_found_in_a_documented_order() {
        let found = |v: Value| ok(v).fields.email;
        assert_eq!(
            found(json!({"event": "lead", "contact": "Jane <Jane.Doe@Example.org>"})),
            "jane.doe@example.org"
        );
        assert_eq!(
            found(json!({"event": "lead", "link": "mailto:sales+eu@shop.example.com?subject=Hi"})),
            "sales+eu@shop.example.com"
        );
        assert_eq!(
            found(json!({"event": "lead", "note": "Write to bob@example.net. Or call."})),
            "bob@example.net"
        );
        // Several: the first field as sent wins, then the first address within its text.
        assert_eq!(
            found(
                json!({"event": "lead", "a": "no address", "b": "x@one.example, y@two.example",
                         "c": "z@three.example"})
            ),
            "x@one.example"
        );
        assert_eq!(
            found(
                json!({"event": "lead", "nested": {"deep": ["(cc: Ann <ann@deep.example>)"]},
                         "later": "later@example.org"})
            ),
            "ann@deep.example"
        );
        assert!(
            err(json!({"event": "lead", "note": "user at example dot org"}))
                .contains("email is required")
        );
        assert!(
            err(json!({"event": "lead", "note": "broken@ and @host.example"}))
                .contains("email is required")
        );
    }

    #[test]
    fn event_comes_from_the_body_or_the_query() {
        let e = parse(json!({"email": "a@b.co"}), Some("signup"), now()).unwrap();
        assert_eq!(e.fields.event_name, "signup");
        assert!(err(json!({"email": "a@b.co"})).contains("event is required"));
        assert!(err(json!({"email": "a@b.co", "event": "has space"})).contains("event must be"));
        assert!(err(json!({"email": "a@b.co", "event": "x".repeat(65)})).contains("event must be"));
    }

    #[test]
    fn locations_fill_each_other() {
        let e = ok(
            json!({"email": "a@b.co", "event": "x", "country": "United States", "state": "Florida"}),
        );
        assert_eq!(e.fields.country_code.as_deref(), Some("US"));
        assert_eq!(e.fields.state_code.as_deref(), Some("FL"));
        let e =
            ok(json!({"email": "a@b.co", "event": "x", "countryCode": "us", "stateCode": "fl"}));
        assert_eq!(e.fields.country.as_deref(), Some("United States"));
        assert_eq!(e.fields.state.as_deref(), Some("Florida"));
        assert!(
            err(json!({"email": "a@b.co", "event": "x", "countryCode": "ZZ"}))
                .contains("countryCode")
        );
        assert!(err(json!({"email": "a@b.co", "event": "x", "ip": "999.1.1.1"})).contains("ip"));
    }

    #[test]
    fn products_pick_a_primary_and_sum_the_value() {
        let e = ok(json!({"email": "a@b.co", "event": "purchase", "products": [
            {"name": "T-Shirt", "link": "https://mystore.com/t-shirt", "id": 123, "price": 55, "quantity": 2},
            {"name": "Hat", "link": "https://mystore.com/hat", "price": "70"}
        ]}));
        assert_eq!(e.fields.value, Some(180.0));
        assert_eq!(e.fields.product_name.as_deref(), Some("Hat"));
        assert_eq!(e.fields.products()[0].id.as_deref(), Some("123"));
        let e = ok(
            json!({"email": "a@b.co", "event": "purchase", "total": 55, "products": [
                {"name": "A", "link": "https://x.co/a"}, {"name": "B", "link": "https://x.co/b"}
            ]}),
        );
        assert_eq!(e.fields.value, Some(55.0), "total is an alias of value");
        assert_eq!(
            e.fields.product_name.as_deref(),
            Some("A"),
            "no prices: the first"
        );
        assert_eq!(
            err(json!({"email": "a@b.co", "event": "x", "products": [{"link": "https://x.co"}]})),
            "products[0].name is required"
        );
        assert!(err(json!({"email": "a@b.co", "event": "x", "products": [{"name": "a", "link": "l", "price": "cheap"}]})).contains("products[0].price must be a number"));
    }

    #[test]
    fn product_prices_are_not_negative() {
        // Written down with the invariants of fuzz/fuzz_targets/inbound_body.rs: the OpenAPI
        // schema gives `price` minimum 0, as `quantity`, but a negative price was accepted.
        assert_eq!(
            err(
                json!({"email": "a@b.co", "event": "x", "products": [{"name": "a", "link": "l", "price": -5}]})
            ),
            "products[0].price must not be negative"
        );
        let free = ok(
            json!({"email": "a@b.co", "event": "x", "products": [{"name": "a", "link": "l", "price": "0"}]}),
        );
        assert_eq!(free.fields.products()[0].price, Some(0.0));
    }

    #[test]
    fn forms_with_bracket_notation_match_json() {
        let form = b"email=test%40gmail.com&event=purchase&total=55&currency=USD&products[0][name]=T-Shirt&products[0][link]=https%3A%2F%2Fmystore.com%2Ft-shirt&products[0][id]=123&products[0][price]=55&products[0][quantity]=2&utm[source]=x";
        let v = form_to_json(form).unwrap();
        assert_eq!(v["products"][0]["name"], "T-Shirt");
        assert_eq!(v["utm"]["source"], "x");
        let from_form = ok(v);
        let from_json = ok(
            json!({"email": "test@gmail.com", "event": "purchase", "total": 55, "currency": "USD",
            "products": [{"name": "T-Shirt", "link": "https://mystore.com/t-shirt", "id": 123, "price": 55, "quantity": 2}],
            "utm": {"source": "x"}}),
        );
        assert_eq!(from_form.fields.value, from_json.fields.value);
        assert_eq!(from_form.fields.products, from_json.fields.products);
        assert_eq!(from_form.fields.email, from_json.fields.email);
        assert!(form_to_json(b"a[b=1").is_err());
    }

    #[test]
    fn forms_whose_field_names_are_all_numbers_stay_objects() {
        // Found by fuzz/fuzz_targets/inbound_body.rs: `=x` (and `0=x&1=y`) became a JSON array,
        // refused as "body must be a JSON object", where the same fields in JSON are accepted.
        assert_eq!(form_to_json(b"=141.92e").unwrap(), json!({"0": "141.92e"}));
        let v = form_to_json(b"0=Jo%40Example.org&1=x&2[0]=y").unwrap();
        assert_eq!(v, json!({"0": "Jo@Example.org", "1": "x", "2": ["y"]}));
        let e = parse(v, Some("lead"), now()).unwrap();
        assert_eq!(e.fields.email, "jo@example.org");
        assert_eq!(
            e.payload,
            json!({"0": "Jo@Example.org", "1": "x", "2": ["y"]})
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut v = json!(1);
        for _ in 0..40 {
            v = json!([v]);
        }
        assert!(err(json!({"email": "a@b.co", "event": "x", "deep": v})).contains("nested deeper"));
    }
}
