//! The Inbound Integration Keys tab of a domain (seed 001): create (shown once), list, revoke
//! (confirmed), restore, delete (confirmed).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::ids::{DomainId, KeyId};
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::keys::{self, InboundKey};
use postback_domain::tenancy::{domains, plans};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::auth::CsrfOnly;
use crate::confirm::ConfirmPage;
use crate::domains::PageQuery;
use crate::error::WebResult;
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

/// Carries a just-created key to the next page view, once. HttpOnly, scoped to the keys page.
const NEW_KEY_COOKIE: &str = "pb_new_key";

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub masked: String,
    pub created: String,
    pub created_title: String,
    pub last_used: String,
    /// When the newest event sent with this key was received, "Never" if none.
    pub last_event: String,
    pub last_event_title: String,
    pub active: bool,
}

impl KeyRow {
    fn new(k: InboundKey, last_event: Option<chrono::DateTime<chrono::Utc>>, zone: Zone) -> Self {
        Self {
            id: k.id.to_string(),
            masked: k.masked(),
            created: zone.relative(k.created_at),
            created_title: zone.absolute(k.created_at),
            last_used: k
                .last_used_at
                .map(|t| zone.relative(t))
                .unwrap_or_else(|| "Never".into()),
            last_event: last_event.map_or_else(|| "Never".into(), |t| zone.relative(t)),
            last_event_title: last_event.map(|t| zone.absolute(t)).unwrap_or_default(),
            active: k.is_active(),
            name: k.name,
        }
    }
}

pub struct NewKey {
    pub name: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct KeysPage {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    site_id: String,
    keys: Vec<KeyRow>,
    usage: String,
    at_limit: bool,
    new_key: Option<NewKey>,
    next_cursor: Option<String>,
}

fn keys_path(domain_id: DomainId) -> String {
    format!("/domains/{domain_id}/keys")
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    query: web::Query<PageQuery>,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, ws, path.into_inner()).await?;
    let page_req =
        PageRequest::parse(Some(100), query.cursor.as_deref()).unwrap_or(PageRequest::first(100));
    let listed = keys::list(&mut conn, ws, domain.id, page_req).await?;
    let ids: Vec<KeyId> = listed.items.iter().map(|k| k.id).collect();
    let last_events = keys::last_events(&mut conn, ws, &ids).await?;
    let zone = Zone::of(&user);
    let plan = plans::get(&mut conn, &user.ctx.plan).await?;
    let active = keys::count_active(&mut conn, ws, domain.id).await?;
    let limit = plan.max_keys_per_domain.map(i64::from);

    // The one view of a new key: only if the cookie names a key of this domain and the value
    // really is that key.
    let mut new_key = None;
    if let Some(c) = req.cookie(NEW_KEY_COOKIE) {
        if let Some((id, value)) = c.value().split_once(':') {
            if let Ok(id) = id.parse::<KeyId>() {
                if let Ok(k) = keys::get(&mut conn, ws, id).await {
                    if k.domain_id == domain.id && keys::verify(&mut conn, ws, id, value).await? {
                        new_key = Some(NewKey {
                            name: k.name,
                            value: value.to_owned(),
                        });
                    }
                }
            }
        }
    }

    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    let tpl = KeysPage {
        chrome,
        domain_id: domain.id.to_string(),
        hostname: domain.hostname,
        site_id: domain.site_id,
        keys: listed
            .items
            .into_iter()
            .map(|k| {
                let last = last_events.get(&k.id).copied();
                KeyRow::new(k, last, zone)
            })
            .collect(),
        usage: format!("{} keys used", plans::usage_label(active, limit)),
        at_limit: limit.is_some_and(|l| active >= l),
        new_key,
        next_cursor: listed.next_cursor,
    };
    let mut resp = page(&tpl, had_flash)?;
    if req.cookie(NEW_KEY_COOKIE).is_some() {
        let mut gone = Cookie::build(NEW_KEY_COOKIE, "")
            .path(keys_path(domain.id))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(state.secure_cookies)
            .finish();
        gone.make_removal();
        let _ = resp.add_cookie(&gone);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    form: web::Form<CreateForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let ws = user.ctx.workspace_id;
    let secure = state.secure_cookies;
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, ws, path.into_inner()).await?;
    let back = keys_path(domain.id);
    let created = keys::create(&mut conn, ws, domain.id, &form.name).await;
    if let Ok(k) = &created {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "key.create",
            &k.name,
            json!({"id": k.id, "prefix": k.prefix}),
        )
        .await?;
    }
    match created {
        Ok(view) => {
            let value = view.key.unwrap_or_default();
            let cookie = Cookie::build(NEW_KEY_COOKIE, format!("{}:{}", view.id, value))
                .path(back.clone())
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure)
                .max_age(actix_web::cookie::time::Duration::minutes(2))
                .finish();
            let mut resp = redirect_with(
                &back,
                "success",
                &format!("Created key \"{}\".", view.name),
                secure,
            );
            let _ = resp.add_cookie(&cookie);
            Ok(resp)
        }
        Err(DomainError::Invalid(m) | DomainError::LimitReached(m)) => {
            Ok(redirect_with(&back, "error", &m, secure))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Clone, Copy)]
