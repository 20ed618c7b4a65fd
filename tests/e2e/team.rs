//! The team: owners invite people by email (an invitation mail whose link alone joins, whether or
//! not the address has an account), change roles and remove members; members do everything but
//! manage members; a user in several workspaces switches between them. tests/e2e/mail.rs reads
//! the invitation mails over real SMTP; here the link is read from the queued mail.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::mail::queued_token;

#[tokio::test]
async fn owners_manage_members_and_members_switch_workspaces() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@team.example").await;
    owner.add_domain("team.example.com").await;
    let mate = app.signup("mate@team.example").await;

    let (status, added) = owner
        .post(
            "/v1/members",
            json!({"email": "Mate@Team.example", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["kind"], "invitation");
    let (status, again) = owner
        .post("/v1/members", json!({"email": "mate@team.example"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "already invited: {again}");
    let token = queued_token(&app, "mate@team.example", "/invitations/accept").await;
    let (status, joined) = mate
        .post("/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["role"], "member");
    let (_, me) = mate.get("/v1/me").await;
    let mate_id = me["userId"].as_str().expect("userId").to_owned();
    let (status, again) = owner
        .post("/v1/members", json!({"email": "mate@team.example"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "already a member: {again}");

    // The mate sees both workspaces and switches to the owner's.
    let (_, list) = mate.get("/v1/workspaces").await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    let (status, _) = mate
        .post(
            &format!("/v1/workspaces/{}/switch", owner.workspace_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, domains) = mate.get("/v1/domains").await;
    assert_eq!(domains["items"][0]["hostname"], "team.example.com");
    // A workspace one does not belong to is not found.
    let stranger = app.signup("stranger@team.example").await;
    let (status, _) = mate
        .post(
            &format!("/v1/workspaces/{}/switch", stranger.workspace_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Members do not manage members.
    let (status, e) = mate
        .post("/v1/members", json!({"email": "x@team.example"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert!(e["error"].as_str().expect("error").contains("Only owners"));

    // The last owner stays.
    let (_, me) = owner.get("/v1/me").await;
    let owner_id = me["userId"].as_str().expect("userId").to_owned();
    let (status, e) = owner
        .patch(
            &format!("/v1/members/{owner_id}"),
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    let (status, _) = owner.delete(&format!("/v1/members/{owner_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, m) = owner
        .patch(&format!("/v1/members/{mate_id}"), json!({"role": "owner"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(m["role"], "owner");
    let (status, _) = owner
        .patch(&format!("/v1/members/{mate_id}"), json!({"role": "king"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Another workspace's owner cannot touch this one's members.
    let (status, _) = stranger.delete(&format!("/v1/members/{mate_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removed: the mate's session in this workspace ends.
    let (status, _) = owner.delete(&format!("/v1/members/{mate_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = mate.get("/v1/domains").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, audit) = owner.get("/v1/audit").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "member.remove",
            "member.role",
            "member.join",
            "member.invite",
            "domain.create"
        ]
    );
}

#[tokio::test]
async fn an_invitation_joins_with_its_link_not_at_sign_up() {
    let app = TestApp::spawn().await;
    let owner = app.signup("boss@invite.example").await;
    let (status, inv) = owner
        .post(
            "/v1/members",
            json!({"email": "newbie@invite.example", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["kind"], "invitation");
    let (_, team) = owner.get("/v1/members").await;
    assert_eq!(team["invitations"][0]["email"], "newbie@invite.example");

    let newbie = app.signup("newbie@invite.example").await;
    let (_, list) = newbie.get("/v1/workspaces").await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1, "{list}");
    let token = queued_token(&app, "newbie@invite.example", "/invitations/accept").await;
    let (status, _) = newbie
        .post("/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = newbie.get("/v1/workspaces").await;
    let roles: Vec<(&str, bool)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| (w["role"].as_str().expect("role"), w["current"] == true))
        .collect();
    assert_eq!(roles.len(), 2, "{list}");
    assert!(
        roles.contains(&("owner", false)),
        "joined the inviting workspace as owner"
    );
    let (_, team) = owner.get("/v1/members").await;
    assert_eq!(team["items"].as_array().expect("items").len(), 2);
    assert_eq!(team["invitations"], json!([]));

    // Withdrawing an invitation.
    let (_, inv) = owner
        .post("/v1/members", json!({"email": "later@invite.example"}))
        .await;
    let id = inv["id"].as_str().expect("id");
    let (status, _) = owner.delete(&format!("/v1/invitations/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, team) = owner.get("/v1/members").await;
    assert_eq!(team["invitations"], json!([]));
}
