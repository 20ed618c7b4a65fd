//! PostgreSQL over TLS: a private cluster started here with `ssl = on`, a CA and a server
//! certificate made with the openssl command, and a pg_hba.conf that refuses every unencrypted
//! TCP connection. Postback runs against it with `sslmode=verify-full&sslrootcert=…`: inbound
//! (the fast path), a webhook delivery (the worker and its LISTEN connection), a click (the click
//! store) and a dashboard page (the pool) all work, pg_stat_ssl shows every connection
//! encrypted, and a wrong CA, a wrong name or `sslmode=disable` are refused with a clear error.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{purchase, TestApp};
use crate::receiver::Receiver;

const BIN: &str = "/usr/lib/postgresql/15/bin";

struct TlsCluster {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(
        Command::new("openssl").current_dir(dir).args(args),
        &format!("openssl {}", args.join(" ")),
    );
}

/// A self-signed CA: `{name}.key` and `{name}.pem` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Postback test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

impl TlsCluster {
    fn pg(&self, program: &str) -> Command {
        let mut cmd = Command::new(Path::new(BIN).join(program));
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&self.dir);
        cmd
    }

    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("postback-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        // As root, the cluster runs as `postgres` (PostgreSQL refuses to run as root).
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let owner = root.then(|| {
            (
                id_of("-u").expect("postgres user"),
                id_of("-g").expect("postgres group"),
            )
        });
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let data = dir.join("data");
        let cluster = Self {
            dir: dir.clone(),
            data: data.clone(),
            port,
            owner,
        };

        // The CA that signs the server's certificate, and another one that does not.
        make_ca(&dir, "ca");
        make_ca(&dir, "wrong-ca");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext file");
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "2",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );

        std::fs::create_dir_all(&data).expect("data dir");
        if let Some((uid, gid)) = owner {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            for f in [&data, &dir.join("server.key"), &dir.join("server.crt")] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid)).expect("chown");
            }
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("key mode");
        }
        run(
            cluster.pg("initdb").args(["-D"]).arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]),
            "initdb",
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             fsync = off\nmax_connections = 50\n",
            dir = dir.display(),
            data = data.display()
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).expect("conf");
        // Only encrypted TCP connections get in.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostnossl all all 0.0.0.0/0 reject\n\
             hostnossl all all ::/0 reject\n\
             hostssl all binder 127.0.0.1/32 scram-sha-256\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("hba");
        let started = cluster
            .pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(data.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl");
        assert!(
            started.status.success(),
            "pg_ctl start: {}\nserver.log:\n{}",
            String::from_utf8_lossy(&started.stdout),
            std::fs::read_to_string(data.join("server.log")).unwrap_or_default()
        );
        // A role that logs in with a password (SCRAM), for channel binding.
        let role = cluster
            .pg("psql")
            .arg("-h")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
            ])
            .arg("CREATE ROLE binder LOGIN PASSWORD 'binder-pw'")
            .output()
            .expect("psql");
        assert!(
            role.status.success(),
            "{}",
            String::from_utf8_lossy(&role.stderr)
        );
        cluster
    }

    fn url(&self, host: &str, mode: &str, ca: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}",
            self.port,
            self.dir.join(ca).display()
        )
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn refusal(url: &str) -> String {
    match postback_domain::store::pg::connect(url).await {
        Ok(_) => panic!("{url} should be refused"),
        Err(e) => e.to_string(),
    }
}

