//! What each ad platform provides, in its own module: its names, the endpoints it talks to, the
//! settings and credentials a connection needs (and how the dashboard asks for them), the
//! request it sends and how it reads the answer. [`super::Platform`] dispatches to the adapter
//! registered for each variant (`register!` in `mod.rs`), so adding a platform is its module
//! plus one registration line.

use serde_json::Value;

use super::{Answer, Click, Conversion, Credentials, Request, Settings};

/// An endpoint a platform's adapter uses, overridable by an operator setting (tests point
/// them at local fakes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The setting, e.g. `POSTBACK_META_URL`.
    pub env: &'static str,
    /// The production URL, without trailing slash.
    pub default: &'static str,
    /// What it is, for README's settings table and error messages.
    pub about: &'static str,
}

/// One non-secret setting as the dashboard's form asks for it.
#[derive(Clone, Copy)]
pub struct FieldSpec {
    /// The form field's name (snake case).
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub required: bool,
    pub get: fn(&Settings) -> &Option<String>,
    pub set: fn(&mut Settings, Option<String>),
}

/// One write-only credential as the dashboard's form asks for it.
#[derive(Clone, Copy)]
pub struct SecretSpec {
    /// The form field's name (snake case).
    pub name: &'static str,
    /// The API's name (camelCase), as listed in `credentialsSaved`.
    pub key: &'static str,
    pub label: &'static str,
    pub set: fn(&mut Credentials, Option<String>),
}

/// How a platform is connected by OAuth from the dashboard.
#[derive(Clone, Copy)]
pub struct ConnectSpec {
    /// The endpoint setting of the provider's authorization page.
    pub authorize_env: &'static str,
    /// Space-separated scopes asked for.
    pub scopes: &'static str,
    /// What the user picks, e.g. "the Google Ads account and the conversion action".
    pub what: &'static str,
    /// The list's legend, e.g. "Account › conversion action".
    pub legend: &'static str,
    /// Shown when the lists are empty: what to do.
    pub none_found: &'static str,
    /// The code exchange.
    pub exchange: super::signin::Exchange,
    /// The lists to pick from.
    pub lists: super::signin::Lists,
}

/// One ad platform. Implemented by a unit struct in the platform's own module.
pub trait Adapter: Sync {
    /// The platform's id in URLs, JSON and the database (lowercase).
    fn name(&self) -> &'static str;
    /// The platform's name for people.
    fn label(&self) -> &'static str;
    /// The endpoints it uses; the first is the API root requests are built against.
    fn endpoints(&self) -> &'static [Endpoint];
    /// The platform's event name for a Postback event name (lowercased `key`, as `given`);
    /// refund and chargeback never reach this.
    fn event_name(&self, key: &str, given: &str) -> String;
    /// Checks a name a user maps an event to (`eventMap.{event}`).
    fn check_mapped_name(&self, _event: &str, _name: &str) -> Result<(), String> {
        Ok(())
    }
    /// Validates and normalises this platform's settings into `out` (other platforms' settings
    /// stay out); Err names the field.
    fn validate(&self, settings: &Settings, out: &mut Settings) -> Result<(), String>;
    /// Checks the credentials a new connection must have.
    fn require_credentials(&self, credentials: &Credentials) -> Result<(), String>;
    /// Checks credentials that depend on the settings (Google's developer token, for the Ads
    /// API only).
    fn require_settings_credentials(
        &self,
        _settings: &Settings,
        _credentials: &Credentials,
    ) -> Result<(), String> {
        Ok(())
    }
    /// The request for one conversion.
    fn build(
        &self,
        urls: &super::PlatformUrls,
        settings: &Settings,
        credentials: &Credentials,
        conversion: &Conversion,
    ) -> Result<Request, String>;
    /// The platform's answer to a request.
    fn interpret(&self, status: u16, body: &str, json: Option<&Value>) -> Answer;
    /// The array of events in the body of a request built by [`Adapter::build`], and the most
    /// events one request may carry: a connection's requests that differ only in that array are
    /// sent as one ([`super::batch`]). None: each request is sent alone.
    fn batch_limit(&self, _request: &Request) -> Option<(&'static str, usize)> {
        None
    }
    /// One answer per event of a request carrying `events` events, when the platform's answer
    /// tells them apart (Google Ads' partial failures); None when the answer is the whole
    /// request's.
    fn interpret_each(
        &self,
        _status: u16,
        _json: Option<&Value>,
        _events: usize,
    ) -> Option<Vec<Answer>> {
        None
    }
    /// Whether the answer is the platform's rate limit or quota (the connection waits, its
    /// deliveries are held, not failed). By default HTTP 429.
    fn throttled(&self, status: u16, _json: Option<&Value>) -> bool {
        status == 429
    }
    /// The operator settings of the platform's OAuth app, when it has one.
    fn app(&self) -> Option<super::oauth::AppSettings> {
        None
    }
    /// The OAuth sign-in that connects the platform from the dashboard, when built.
    fn connect(&self) -> Option<ConnectSpec> {
        None
    }
    /// The connection's settings and credentials after the user picked `account` › `choice`
    /// from the lists the OAuth sign-in fetched (`stored`: the connection's settings before),
    /// with the token the sign-in obtained.
    fn picked(
        &self,
        stored: Settings,
        _account: &str,
        _choice: &str,
        _token: String,
    ) -> (Settings, Credentials) {
        (stored, Credentials::default())
    }
    /// Whether sending needs the operator's OAuth app (tokens are refreshed with it).
    fn app_required(&self) -> bool {
        false
    }
    /// Events older than this are refused by the platform, so they are not sent.
    fn max_age(&self) -> Option<chrono::Duration> {
        None
    }
    /// Makes a built request the test button's (see [`super::TestMode`]). By default: a test
    /// event when the body carries a `test_event_code`, else a real conversion.
    fn test_mode(&self, request: &mut Request) -> super::TestMode {
        if request.body.get("test_event_code").is_some() {
            super::TestMode::TestEvent
        } else {
            super::TestMode::RealConversion
        }
    }
    /// Whether a touch carries this platform's click id.
    fn has_click(&self, click: &Click) -> bool;
    /// Puts a sample click id of this platform on the test button's conversion.
    fn sample_click(&self, click: &mut Click);
    /// The dashboard form's settings.
    fn fields(&self) -> &'static [FieldSpec];
    /// The dashboard form's write-only credentials.
    fn secrets(&self) -> &'static [SecretSpec];
    /// The hint under the event mapping box (`example` maps a Postback event name).
    fn mapping_hint(&self, example: &dyn Fn(&str) -> String) -> String {
        format!(
            "One per line: event = {} event name. Not listed: purchase → {}, lead → {}, other names as they are; refund and chargeback are not sent. An empty right side stops an event.",
            self.label(),
            example("purchase"),
            example("lead"),
        )
    }
}
