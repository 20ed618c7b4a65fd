//! Follows platform requests that are processed after they are accepted (Google Data Manager's
//! `requestId`): every `status_check_interval` the due ones are asked for with
//! `requestStatus:retrieve`, authorized like the upload (the connection's refresh token through
//! the shared token cache), and the outcome recorded on the delivery
//! ([`postback_domain::delivery::platform_status`]). Started by [`crate::start`].

use std::time::Duration;

use postback_domain::delivery::platform_status::{self, Due};
use postback_domain::platforms::request_status::{self, Authorization, Outcome};
use postback_domain::platforms::Platform;
use postback_domain::store::db::DbPool;

use crate::delivery::client::Client;
use crate::delivery::platform_send::TokenError;
use crate::delivery::DeliveryConfig;

/// Requests asked for per pass.
const BATCH: i32 = 50;

/// The Data Manager endpoint setting.
const DATAMANAGER: &str = "POSTBACK_GOOGLE_DATAMANAGER_URL";

pub fn start(pool: DbPool, client: Client, config: DeliveryConfig) {
    tokio::spawn(async move {
        let every = config.status_check_interval;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = run_once(&pool, &client, &config).await {
                tracing::warn!(error = %e, "platform request status pass failed");
            }
        }
    });
}

/// The wait before asking again about a request still processing: the interval, doubling per
/// check, at most an hour.
fn retry_in(every: Duration, checks: i32) -> f64 {
    let factor = 2f64.powi(checks.clamp(0, 16));
    (every.as_secs_f64() * factor).min(3600.0)
}

/// One pass over the due requests.
pub async fn run_once(
    pool: &DbPool,
    client: &Client,
    config: &DeliveryConfig,
) -> postback_domain::DomainResult<usize> {
    let every = config.status_check_interval;
    let due = {
        let mut conn = postback_domain::store::db::conn(pool).await?;
        // Leased for longer than one check can take.
        let lease = config.timeout.as_secs_f64() * 2.0 + every.as_secs_f64();
        platform_status::due(&mut conn, BATCH, lease).await?
    };
    let n = due.len();
    for d in due {
        let outcome = check(client, config, &d).await;
        let Some(outcome) = outcome else {
            // No answer: asked again at the next step.
            let mut conn = postback_domain::store::db::conn(pool).await?;
            platform_status::record(
                &mut conn,
                &d,
                &Outcome::Processing,
                retry_in(every, d.checks),
            )
            .await?;
            continue;
        };
        let mut conn = postback_domain::store::db::conn(pool).await?;
        platform_status::record(&mut conn, &d, &outcome, retry_in(every, d.checks)).await?;
    }
    Ok(n)
}

/// Asks Google for one request's status; None when no answer could be had (network, token
/// endpoint, 5xx): the check is repeated later.
async fn check(client: &Client, config: &DeliveryConfig, d: &Due) -> Option<Outcome> {
    let bearer = match request_status::authorization(&d.credentials)? {
        Authorization::Bearer(token) => token,
        Authorization::Grant(grant) => {
            let app = config.apps.get(Platform::GoogleAds)?;
            match config.tokens.access_token(client, app, &grant, false).await {
                Ok(token) => token,
                Err(TokenError::Refused(why) | TokenError::Unavailable(why)) => {
                    tracing::info!(delivery = %d.delivery_id, %why, "no token for a request status");
                    return None;
                }
            }
        }
    };
    let base = config.platform_urls.endpoint(DATAMANAGER);
    let url = request_status::status_url(base, &d.request_id);
    let headers = [("Authorization", format!("Bearer {bearer}"))];
    let resp = client.get(&url, &headers, 64 * 1024).await;
    match resp.status {
        Some(200..=299) => {
            let json: serde_json::Value =
                serde_json::from_str(resp.body.as_deref().unwrap_or("")).ok()?;
            Some(request_status::read(&json))
        }
        Some(status) => {
            tracing::info!(delivery = %d.delivery_id, status, "request status not available");
            None
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_back_off_to_an_hour() {
        let every = Duration::from_secs(30);
        assert_eq!(retry_in(every, 0), 30.0);
        assert_eq!(retry_in(every, 1), 60.0);
        assert_eq!(retry_in(every, 3), 240.0);
        assert_eq!(retry_in(every, 10), 3600.0);
        assert_eq!(retry_in(every, 1000), 3600.0);
    }
}
