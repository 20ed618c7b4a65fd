//! OAuth 2.0 token endpoint exchanges (RFC 6749), as Google's token endpoint speaks them:
//! refreshing an access token with a stored refresh token, and reading the answer.
//!
//! Wire format (Google, "Using OAuth 2.0 for Web Server Applications" › "Refreshing an access
//! token (offline access)", https://developers.google.com/identity/protocols/oauth2/web-server#offline):
//! `POST https://oauth2.googleapis.com/token`, `application/x-www-form-urlencoded` with
//! `client_id`, `client_secret`, `grant_type=refresh_token`, `refresh_token`; the answer is JSON
//! `{"access_token", "expires_in" (seconds), "scope", "token_type": "Bearer"}`. Errors follow
//! RFC 6749 §5.2 (https://www.rfc-editor.org/rfc/rfc6749#section-5.2): HTTP 400/401 with
//! `{"error": "invalid_grant" | "invalid_client" | "unauthorized_client" | …,
//! "error_description"}`; `invalid_grant` means the refresh token "is invalid, expired, revoked
//! … or was issued to another client" (Google answers "Token has been expired or revoked.").

use serde_json::Value;

/// What a request needs to obtain its access token: the connection's refresh token.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    pub refresh_token: String,
}

impl std::fmt::Debug for Grant {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grant(…)")
    }
}

impl Grant {
    /// A key to cache the access token under, without keeping the refresh token itself as the
    /// key (SHA-256).
    pub fn cache_key(&self) -> String {
        super::sha256_hex(&self.refresh_token)
    }
}

/// The operator's OAuth app at a provider (`POSTBACK_GOOGLE_CLIENT_ID`,
/// `POSTBACK_GOOGLE_CLIENT_SECRET`), and its token endpoint.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct App {
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
    /// The operator's developer token, when the platform has one (`POSTBACK_GOOGLE_DEVELOPER_TOKEN`).
    pub developer_token: Option<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Whether the operator set the app's id and secret.
    pub fn configured(&self) -> bool {
        !self.client_id.trim().is_empty() && !self.client_secret.trim().is_empty()
    }

    /// The refresh request: (url, headers, form body).
    pub fn refresh_request(&self, grant: &Grant) -> (String, Vec<(String, String)>, Vec<u8>) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &grant.refresh_token)
            .finish();
        (
            self.token_url.clone(),
            vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body.into_bytes(),
        )
    }
}

/// The operator settings of a platform's OAuth app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppSettings {
    /// e.g. `POSTBACK_GOOGLE_CLIENT_ID`.
    pub id_env: &'static str,
    /// e.g. `POSTBACK_GOOGLE_CLIENT_SECRET`.
    pub secret_env: &'static str,
    /// The endpoint setting of its token endpoint, when tokens are refreshed.
    pub token_env: Option<&'static str>,
    /// The setting of the operator's API developer token (Google Ads, to list accounts when
    /// connecting).
    pub developer_token_env: Option<&'static str>,
}

/// The operator's OAuth apps, per platform (only those whose id and secret are set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Apps {
    apps: std::collections::BTreeMap<super::Platform, App>,
}

impl Apps {
    /// Reads each platform's app settings through `get` (the environment, in production).
    pub fn from_settings(get: impl Fn(&str) -> Option<String>, urls: &super::PlatformUrls) -> Self {
        let mut apps = std::collections::BTreeMap::new();
        for &p in super::Platform::ALL {
            let Some(s) = p.adapter().app() else {
                continue;
            };
            let app = App {
                client_id: get(s.id_env).unwrap_or_default().trim().to_owned(),
                client_secret: get(s.secret_env).unwrap_or_default().trim().to_owned(),
                token_url: s
                    .token_env
                    .map(|e| urls.endpoint(e).to_owned())
                    .unwrap_or_default(),
                developer_token: s
                    .developer_token_env
                    .and_then(&get)
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty()),
            };
            if app.configured() {
                apps.insert(p, app);
            }
        }
        Self { apps }
    }

    /// One app (tests).
    pub fn with(mut self, platform: super::Platform, app: App) -> Self {
        self.apps.insert(platform, app);
        self
    }

    /// The platform's app, when the operator configured it.
    pub fn get(&self, platform: super::Platform) -> Option<&App> {
        self.apps.get(&platform)
    }
}

