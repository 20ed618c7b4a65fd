//! What every signed-in page shows around its content: navigation, workspace, flash, CSRF token.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::error::WebResult;
use crate::session::{clear_flash, take_flash, CurrentUser, Flash};

pub struct Chrome {
    pub email: String,
    pub workspace_name: String,
    pub suspended: bool,
    pub suspended_reason: String,
    /// The address is not confirmed yet: a banner with "resend".
    pub unverified: bool,
    /// Platform admins see the Admin link.
    pub admin: bool,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub nav: &'static str,
}

impl Chrome {
    pub fn new(req: &HttpRequest, user: &CurrentUser, nav: &'static str) -> Self {
        Self {
            email: user.ctx.email.clone(),
            workspace_name: user.ctx.workspace_name.clone(),
            suspended: user.ctx.is_suspended(),
            suspended_reason: user.ctx.suspended_reason.clone().unwrap_or_default(),
            unverified: !user.ctx.email_verified,
            admin: user.ctx.is_admin,
            csrf: user.csrf.clone(),
            flash: take_flash(req),
            nav,
        }
    }
}

/// Renders a page; a flash shown on it is cleared, and signed-in pages are never cached.
pub fn page(template: &impl Template, had_flash: bool) -> WebResult<HttpResponse> {
    let body = template.render()?;
    let mut resp = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body);
    if had_flash {
        clear_flash(&mut resp);
    }
    Ok(resp)
}