pub enum Action {
    Revoke,
    Delete,
}

async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: KeyId,
    action: Action,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let k = keys::get(&mut conn, user.ctx.workspace_id, id).await?;
    let chrome = Chrome::new(&req, &user, "domains");
    let (title, message, verb, button) = match action {
        Action::Revoke => (
            format!("Revoke \"{}\"?", k.name),
            "Revoked keys stop working immediately: any system using this key will receive \
             authentication errors. You can restore it later with the same value.",
            "revoke",
            "Revoke key",
        ),
        Action::Delete => (
            format!("Delete \"{}\"?", k.name),
            "Deleting is permanent, unlike revoking: this key can never be used or restored again.",
            "delete",
            "Delete key",
        ),
    };
    let tpl = ConfirmPage {
        chrome,
        title,
        message: message.into(),
        action: format!("/keys/{}/{verb}", k.id),
        button: button.into(),
        cancel: keys_path(k.domain_id),
        danger: true,
    };
    page(&tpl, false)
}

pub async fn confirm_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<KeyId>,
) -> WebResult<HttpResponse> {
    confirm(req, state, user, path.into_inner(), Action::Revoke).await
}

pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<KeyId>,
) -> WebResult<HttpResponse> {
    confirm(req, state, user, path.into_inner(), Action::Delete).await
}

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<KeyId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let k = keys::revoke(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "key.revoke",
        &k.name,
        json!({"id": k.id, "prefix": k.prefix}),
    )
    .await?;
    Ok(redirect_with(
        &keys_path(k.domain_id),
        "success",
        &format!("Revoked \"{}\". It no longer authenticates.", k.name),
        state.secure_cookies,
    ))
}

pub async fn restore(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<KeyId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let ws = user.ctx.workspace_id;
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    let before = keys::get(&mut conn, ws, id).await?;
    let back = keys_path(before.domain_id);
    let restored = keys::restore(&mut conn, ws, id).await;
    if let Ok(k) = &restored {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "key.restore",
            &k.name,
            json!({"id": k.id, "prefix": k.prefix}),
        )
        .await?;
    }
    match restored {
        Ok(k) => Ok(redirect_with(
            &back,
            "success",
            &format!("Restored \"{}\". The same key works again.", k.name),
            state.secure_cookies,
        )),
        Err(DomainError::LimitReached(m)) => {
            Ok(redirect_with(&back, "error", &m, state.secure_cookies))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<KeyId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let k = keys::delete(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "key.delete",
        &k.name,
        json!({"id": k.id, "prefix": k.prefix}),
    )
    .await?;
    Ok(redirect_with(
        &keys_path(k.domain_id),
        "success",
        &format!("Deleted \"{}\" permanently.", k.name),
        state.secure_cookies,
    ))
}
