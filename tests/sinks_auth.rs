//! Authenticated alert sinks against the real thing on loopback: Debian's
//! `prometheus-alertmanager` behind a real nginx with TLS (a test CA made with openssl), in
//! front of it basic auth, a bearer token, and a required client certificate
//! (`ssl_verify_client on`). Each right credential delivers an alert Alertmanager then lists;
//! each wrong or missing one fails naming the sink and the stage; the secrets never show in
//! a status, an error, the log (trace level, the HTTP client's wire dump included) or `--help`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

mod common;

use rampart::alerts::detect::Reachability;
use rampart::alerts::http::SinkClient;
use rampart::alerts::secret::{SecretSource, SinkAuth};
use rampart::alerts::thresholds::Thresholds;
use rampart::alerts::{AlertEngine, AlertEvent, Sinks};

const PASSWORD: &str = "pw-Qx7-correct-horse";
const TOKEN: &str = "tok-9f8e7d6c5b4a-bearer";
const TOKEN_ENV: &str = "RAMPART_SINKS_AUTH_TEST_TOKEN";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem"))
        .args(["-days", "2", "-subj", "/CN=rampart test CA"]));
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        ),
        (
            "client",
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        ),
    ] {
        std::fs::write(p(&format!("{name}.ext")), ext).unwrap();
        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .arg("-keyout")
            .arg(p(&format!("{name}.key")))
            .arg("-out")
            .arg(p(&format!("{name}.csr")))
            .args(["-subj", &format!("/CN=rampart test {name}")]));
        run(Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(p(&format!("{name}.csr")))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .args(["-CAcreateserial", "-days", "2", "-out"])
            .arg(p(&format!("{name}.pem")))
            .arg("-extfile")
            .arg(p(&format!("{name}.ext"))));
    }
    Pki {
        ca: p("ca.pem"),
        server_cert: p("server.pem"),
        server_key: p("server.key"),
        client_cert: p("client.pem"),
        client_key: p("client.key"),
    }
}

