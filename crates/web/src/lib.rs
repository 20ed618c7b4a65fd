//! The dashboard: server-rendered pages for marketers, with sessions and CSRF.
use actix_web::web;
pub fn configure(_cfg: &mut web::ServiceConfig) {}