/// What the token endpoint answered.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenAnswer {
    /// A new access token, valid for `expires_in` seconds.
    Token {
        access_token: String,
        expires_in: u64,
    },
    /// The refresh token is revoked, expired or invalid, or the operator's app credentials are
    /// refused: nothing works until someone acts (reconnect, fix the settings).
    Refused(String),
    /// Worth another try later (5xx, 429, no answer).
    Retry(String),
}

/// Reads the token endpoint's answer. Without `expires_in`, a token is assumed good for an hour
/// (Google's access tokens last 3600 s).
pub fn read_token_answer(status: u16, body: &str) -> TokenAnswer {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let text = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if (200..300).contains(&status) {
        return match text("access_token") {
            Some(token) => TokenAnswer::Token {
                access_token: token.to_owned(),
                expires_in: json
                    .as_ref()
                    .and_then(|j| j.get("expires_in"))
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .unwrap_or(3600),
            },
            None => TokenAnswer::Retry(format!(
                "the token endpoint answered HTTP {status} without an access_token"
            )),
        };
    }
    let why = match (text("error"), text("error_description")) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_owned(),
        _ => format!("HTTP {status}"),
    };
    if status == 429 || status >= 500 {
        return TokenAnswer::Retry(format!("token endpoint: {why}"));
    }
    // RFC 6749 §5.2: invalid_grant (the refresh token), invalid_client / unauthorized_client
    // (the operator's app); any other 4xx is not going to change by itself either.
    TokenAnswer::Refused(why)
}

/// How long before its expiry a cached access token is no longer used (a request in flight
/// must not arrive with a token that expired on the way).
pub const EXPIRY_MARGIN_SECS: u64 = 60;

/// For how long to use a token that lasts `expires_in` seconds: the margin off, but at least a
/// tenth of its life (tokens that last seconds, as fakes issue them, are still used).
pub fn usable_for(expires_in: u64) -> std::time::Duration {
    let margin = EXPIRY_MARGIN_SECS.min(expires_in / 10 * 9);
    std::time::Duration::from_secs(expires_in.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_request_is_a_form() {
        let app = App {
            client_id: "id-1.apps.googleusercontent.com".into(),
            client_secret: "s&cret".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            developer_token: None,
        };
        let (url, headers, body) = app.refresh_request(&Grant {
            refresh_token: "1//rt+x".into(),
        });
        assert_eq!(url, "https://oauth2.googleapis.com/token");
        assert_eq!(headers[0].1, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "client_id=id-1.apps.googleusercontent.com&client_secret=s%26cret\
             &grant_type=refresh_token&refresh_token=1%2F%2Frt%2Bx"
        );
        assert!(!format!("{app:?}").contains("s&cret"));
        assert_eq!(
            format!(
                "{:?}",
                Grant {
                    refresh_token: "x".into()
                }
            ),
            "Grant(…)"
        );
    }

    #[test]
    fn token_answers() {
        assert_eq!(
            read_token_answer(
                200,
                r#"{"access_token":"ya29.a0","expires_in":3599,"scope":"https://www.googleapis.com/auth/adwords","token_type":"Bearer"}"#
            ),
            TokenAnswer::Token {
                access_token: "ya29.a0".into(),
                expires_in: 3599
            }
        );
        assert_eq!(
            read_token_answer(
                400,
                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#
            ),
            TokenAnswer::Refused("invalid_grant: Token has been expired or revoked.".into())
        );
        assert_eq!(
            read_token_answer(
                401,
                r#"{"error":"invalid_client","error_description":"Unauthorized"}"#
            ),
            TokenAnswer::Refused("invalid_client: Unauthorized".into())
        );
        assert!(matches!(
            read_token_answer(503, "busy"),
            TokenAnswer::Retry(_)
        ));
        assert!(matches!(
            read_token_answer(200, "{}"),
            TokenAnswer::Retry(_)
        ));
    }

    #[test]
    fn tokens_are_used_until_shortly_before_expiry() {
        assert_eq!(usable_for(3599).as_secs(), 3539);
        // A token of a few seconds is still used for most of its life.
        assert_eq!(usable_for(10).as_secs(), 1);
        assert_eq!(usable_for(100).as_secs(), 40);
        assert_eq!(usable_for(0).as_secs(), 0);
    }
}
