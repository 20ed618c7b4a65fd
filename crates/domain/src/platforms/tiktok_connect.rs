//! Connecting TikTok by TikTok for Business's advertiser authorization
//! ("Authorization", https://business-api.tiktok.com/portal/docs?id=1738373141733378): the
//! authorization page (`POSTBACK_TIKTOK_AUTH_URL`, `https://business-api.tiktok.com/portal/auth`)
//! takes `app_id`, `state` and `redirect_uri` (the permissions are the app's, chosen when it is
//! registered, not sent in the URL) and returns to `redirect_uri` with `auth_code` (also sent as
//! `code`) and `state`. The code is exchanged, once and within 10 minutes, at
//! `POST /open_api/v1.3/oauth2/access_token/` with the JSON body `{app_id, secret, auth_code}`;
//! the answer carries `data.access_token` (an advertiser token, which does not expire; revoked
//! with `/oauth2/revoke_token/`) and `data.advertiser_ids`
//! (https://business-api.tiktok.com/portal/docs?id=1739965703387137; the official SDK,
//! github.com/tiktok/tiktok-business-api-sdk `js_sdk/docs/AuthenticationApi.md`).
//!
//! The lists to pick from, with the token in the `Access-Token` header: the advertisers that
//! authorized the app (`GET /open_api/v1.3/oauth2/advertiser/get/?app_id&secret`, `data.list[]`
//! of `advertiser_id`, `advertiser_name`, https://business-api.tiktok.com/portal/docs?id=1738455508553729)
//! and each advertiser's pixels (`GET /open_api/v1.3/pixel/list/?advertiser_id&page_size`,
//! `data.pixels[]` of `pixel_code`, `pixel_name`; the SDK's `js_sdk/docs/PixelApi.md`). Every
//! answer is HTTP 200 with `code` (0: success) and `message`.
//!
//! No PKCE: TikTok for Business's advertiser authorization has no code challenge parameter; the
//! exchange is server-side with the app secret, and `state` is bound to the session.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::oauth::App;
use super::signin::{Call, Choice, Context};

/// How many advertisers are listed (their pixels are fetched one request each).
pub const MAX_ADVERTISERS: usize = 20;

fn api(base: &str, path: &str) -> String {
    format!("{}/open_api/v1.3/{path}", base.trim_end_matches('/'))
}

/// The code exchange: (url, JSON body).
pub fn token_request(base: &str, app: &App, auth_code: &str) -> (String, Vec<u8>) {
    let body =
        json!({"app_id": app.client_id, "secret": app.client_secret, "auth_code": auth_code});
    (
        api(base, "oauth2/access_token/"),
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// The advertisers that authorized the app.
pub fn advertisers_url(base: &str, app: &App) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("app_id", &app.client_id)
        .append_pair("secret", &app.client_secret)
        .finish();
    format!("{}?{query}", api(base, "oauth2/advertiser/get/"))
}

/// An advertiser's pixels.
pub fn pixels_url(base: &str, advertiser_id: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("advertiser_id", advertiser_id)
        .append_pair("page_size", "20")
        .finish();
    format!("{}?{query}", api(base, "pixel/list/"))
}

/// `data` of a successful answer, or TikTok's code and message.
fn data(status: u16, body: &str) -> Result<Value, String> {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = json.get("code").and_then(Value::as_i64);
    if (200..300).contains(&status) && code == Some(0) {
        return Ok(json.get("data").cloned().unwrap_or(Value::Null));
    }
    let message = json.get("message").and_then(Value::as_str);
    Err(match (code, message) {
        (Some(c), Some(m)) => format!("TikTok code {c}: {m}"),
        (Some(c), None) => format!("TikTok code {c}"),
        _ => format!("HTTP {status}"),
    })
}

/// The access token of the code exchange's answer.
pub fn read_token(status: u16, body: &str) -> Result<String, String> {
    let data = data(status, body)?;
    data.get("access_token")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "no access_token in TikTok's answer".into())
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// (advertiser id, name) of `oauth2/advertiser/get`.
pub fn read_advertisers(status: u16, body: &str) -> Result<Vec<(String, String)>, String> {
    let data = data(status, body)?;
    Ok(data["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let id = text(a, "advertiser_id")?;
            let name = text(a, "advertiser_name").unwrap_or_else(|| "(unnamed)".into());
            Some((id, name))
        })
        .take(MAX_ADVERTISERS)
        .collect())
}

