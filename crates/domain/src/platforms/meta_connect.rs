//! Connecting Meta by Facebook Login's authorization-code flow ("Manually Build a Login Flow",
//! https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow): the login
//! dialog (`POSTBACK_META_AUTH_URL`, `https://www.facebook.com/{version}/dialog/oauth`) takes
//! `client_id`, `redirect_uri`, `state`, `response_type=code` and `scope` (comma-separated
//! permissions) and returns to `redirect_uri` with `code` and `state`; the code is exchanged at
//! `GET {graph}/{version}/oauth/access_token` with `client_id`, `redirect_uri` (the same),
//! `client_secret` and `code`; the short-lived user token is then exchanged for a long-lived
//! one (`grant_type=fb_exchange_token`, "Long-Lived Access Tokens",
//! https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived).
//!
//! No PKCE: Meta documents PKCE only for its OIDC variant of the manual flow, "still in testing"
//! (https://developers.facebook.com/docs/facebook-login/guides/advanced/oidc-token); the code
//! exchange here is server-side with the app secret, and `state` is bound to the session.
//!
//! The lists to pick from: the user's ad accounts (`GET /{version}/me/adaccounts`,
//! https://developers.facebook.com/docs/marketing-api/reference/user/adaccounts/) and each
//! account's pixels / datasets (`GET /{version}/act_{id}/adspixels`,
//! https://developers.facebook.com/docs/marketing-api/reference/ad-account/adspixels/). The token
//! goes in the `Authorization: Bearer` header, as the Graph API accepts it (e.g. the WhatsApp
//! Cloud API's requests to graph.facebook.com), never in a URL.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::meta::GRAPH_VERSION;
use super::oauth::App;
use super::signin::{Call, Choice, Context};

/// The permissions asked for: `ads_management` (send Conversions API events for the pixels of
/// the ad accounts, list them) and `business_management` (pixels and ad accounts owned by a
/// business) (https://developers.facebook.com/docs/permissions).
pub const SCOPES: &str = "ads_management,business_management";

/// How many ad accounts are listed (their pixels are fetched one request each).
pub const MAX_ACCOUNTS: usize = 20;

fn url_with(base: &str, path: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = format!("{}/{GRAPH_VERSION}/{path}", base.trim_end_matches('/'));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    url
}

/// The code exchange: `GET {graph}/{version}/oauth/access_token?client_id&redirect_uri&client_secret&code`.
pub fn code_url(graph: &str, app: &App, code: &str, redirect_uri: &str) -> String {
    url_with(
        graph,
        "oauth/access_token",
        &[
            ("client_id", &app.client_id),
            ("redirect_uri", redirect_uri),
            ("client_secret", &app.client_secret),
            ("code", code),
        ],
    )
}

/// The exchange of a short-lived user token for a long-lived one (about 60 days).
pub fn long_lived_url(graph: &str, app: &App, token: &str) -> String {
    url_with(
        graph,
        "oauth/access_token",
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("fb_exchange_token", token),
        ],
    )
}

/// The user's ad accounts.
pub fn ad_accounts_url(graph: &str) -> String {
    url_with(
        graph,
        "me/adaccounts",
        &[
            ("fields", "account_id,name"),
            ("limit", &MAX_ACCOUNTS.to_string()),
        ],
    )
}

/// An ad account's pixels (datasets).
pub fn pixels_url(graph: &str, account_id: &str) -> String {
    url_with(
        graph,
        &format!("act_{account_id}/adspixels"),
        &[("fields", "id,name"), ("limit", "50")],
    )
}

/// The Graph API's error message (`{"error": {"message", "type", "code"}}`,
/// https://developers.facebook.com/docs/graph-api/guides/error-handling).
fn graph_error(status: u16, json: &Value) -> String {
    match json.pointer("/error/message").and_then(Value::as_str) {
        Some(m) => match json.pointer("/error/code").and_then(Value::as_i64) {
            Some(code) => format!("{m} (code {code})"),
            None => m.to_owned(),
        },
        None => format!("HTTP {status}"),
    }
}

/// The access token of a token answer (`{"access_token", "token_type", "expires_in"}`), or why not.
pub fn read_token(status: u16, body: &str) -> Result<String, String> {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match json.get("access_token").and_then(Value::as_str) {
        Some(t) if (200..300).contains(&status) && !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err(graph_error(status, &json)),
    }
}

