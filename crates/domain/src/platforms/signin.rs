//! The steps of a platform's OAuth sign-in that talk to the platform: exchanging the returned
//! code for the token the connection keeps, and fetching the lists the user picks from. Each
//! platform's steps live in its own module (`googleads.rs`, `meta_connect.rs`,
//! `tiktok_connect.rs`) and are named by its [`super::ConnectSpec`]; the dashboard runs them
//! through [`Http`], which the runtime's HTTP client implements, so a platform's sign-in is its
//! own code and the dashboard's routes stay the same for every platform.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::oauth::App;

/// One HTTP request a step makes.
#[derive(Debug, Clone)]
pub struct Call {
    /// POST when a body is given (with its content type), else GET.
    pub post: Option<(&'static str, Vec<u8>)>,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// How much of the answer's body is read.
    pub limit: usize,
}

impl Call {
    pub fn get(url: String, headers: Vec<(String, String)>) -> Self {
        Self {
            post: None,
            url,
            headers,
            limit: 256 * 1024,
        }
    }

    pub fn post(
        content_type: &'static str,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        Self {
            post: Some((content_type, body)),
            url,
            headers,
            limit: 256 * 1024,
        }
    }
}

/// The answer to a [`Call`]: its status and body, or why there was none.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: Option<u16>,
    pub body: String,
    pub error: Option<String>,
}

impl Reply {
    /// The body as JSON, or null.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// (status, body), or why no answer came.
    pub fn answered(self) -> Result<(u16, String), String> {
        match self.status {
            Some(status) => Ok((status, self.body)),
            None => Err(self.error.unwrap_or_else(|| "no answer".into())),
        }
    }
}

/// Sends the steps' requests.
pub trait Http: Sync {
    fn send<'a>(&'a self, call: Call) -> BoxFuture<'a, Reply>;
}

/// What a step works with.
pub struct Context<'a> {
    pub http: &'a dyn Http,
    /// The operator's app (client id and secret, token endpoint, developer token).
    pub app: &'a App,
    /// The platform's API root (its first endpoint, as overridden by the operator).
    pub api: &'a str,
}

/// One entry the user may pick: `value` is `account:target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// Exchanges the returned code (with the PKCE verifier and the redirect URI) for (the token the
/// connection keeps, the token the lists are fetched with); Err: the platform's refusal.
pub type Exchange = for<'a> fn(
    &'a Context<'a>,
    &'a str,
    &'a str,
    &'a str,
) -> BoxFuture<'a, Result<(String, String), String>>;

/// Fetches what the user may pick with the exchanged token.
pub type Lists = for<'a> fn(&'a Context<'a>, &'a str) -> BoxFuture<'a, Result<Vec<Choice>, String>>;
