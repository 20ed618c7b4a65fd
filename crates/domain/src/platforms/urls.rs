//! Where each platform's endpoints live: the production URLs, each overridable by its operator
//! setting (`POSTBACK_GOOGLEADS_URL`, `POSTBACK_GOOGLE_TOKEN_URL`, `POSTBACK_META_URL`, …; tests
//! point them at local fakes).

use std::collections::BTreeMap;

use super::{endpoints, Platform};

#[derive(Debug, Clone, PartialEq)]
pub struct PlatformUrls {
    /// Setting name → URL without trailing slash.
    urls: BTreeMap<&'static str, String>,
}

impl Default for PlatformUrls {
    fn default() -> Self {
        Self {
            urls: endpoints().map(|e| (e.env, e.default.to_owned())).collect(),
        }
    }
}

impl PlatformUrls {
    /// Every endpoint on one server (a local fake): `http://127.0.0.1:PORT` plus the path of
    /// the production URL (`…/token` for Google's token endpoint, nothing for API roots).
    pub fn all_at(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            urls: endpoints()
                .map(|e| {
                    let path = url::Url::parse(e.default)
                        .map(|u| u.path().trim_end_matches('/').to_owned())
                        .unwrap_or_default();
                    (e.env, format!("{base}{path}"))
                })
                .collect(),
        }
    }

    /// The production endpoints with `platform`'s API root at `base` (tests of one adapter).
    pub fn with_root(platform: Platform, base: &str) -> Self {
        let mut urls = Self::default();
        if let Some(e) = platform.adapter().endpoints().first() {
            urls.urls
                .insert(e.env, base.trim().trim_end_matches('/').to_owned());
        }
        urls
    }

    /// The platform's API root (its adapter's first endpoint).
    pub fn get(&self, platform: Platform) -> &str {
        platform
            .adapter()
            .endpoints()
            .first()
            .map(|e| self.endpoint(e.env))
            .unwrap_or_default()
    }

    /// The URL of the endpoint set by `env` (empty when no platform has it).
    pub fn endpoint(&self, env: &str) -> &str {
        self.urls
            .get(env)
            .map(|u| u.trim_end_matches('/'))
            .unwrap_or_default()
    }

    /// Sets an endpoint from its setting; Err names the setting when it is not an http(s) URL
    /// or not a platform's setting.
    pub fn set(&mut self, env: &str, url: &str) -> Result<(), String> {
        let Some(key) = endpoints().map(|e| e.env).find(|k| *k == env) else {
            return Err(format!("{env} is not a platform endpoint setting"));
        };
        let parsed =
            url::Url::parse(url).map_err(|e| format!("{env} {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{env} must start with http:// or https://"));
        }
        self.urls.insert(key, url.trim_end_matches('/').to_owned());
        Ok(())
    }

    /// Reads every endpoint's setting through `get` (the environment, in production).
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut urls = Self::default();
        for e in endpoints() {
            if let Some(v) = get(e.env).filter(|v| !v.trim().is_empty()) {
                urls.set(e.env, v.trim())?;
            }
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's settings table lists every endpoint and OAuth app setting of every platform.
    #[test]
    fn readme_lists_every_platform_setting() {
        let readme = include_str!("../../../../README.md");
        let mut names: Vec<&str> = endpoints().map(|e| e.env).collect();
        for &p in Platform::ALL {
            if let Some(app) = p.adapter().app() {
                names.extend([app.id_env, app.secret_env]);
                names.extend(app.developer_token_env);
            }
        }
        for name in names {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README lacks {name}"
            );
        }
    }

    #[test]
    fn defaults_overrides_and_fakes() {
        let d = PlatformUrls::default();
        assert_eq!(d.get(Platform::Meta), "https://graph.facebook.com");
        assert_eq!(
            d.endpoint("POSTBACK_GOOGLE_TOKEN_URL"),
            "https://oauth2.googleapis.com/token"
        );
        let f = PlatformUrls::all_at("http://127.0.0.1:9/");
        assert_eq!(f.get(Platform::GoogleAds), "http://127.0.0.1:9");
        assert_eq!(
            f.endpoint("POSTBACK_GOOGLE_TOKEN_URL"),
            "http://127.0.0.1:9/token"
        );
        let env = |k: &str| (k == "POSTBACK_TIKTOK_URL").then(|| "http://t.test/".to_owned());
        let u = PlatformUrls::from_settings(env).unwrap();
        assert_eq!(u.get(Platform::TikTok), "http://t.test");
        let bad = |k: &str| (k == "POSTBACK_META_URL").then(|| "ftp://x".to_owned());
        assert_eq!(
            PlatformUrls::from_settings(bad).unwrap_err(),
            "POSTBACK_META_URL must start with http:// or https://"
        );
    }
}
