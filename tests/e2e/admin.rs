//! Platform admin: only admins see `/admin` and `/v1/admin`; plan changes and suspension take
//! effect at once, are audited, and delete nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn only_platform_admins_see_admin_routes() {
    let app = TestApp::spawn().await;
    // The first account of an install is its platform admin.
    let admin = app.signup("root@example.com").await;
    let user = app.signup("customer@example.com").await;
    for path in [
        "/v1/admin/workspaces",
        "/v1/admin/plans",
        "/v1/admin/audit",
        &format!("/v1/admin/workspaces/{}", user.workspace_id),
    ] {
        let (status, _) = user.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let (status, _) = admin.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _) = user
        .patch(
            &format!("/v1/admin/workspaces/{}", user.workspace_id),
            json!({"plan": "command"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, html) = user.page("/admin").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    let (status, html) = admin.page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("customer@example.com"));

    // Search by owner email.
    let (_, found) = admin.get("/v1/admin/workspaces?search=CUSTOMER@").await;
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["ownerEmail"], "customer@example.com");
    assert_eq!(items[0]["plan"], "pulse");
    assert_eq!(items[0]["eventQuota"], 10000);
}

#[tokio::test]
async fn plan_changes_and_suspension_apply_at_once_and_are_audited() {
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let app = TestApp::spawn().await;
    let admin = app.signup("ops@example.com").await;
    let user = app.signup("shop.owner@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let (status, _) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ws = format!("/v1/admin/workspaces/{}", user.workspace_id);

    // Plan change: the user's limits change on the next request.
    let (status, w) = admin.patch(&ws, json!({"plan": "signal"})).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w["planName"], "Signal");
    let (_, me) = user.get("/v1/me").await;
    assert!(me.to_string().contains("signal"), "{me}");
    let (status, e) = admin.patch(&ws, json!({"plan": "platinum"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"]
        .as_str()
        .expect("error")
        .contains("plan must be one of"));

    // An event goes out before the suspension.
    let (status, sent) = app
        .inbound(&key, json!({"email": "a@example.com", "event": "purchase"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    receiver.wait_for(1, Duration::from_secs(10)).await;

    // Suspending needs a reason; then inbound is refused and nothing new is sent.
    let (status, e) = admin.patch(&ws, json!({"status": "suspended"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().expect("error").contains("reason"));
    let (status, w) = admin
        .patch(
            &ws,
            json!({"status": "suspended", "reason": "Unpaid invoice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w["suspendedReason"], "Unpaid invoice");
    let (status, refused) = app
        .inbound(&key, json!({"email": "b@example.com", "event": "purchase"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (_, event) = user
        .get(&format!(
            "/v1/events/{}",
            sent["eventId"].as_str().expect("id")
        ))
        .await;
    let delivery = event["deliveries"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_owned();
    let (status, _) = user
        .post(&format!("/v1/deliveries/{delivery}/redeliver"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing is sent while suspended"
    );
    let (_, d) = user.get(&format!("/v1/deliveries/{delivery}")).await;
    assert_eq!(d["status"], "held", "{d}");
    // Nothing was deleted.
    let (_, hooks) = user.get("/v1/integrations/webhooks").await;
    assert_eq!(hooks["items"].as_array().expect("items").len(), 1);

    // Restored: the held delivery goes out and inbound is accepted again.
    let (status, _) = admin.patch(&ws, json!({"status": "active"})).await;
    assert_eq!(status, StatusCode::OK);
    receiver.wait_for(2, Duration::from_secs(10)).await;
    let (status, _) = app
        .inbound(&key, json!({"email": "c@example.com", "event": "purchase"}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Every change is in the audit log, the admin's and the owner's own.
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["action"].as_str().expect("action"))
        .collect();
    // The owner's own actions before them (audited since issue 17) come last, oldest.
    assert_eq!(
        actions,
        vec![
            "workspace.restore",
            "delivery.redeliver",
            "workspace.suspend",
            "workspace.plan",
            "webhook.create",
            "key.create",
            "domain.create"
        ]
    );
    let plan_entry = &audit["items"][3];
    assert_eq!(plan_entry["actorEmail"], "ops@example.com");
    assert_eq!(plan_entry["before"]["plan"], "pulse");
    assert_eq!(plan_entry["after"]["plan"], "signal");
    let (status, own) = user.get("/v1/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["items"].as_array().expect("items").len(), 7);
}

#[tokio::test]
async fn plan_limits_are_editable_and_enforced_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.signup("limits.admin@example.com").await;
    let user = app.signup("limits.user@example.com").await;
    let (status, p) = admin
        .patch(
            "/v1/admin/plans/pulse",
            json!({"maxWebhooks": 1, "maxDomains": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["maxWebhooks"], 1);
    assert_eq!(p["maxDomains"], serde_json::Value::Null);
    for host in ["one.example.com", "two.example.com", "three.example.com"] {
        user.add_domain(host).await;
    }
    let hook = json!({"url": "https://hooks.example.com/a"});
    let (status, _) = user.post("/v1/integrations/webhooks", hook.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, e) = user.post("/v1/integrations/webhooks", hook).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        e["error"]
            .as_str()
            .expect("error")
            .contains("Pulse plan allows 1 webhook"),
        "{e}"
    );

    let (status, e) = admin
        .patch("/v1/admin/plans/pulse", json!({"retentionDays": 0}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"]
        .as_str()
        .expect("error")
        .contains("retentionDays"));
    let (status, _) = admin
        .patch("/v1/admin/plans/gold", json!({"maxWebhooks": 3}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
