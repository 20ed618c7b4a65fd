//! The schema stays ready for Citus (docs/scaling.md): the catalog of a migrated database is
//! read and every rule checked, so a new migration cannot break one unnoticed; and the look-ups
//! by a global secret or public id have their routing table kept in step.
//!
//! Rules: every table's comment starts `citus: distributed`, `citus: reference` or
//! `citus: local` and gives a reason (`citus: distributed by <column>. …` names another
//! distribution column than workspace_id); a distributed table's distribution column is NOT
//! NULL and in every primary key, unique constraint and unique index; a foreign key between
//! distributed tables pairs the two distribution columns; a reference table points only at
//! reference tables, a local one only at local or reference tables, and nothing at a local table
//! but another local table.

use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::{Client, NoTls};

use crate::helpers::{fresh_database, TestApp};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Distributed,
    Reference,
    Local,
}

struct Placement {
    kind: Kind,
    /// The distribution column of a distributed table.
    column: String,
}

/// What a table comment says, or why it says nothing valid.
fn placement(comment: &str) -> Result<Placement, String> {
    let rest = comment
        .strip_prefix("citus: ")
        .ok_or("its comment does not start with `citus: `")?;
    let (head, reason) = rest
        .split_once(". ")
        .ok_or("its comment gives no reason after `citus: <kind>. `")?;
    if reason.trim().is_empty() {
        return Err("its comment gives no reason".into());
    }
    let mut words = head.split(' ');
    let kind = match words.next() {
        Some("distributed") => Kind::Distributed,
        Some("reference") => Kind::Reference,
        Some("local") => Kind::Local,
        _ => return Err(format!("`{head}` is not distributed, reference or local")),
    };
    let column = match (kind, words.next(), words.next(), words.next()) {
        (_, None, _, _) => "workspace_id".to_owned(),
        (Kind::Distributed, Some("by"), Some(col), None) => col.to_owned(),
        _ => return Err(format!("`{head}` is not `distributed by <column>`")),
    };
    Ok(Placement { kind, column })
}

