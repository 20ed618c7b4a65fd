//! The inbound contract of seeds 000 and 004 at `POST /__cc/inbound`, as a client sees it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, User};

struct Fixture {
    app: TestApp,
    user: User,
    domain: String,
    key: String,
}

async fn fixture(email: &str) -> Fixture {
    let app = TestApp::spawn().await;
    let user = app.signup(email).await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    Fixture {
        app,
        user,
        domain,
        key,
    }
}

impl Fixture {
    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = crate::helpers::http_client()
            .post(self.app.url(path))
            .header("X-CC-Api-Key", &self.key)
            .header("Content-Type", content_type)
            .body(body);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("inbound");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn json(&self, body: Value) -> (StatusCode, Value) {
        self.post_raw(
            "/__cc/inbound",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
        .await
    }

    async fn form(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.post_raw(
            path,
            "application/x-www-form-urlencoded",
            body.as_bytes().to_vec(),
            &[],
        )
        .await
    }

    async fn stored(&self, event_id: &str) -> Value {
        let (status, event) = self.user.get(&format!("/v1/events/{event_id}")).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        event
    }

    async fn accepted(&self, body: Value) -> Value {
        let (status, answer) = self.json(body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body} → {answer}");
        assert_eq!(answer["ok"], true);
        self.stored(answer["eventId"].as_str().expect("eventId"))
            .await
    }

    async fn refused(&self, body: Value, status: StatusCode, needle: &str) {
        let (got, answer) = self.json(body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        let msg = answer["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{body}: error {msg:?} should mention {needle:?}"
        );
    }

    /// Sends `body` `n` times at once; every answer must be 200. Returns the distinct event ids
    /// answered and how many answers were not marked duplicate.
    async fn race(&self, body: Value, n: usize) -> (std::collections::HashSet<String>, usize) {
        let body = body.to_string();
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (url, key, body) = (
                self.app.url("/__cc/inbound"),
                self.key.clone(),
                body.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let resp = crate::helpers::http_client()
                    .post(url)
                    .header("X-CC-Api-Key", key)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                resp.json::<Value>().await.unwrap()
            }));
        }
        let mut ids = std::collections::HashSet::new();
        let mut fresh = 0;
        for t in tasks {
            let answer = t.await.unwrap();
            ids.insert(answer["eventId"].as_str().unwrap().to_owned());
            if answer.get("duplicate").is_none() {
                fresh += 1;
            }
        }
        (ids, fresh)
    }

    async fn count(&self) -> usize {
        let (_, list) = self
            .user
            .get(&format!("/v1/events?domainId={}&limit=200", self.domain))
            .await;
        list["items"].as_array().map(Vec::len).unwrap_or(0)
    }
}

