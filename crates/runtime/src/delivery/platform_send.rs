//! Sends one platform request: adds the access token a refresh token stands for (fetched from
//! the provider's token endpoint, cached until shortly before it expires, fetched again once
//! when the platform answers 401), sends, and reads the platform's answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postback_domain::delivery::EXCERPT_BYTES;
use postback_domain::platforms::oauth::{self, App, Grant, TokenAnswer};
use postback_domain::platforms::{self, Answer, Platform, Request};

use super::client::{Client, Response};
use super::DeliveryConfig;

/// Access tokens by refresh token (its SHA-256), each with the moment it stops being used.
#[derive(Default)]
pub struct TokenCache {
    tokens: std::sync::Mutex<HashMap<String, (String, Instant)>>,
    /// One refresh at a time: attempts that find no token wait for the one fetching it.
    refreshing: tokio::sync::Mutex<()>,
    /// Requests made to token endpoints (metrics and tests).
    requests: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    // Never print the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenError {
    /// Refused by the provider (revoked or invalid refresh token, the app's credentials).
    Refused(String),
    /// Try again later.
    Unavailable(String),
}

impl TokenCache {
    fn cached(&self, key: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    fn forget(&self, key: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// How many requests went to token endpoints.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The access token for `grant`: the cached one unless `fresh`, else a new one from the
    /// app's token endpoint.
    pub async fn access_token(
        &self,
        client: &Client,
        app: &App,
        grant: &Grant,
        fresh: bool,
    ) -> Result<String, TokenError> {
        let key = grant.cache_key();
        if fresh {
            self.forget(&key);
        } else if let Some(t) = self.cached(&key) {
            return Ok(t);
        }
        let _one = self.refreshing.lock().await;
        // Someone else may have fetched it meanwhile.
        if let Some(t) = self.cached(&key) {
            return Ok(t);
        }
        let (url, headers, body) = app.refresh_request(grant);
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = client
            .post_as(
                "application/x-www-form-urlencoded",
                &url,
                &headers,
                body,
                64 * 1024,
            )
            .await;
        let Some(status) = resp.status else {
            return Err(TokenError::Unavailable(format!(
                "token endpoint: {}",
                resp.error.unwrap_or_default()
            )));
        };
        match oauth::read_token_answer(status, resp.body.as_deref().unwrap_or("")) {
            TokenAnswer::Token {
                access_token,
                expires_in,
            } => {
                let until = Instant::now() + oauth::usable_for(expires_in);
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (access_token.clone(), until));
                Ok(access_token)
            }
            TokenAnswer::Refused(why) => Err(TokenError::Refused(why)),
            TokenAnswer::Retry(why) => Err(TokenError::Unavailable(why)),
        }
    }
}

/// What sending a platform request came to.
pub struct Sent {
    pub response: Response,
    /// The platform's answer, when it answered.
    pub answer: Option<Answer>,
}

fn no_response(error: String) -> Response {
    Response {
        status: None,
        body: None,
        error: Some(error),
        duration: Duration::ZERO,
        retry_after: None,
    }
}

/// Sends `request` to `platform`, authorizing it first when it carries a refresh token.
pub async fn send(
    client: &Client,
    config: &DeliveryConfig,
    platform: Platform,
    request: &Request,
) -> Sent {
    send_reading(client, config, platform, request, EXCERPT_BYTES).await
}

/// [`send`], reading up to `read_bytes` of the answer (a batch's answer carries every event's
/// errors).
pub async fn send_reading(
    client: &Client,
    config: &DeliveryConfig,
    platform: Platform,
    request: &Request,
    read_bytes: usize,
) -> Sent {
    let body = serde_json::to_vec(&request.body).unwrap_or_default();
    let answer = |resp: &Response| {
        resp.status
            .map(|s| platforms::interpret(platform, s, resp.body.as_deref().unwrap_or("")))
    };
    let Some(grant) = &request.oauth else {
        let response = client
            .post(&request.url, &request.headers, body, read_bytes)
            .await;
        let answer = answer(&response);
        return Sent { response, answer };
    };
    let Some(app) = config.apps.get(platform) else {
        let settings = platform
            .adapter()
            .app()
            .map(|s| format!("{} and {}", s.id_env, s.secret_env))
            .unwrap_or_default();
        let why = format!(
            "{} is not configured by the operator (set {settings})",
            platform.label()
        );
        return Sent {
            response: no_response(why.clone()),
            answer: Some(Answer::Unauthorized(why)),
        };
    };
    let started = Instant::now();
    let mut fresh = false;
    loop {
        let token = match config.tokens.access_token(client, app, grant, fresh).await {
            Ok(t) => t,
            Err(TokenError::Refused(why)) => {
                let why = format!("the token endpoint refused the refresh token: {why}");
                return Sent {
                    response: no_response(why.clone()),
                    answer: Some(Answer::Unauthorized(why)),
                };
            }
            Err(TokenError::Unavailable(why)) => {
                return Sent {
                    response: no_response(why),
                    answer: None,
                }
            }
        };
        let mut headers = Vec::with_capacity(request.headers.len() + 1);
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        headers.extend(request.headers.iter().cloned());
        let mut response = client
            .post(&request.url, &headers, body.clone(), read_bytes)
            .await;
        let answer = answer(&response);
        // An access token refused before it should have expired (revoked, rotated): fetch a new
        // one once before the attempt counts.
        if matches!(answer, Some(Answer::Unauthorized(_))) && !fresh {
            fresh = true;
            continue;
        }
        response.duration = started.elapsed();
        return Sent { response, answer };
    }
}