/// Connects as `url` says and asks PostgreSQL whether this connection is encrypted.
async fn encrypted(url: &str) -> bool {
    let (client, connection) = postback_domain::store::pg::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[tokio::test]
async fn postback_runs_on_postgresql_with_verify_full_and_every_connection_is_encrypted() {
    let pg = TlsCluster::start();
    let url = pg.url("localhost", "verify-full", "ca.pem");

    // The binary migrates over TLS and says so plainly when the CA is wrong.
    let migrate = |db_url: String| {
        Command::new(env!("CARGO_BIN_EXE_postback"))
            .arg("migrate")
            .env("DATABASE_URL", db_url)
            .env("POSTBACK_DATA_DIR", pg.dir.join("postback"))
            .output()
            .expect("run postback")
    };
    let out = migrate(url.clone());
    assert!(
        out.status.success(),
        "migrate over verify-full: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = migrate(pg.url("localhost", "verify-full", "wrong-ca.pem"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong CA must stop the start");
    assert!(
        stderr.contains("sslmode=verify-full")
            && stderr.contains(&format!("localhost:{}", pg.port))
            && stderr.contains("UnknownIssuer"),
        "the error names the mode, the server and the reason: {stderr}"
    );

    // A mode libpq does not have is named before anything starts (exit status 2).
    let out = migrate(pg.url("localhost", "verify", "ca.pem"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "DATABASE_URL: sslmode must be disable, prefer, require, verify-ca or verify-full"
        ),
        "{stderr}"
    );

    // The name is checked by verify-full only; the chain by verify-ca too; disable is refused
    // by the server, which takes only encrypted connections.
    let wrong_name = refusal(&pg.url("127.0.0.1", "verify-full", "ca.pem")).await;
    assert!(
        wrong_name.contains("not valid for name \"127.0.0.1\""),
        "{wrong_name}"
    );
    assert!(
        encrypted(&pg.url("127.0.0.1", "verify-ca", "ca.pem")).await,
        "verify-ca does not compare the name"
    );
    let wrong_ca = refusal(&pg.url("127.0.0.1", "verify-ca", "wrong-ca.pem")).await;
    assert!(wrong_ca.contains("UnknownIssuer"), "{wrong_ca}");
    let plain = refusal(&format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=disable",
        pg.port
    ))
    .await;
    assert!(plain.contains("no encryption"), "{plain}");
    // require without a root file encrypts without checking (libpq's meaning).
    assert!(
        encrypted(&format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=require",
            pg.port
        ))
        .await
    );

    // The system roots (the default, or `sslrootcert=system`) do not include the test CA.
    let base = format!("postgres://postgres@localhost:{}/postgres", pg.port);
    for url in [
        format!("{base}?sslmode=verify-full"),
        format!("{base}?sslmode=verify-full&sslrootcert=system"),
    ] {
        let refused = refusal(&url).await;
        assert!(
            refused.contains("UnknownIssuer") || refused.contains("no system root certificates"),
            "{url}: {refused}"
        );
    }
    // require checks the chain once a root file is given; prefer never checks it.
    let refused = refusal(&pg.url("localhost", "require", "wrong-ca.pem")).await;
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    assert!(encrypted(&pg.url("localhost", "prefer", "wrong-ca.pem")).await);

    // SCRAM over TLS binds the password exchange to the session (tls-server-end-point), so a
    // man in the middle cannot relay it; `channel_binding=require` fails without it.
    assert!(
        encrypted(&format!(
            "postgres://binder:binder-pw@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}&channel_binding=require",
            pg.port,
            pg.dir.join("ca.pem").display()
        ))
        .await
    );

    // The transaction pooler mode negotiates TLS itself (SSLRequest, then rustls): the same
    // checks hold, and its rewritten statements run over the encrypted stream.
    let transaction = postback_domain::store::pooler::Pooler::Transaction;
    let (client, connection) = postback_domain::store::pg::connect_with(&url, transaction)
        .await
        .expect("verify-full in transaction pooler mode");
    tokio::spawn(connection);
    let statement = client
        .prepare("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND $1::int = 1")
        .await
        .expect("prepare");
    for _ in 0..2 {
        let row = client.query_one(&statement, &[&1i32]).await.expect("run");
        assert!(
            row.get::<_, bool>(0),
            "encrypted in transaction pooler mode"
        );
    }
    let wrong_ca = postback_domain::store::pg::connect_with(
        &pg.url("localhost", "verify-full", "wrong-ca.pem"),
        transaction,
    )
    .await
    .err()
    .expect("a wrong CA is refused in transaction pooler mode too")
    .to_string();
    assert!(wrong_ca.contains("UnknownIssuer"), "{wrong_ca}");
    let plain = postback_domain::store::pg::connect_with(
        &format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=disable",
            pg.port
        ),
        transaction,
    )
    .await
    .err()
    .expect("in clear, refused by the server")
    .to_string();
    assert!(plain.contains("no encryption"), "{plain}");

    // The product on it: inbound, a webhook delivery, a click and dashboard pages.
    let app = TestApp::spawn_on(&url).await;
    let user = app.signup("tls@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({ "url": receiver.url("/hook"), "events": ["purchase"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, answer) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["event"], "purchase");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM events WHERE event_name = 'purchase'")
            .await,
        1
    );

    let (status, link) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Sale", "slug": "tls-sale", "targets": [{"url": "https://shop.example.com/sale", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let click = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url("/__cc/go/tls-sale"))
        .send()
        .await
        .expect("click");
    assert_eq!(click.status(), StatusCode::FOUND);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM touches WHERE link_id IS NOT NULL")
            .await,
        1
    );

    let (status, page) = user.page(&format!("/domains/{domain}/events")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("purchase"), "the event is listed: {page}");

    // Every client connection of the cluster (pool, fast path, click store, LISTEN, this one)
    // is encrypted.
    let (client, connection) = postback_domain::store::pg::connect(&url)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl) AS encrypted,
                    count(*) FILTER (WHERE NOT s.ssl) AS plain,
                    count(*) FILTER (WHERE a.query ILIKE 'LISTEN%') AS listening,
                    min(s.version) AS version
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.backend_type = 'client backend'",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    let (encrypted, plain, listening): (i64, i64, i64) =
        (row.get("encrypted"), row.get("plain"), row.get("listening"));
    assert_eq!(plain, 0, "no connection is in clear");
    assert!(
        encrypted >= 4,
        "pool, fast path, click store, LISTEN: {encrypted}"
    );
    assert_eq!(listening, 1, "the delivery worker listens over TLS");
    let version: String = row.get("version");
    assert!(version.starts_with("TLSv1."), "{version}");
}