#[tokio::test]
async fn seed_000_examples_are_accepted_as_written() {
    let f = fixture("seed000@inbound.test").await;
    // Request Format, the cURL test and the Python/Node examples.
    let e = f.accepted(json!({"email": "customer@example.com", "event": "purchase", "value": 149.99, "currency": "USD", "orderId": "ORD-12345"})).await;
    assert_eq!(e["email"], "customer@example.com");
    assert_eq!(e["event"], "purchase");
    assert_eq!(e["value"], 149.99);
    assert_eq!(e["currency"], "USD");
    assert_eq!(e["orderId"], "ORD-12345");
    let e = f.accepted(json!({"email": "test@example.com", "event": "purchase", "value": 99.99, "currency": "USD"})).await;
    assert_eq!(e["value"], 99.99);
    let e = f.accepted(json!({"email": "lead@example.com", "event": "lead", "firstName": "John", "lastName": "Smith", "phone": "+1 305 555 0100"})).await;
    assert_eq!(e["currency"], "USD", "default currency");
    assert_eq!(e["firstName"], "John");
    assert_eq!(e["phone"], "+1 305 555 0100");
    let (status, answer) = f
        .json(json!({"email": "customer@example.com", "event": "purchase"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["dispatched"],
        json!([]),
        "no platforms connected yet"
    );
}

#[tokio::test]
async fn seed_004_examples_are_accepted_with_the_event_in_the_url() {
    let f = fixture("seed004@inbound.test").await;
    let (status, answer) = f
        .post_raw(
            "/__cc/inbound?event=signup",
            "application/json",
            json!({"email": "test@gmail.com", "timestamp": 1528611279398u64, "ip": "141.92.55.102", "firstName": "John", "lastName": "Smith", "guid": "id"}).to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let e = f.stored(answer["eventId"].as_str().unwrap()).await;
    assert_eq!(e["event"], "signup");
    assert_eq!(e["timestamp"], "2018-06-10T06:14:39.398Z");
    assert_eq!(e["ip"], "141.92.55.102");
    assert_eq!(e["guid"], "id");

    let e = f.accepted(json!({"email": "a@example.com", "event": "lead", "city": "Miami", "country": "United States", "countryCode": "US", "state": "Florida", "stateCode": "FL"})).await;
    assert_eq!(
        (
            e["city"].clone(),
            e["countryCode"].clone(),
            e["stateCode"].clone()
        ),
        (json!("Miami"), json!("US"), json!("FL"))
    );
    let e = f.accepted(json!({"email": "b@example.com", "event": "lead", "countryCode": "US", "stateCode": "FL"})).await;
    assert_eq!(e["country"], "United States");
    assert_eq!(e["state"], "Florida");
    let e = f
        .accepted(json!({"email": "c@example.com", "event": "lead", "country": "Germany"}))
        .await;
    assert_eq!(e["countryCode"], "DE");

    let e = f.accepted(json!({"email": "d@example.com", "event": "purchase", "total": 55, "currency": "USD", "productName": "Sneakers", "productLink": "https://sneakers.com/sneakers", "productImage": "https://sneakers.com/sneakers.jpg"})).await;
    assert_eq!(e["value"], 55.0, "total is an alias of value");
    assert_eq!(e["productName"], "Sneakers");
    assert_eq!(e["productImage"], "https://sneakers.com/sneakers.jpg");

    let e = f.accepted(json!({"email": "e@example.com", "event": "purchase", "products": [
        {"name": "T-Shirt", "link": "https://mystore.com/t-shirt", "id": 123, "image": "https://mystore.com/images/t-shirt.png", "price": 55, "quantity": 2},
        {"name": "Socks", "link": "https://mystore.com/socks", "id": "s-1", "price": 9.5}
    ]})).await;
    assert_eq!(e["value"], 119.5, "value from Σ price × quantity");
    assert_eq!(
        e["productName"], "T-Shirt",
        "the most expensive product is primary"
    );
    assert_eq!(e["products"][0]["id"], "123");
    assert_eq!(e["products"][1]["quantity"], 1.0);

    // Automatic email search, and unknown fields kept.
    let e = f.accepted(json!({"event": "lead", "contact": {"Email Address": "Found@Example.com"}, "source": "zapier"})).await;
    assert_eq!(e["email"], "found@example.com");
    assert_eq!(e["payload"]["source"], "zapier");
}

#[tokio::test]
async fn forms_with_bracket_notation_match_json() {
    let f = fixture("forms@inbound.test").await;
    let (status, answer) = f
        .form(
            "/__cc/inbound",
            "email=Form%40Example.com&event=purchase&value=55.5&currency=eur&orderId=F-1&products[0][name]=T-Shirt&products[0][link]=https%3A%2F%2Fmystore.com%2Ft-shirt&products[0][price]=55.5&products[0][quantity]=1&custom[field]=x",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let from_form = f.stored(answer["eventId"].as_str().unwrap()).await;
    let from_json = f
        .accepted(json!({"email": "form@example.com", "event": "purchase", "value": 55.5, "currency": "EUR", "orderId": "F-2",
            "products": [{"name": "T-Shirt", "link": "https://mystore.com/t-shirt", "price": 55.5, "quantity": 1}], "custom": {"field": "x"}}))
        .await;
    for field in [
        "email",
        "event",
        "value",
        "currency",
        "products",
        "productName",
    ] {
        assert_eq!(from_form[field], from_json[field], "{field}");
    }
    assert_eq!(from_form["payload"]["custom"]["field"], "x");
    let (status, answer) = f
        .form("/v1/inbound?event=lead", "email=a%40b.co&value=abc")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "value must be a number");
}

#[tokio::test]
async fn every_error_has_its_status_and_names_the_problem() {
    let f = fixture("errors@inbound.test").await;
    f.refused(
        json!({"event": "purchase"}),
        StatusCode::BAD_REQUEST,
        "email is required",
    )
    .await;
    f.refused(
        json!({"email": "x", "event": "purchase"}),
        StatusCode::BAD_REQUEST,
        "email must be a valid email",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co"}),
        StatusCode::BAD_REQUEST,
        "event is required",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co", "event": "bad name!"}),
        StatusCode::BAD_REQUEST,
        "event must be",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x", "currency": "XYZ1"}),
        StatusCode::BAD_REQUEST,
        "currency",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x", "value": "lots"}),
        StatusCode::BAD_REQUEST,
        "value must be a number",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x", "timestamp": "2999-01-01T00:00:00Z"}),
        StatusCode::BAD_REQUEST,
        "future",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x", "products": [{"name": "n"}]}),
        StatusCode::BAD_REQUEST,
        "products[0].link is required",
    )
    .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x", "ip": "nope"}),
        StatusCode::BAD_REQUEST,
        "ip",
    )
    .await;
    f.refused(
        json!(["not", "an", "object"]),
        StatusCode::BAD_REQUEST,
        "object",
    )
    .await;
    let mut deep = json!("x");
    for _ in 0..40 {
        deep = json!({ "d": deep });
    }
    f.refused(
        json!({"email": "a@b.co", "event": "x", "deep": deep}),
        StatusCode::BAD_REQUEST,
        "nested deeper than 32",
    )
    .await;

    let (status, answer) = f
        .post_raw(
            "/__cc/inbound",
            "application/json",
            b"{\"email\": ".to_vec(),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("not valid JSON"));
    let (status, answer) = f
        .post_raw("/__cc/inbound", "text/plain", b"email=a@b.co".to_vec(), &[])
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(answer["error"].as_str().unwrap().contains("Content-Type"));
    let big = json!({"email": "a@b.co", "event": "x", "pad": "x".repeat(70 * 1024)});
    let (status, answer) = f
        .post_raw(
            "/__cc/inbound",
            "application/json",
            big.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer["error"].as_str().unwrap().contains("64 KiB"));

    // A bad key is reported before anything about the body.
    let resp = crate::helpers::http_client()
        .post(f.app.url("/__cc/inbound"))
        .header(
            "X-CC-Api-Key",
            "cc_0000000000000000000000000000000000000000",
        )
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Suspended workspace: 403, nothing stored.
    let before = f.count().await;
    f.app
        .sql(&format!(
            "UPDATE workspaces SET status = 'suspended' WHERE id = '{}'",
            f.user.workspace_id
        ))
        .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x"}),
        StatusCode::FORBIDDEN,
        "suspended",
    )
    .await;
    assert_eq!(
        f.count().await,
        before,
        "nothing stored for a suspended workspace"
    );
}

#[tokio::test]
async fn duplicates_by_order_id_or_idempotency_key_return_the_first_event() {
    let f = fixture("idem@inbound.test").await;
    let body = json!({"email": "a@b.co", "event": "purchase", "value": 10, "orderId": "ORD-1"});
    let (_, first) = f.json(body.clone()).await;
    let (status, again) = f.json(body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["eventId"], first["eventId"]);
    assert!(first.get("duplicate").is_none(), "{first}");
    // Same order, other event name: a different event (e.g. a refund of that order).
    let (_, refund) = f
        .json(json!({"email": "a@b.co", "event": "refund", "orderId": "ORD-1"}))
        .await;
    assert_ne!(refund["eventId"], first["eventId"]);

    let send = |key: &'static str| {
        let f = &f;
        async move {
            f.post_raw(
                "/__cc/inbound",
                "application/json",
                json!({"email": "k@b.co", "event": "lead"})
                    .to_string()
                    .into_bytes(),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    let (_, a) = send("retry-abc").await;
    let (_, b) = send("retry-abc").await;
    assert_eq!(b["duplicate"], true);
    assert_eq!(a["eventId"], b["eventId"]);
    assert_eq!(f.count().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_make_exactly_one_event() {
    let f = fixture("race@inbound.test").await;
    let (ids, fresh) = f
        .race(
            json!({"email": "race@b.co", "event": "purchase", "value": 5, "orderId": "RACE-1"}),
            24,
        )
        .await;
    assert_eq!(ids.len(), 1, "every answer names the same event");
    assert_eq!(fresh, 1, "exactly one answer is the original");
    assert_eq!(f.count().await, 1);
}

#[tokio::test]
async fn monthly_quota_boundary() {
    let f = fixture("quota@inbound.test").await;
    f.accepted(json!({"email": "a@b.co", "event": "lead"}))
        .await;
    // 9,999 accepted this month so far: the 10,000th is accepted, the next is refused.
    let ws = &f.user.workspace_id;
    f.app
        .sql(&format!(
            "DELETE FROM usage_counters WHERE workspace_id = '{ws}'"
        ))
        .await;
    f.app
        .sql(&format!(
            "INSERT INTO usage_counters (workspace_id, month, shard, events) \
             VALUES ('{ws}', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 7, 9999)"
        ))
        .await;
    f.accepted(json!({"email": "a@b.co", "event": "lead", "orderId": "Q-10000"}))
        .await;
    f.refused(
        json!({"email": "a@b.co", "event": "lead"}),
        StatusCode::TOO_MANY_REQUESTS,
        "The Pulse plan allows 10,000 inbound events per month",
    )
    .await;
    // A retry of an event already accepted is still answered as a duplicate.
    let (status, answer) = f
        .json(json!({"email": "a@b.co", "event": "lead", "orderId": "Q-10000"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["duplicate"], true);
    let (_, html) = f.user.page("/plan").await;
    assert!(
        html.contains("10,000 of 10,000"),
        "the Plan page shows the month's usage, with thousands separators"
    );

    // A new month starts from zero.
    f.app
        .sql(&format!(
            "UPDATE usage_counters SET month = month - interval '1 month' WHERE workspace_id = '{}'",
            f.user.workspace_id
        ))
        .await;
    f.accepted(json!({"email": "a@b.co", "event": "lead"}))
        .await;
}

#[tokio::test]
async fn an_event_answered_200_survives_a_kill_right_after() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let db_url = crate::helpers::fresh_database().await;
    // Set up an account and a key through an in-process server on the same database.
    let setup = TestApp::spawn_on(&db_url).await;
    let user = setup.signup("kill@inbound.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .env("DATABASE_URL", &db_url)
        .env("POSTBACK_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("postback");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("open ").nth(1) {
                return rest
                    .split(" for the dashboard")
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_owned();
            }
        }
        String::new()
    })
    .await
    .unwrap();
    let resp = crate::helpers::http_client()
        .post(format!("{base}/__cc/inbound"))
        .header("X-CC-Api-Key", &key)
        .json(&json!({"email": "kill@example.com", "event": "purchase", "value": 1, "orderId": "K-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    child.start_kill().unwrap();
    let answer: Value = resp.json().await.unwrap();
    child.wait().await.unwrap();
    let (status, event) = user
        .get(&format!(
            "/v1/events/{}",
            answer["eventId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the event that got a 200 is in the database"
    );
    assert_eq!(event["orderId"], "K-1");
}

#[tokio::test]
async fn events_page_lists_filters_pages_and_shows_detail() {
    let f = fixture("page@inbound.test").await;
    for i in 0..55 {
        let name = if i % 2 == 0 { "purchase" } else { "lead" };
        f.accepted(json!({"email": format!("p{i}@example.com"), "event": name, "value": 10 + i, "currency": "EUR", "orderId": format!("O-{i}")})).await;
    }
    let (status, html) = f.user.page(&format!("/domains/{}/events", f.domain)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("p54@example.com"), "newest first");
    assert!(
        !html.contains("p0@example.com"),
        "older ones on the next page"
    );
    assert!(
        html.contains("€64.00"),
        "money with its symbol and minor units"
    );
    assert!(html.contains("Older events"));
    let (_, html) = f
        .user
        .page(&format!(
            "/domains/{}/events?event=lead&email=P7%40example.com",
            f.domain
        ))
        .await;
    assert!(html.contains("p7@example.com"));
    assert_eq!(html.matches("data-event-id=").count(), 1);

    let (_, answer) = f
        .json(json!({"email": "detail@example.com", "event": "purchase", "city": "Miami", "countryCode": "US", "stateCode": "FL",
            "products": [{"name": "T-Shirt", "link": "https://mystore.com/t-shirt", "price": 55, "quantity": 2}], "note": "kept"}))
        .await;
    let id = answer["eventId"].as_str().unwrap();
    let (status, html) = f.user.page(&format!("/events/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "detail@example.com",
        "$110.00",
        "Florida (FL)",
        "United States (US)",
        "T-Shirt",
        "&#34;note&#34;: &#34;kept&#34;",
    ] {
        assert!(html.contains(needle), "event page shows {needle}");
    }
    let other = f.app.signup("other@inbound.test").await;
    assert_eq!(
        other.page(&format!("/events/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.page(&format!("/domains/{}/events", f.domain)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn large_quotas_are_exact_at_the_boundary_too() {
    // Clarity's quota is large enough that batches start under a shared lock; near the limit they
    // must switch to taking turns and stop at exactly 1,000,000.
    let f = fixture("bigquota@inbound.test").await;
    let ws = &f.user.workspace_id;
    f.app
        .sql(&format!(
            "UPDATE workspaces SET plan = 'clarity' WHERE id = '{ws}'"
        ))
        .await;
    f.app
        .sql(&format!(
            "INSERT INTO usage_counters (workspace_id, month, shard, events) \
             VALUES ('{ws}', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 5, 999998)"
        ))
        .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let (status, _) = f
            .json(json!({"email": "a@b.co", "event": "lead", "orderId": format!("B-{i}")}))
            .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        vec![
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let (_, answer) = f.json(json!({"email": "a@b.co", "event": "lead"})).await;
    assert_eq!(
        answer["error"],
        "The Clarity plan allows 1,000,000 inbound events per month"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_plans_keep_the_same_contract() {
    // Command has no monthly quota, so its events take the single-statement path.
    let f = fixture("command@inbound.test").await;
    let ws = f.user.workspace_id.clone();
    f.app
        .sql(&format!(
            "UPDATE workspaces SET plan = 'command' WHERE id = '{ws}'"
        ))
        .await;

    let body = json!({"email": "a@b.co", "event": "purchase", "value": 10, "orderId": "C-1"});
    let (_, first) = f.json(body.clone()).await;
    let (status, again) = f.json(body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["eventId"], first["eventId"]);

    let (ids, fresh) = f
        .race(
            json!({"email": "race@b.co", "event": "purchase", "orderId": "C-RACE"}),
            16,
        )
        .await;
    assert_eq!(fresh, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(f.count().await, 2);
    let (_, html) = f.user.page("/plan").await;
    assert!(
        html.contains("2 of unlimited"),
        "usage is counted on the fast path too"
    );

    let (_, keys) = f.user.get(&format!("/v1/domains/{}/keys", f.domain)).await;
    let key_id = keys["items"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(
        keys["items"][0]["lastUsedAt"],
        Value::Null,
        "last used recorded"
    );
    f.user
        .post(&format!("/v1/keys/{key_id}/revoke"), json!({}))
        .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x"}),
        StatusCode::UNAUTHORIZED,
        "Invalid API key",
    )
    .await;
    f.user
        .post(&format!("/v1/keys/{key_id}/restore"), json!({}))
        .await;
    f.app
        .sql(&format!(
            "UPDATE workspaces SET status = 'suspended' WHERE id = '{ws}'"
        ))
        .await;
    f.refused(
        json!({"email": "a@b.co", "event": "x"}),
        StatusCode::FORBIDDEN,
        "suspended",
    )
    .await;
    assert_eq!(
        f.count().await,
        2,
        "nothing stored while revoked or suspended"
    );
}

/// Near a month's start keyed batches take a lock per domain before they claim their keys (the
/// fast path in a transaction of its own). Forced on here, both paths still store one event per
/// key under a race, and a key stored in the previous month's partition is still a duplicate.
#[tokio::test]
async fn keyed_batches_under_the_month_boundary_lock_keep_idempotency() {
    postback_domain::ingest::store::lock_keys_always(true);
    let f = fixture("boundary@inbound.test").await;
    let ws = f.user.workspace_id.clone();
    for (plan, order) in [("pulse", "B-QUOTA"), ("command", "B-FAST")] {
        f.app
            .sql(&format!(
                "UPDATE workspaces SET plan = '{plan}' WHERE id = '{ws}'"
            ))
            .await;
        let (ids, fresh) = f
            .race(
                json!({"email": "race@b.co", "event": "purchase", "orderId": order}),
                16,
            )
            .await;
        assert_eq!(ids.len(), 1, "{plan}: every answer names the same event");
        assert_eq!(fresh, 1, "{plan}: exactly one answer is the original");
    }
    assert_eq!(f.count().await, 2);

    // B-FAST's event and key moved to last month's partition: still a duplicate, on both paths.
    f.app
        .sql("SELECT postback_partitions_ensure(now() - interval '1 month', now())")
        .await;
    let last_month = "date_trunc('month', now(), 'UTC') - interval '1 day'";
    f.app
        .sql(&format!(
            "UPDATE events SET received_at = {last_month} WHERE order_id = 'B-FAST'"
        ))
        .await;
    f.app
        .sql(&format!(
            "UPDATE event_keys SET received_at = {last_month} WHERE order_id = 'B-FAST'"
        ))
        .await;
    for plan in ["command", "pulse"] {
        f.app
            .sql(&format!(
                "UPDATE workspaces SET plan = '{plan}' WHERE id = '{ws}'"
            ))
            .await;
        let (status, again) = f
            .json(json!({"email": "race@b.co", "event": "purchase", "orderId": "B-FAST"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{plan}: {again}");
        assert_eq!(again["duplicate"], true, "{plan}: {again}");
    }
    assert_eq!(f.count().await, 2);
    postback_domain::ingest::store::lock_keys_always(false);
}

/// Customers who buy again are equal keys of the events' email index (migration 000140): B-tree
/// deduplication keeps each customer's events as one key with a list of row pointers, so the
/// index stays a few bytes an event and an insert touches few pages as the month grows (with the
/// time in the key, every event was a new entry at its customer's place: 89 bytes an event here).
/// The email filter still lists one customer's events newest first, page by page.
#[tokio::test]
async fn the_email_index_stays_small_as_customers_buy_again_and_the_filter_pages_newest_first() {
    let app = TestApp::spawn_unthrottled().await;
    let user = app.signup("emailindex@inbound.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'clarity' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    // 2,400 purchases by 12 customers, from 16 connections at once.
    let mut senders = Vec::new();
    for task in 0..16 {
        let (url, key) = (app.url("/__cc/inbound"), key.clone());
        senders.push(tokio::spawn(async move {
            let client = crate::helpers::http_client();
            for n in 0..150 {
                let i = task * 150 + n;
                let body = json!({"email": format!("customer-{}@example.com", i % 12),
                    "event": "purchase", "value": 10, "currency": "USD", "orderId": format!("E-{i}")});
                let resp = client
                    .post(&url)
                    .header("X-CC-Api-Key", &key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{body}");
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let per_event = app
        .count(
            // Each month's index also has its metapage, even when empty: not counted.
            "SELECT ((SELECT sum(greatest(pg_relation_size(relid) - 8192, 0)) \
                      FROM pg_partition_tree('events_domain_email_idx')) \
                     / (SELECT count(*) FROM events))::bigint AS n",
        )
        .await;
    assert!(
        per_event <= 24,
        "the email index takes {per_event} bytes an event for 12 customers' 2,400 events"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path =
            format!("/v1/events?domainId={domain}&email=Customer-5%40example.com&limit=60");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = user.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for e in page["items"].as_array().unwrap() {
            assert_eq!(e["email"], "customer-5@example.com");
            let at = chrono::DateTime::parse_from_rfc3339(e["receivedAt"].as_str().unwrap());
            seen.push((at.unwrap(), e["id"].as_str().unwrap().to_owned()));
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 200, "customer 5's 200 events, each once");
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    newest_first.dedup();
    assert_eq!(seen, newest_first, "newest first across the pages");
}
