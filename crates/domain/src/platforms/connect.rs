//! Connecting a platform by OAuth (authorization-code flow, RFC 6749 §4.1, with PKCE, RFC 7636):
//! a flow is started for a domain in one session (its `state` stored hashed, its code verifier
//! sealed), the provider sends the user back with `code` and `state`, which is accepted once,
//! within 10 minutes, in the same session; the token the code is exchanged for (Google's refresh
//! token, Meta's long-lived token, TikTok's access token) waits (sealed) until the user picks the
//! account to connect. Meta's and TikTok's parameters: `meta_connect`, `tiktok_connect`.
//!
//! Google's parameters ("Using OAuth 2.0 for Web Server Applications",
//! https://developers.google.com/identity/protocols/oauth2/web-server): `client_id`,
//! `redirect_uri`, `response_type=code`, `scope`, `access_type=offline` (a refresh token),
//! `prompt=consent` (a refresh token again on a repeated sign-in), `state`,
//! `code_challenge` + `code_challenge_method=S256`; the code is exchanged at the token endpoint
//! with `grant_type=authorization_code`, `code`, `redirect_uri`, `code_verifier`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::sql_types::{Bytea, Jsonb, Text, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::oauth::App;
use super::Platform;
use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, SessionId, WorkspaceId};
use crate::secrets::{random_bytes, sha256};

/// How long a started sign-in may take, and how long its refresh token waits for the pick.
pub const FLOW_MINUTES: i64 = 10;
pub const PICK_MINUTES: i64 = 60;

/// The provider's authorization page to send the user to, for a new flow.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    session_id: SessionId,
    domain_id: DomainId,
    platform: Platform,
    app: &App,
    authorize_url: &str,
    redirect_uri: &str,
    scopes: &str,
) -> DomainResult<String> {
    crate::tenancy::domains::get(conn, workspace_id, domain_id).await?;
    let state = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    // S256: BASE64URL(SHA256(ASCII(code_verifier))), RFC 7636 §4.2.
    let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    diesel::sql_query(
        "INSERT INTO oauth_flows (id, workspace_id, session_id, domain_id, platform, state_sha256, code_verifier)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<SqlUuid, _>(session_id.0)
    .bind::<SqlUuid, _>(domain_id.0)
    .bind::<Text, _>(platform.as_str())
    .bind::<Bytea, _>(sha256(state.as_bytes()))
    .bind::<Jsonb, _>(crate::secrets::seal::seal_json(&json!(verifier))?)
    .execute(conn)
    .await?;
    let mut url = url::Url::parse(authorize_url)
        .map_err(|e| DomainError::internal(format!("authorization URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        match platform {
            // Facebook Login's dialog (`meta_connect`): no PKCE in this flow.
            Platform::Meta => q
                .append_pair("client_id", &app.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", scopes)
                .append_pair("state", &state),
            // TikTok for Business's advertiser authorization (`tiktok_connect`).
            Platform::TikTok => q
                .append_pair("app_id", &app.client_id)
                .append_pair("state", &state)
                .append_pair("redirect_uri", redirect_uri),
            Platform::GoogleAds => q
                .append_pair("client_id", &app.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", scopes)
                .append_pair("access_type", "offline")
                .append_pair("prompt", "consent")
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256"),
        };
    }
    Ok(url.into())
}

#[derive(QueryableByName)]
struct FlowRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    domain_id: uuid::Uuid,
    #[diesel(sql_type = Jsonb)]
    code_verifier: serde_json::Value,
}

/// A flow the provider returned to.
#[derive(Debug)]
pub struct Returned {
    pub id: uuid::Uuid,
    pub domain_id: DomainId,
    pub code_verifier: String,
}

/// Accepts `state` once: it must belong to a flow of this platform started in this session
/// less than [`FLOW_MINUTES`] ago and not returned to yet. None: refused.
pub async fn returned(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    session_id: SessionId,
    platform: Platform,
    state: &str,
) -> DomainResult<Option<Returned>> {
    let row: Option<FlowRow> = diesel::sql_query(
        "UPDATE oauth_flows SET used_at = now()
         WHERE state_sha256 = $1 AND workspace_id = $2 AND session_id = $3 AND platform = $4
           AND used_at IS NULL AND created_at > now() - make_interval(mins => $5)
         RETURNING id, domain_id, code_verifier",
    )
    .bind::<Bytea, _>(sha256(state.as_bytes()))
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<SqlUuid, _>(session_id.0)
    .bind::<Text, _>(platform.as_str())
    .bind::<diesel::sql_types::Int4, _>(FLOW_MINUTES as i32)
    .get_result(conn)
    .await
    .optional_row()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let verifier = crate::secrets::seal::open_json(&row.code_verifier)?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Some(Returned {
        id: row.id,
        domain_id: DomainId(row.domain_id),
        code_verifier: verifier,
    }))
}

/// The token endpoint request exchanging `code`: (url, form body).
pub fn code_request(
    app: &App,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> (String, Vec<u8>) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &app.client_id)
        .append_pair("client_secret", &app.client_secret)
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish();
    (app.token_url.clone(), body.into_bytes())
}

/// Keeps the token the connection will store (sealed) until the pick: Google's refresh token,
/// Meta's long-lived token, TikTok's advertiser access token.
pub async fn keep(
    conn: &mut AsyncPgConnection,
    flow: uuid::Uuid,
    refresh_token: &str,
) -> DomainResult<()> {
    // Nothing offered yet: no pick is accepted until the lists are shown.
    diesel::sql_query("UPDATE oauth_flows SET refresh_token = $2, choices = '[]' WHERE id = $1")
        .bind::<SqlUuid, _>(flow)
        .bind::<Jsonb, _>(crate::secrets::seal::seal_json(&json!(refresh_token))?)
        .execute(conn)
        .await?;
    Ok(())
}

/// Keeps the values the user is offered to pick from: the pick must be one of them.
pub async fn offer(
    conn: &mut AsyncPgConnection,
    flow: uuid::Uuid,
    choices: &[String],
) -> DomainResult<()> {
    diesel::sql_query("UPDATE oauth_flows SET choices = $2 WHERE id = $1")
        .bind::<SqlUuid, _>(flow)
        .bind::<Jsonb, _>(json!(choices))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = SqlUuid)]
    domain_id: uuid::Uuid,
    #[diesel(sql_type = Jsonb)]
    refresh_token: serde_json::Value,
}

