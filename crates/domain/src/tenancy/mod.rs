//! Who may do what: accounts and their mail links, sessions, personal access tokens, teams and
//! invitations, inbound integration keys, domains, plans and the audit log.

pub mod account_links;
pub mod accounts;
pub mod audit;
pub mod domains;
pub mod keys;
pub mod plans;
pub mod sessions;
pub mod team;
pub mod tokens;
pub mod workspace_deletion;