/// Alertmanager and nginx in front of it, one TLS port per kind of authentication.
struct Stack {
    dir: tempfile::TempDir,
    pki: Pki,
    am_port: u16,
    basic: u16,
    bearer: u16,
    mtls: u16,
    children: Vec<Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Stack {
    fn start() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pki = make_pki(d);
        let mut children = Vec::new();

        std::fs::write(
            d.join("alertmanager.yml"),
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let am_log = d.join("alertmanager.log");
        let (am, am_ports) = common::ports::start_on_free_ports("alertmanager", 1, |p| {
            Command::new("prometheus-alertmanager")
                .arg(format!(
                    "--config.file={}",
                    d.join("alertmanager.yml").display()
                ))
                .arg(format!("--storage.path={}", d.join("am-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{}", p[0]))
                .arg("--cluster.listen-address=")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&am_log).unwrap())
                .spawn()
                .unwrap()
        });
        children.push(am);
        let am_port = am_ports[0];

        let hash = run(Command::new("openssl").args(["passwd", "-apr1", PASSWORD]));
        std::fs::write(d.join("htpasswd"), format!("rampart:{}", hash.trim())).unwrap();
        let tls = format!(
            "ssl_certificate {}; ssl_certificate_key {};",
            pki.server_cert.display(),
            pki.server_key.display()
        );
        let proxy = format!("location / {{ proxy_pass http://127.0.0.1:{am_port}; }}");
        let nginx_log = d.join("error.log");
        let (nginx, ports) = common::ports::start_on_free_ports("nginx", 3, |p| {
            let (basic, bearer, mtls) = (p[0], p[1], p[2]);
            let conf = format!(
                "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n access_log {d}/access.log;\n\
                  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
                  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
                  server {{ listen 127.0.0.1:{basic} ssl; {tls}\n\
                    auth_basic \"alertmanager\"; auth_basic_user_file {d}/htpasswd; {proxy} }}\n\
                  server {{ listen 127.0.0.1:{bearer} ssl; {tls}\n\
                    if ($http_authorization != \"Bearer {TOKEN}\") {{ return 401; }} {proxy} }}\n\
                  server {{ listen 127.0.0.1:{mtls} ssl; {tls}\n\
                    ssl_client_certificate {ca}; ssl_verify_client on; {proxy} }}\n\
                 }}\n",
                d = d.display(),
                ca = pki.ca.display(),
            );
            std::fs::write(d.join("nginx.conf"), conf).unwrap();
            Command::new("/usr/sbin/nginx")
                .arg("-p")
                .arg(d)
                .arg("-e")
                .arg(&nginx_log)
                .arg("-c")
                .arg(d.join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        children.push(nginx);
        let (basic, bearer, mtls) = (ports[0], ports[1], ports[2]);
        Stack {
            dir,
            pki,
            am_port,
            basic,
            bearer,
            mtls,
            children,
        }
    }

    fn url(&self, port: u16) -> String {
        format!("https://127.0.0.1:{port}")
    }

    fn password_file(&self, value: &str) -> SecretSource {
        let p = self.dir.path().join(format!("pw-{}", value.len()));
        std::fs::write(&p, format!("{value}\n")).unwrap();
        SecretSource::File(p)
    }

    /// The alert names Alertmanager holds for `host` (asked directly, not through nginx).
    fn alerts_for(&self, host: &str) -> Vec<String> {
        let body = ureq::get(&format!(
            "http://127.0.0.1:{}/api/v2/alerts?filter=host%3D%22{host}%22",
            self.am_port
        ))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// The log file every test's sinks write to: rampart's own filter (trace, with the HTTP
/// client's wire dump kept out, as `main` sets it up), installed once for this binary.
fn global_log() -> &'static PathBuf {
    static LOG: OnceLock<PathBuf> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("rampart.log");
        let file = std::fs::File::create(&path).unwrap();
        let filter = rampart::alerts::secret::quiet_http_client_logs(
            tracing_subscriber::EnvFilter::new("trace"),
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .try_init()
            .unwrap();
        path
    })
}

fn events(host: &str) -> Vec<AlertEvent> {
    let mut e = AlertEngine::new(Thresholds::default());
    e.observe_reachability(
        host,
        &Reachability::Unreachable {
            reason: "connect: timed out".into(),
        },
        rampart::audit::now_secs(),
    )
}

/// Publishes one alert about `host` to `url` and waits for the sink's first verdict:
/// `Ok(())` once delivered, or the status line of its first failure.
async fn deliver(url: &str, auth: SinkAuth, host: &str) -> Result<(), String> {
    global_log();
    let mut map = BTreeMap::new();
    map.insert(url.to_string(), auth);
    let sinks = Sinks::start_with_auth(&[url.to_string()], &[], &map, 60);
    let mut st = sinks.statuses().remove(0);
    sinks.publish(&events(host), rampart::audit::now_secs());
    let s = tokio::time::timeout(
        Duration::from_secs(20),
        st.wait_for(|s| s.last_ok.is_some() || s.failures > 0),
    )
    .await
    .expect("a verdict within 20 s")
    .unwrap()
    .clone();
    match s.problem() {
        None => Ok(()),
        Some(p) => {
            eprintln!("{p}");
            Err(p)
        }
    }
}

fn assert_no_secret(text: &str) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("rampart:{PASSWORD}"));
    for s in [PASSWORD, TOKEN, b64.as_str()] {
        assert!(!text.contains(s), "secret {s:?} leaked into: {text}");
    }
}

#[tokio::test]
async fn basic_auth_over_tls_with_a_custom_ca() {
    let stack = Stack::start();
    let url = stack.url(stack.basic);
    let good = SinkAuth {
        username: Some("rampart".into()),
        password: Some(stack.password_file(PASSWORD)),
        ca_file: Some(stack.pki.ca.clone()),
        ..SinkAuth::default()
    };
    deliver(&url, good.clone(), "basic-ok").await.unwrap();
    assert_eq!(stack.alerts_for("basic-ok"), vec!["HOST-UNREACHABLE"]);
    // The health check goes through the same authentication.
    assert!(SinkClient::new(&good, Duration::from_secs(5)).alertmanager_healthy(&url));

    // A wrong password: the auth stage, named, nothing delivered, no secret shown.
    let wrong = SinkAuth {
        password: Some(stack.password_file("not-the-password")),
        ..good.clone()
    };
    let e = deliver(&url, wrong, "basic-wrong").await.unwrap_err();
    assert!(e.contains(&format!("alert sink {url} failing")), "{e}");
    assert!(e.contains("auth: HTTP 401"), "{e}");
    assert!(stack.alerts_for("basic-wrong").is_empty());
    assert_no_secret(&e);

    // Without the custom CA the server is not trusted: the TLS stage.
    let no_ca = SinkAuth {
        ca_file: None,
        ..good
    };
    let e = deliver(&url, no_ca, "basic-noca").await.unwrap_err();
    assert!(e.contains(": TLS: "), "{e}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn bearer_token_from_a_file_and_from_the_environment() {
    let stack = Stack::start();
    let url = stack.url(stack.bearer);
    let tok_file = stack.dir.path().join("token");
    std::fs::write(&tok_file, format!("{TOKEN}\n")).unwrap();
    let from_file = SinkAuth {
        bearer_token: Some(SecretSource::File(tok_file)),
        ca_file: Some(stack.pki.ca.clone()),
        ..SinkAuth::default()
    };
    deliver(&url, from_file.clone(), "bearer-file")
        .await
        .unwrap();
    assert_eq!(stack.alerts_for("bearer-file"), vec!["HOST-UNREACHABLE"]);

    // From the environment: the crate forbids `unsafe` (so no `set_var`); this binary runs
    // itself again with the variable set, for the one (ignored) test that reads it.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "bearer_token_from_the_environment_child",
            "--nocapture",
        ])
        .env(TOKEN_ENV, TOKEN)
        .env("RAMPART_SINKS_AUTH_URL", &url)
        .env("RAMPART_SINKS_AUTH_CA", &stack.pki.ca)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stack.alerts_for("bearer-env"), vec!["HOST-UNREACHABLE"]);

    // No token at all: refused at the auth stage.
    let none = SinkAuth {
        bearer_token: None,
        ..from_file.clone()
    };
    let e = deliver(&url, none, "bearer-none").await.unwrap_err();
    assert!(e.contains("auth: HTTP 401"), "{e}");
    // A token variable that is not set: the config stage, before any request.
    let unset = SinkAuth {
        bearer_token: Some(SecretSource::Env("RAMPART_SINKS_AUTH_UNSET".into())),
        ..from_file
    };
    let e = deliver(&url, unset, "bearer-unset").await.unwrap_err();
    assert!(
        e.contains(
            "config: bearer token from environment variable RAMPART_SINKS_AUTH_UNSET: not set"
        ),
        "{e}"
    );
    assert!(stack.alerts_for("bearer-none").is_empty());
}

/// Run by `bearer_token_from_a_file_and_from_the_environment` with the token in the
/// environment.
#[tokio::test]
#[ignore = "run by bearer_token_from_a_file_and_from_the_environment"]
async fn bearer_token_from_the_environment_child() {
    let url = std::env::var("RAMPART_SINKS_AUTH_URL").expect("run by the parent test");
    let ca = std::env::var("RAMPART_SINKS_AUTH_CA").expect("run by the parent test");
    assert_eq!(std::env::var(TOKEN_ENV).as_deref(), Ok(TOKEN));
    let from_env = SinkAuth {
        bearer_token: Some(SecretSource::Env(TOKEN_ENV.into())),
        ca_file: Some(ca.into()),
        ..SinkAuth::default()
    };
    deliver(&url, from_env, "bearer-env").await.unwrap();
}

#[tokio::test]
async fn client_certificate_required() {
    let stack = Stack::start();
    let url = stack.url(stack.mtls);
    let with_cert = SinkAuth {
        ca_file: Some(stack.pki.ca.clone()),
        client_cert_file: Some(stack.pki.client_cert.clone()),
        client_key_file: Some(stack.pki.client_key.clone()),
        ..SinkAuth::default()
    };
    deliver(&url, with_cert.clone(), "mtls-ok").await.unwrap();
    assert_eq!(stack.alerts_for("mtls-ok"), vec!["HOST-UNREACHABLE"]);

    // No client certificate: nginx refuses it; the TLS stage, named.
    let without = SinkAuth {
        client_cert_file: None,
        client_key_file: None,
        ..with_cert.clone()
    };
    let e = deliver(&url, without, "mtls-missing").await.unwrap_err();
    assert!(e.contains(&format!("alert sink {url} failing")), "{e}");
    assert!(e.contains(": TLS: "), "{e}");
    assert!(e.contains("No required SSL certificate"), "{e}");
    assert!(stack.alerts_for("mtls-missing").is_empty());

    // A certificate file that cannot be read: the config stage, naming the file.
    let unreadable = SinkAuth {
        client_cert_file: Some(stack.dir.path().join("missing.pem")),
        ..with_cert
    };
    let e = deliver(&url, unreadable, "mtls-unreadable")
        .await
        .unwrap_err();
    assert!(
        e.contains("config: client certificate ") && e.contains("missing.pem"),
        "{e}"
    );
}

#[test]
fn log_and_help_never_hold_a_secret() {
    // The other tests of this binary wrote their sinks' traffic, good and bad credentials,
    // into the log at trace level; make some here too so the test stands alone.
    let stack = Stack::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = stack.url(stack.basic);
    let good = SinkAuth {
        username: Some("rampart".into()),
        password: Some(stack.password_file(PASSWORD)),
        ca_file: Some(stack.pki.ca.clone()),
        ..SinkAuth::default()
    };
    rt.block_on(deliver(&url, good.clone(), "log-check"))
        .unwrap();
    let wrong = SinkAuth {
        password: Some(stack.password_file("wrong-password-here")),
        ..good
    };
    rt.block_on(deliver(&url, wrong, "log-check-wrong"))
        .unwrap_err();
    let client_log = stack.dir.path().join("wire.log");
    // Without rampart's filter the HTTP client does dump the wire at trace level (this is
    // what the filter is for): its rows show up in a plain trace log.
    {
        let file = std::fs::File::create(&client_log).unwrap();
        let plain = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .finish();
        let auth = SinkAuth {
            username: Some("rampart".into()),
            password: Some(stack.password_file(PASSWORD)),
            ca_file: Some(stack.pki.ca.clone()),
            ..SinkAuth::default()
        };
        tracing::subscriber::with_default(plain, || {
            SinkClient::new(&auth, Duration::from_secs(5))
                .post_json(&format!("{url}/api/v2/alerts"), &serde_json::json!([]))
                .unwrap();
        });
    }
    let wire = std::fs::read_to_string(&client_log).unwrap();
    assert!(
        wire.contains("ureq_proto"),
        "no wire dump without the filter"
    );

    let log = std::fs::read_to_string(global_log()).unwrap();
    assert!(
        log.contains("ureq"),
        "the log recorded nothing of the sinks"
    );
    assert!(!log.contains("ureq_proto"), "wire dump in the log");
    assert_no_secret(&log);

    for args in [&["--help"][..], &["watch", "--help"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .env(TOKEN_ENV, TOKEN)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_no_secret(&String::from_utf8_lossy(&out.stdout));
        assert_no_secret(&String::from_utf8_lossy(&out.stderr));
    }
}