/// Takes (once) the kept token of a returned flow of this session, with its domain, when
/// `choice` is one of the values offered ([`offer`]). None: no such flow waiting; Invalid: a
/// choice that was not offered (the flow keeps waiting).
pub async fn take_pending(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    session_id: SessionId,
    platform: Platform,
    flow: uuid::Uuid,
    choice: &str,
) -> DomainResult<Option<(DomainId, String)>> {
    const WAITING: &str = "id = $1 AND workspace_id = $2 AND session_id = $3 AND platform = $4
           AND refresh_token IS NOT NULL AND created_at > now() - make_interval(mins => $5)";
    let row: Option<PendingRow> = diesel::sql_query(format!(
        "DELETE FROM oauth_flows
         WHERE {WAITING} AND (choices IS NULL OR choices ? $6)
         RETURNING domain_id, refresh_token"
    ))
    .bind::<SqlUuid, _>(flow)
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<SqlUuid, _>(session_id.0)
    .bind::<Text, _>(platform.as_str())
    .bind::<diesel::sql_types::Int4, _>(PICK_MINUTES as i32)
    .bind::<Text, _>(choice)
    .get_result(conn)
    .await
    .optional_row()?;
    let Some(row) = row else {
        #[derive(QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            waiting: bool,
        }
        let still: Waiting = diesel::sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM oauth_flows WHERE {WAITING}) AS waiting"
        ))
        .bind::<SqlUuid, _>(flow)
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<SqlUuid, _>(session_id.0)
        .bind::<Text, _>(platform.as_str())
        .bind::<diesel::sql_types::Int4, _>(PICK_MINUTES as i32)
        .get_result(conn)
        .await?;
        if still.waiting {
            return Err(DomainError::Invalid(
                "choice must be one of the listed choices".into(),
            ));
        }
        return Ok(None);
    };
    let token = crate::secrets::seal::open_json(&row.refresh_token)?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Some((DomainId(row.domain_id), token)))
}

trait OptionalRow<T> {
    fn optional_row(self) -> DomainResult<Option<T>>;
}

impl<T> OptionalRow<T> for Result<T, diesel::result::Error> {
    fn optional_row(self) -> DomainResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(diesel::result::Error::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
