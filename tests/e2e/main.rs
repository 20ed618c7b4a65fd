//! End-to-end tests of the whole binary: real PostgreSQL, real HTTP, real browser.

mod admin;
mod attribution;
mod auth;
mod browser;
mod conditions;
mod csrf;
mod domains;
mod embedded;
mod faults;
mod helpers;
mod inbound;
mod keys;
mod links;
mod logs;
mod metrics;
mod migrations;
mod openapi;
mod platforms;
mod receiver;
mod retention;
mod seed_snippets;
mod team;
mod tenancy;
mod tokens;
mod tracking;
mod webhooks;