/// (pixel code, name) of `pixel/list`.
pub fn read_pixels(status: u16, body: &str) -> Result<Vec<(String, String)>, String> {
    let data = data(status, body)?;
    Ok(data["pixels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let code = text(p, "pixel_code")?;
            let name = text(p, "pixel_name").unwrap_or_else(|| "(unnamed)".into());
            Some((code, name))
        })
        .collect())
}

/// The sign-in's code exchange: the `auth_code` for an advertiser access token (kept, and used
/// for the lists).
pub fn exchange<'a>(
    cx: &'a Context<'a>,
    code: &'a str,
    _verifier: &'a str,
    _redirect: &'a str,
) -> BoxFuture<'a, Result<(String, String), String>> {
    Box::pin(async move {
        let (url, body) = token_request(cx.api, cx.app, code);
        let (status, body) = cx
            .http
            .send(Call::post("application/json", url, Vec::new(), body))
            .await
            .answered()?;
        let token = read_token(status, &body)?;
        Ok((token.clone(), token))
    })
}

/// The sign-in's lists: the advertisers that authorized the app and each one's pixels.
pub fn lists<'a>(
    cx: &'a Context<'a>,
    token: &'a str,
) -> BoxFuture<'a, Result<Vec<Choice>, String>> {
    Box::pin(async move {
        let header = vec![("Access-Token".to_owned(), token.to_owned())];
        let (status, body) = cx
            .http
            .send(Call::get(advertisers_url(cx.api, cx.app), header.clone()))
            .await
            .answered()?;
        let advertisers = read_advertisers(status, &body)
            .map_err(|why| format!("TikTok did not list the advertisers: {why}"))?;
        let mut choices = Vec::new();
        for (advertiser, advertiser_name) in advertisers {
            let (status, body) = cx
                .http
                .send(Call::get(pixels_url(cx.api, &advertiser), header.clone()))
                .await
                .answered()?;
            let pixels = read_pixels(status, &body).map_err(|why| {
                format!("TikTok did not list the pixels of {advertiser_name}: {why}")
            })?;
            for (pixel, pixel_name) in pixels {
                choices.push(Choice {
                    value: format!("{advertiser}:{pixel}"),
                    label: format!("{advertiser_name} ({advertiser}) › {pixel_name} ({pixel})"),
                });
            }
        }
        Ok(choices)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let app = App {
            client_id: "7001".into(),
            client_secret: "s&c".into(),
            ..App::default()
        };
        let (url, body) = token_request("https://business-api.tiktok.com/", &app, "ac-1");
        assert_eq!(
            url,
            "https://business-api.tiktok.com/open_api/v1.3/oauth2/access_token/"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"app_id": "7001", "secret": "s&c", "auth_code": "ac-1"})
        );
        assert_eq!(
            advertisers_url("https://business-api.tiktok.com", &app),
            "https://business-api.tiktok.com/open_api/v1.3/oauth2/advertiser/get/?app_id=7001&secret=s%26c"
        );
        assert_eq!(
            pixels_url("https://business-api.tiktok.com", "69"),
            "https://business-api.tiktok.com/open_api/v1.3/pixel/list/?advertiser_id=69&page_size=20"
        );
    }

    #[test]
    fn answers() {
        assert_eq!(
            read_token(
                200,
                r#"{"code":0,"message":"OK","data":{"access_token":"act.x","advertiser_ids":["69"],"scope":[4]}}"#
            ),
            Ok("act.x".into())
        );
        assert_eq!(
            read_token(200, r#"{"code":40110,"message":"auth_code is invalid"}"#),
            Err("TikTok code 40110: auth_code is invalid".into())
        );
        assert_eq!(
            read_advertisers(
                200,
                r#"{"code":0,"data":{"list":[{"advertiser_id":69,"advertiser_name":"Shop"},{"advertiser_name":"no id"}]}}"#
            ),
            Ok(vec![("69".into(), "Shop".into())])
        );
        assert_eq!(
            read_pixels(
                200,
                r#"{"code":0,"data":{"pixels":[{"pixel_code":"CABC123","pixel_name":"Web","pixel_id":"7"}]}}"#
            ),
            Ok(vec![("CABC123".into(), "Web".into())])
        );
        assert!(read_pixels(502, "bad gateway").is_err());
    }
}
