//! Hostile input (issue 17): text PostgreSQL cannot store, mixed into batches with good requests,
//! on every path that writes; a seeded property run of arbitrary Unicode and JSON through the
//! real endpoints into the real database.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{csrf_in, TestApp};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";

async fn inbound_raw(
    app: &TestApp,
    key: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, Value) {
    let resp = crate::helpers::http_client()
        .post(app.url("/__cc/inbound"))
        .header("X-CC-Api-Key", key)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("inbound");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_any_inbound_field_is_refused_by_name_and_never_fails_its_batch() {
    let app = TestApp::spawn().await;
    let user = app.signup("nul@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "main").await;

    let cases = [
        (json!({"orderId": "A\u{0}1"}), "orderId"),
        (json!({"firstName": "Ja\u{0}ne"}), "firstName"),
        (json!({"note": "free \u{0} text"}), "note"),
        (json!({"meta": {"deep": ["ok", "\u{0}"]}}), "meta.deep[1]"),
        (
            json!({"products": [{"name": "Mug\u{0}", "link": "https://shop.example.com/mug"}]}),
            "products[0].name",
        ),
        (json!({"bad\u{0}key": 1}), "a field name"),
    ];
    for (extra, field) in cases {
        let mut body = json!({"email": "buyer@example.com", "event": "purchase", "value": 10});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app.inbound(&key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(
            answer["error"],
            format!("{field} must not contain NUL (\\u0000) characters"),
            "{answer}"
        );
    }
    // Forms decode %00 to the same character, and are refused the same way.
    let (status, answer) = inbound_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        "email=buyer%40example.com&event=purchase&city=Pa%00ris".into(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["error"],
        "city must not contain NUL (\\u0000) characters"
    );

    // Poison and good submissions in the same instants share the committers' batches: every good
    // one is stored and answered 200, every poisoned one 400, none 5xx.
    let sends = (0..120).map(|i| {
        let app = &app;
        let key = &key;
        async move {
            let poisoned = i % 2 == 0;
            let order = if poisoned {
                format!("P-{i}\u{0}")
            } else {
                format!("G-{i}")
            };
            let body = json!({"email": format!("b{i}@example.com"), "event": "purchase",
                              "value": i, "orderId": order});
            (poisoned, app.inbound(key, body).await)
        }
    });
    for (poisoned, (status, answer)) in join_all(sends).await {
        let want = if poisoned {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        assert_eq!(status, want, "{answer}");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM events WHERE order_id LIKE 'G-%'")
            .await,
        60
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM events").await, 60);
}

fn clicker() -> reqwest::Client {
    crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(UA)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_with_nul_redirect_and_are_stored_cleaned_beside_good_ones() {
    let app = TestApp::spawn().await;
    let user = app.signup("go@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (status, link) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Ad", "slug": "spring",
                   "targets": [{"url": "https://shop.example.com/sale", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");

    let client = clicker();
    let clicks = (0..80).map(|i| {
        let client = &client;
        let url = if i % 2 == 0 {
            app.url(&format!(
                "/__cc/go/spring?utm_source=%00bad{i}&utm_campaign=c%00{i}"
            ))
        } else {
            app.url(&format!("/__cc/go/spring?utm_source=good{i}"))
        };
        async move { client.get(url).send().await.expect("click") }
    });
    for resp in join_all(clicks).await {
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("https://shop.example.com/sale?"),
            "{location}"
        );
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM touches").await, 80);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM touches WHERE utm_source LIKE 'bad%' AND utm_campaign LIKE 'c%'"
        )
        .await,
        40,
        "the poisoned clicks are stored without the NUL"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM touches WHERE utm_source LIKE 'good%'")
            .await,
        40
    );
    // A slug no link can have is the unknown-link page, not an error.
    let resp = client
        .get(app.url("/__cc/go/spr%00ing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.text().await.unwrap().contains("Link not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_reports_with_nul_are_recorded_cleaned() {
    let app = TestApp::spawn().await;
    let user = app.signup("collect@example.com").await;
    user.add_domain("shop.example.com").await;
    let (_, domains) = user.get("/v1/domains").await;
    let site = domains["items"][0]["siteId"].as_str().unwrap().to_owned();
    let reports = (0..40).map(|i| {
        let app = &app;
        let site = &site;
        async move {
            let (url, referrer) = if i % 2 == 0 {
                (
                    format!("https://shop.example.com/?utm_source=x%00{i}"),
                    "https://ref.example/\u{0}",
                )
            } else {
                (
                    format!("https://shop.example.com/?utm_source=ok{i}"),
                    "https://ref.example/",
                )
            };
            let body = json!({"site": site, "vid": format!("visitor-{i:04}"), "url": url,
                              "referrer": referrer});
            crate::helpers::http_client()
                .post(app.url("/__cc/collect"))
                .header("Content-Type", "text/plain")
                .header("User-Agent", UA)
                .body(body.to_string())
                .send()
                .await
                .expect("collect")
                .status()
        }
    });
    for status in join_all(reports).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM touches").await, 40);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM touches WHERE utm_source LIKE 'x%' AND referrer = 'https://ref.example/'")
            .await,
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_and_dashboard_refuse_nul_by_field_name() {
    let app = TestApp::spawn().await;
    let user = app.signup("mgmt@example.com").await;
    let (status, body) = user
        .post("/v1/domains", json!({"hostname": "sh\u{0}op.example.com"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "hostname must not contain NUL (\\u0000) characters"
    );
    let domain = user.add_domain("shop.example.com").await;
    let (status, body) = user
        .post(
            &format!("/v1/domains/{domain}/keys"),
            json!({"name": "k\u{0}"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "name must not contain NUL (\\u0000) characters"
    );
    let (status, body) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "https://hooks.example.com/x", "conditions": [
                {"field": "email", "op": "contains", "value": "\u{0}"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "conditions[0].value must not contain NUL (\\u0000) characters"
    );
    let (status, body) = user.get("/v1/events?email=a%00b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "query parameter email must not contain NUL (\\u0000) characters"
    );
    // Nothing was stored by the refused requests.
    assert_eq!(app.count("SELECT count(*) AS n FROM domains").await, 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM webhooks").await, 0);

    // A dashboard form: a page that says what to fix, nothing saved.
    let (_, page) = user.page("/domains").await;
    let token = csrf_in(&page);
    let resp = user
        .client
        .post(app.url("/domains"))
        .header("Origin", &app.base)
        .form(&[
            ("csrf_token", token.as_str()),
            ("hostname", "a\u{0}.example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("field hostname must not contain NUL"),
        "{html}"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM domains").await, 1);
}

/// A small deterministic generator (xorshift), so a failing run can be repeated with its seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Any Unicode scalar value, often the awkward ones.
    fn char(&mut self) -> char {
        const AWKWARD: &[char] = &[
            '\u{0}',
            '\u{1}',
            '\u{7f}',
            '\u{85}',
            '\u{a0}',
            '\u{200b}',
            '\u{202e}',
            '\u{feff}',
            '\u{fffd}',
            '\u{ffff}',
            '\u{10ffff}',
            '\'',
            '"',
            '\\',
            '%',
            '_',
            '<',
            '&',
            '\n',
        ];
        match self.below(4) {
            0 => *self.pick(AWKWARD),
            1 => char::from_u32(self.below(0x80) as u32).unwrap_or('a'),
            _ => loop {
                if let Some(c) = char::from_u32(self.below(0x11_0000) as u32) {
                    break c;
                }
            },
        }
    }
    fn text(&mut self, max: u64) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| self.char()).collect()
    }
    fn json(&mut self, depth: u32) -> Value {
        match if depth == 0 {
            self.below(5)
        } else {
            self.below(7)
        } {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => json!(self.next() as i64 / (1 + self.below(1_000_000) as i64)),
            3 => json!((self.next() as f64) / 1e6 * if self.below(2) == 0 { -1.0 } else { 1.0 }),
            4 => Value::String(self.text(12)),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(4))
                    .map(|_| (self.text(6), self.json(depth - 1)))
                    .collect(),
            ),
        }
    }
}

const FIELDS: &[&str] = &[
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

/// An inbound body: mostly well-formed, with one to four fields replaced by arbitrary JSON.
fn inbound_body(g: &mut Gen, i: usize) -> Value {
    let mut body = json!({"email": format!("p{i}@example.com"), "event": "purchase",
                          "value": 5, "orderId": format!("prop-{i}")});
    for _ in 0..=g.below(3) {
        let field = if g.below(4) == 0 {
            g.text(8)
        } else {
            (*g.pick(FIELDS)).to_owned()
        };
        body[field] = g.json(3);
    }
    body
}

/// Arbitrary Unicode and JSON through the real endpoints into the real database: inbound (JSON
/// and forms), tracking reports, clicks, and management-API writes. Every answer is 2xx or 4xx,
/// and the database holds exactly what was acknowledged. `POSTBACK_PROPERTY_SEED` repeats a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_unicode_and_json_get_only_2xx_or_4xx_and_the_database_holds_what_was_acknowledged(
) {
    let seed: u64 = std::env::var("POSTBACK_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("POSTBACK_PROPERTY_SEED={seed}");
    let mut g = Gen(seed);
    let app = TestApp::spawn_unthrottled().await;
    let user = app.signup("property@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "main").await;
    let (_, domains) = user.get("/v1/domains").await;
    let site = domains["items"][0]["siteId"].as_str().unwrap().to_owned();
    let (status, _) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Ad", "slug": "prop",
                   "targets": [{"url": "https://shop.example.com/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let client = clicker();
    let mut stored: Vec<String> = Vec::new();
    for round in 0..6 {
        // Inbound in concurrent groups, so arbitrary bodies share batches with good ones.
        let bodies: Vec<(usize, Value)> = (0..40)
            .map(|j| {
                let i = round * 40 + j;
                (i, inbound_body(&mut g, i))
            })
            .collect();
        let answers = join_all(bodies.iter().map(|(_, b)| app.inbound(&key, b.clone()))).await;
        for ((i, body), (status, answer)) in bodies.iter().zip(answers) {
            assert!(
                status.is_success() || status.is_client_error(),
                "seed {seed}: inbound {body} answered {status} {answer}"
            );
            if status.is_client_error() {
                assert!(answer["error"].is_string(), "seed {seed}: {answer}");
            } else if answer["duplicate"] != true {
                stored.push(answer["eventId"].as_str().unwrap().to_owned());
                assert_eq!(answer["ok"], true);
                let _ = i;
            }
        }
        // Forms: arbitrary names and values, percent-encoded.
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("email", &format!("f{round}@example.com"))
            .append_pair("event", "lead");
        for _ in 0..g.below(4) {
            let (k, v) = (g.text(6), g.text(10));
            form.append_pair(&k, &v);
        }
        let (status, answer) = inbound_raw(
            &app,
            &key,
            "application/x-www-form-urlencoded",
            form.finish(),
        )
        .await;
        assert!(
            status.is_success() || status.is_client_error(),
            "seed {seed}: form answered {status} {answer}"
        );
        if status.is_success() && answer["duplicate"] != true {
            stored.push(answer["eventId"].as_str().unwrap().to_owned());
        }
        // Tracking reports and clicks with arbitrary text.
        let reports = (0..10).map(|k| {
            let body = json!({"site": site, "vid": format!("prop-visitor-{round}-{k}"),
                "url": format!("https://shop.example.com/?utm_source={}",
                    url::form_urlencoded::byte_serialize(g.text(10).as_bytes()).collect::<String>()),
                "referrer": g.json(1)});
            let app = &app;
            async move {
                crate::helpers::http_client()
                    .post(app.url("/__cc/collect"))
                    .header("Content-Type", "text/plain")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("collect")
                    .status()
            }
        });
        for status in join_all(reports.collect::<Vec<_>>()).await {
            assert!(
                status.is_success() || status.is_client_error(),
                "seed {seed}: collect {status}"
            );
        }
        let clicks = (0..10).map(|_| {
            let q: String = url::form_urlencoded::byte_serialize(g.text(12).as_bytes()).collect();
            let url = app.url(&format!("/__cc/go/prop?utm_campaign={q}&{q}={q}"));
            let client = &client;
            async move { client.get(url).send().await.expect("click").status() }
        });
        for status in join_all(clicks.collect::<Vec<_>>()).await {
            assert_eq!(status, StatusCode::FOUND, "seed {seed}");
        }
        // Management API writes with arbitrary names.
        let name = g.text(20);
        let (status, answer) = user
            .post(&format!("/v1/domains/{domain}/keys"), json!({"name": name}))
            .await;
        assert!(
            status.is_success() || status.is_client_error(),
            "seed {seed}: key {name:?} answered {status} {answer}"
        );
        let (status, answer) = user
            .post(
                "/v1/integrations/webhooks",
                json!({"url": "http://127.0.0.1:9/p",
                       "conditions": [{"field": "email", "op": "contains", "value": g.text(8)}]}),
            )
            .await;
        assert!(
            status.is_success() || status.is_client_error(),
            "seed {seed}: webhook answered {status} {answer}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Every acknowledged event is stored, and nothing else is.
    let n = app.count("SELECT count(*) AS n FROM events").await;
    assert_eq!(n as usize, stored.len(), "seed {seed}");
    let listed = stored
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    if !stored.is_empty() {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM events WHERE id IN ({listed})"
            ))
            .await as usize,
            stored.len(),
            "seed {seed}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM touches WHERE link_id IS NOT NULL")
            .await,
        60,
        "seed {seed}: every click was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_conditions_that_cannot_be_read_pause_the_webhook_and_send_nothing() {
    let app = TestApp::spawn().await;
    let receiver = crate::receiver::Receiver::start().await;
    receiver.always(crate::receiver::Reply::ok());
    let user = app.signup("closed@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "main").await;
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/guarded"), "conditions": [
                {"field": "revenue", "op": "greater_than", "value": 100}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let id = hook["id"].as_str().unwrap().to_owned();
    // The row is damaged (a field that no longer exists, say, after a downgrade).
    app.sql(&format!(
        "UPDATE webhooks SET conditions = '[{{\"field\": \"no_such_field\", \"op\": \"equals\", \"value\": \"x\"}}]' WHERE id = '{id}'"
    ))
    .await;
    for i in 0..3 {
        let (status, answer) = app
            .inbound(
                &key,
                json!({"email": "c@example.com", "event": "purchase", "value": 500,
                       "orderId": format!("closed-{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["dispatched"], json!([]), "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty(), "nothing is sent");
    assert_eq!(app.count("SELECT count(*) AS n FROM deliveries").await, 0);
    let (_, shown) = user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert_eq!(shown["status"], "paused", "{shown}");
    let reason = shown["pausedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("Its conditions could not be read (")
            && reason.contains("no_such_field"),
        "{reason}"
    );
    let (_, page) = user.page(&format!("/webhooks/{id}")).await;
    assert!(page.contains("Its conditions could not be read"), "{page}");
    assert!(!page.contains("New deliveries are held"), "{page}");
}

/// Two owners demoting (or removing) each other at the same moment: one wins, the other is
/// refused, and the workspace always keeps an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_demoting_each_other_at_once_leave_an_owner() {
    let app = TestApp::spawn().await;
    let a = app.signup("owner-a@race.example").await;
    let b = app.signup("owner-b@race.example").await;
    let (_, me) = a.get("/v1/me").await;
    let a_id = me["userId"].as_str().unwrap().to_owned();
    let (_, me) = b.get("/v1/me").await;
    let b_id = me["userId"].as_str().unwrap().to_owned();
    let ws = a.workspace_id.clone();
    app.sql(&format!(
        "INSERT INTO memberships (workspace_id, user_id, role) VALUES ('{ws}', '{b_id}', 'owner')"
    ))
    .await;
    let (status, _) = b
        .post(&format!("/v1/workspaces/{ws}/switch"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (b_path, a_path) = (format!("/v1/members/{b_id}"), format!("/v1/members/{a_id}"));
    for round in 0..12 {
        let demote_b = a.patch(&b_path, json!({"role": "member"}));
        // The last round removes instead: a removed owner's sessions end with it.
        let (ra, rb) = if round == 11 {
            let remove_a = b.delete(&a_path);
            tokio::join!(demote_b, remove_a)
        } else {
            let demote_a = b.patch(&a_path, json!({"role": "member"}));
            tokio::join!(demote_b, demote_a)
        };
        let owners = app
            .count(&format!(
                "SELECT count(*) AS n FROM memberships WHERE workspace_id = '{ws}' AND role = 'owner'"
            ))
            .await;
        assert_eq!(owners, 1, "round {round}: {ra:?} {rb:?}");
        let won = [&ra, &rb].iter().filter(|r| r.0.is_success()).count();
        assert_eq!(
            won, 1,
            "round {round}: exactly one change wins: {ra:?} {rb:?}"
        );
        let loser = if ra.0.is_success() { &rb } else { &ra };
        // When the removal wins, the removed owner's sessions end with it: a request of theirs
        // that is authenticated after it committed is answered 401, not 403 or 409.
        let signed_out =
            round == 11 && std::ptr::eq(loser, &ra) && loser.0 == StatusCode::UNAUTHORIZED;
        assert!(
            loser.0 == StatusCode::FORBIDDEN || loser.0 == StatusCode::CONFLICT || signed_out,
            "round {round}: {loser:?}"
        );
        // Put both back as owners for the next round.
        app.sql(&format!(
            "INSERT INTO memberships (workspace_id, user_id, role) VALUES ('{ws}', '{a_id}', 'owner'), ('{ws}', '{b_id}', 'owner')
             ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = 'owner'"
        ))
        .await;
    }
}

/// Waits, when needed, until the current minute has at least 30 s left: budgets count in
/// windows aligned to the minute, and a test must not straddle two.
pub async fn fresh_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_millis() % 60_000;
    if into > 30_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into + 50) as u64)).await;
    }
}

fn budgets(per_client: u32, per_site: u32) -> impl FnOnce(&mut postback_runtime::AppState) {
    move |s| {
        s.budgets.per_client = postback_runtime::shared_limit::Budget::per_minute(per_client);
        s.budgets.per_site = postback_runtime::shared_limit::Budget::per_minute(per_site);
        s.trusted_proxies = std::sync::Arc::new("127.0.0.1/32".parse().unwrap());
    }
}

async fn collect_from(
    app: &TestApp,
    site: &str,
    vid: &str,
    from: Option<&str>,
) -> reqwest::Response {
    let mut req = crate::helpers::http_client()
        .post(app.url("/__cc/collect"))
        .header("Content-Type", "text/plain")
        .header("User-Agent", UA)
        .body(json!({"site": site, "vid": vid, "url": "https://shop.example.com/"}).to_string());
    if let Some(ip) = from {
        req = req.header("X-Forwarded-For", ip);
    }
    req.send().await.expect("collect")
}

async fn site_of(user: &crate::helpers::User) -> String {
    user.add_domain("shop.example.com").await;
    let (_, domains) = user.get("/v1/domains").await;
    domains["items"][0]["siteId"].as_str().unwrap().to_owned()
}

/// Clients are counted by the address the trusted proxy reports, IPv6 by /64; without trusted
/// proxies `X-Forwarded-For` means nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_counted_by_trusted_address_and_ipv6_by_64() {
    fresh_minute().await;
    let app = TestApp::spawn_adjusted(None, budgets(10, 100_000)).await;
    let user = app.signup("v6@example.com").await;
    let site = site_of(&user).await;
    // Ten addresses of one /64 share one budget.
    for i in 1..=10 {
        let resp = collect_from(
            &app,
            &site,
            "visitor-v6-1",
            Some(&format!("2001:db8:1:2::{i:x}")),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
    }
    let resp = collect_from(&app, &site, "visitor-v6-1", Some("2001:db8:1:2:ffff::1")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    // Another /64, and another IPv4 client, have their own.
    let resp = collect_from(&app, &site, "visitor-v6-2", Some("2001:db8:1:3::1")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = collect_from(&app, &site, "visitor-v4-1", Some("198.51.100.1")).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Without trusted proxies, every request from here is 127.0.0.1, whatever it claims.
    let direct = TestApp::spawn_adjusted(None, |s| {
        s.budgets.per_client = postback_runtime::shared_limit::Budget::per_minute(5);
    })
    .await;
    let user = direct.signup("direct@example.com").await;
    let site = site_of(&user).await;
    for i in 1..=5 {
        let resp = collect_from(
            &direct,
            &site,
            "visitor-direct",
            Some(&format!("198.51.100.{i}")),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = collect_from(&direct, &site, "visitor-direct", Some("198.51.100.99")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A site's budget holds whatever the number of clients, and is shared by every instance: two
/// servers on one database refuse once their requests together spend it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_budgets_are_shared_by_every_instance() {
    fresh_minute().await;
    let a = TestApp::spawn_adjusted(None, budgets(1_000, 40)).await;
    let b = TestApp::spawn_adjusted(Some(&a.db_url), budgets(1_000, 40)).await;
    let user = a.signup("shared@example.com").await;
    let site = site_of(&user).await;
    let mut accepted = 0;
    for i in 0..30 {
        let resp = collect_from(
            &a,
            &site,
            "visitor-shared",
            Some(&format!("198.51.100.{i}")),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        accepted += 1;
    }
    // The other instance learns a bucket's shared total when it first flushes its own count of
    // it (until then it may overshoot by what it receives in one flush interval): one request,
    // a few flushes, and it knows the 31 already spent.
    tokio::time::sleep(postback_runtime::shared_limit::FLUSH * 3).await;
    let resp = collect_from(&b, &site, "visitor-shared", Some("203.0.113.200")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    accepted += 1;
    tokio::time::sleep(postback_runtime::shared_limit::FLUSH * 3).await;
    let mut refused = None;
    for i in 0..30 {
        let resp = collect_from(&b, &site, "visitor-shared", Some(&format!("203.0.113.{i}"))).await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().get("retry-after").is_some());
            let body: Value = resp.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("for this site"),
                "{body}"
            );
            refused = Some(i);
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK);
        accepted += 1;
    }
    assert_eq!(
        refused,
        Some(9),
        "the second instance refuses the 41st request of the site"
    );
    assert_eq!(accepted, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_links_have_budgets_too() {
    fresh_minute().await;
    let app = TestApp::spawn_adjusted(None, budgets(5, 1_000)).await;
    let user = app.signup("go-budget@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (status, _) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Ad", "slug": "budget",
                   "targets": [{"url": "https://shop.example.com/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let client = clicker();
    for _ in 0..5 {
        let resp = client.get(app.url("/__cc/go/budget")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
    }
    let resp = client.get(app.url("/__cc/go/budget")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    // Another client still gets through.
    let resp = client
        .get(app.url("/__cc/go/budget"))
        .header("X-Forwarded-For", "198.51.100.77")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(app.count("SELECT count(*) AS n FROM touches").await, 6);
}

/// What one anonymous visitor can make Postback store is capped: landings per visitor per day,
/// and visitors linked to one email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_visitor_and_one_email_cannot_grow_the_tables_without_bound() {
    let app = TestApp::spawn_without_client_budget().await;
    let user = app.signup("caps@example.com").await;
    let site = site_of(&user).await;
    let cap = postback_domain::tracking::touches::MAX_TOUCHES_PER_VISITOR_PER_DAY;
    for i in 0..cap {
        let resp = collect_from(&app, &site, "visitor-capped", None).await;
        assert_eq!(resp.status(), StatusCode::OK, "landing {i}");
    }
    let resp = collect_from(&app, &site, "visitor-capped", None).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "3600");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM touches").await,
        cap,
        "the landing over the cap is not stored"
    );
    let per_email = postback_domain::tracking::touches::MAX_VISITORS_PER_EMAIL;
    for i in 0..per_email + 5 {
        let resp = crate::helpers::http_client()
            .post(app.url("/__cc/identify"))
            .header("Content-Type", "text/plain")
            .body(
                json!({"site": site, "vid": format!("visitor-email-{i:03}"),
                       "email": "victim@example.com"})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM visitor_emails").await,
        per_email
    );
}

/// Sign-up is throttled per client, and every 429 carries `Retry-After` (API and pages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_is_throttled_per_client_with_retry_after() {
    let app = TestApp::spawn_adjusted(None, |s| {
        s.budgets.signups = postback_runtime::shared_limit::Budget {
            limit: 3,
            window: Duration::from_secs(3600),
        };
    })
    .await;
    for i in 0..3 {
        app.signup(&format!("many-{i}@example.com")).await;
    }
    let resp = crate::helpers::http_client()
        .post(app.url("/v1/auth/signup"))
        .json(
            &json!({"email": "many-x@example.com", "password": crate::helpers::PASSWORD,
                      "workspaceName": "X"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait));
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Too many sign-ups"),
        "{body}"
    );
    // The form too.
    let browser = app.browser();
    let html = browser
        .get(app.url("/signup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&html);
    let resp = browser
        .post(app.url("/signup"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "many-y@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("workspace_name", "Y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    assert!(resp.text().await.unwrap().contains("Too many sign-ups"));
    assert_eq!(app.count("SELECT count(*) AS n FROM users").await, 3);
}

/// The monthly quota's 429 says when it renews.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_quota_answers_retry_after_the_month() {
    let app = TestApp::spawn().await;
    let user = app.signup("quota-retry@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "main").await;
    let ws = &user.workspace_id;
    app.sql(&format!(
        "INSERT INTO usage_counters (workspace_id, month, shard, events) \
         VALUES ('{ws}', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 7, 10000)"
    ))
    .await;
    let resp = crate::helpers::http_client()
        .post(app.url("/__cc/inbound"))
        .header("X-CC-Api-Key", &key)
        .json(&json!({"email": "q@example.com", "event": "lead"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=31 * 86_400).contains(&wait), "{wait}");
}