/// A listing's `data`: (id, name) of each entry; `id_key` names the id field.
pub fn read_list(status: u16, body: &str, id_key: &str) -> Result<Vec<(String, String)>, String> {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        return Err(graph_error(status, &json));
    }
    let Some(data) = json.get("data").and_then(Value::as_array) else {
        return Err(graph_error(status, &json));
    };
    Ok(data
        .iter()
        .filter_map(|e| {
            let id = e.get(id_key).and_then(Value::as_str)?.trim();
            let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| {
                let name = e.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
                (id.to_owned(), name.to_owned())
            })
        })
        .collect())
}

/// The sign-in's code exchange: the code for a short-lived user token, that for a long-lived
/// one (kept, and used for the lists).
pub fn exchange<'a>(
    cx: &'a Context<'a>,
    code: &'a str,
    _verifier: &'a str,
    redirect: &'a str,
) -> BoxFuture<'a, Result<(String, String), String>> {
    Box::pin(async move {
        let short = cx
            .http
            .send(Call::get(
                code_url(cx.api, cx.app, code, redirect),
                Vec::new(),
            ))
            .await;
        let short = read_token(short.status.unwrap_or(0), &short.body)?;
        let long = cx
            .http
            .send(Call::get(
                long_lived_url(cx.api, cx.app, &short),
                Vec::new(),
            ))
            .await;
        let token = read_token(long.status.unwrap_or(0), &long.body)?;
        Ok((token.clone(), token))
    })
}

/// The sign-in's lists: the user's ad accounts and each one's pixels.
pub fn lists<'a>(
    cx: &'a Context<'a>,
    token: &'a str,
) -> BoxFuture<'a, Result<Vec<Choice>, String>> {
    Box::pin(async move {
        let bearer = vec![("Authorization".to_owned(), format!("Bearer {token}"))];
        let (status, body) = cx
            .http
            .send(Call::get(ad_accounts_url(cx.api), bearer.clone()))
            .await
            .answered()?;
        let accounts = read_list(status, &body, "account_id")
            .map_err(|why| format!("Meta did not list the ad accounts: {why}"))?;
        let mut choices = Vec::new();
        for (account, account_name) in accounts.into_iter().take(MAX_ACCOUNTS) {
            let (status, body) = cx
                .http
                .send(Call::get(pixels_url(cx.api, &account), bearer.clone()))
                .await
                .answered()?;
            let pixels = read_list(status, &body, "id")
                .map_err(|why| format!("Meta did not list the pixels of {account_name}: {why}"))?;
            for (pixel, pixel_name) in pixels {
                choices.push(Choice {
                    value: format!("{account}:{pixel}"),
                    label: format!("{account_name} ({account}) › {pixel_name} ({pixel})"),
                });
            }
        }
        Ok(choices)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            client_id: "1234".into(),
            client_secret: "s&cret".into(),
            ..App::default()
        }
    }

    #[test]
    fn exchange_urls() {
        assert_eq!(
            code_url("https://graph.facebook.com/", &app(), "AQ+x", "https://pb.example/oauth/meta/callback"),
            format!("https://graph.facebook.com/{GRAPH_VERSION}/oauth/access_token?client_id=1234\
             &redirect_uri=https%3A%2F%2Fpb.example%2Foauth%2Fmeta%2Fcallback&client_secret=s%26cret&code=AQ%2Bx")
        );
        assert_eq!(
            long_lived_url("https://graph.facebook.com", &app(), "EAA1"),
            format!("https://graph.facebook.com/{GRAPH_VERSION}/oauth/access_token?grant_type=fb_exchange_token\
             &client_id=1234&client_secret=s%26cret&fb_exchange_token=EAA1")
        );
        assert_eq!(
            pixels_url("https://graph.facebook.com", "42"),
            format!("https://graph.facebook.com/{GRAPH_VERSION}/act_42/adspixels?fields=id%2Cname&limit=50")
        );
    }

    #[test]
    fn answers() {
        assert_eq!(
            read_token(
                200,
                r#"{"access_token":"EAAlong","token_type":"bearer","expires_in":5183944}"#
            ),
            Ok("EAAlong".into())
        );
        assert_eq!(
            read_token(
                400,
                r#"{"error":{"message":"This authorization code has been used.","type":"OAuthException","code":100}}"#
            ),
            Err("This authorization code has been used. (code 100)".into())
        );
        assert_eq!(read_token(500, "busy"), Err("HTTP 500".into()));
        assert_eq!(
            read_list(
                200,
                r#"{"data":[{"account_id":"77","name":"Shop","id":"act_77"},{"account_id":"x"}]}"#,
                "account_id"
            ),
            Ok(vec![("77".into(), "Shop".into())])
        );
        assert!(read_list(
            401,
            r#"{"error":{"message":"Invalid OAuth access token.","code":190}}"#,
            "id"
        )
        .unwrap_err()
        .contains("code 190"));
    }
}