async fn connect(db_url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(db_url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Every break of the rules in the database at `db_url`, one sentence each.
async fn violations(db_url: &str) -> Vec<String> {
    let db = connect(db_url).await;
    let mut found = Vec::new();

    // Tables (partitions follow their parent), with their comment.
    let mut tables = std::collections::BTreeMap::new();
    for row in db
        .query(
            "SELECT c.relname::text, coalesce(obj_description(c.oid, 'pg_class'), '')
             FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
               AND NOT c.relispartition AND c.relname <> '__diesel_schema_migrations'",
            &[],
        )
        .await
        .expect("tables")
    {
        let name: String = row.get(0);
        match placement(row.get(1)) {
            Ok(p) => {
                tables.insert(name, p);
            }
            Err(why) => found.push(format!("table {name}: {why}")),
        }
    }

    // A distributed table's distribution column exists and is never NULL.
    for (name, p) in tables.iter().filter(|(_, p)| p.kind == Kind::Distributed) {
        let not_null: Option<bool> = db
            .query_opt(
                "SELECT a.attnotnull FROM pg_attribute a
                 WHERE a.attrelid = ('public.' || quote_ident($1))::regclass
                   AND a.attname = $2 AND NOT a.attisdropped",
                &[name, &p.column],
            )
            .await
            .expect("column")
            .map(|r| r.get(0));
        match not_null {
            None => found.push(format!(
                "table {name}: distributed by {}, which it does not have",
                p.column
            )),
            Some(false) => found.push(format!(
                "table {name}: its distribution column {} may be NULL",
                p.column
            )),
            Some(true) => {}
        }
    }

    // Primary keys, unique constraints and unique indexes of distributed tables.
    for row in db
        .query(
            "SELECT t.relname::text, i.relname::text,
                    CASE WHEN x.indisprimary THEN 'primary key' ELSE 'unique key' END,
                    ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k(n)
                          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n)
             FROM pg_index x
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indisunique AND t.relnamespace = 'public'::regnamespace
               AND NOT t.relispartition",
            &[],
        )
        .await
        .expect("unique indexes")
    {
        let (table, index, what): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let columns: Vec<String> = row.get(3);
        if let Some(p) = tables.get(&table) {
            if p.kind == Kind::Distributed && !columns.contains(&p.column) {
                found.push(format!(
                    "table {table}: {what} {index} ({}) lacks the distribution column {}",
                    columns.join(", "),
                    p.column
                ));
            }
        }
    }

    // Foreign keys: which kinds may point at which, and the pairing of distribution columns.
    for row in db
        .query(
            "SELECT c.conname::text, ch.relname::text, pa.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                          ORDER BY k.o),
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                          ORDER BY k.o)
             FROM pg_constraint c
             JOIN pg_class ch ON ch.oid = c.conrelid
             JOIN pg_class pa ON pa.oid = c.confrelid
             WHERE c.contype = 'f' AND c.conparentid = 0
               AND ch.relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .expect("foreign keys")
    {
        let (name, child, parent): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (from, to): (Vec<String>, Vec<String>) = (row.get(3), row.get(4));
        let (Some(c), Some(p)) = (tables.get(&child), tables.get(&parent)) else {
            continue; // a table without a valid comment is reported above
        };
        let allowed = match (c.kind, p.kind) {
            (Kind::Distributed, Kind::Distributed) => {
                let paired = from
                    .iter()
                    .zip(&to)
                    .any(|(f, t)| *f == c.column && *t == p.column);
                if !paired {
                    found.push(format!(
                        "table {child}: foreign key {name} ({}) → {parent} ({}) does not pair \
                         {} with {}",
                        from.join(", "),
                        to.join(", "),
                        c.column,
                        p.column
                    ));
                }
                true
            }
            (_, Kind::Reference) | (Kind::Local, Kind::Local) => true,
            _ => false,
        };
        if !allowed {
            found.push(format!(
                "table {child}: foreign key {name} points from a {:?} table at the {:?} table \
                 {parent}, which Citus does not allow",
                c.kind, p.kind
            ));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migrated_schema_keeps_the_citus_rules() {
    let db_url = fresh_database().await;
    let found = violations(&db_url).await;
    assert!(
        found.is_empty(),
        "Citus rules broken:\n{}",
        found.join("\n")
    );

    // And the check looks at every table: each is placed, the tenant tables by workspace_id.
    let db = connect(&db_url).await;
    let placed: Vec<(String, String)> = db
        .query(
            "SELECT c.relname::text, obj_description(c.oid, 'pg_class')
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
               AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND c.relname <> '__diesel_schema_migrations'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let kind_of = |t: &str| {
        let c = &placed.iter().find(|(n, _)| n == t).expect(t).1;
        placement(c).expect(t).kind
    };
    for t in [
        "events",
        "delivery_queue",
        "delivery_history",
        "delivery_attempts",
        "touches",
        "link_targets",
    ] {
        assert_eq!(kind_of(t), Kind::Distributed, "{t}");
    }
    for t in ["plans", "users", "routing_keys"] {
        assert_eq!(kind_of(t), Kind::Reference, "{t}");
    }
    assert_eq!(kind_of("audit_log"), Kind::Local);
    let workspaces = placement(
        &placed
            .iter()
            .find(|(n, _)| n == "workspaces")
            .expect("workspaces")
            .1,
    )
    .expect("workspaces");
    assert_eq!(workspaces.column, "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_catches_each_kind_of_break() {
    let db_url = fresh_database().await;
    let db = connect(&db_url).await;
    // What a careless migration might add.
    db.batch_execute(
        "CREATE TABLE widgets (id uuid PRIMARY KEY, workspace_id uuid NOT NULL);
         CREATE TABLE gadgets (id uuid PRIMARY KEY, workspace_id uuid, slug text UNIQUE);
         COMMENT ON TABLE gadgets IS 'citus: distributed. A tenant table keyed the old way.';
         CREATE TABLE gadget_parts (
             workspace_id uuid NOT NULL, gadget_id uuid NOT NULL REFERENCES gadgets (id),
             PRIMARY KEY (workspace_id, gadget_id));
         COMMENT ON TABLE gadget_parts IS 'citus: distributed. Parts of a gadget.';
         CREATE TABLE colours (name text PRIMARY KEY,
             workspace_id uuid NOT NULL REFERENCES workspaces (id));
         COMMENT ON TABLE colours IS 'citus: reference. Global, yet points at a tenant.';
         CREATE TABLE shapes (id uuid PRIMARY KEY);
         COMMENT ON TABLE shapes IS 'citus: sharded. Not a kind Citus has.';
         CREATE TABLE sizes (workspace_id uuid NOT NULL, domain_id uuid NOT NULL,
             PRIMARY KEY (workspace_id, domain_id),
             FOREIGN KEY (domain_id, workspace_id) REFERENCES domains (workspace_id, id));
         COMMENT ON TABLE sizes IS 'citus: distributed. Its key pairs the wrong columns.';",
    )
    .await
    .expect("careless migration");
    let found = violations(&db_url).await;
    let has = |table: &str, what: &str| {
        found
            .iter()
            .any(|v| v.starts_with(&format!("table {table}: ")) && v.contains(what))
    };
    assert!(
        has("widgets", "does not start with `citus: `"),
        "{found:#?}"
    );
    assert!(
        has("shapes", "is not distributed, reference or local"),
        "{found:#?}"
    );
    assert!(has("gadgets", "may be NULL"), "{found:#?}");
    assert!(
        has("gadgets", "primary key gadgets_pkey (id)"),
        "{found:#?}"
    );
    assert!(
        has("gadgets", "unique key gadgets_slug_key (slug)"),
        "{found:#?}"
    );
    assert!(
        has(
            "gadget_parts",
            "gadget_parts_gadget_id_fkey (gadget_id) → gadgets (id)"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            "colours",
            "from a Reference table at the Distributed table workspaces"
        ),
        "{found:#?}"
    );
    assert!(
        has("sizes", "does not pair workspace_id with workspace_id"),
        "{found:#?}"
    );
    assert_eq!(found.len(), 8, "{found:#?}");
}

/// The rows of `routing_keys` for a workspace, as (kind, key as text where it is text).
async fn routes(db: &Client, workspace_id: &str) -> Vec<(String, Vec<u8>)> {
    let ws = uuid::Uuid::parse_str(workspace_id).expect("workspace id");
    db.query(
        "SELECT kind, key FROM routing_keys WHERE workspace_id = $1 ORDER BY kind, key",
        &[&ws],
    )
    .await
    .expect("routes")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_ids_route_to_their_workspace_and_stay_unique() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let domain = alice.add_domain("shop.example").await;
    let (key_id, _) = alice.add_key(&domain, "Backend").await;
    let (status, link) = alice
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Ad", "slug": "spring", "targets": [{"url": "https://a.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let (status, token) = alice.post("/v1/tokens", json!({"name": "Deploy"})).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let (status, invited) = alice
        .post("/v1/members", json!({"email": "carol@example.com"}))
        .await;
    assert!(status.is_success(), "{status} {invited}");

    let db = connect(&app.db_url).await;
    let kinds = |r: &[(String, Vec<u8>)]| r.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    // Each secret or public id of Alice's routes to her workspace, by the value it is found by.
    let mine = routes(&db, &alice.workspace_id).await;
    assert_eq!(
        kinds(&mine),
        [
            "api_token",
            "inbound_key",
            "invitation",
            "link_slug",
            "session",
            "site_id"
        ],
        "{mine:?}"
    );
    let token_hash: Vec<u8> = db
        .query_one("SELECT token_hash FROM api_tokens", &[])
        .await
        .expect("token")
        .get(0);
    assert!(mine.contains(&("api_token".into(), token_hash)));
    let site: String = db
        .query_one("SELECT site_id FROM domains", &[])
        .await
        .expect("site")
        .get(0);
    assert!(mine.contains(&("site_id".into(), site.into_bytes())));
    assert!(mine.contains(&("link_slug".into(), b"spring".to_vec())));
    let key_hash: Vec<u8> = db
        .query_one("SELECT key_hash FROM inbound_keys", &[])
        .await
        .expect("key")
        .get(0);
    assert!(mine.contains(&("inbound_key".into(), key_hash)));
    assert_eq!(kinds(&routes(&db, &bob.workspace_id).await), ["session"]);

    // A slug is unique across tenants in the database, not only by the handler's check: a row
    // written straight into another workspace fails on the constraint name callers know.
    let bob_ws = uuid::Uuid::parse_str(&bob.workspace_id).expect("uuid");
    let bob_domain = bob.add_domain("bob.example").await;
    let bob_domain = uuid::Uuid::parse_str(&bob_domain).expect("uuid");
    let err = db
        .execute(
            "INSERT INTO links (id, workspace_id, domain_id, name, slug)
             VALUES (gen_random_uuid(), $1, $2, 'Copy', 'spring')",
            &[&bob_ws, &bob_domain],
        )
        .await
        .expect_err("a taken slug");
    let err = err.as_db_error().expect("database error");
    assert_eq!(
        err.code(),
        &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
    );
    assert_eq!(err.constraint(), Some("links_slug_key"));

    // Renaming the slug moves its route; deleting the link and the key removes theirs.
    let id = link["id"].as_str().expect("id");
    let (status, _) = alice
        .patch(&format!("/v1/links/{id}"), json!({"slug": "autumn"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mine = routes(&db, &alice.workspace_id).await;
    assert!(mine.contains(&("link_slug".into(), b"autumn".to_vec())));
    assert!(!mine.contains(&("link_slug".into(), b"spring".to_vec())));
    let (status, _) = alice.delete(&format!("/v1/links/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = alice.delete(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let token_id = token["id"].as_str().expect("token id");
    let (status, _) = alice.delete(&format!("/v1/tokens/{token_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        kinds(&routes(&db, &alice.workspace_id).await),
        ["invitation", "session", "site_id"]
    );
    // Bob may now take the freed slug.
    let (status, body) = bob
        .post(
            &format!("/v1/domains/{bob_domain}/links"),
            json!({"name": "Mine", "slug": "spring", "targets": [{"url": "https://b.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Every route points at a row that exists: none left behind, none missing.
    let stray: i64 = db
        .query_one(
            "SELECT count(*) FROM routing_keys r WHERE NOT EXISTS (
                SELECT 1 FROM sessions s WHERE r.kind = 'session' AND s.token_hash = r.key
                  AND s.workspace_id = r.workspace_id
                UNION ALL SELECT 1 FROM inbound_keys k WHERE r.kind = 'inbound_key'
                  AND k.key_hash = r.key AND k.workspace_id = r.workspace_id
                UNION ALL SELECT 1 FROM links l WHERE r.kind = 'link_slug'
                  AND convert_to(l.slug, 'UTF8') = r.key AND l.workspace_id = r.workspace_id
                UNION ALL SELECT 1 FROM domains d WHERE r.kind = 'site_id'
                  AND convert_to(d.site_id, 'UTF8') = r.key AND d.workspace_id = r.workspace_id
                UNION ALL SELECT 1 FROM invitations i WHERE r.kind = 'invitation'
                  AND i.token_hash = r.key AND i.workspace_id = r.workspace_id)",
            &[],
        )
        .await
        .expect("stray")
        .get(0);
    assert_eq!(stray, 0);
    let routed: i64 = db
        .query_one("SELECT count(*) FROM routing_keys", &[])
        .await
        .expect("count")
        .get(0);
    let secrets: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM inbound_keys)
                  + (SELECT count(*) FROM links) + (SELECT count(*) FROM domains)
                  + (SELECT count(*) FROM invitations WHERE token_hash IS NOT NULL)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(routed, secrets);
}
