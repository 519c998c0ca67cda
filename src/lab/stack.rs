//! The lab's Django stack: nginx on web1/web2 proxies `/app/` to gunicorn on app1, which
//! serves a small real Django project (Debian's python3-django and gunicorn, django-ratelimit
//! and django-redis from PyPI in a virtualenv) that migrates and reads PostgreSQL 15 on db1
//! and caches in Redis 7 on cache1. app1 also runs a loopback-only Redis with a password (the
//! clean counterpart of cache1's).
//!
//! The configuration text is pure (tested below); the steps that write it into a host's view,
//! start the daemons inside the host (no systemd) and bootstrap the database are at the end.
//! The lab's planted secrets ([`DB_PASSWORD`], [`REDIS_PASSWORD`], [`SECRET_KEY`]) are
//! distinctive on purpose: `tests/stack_secrets_lab.rs` looks for them in everything rampart
//! writes. They travel to the database over psql's stdin, never in a command line.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::LabError;
use super::config::{
    APP_PORT_PLAIN, APP_PORT_TLS, HostSpec, LabConfig, PG_PID_FILE, PG_PORT, REDIS_PORT, Segment,
    StackRole, in_view,
};
use super::sys::{self, Cmd};

/// The app database's password (planted: it must never appear in rampart's output).
pub const DB_PASSWORD: &str = "rpl-planted-db-pw-5c1e77";
/// app1's loopback Redis password (planted).
pub const REDIS_PASSWORD: &str = "rpl-planted-redis-pw-9a7d31";
/// The Django app's SECRET_KEY (planted).
pub const SECRET_KEY: &str = "rpl-planted-django-key-3f8b0e42";

/// The virtualenv with django-ratelimit and django-redis (system packages visible).
pub const VENV: &str = "/opt/rampart-lab/venv";
/// PyPI packages of the virtualenv, pinned.
pub const PIP_PACKAGES: &[&str] = &["django-ratelimit==4.1.0", "django-redis==5.4.0"];
/// The Django project in app1's own /var.
pub const APP_ROOT: &str = "/var/www/labapp";
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const PG_CONF_DIR: &str = "/etc/postgresql/15/main";
pub const PG_DATA: &str = "/var/lib/postgresql/15/lab";
/// Marker in db1's own /var: the database was bootstrapped and the app migrated.
const STACK_READY: &str = "/var/lib/postgresql/15/lab-stack-ready";
pub const APP_TLS_DIR: &str = "/etc/rampart-lab/tls";

/// The settings module each gunicorn port runs.
pub fn settings_module(port: u16) -> &'static str {
    if port == APP_PORT_PLAIN {
        "labsite.settings_debug"
    } else {
        "labsite.settings"
    }
}

/// db1's postgresql.conf: listens on its own address, `ssl = off` (the deliberate mistake).
pub fn postgresql_conf(addr: Ipv4Addr) -> String {
    format!(
        "# rampart lab: PostgreSQL 15 on db1\n\
         data_directory = '{PG_DATA}'\n\
         hba_file = '{PG_CONF_DIR}/pg_hba.conf'\n\
         ident_file = '{PG_CONF_DIR}/pg_ident.conf'\n\
         external_pid_file = '{PG_PID_FILE}'\n\
         listen_addresses = 'localhost,{addr}'\n\
         port = {PG_PORT}\n\
         unix_socket_directories = '/run/postgresql'\n\
         max_connections = 20\n\
         shared_buffers = 16MB\n\
         dynamic_shared_memory_type = posix\n\
         password_encryption = scram-sha-256\n\
         ssl = off\n\
         ssl_cert_file = '{PG_CONF_DIR}/server.crt'\n\
         ssl_key_file = '{PG_CONF_DIR}/server.key'\n\
         logging_collector = off\n\
         log_line_prefix = '%m [%p] %q%u@%d '\n\
         include_dir = 'conf.d'\n"
    )
}

/// db1's pg_hba.conf: peer for local, the app segment with `host` (TLS optional).
pub fn pg_hba(app: ipnet::Ipv4Net) -> String {
    format!(
        "# rampart lab\n\
         local   all       postgres             peer\n\
         local   all       all                  peer\n\
         host    all       all     127.0.0.1/32 scram-sha-256\n\
         host    labapp    labapp  {app}        scram-sha-256\n"
    )
}

/// The SQL that makes the app's role and database, idempotently (fed to psql's stdin).
pub fn pg_bootstrap_sql() -> String {
    format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'labapp') THEN \
         CREATE ROLE labapp LOGIN PASSWORD '{DB_PASSWORD}'; END IF; END $$;\n\
         SELECT 'CREATE DATABASE labapp OWNER labapp' WHERE NOT EXISTS \
         (SELECT FROM pg_database WHERE datname = 'labapp')\\gexec\n"
    )
}

/// redis.conf: cache1 on its private address without a password (the mistake); app1 on
/// loopback with a password; fwd1 on its private address with a password (its firewall is
/// its mistake).
pub fn redis_conf(role: StackRole, addr: Ipv4Addr) -> String {
    let mut s = String::from("# rampart lab\n");
    match role {
        StackRole::Cache => {
            let _ = writeln!(s, "bind {addr}\nprotected-mode no");
        }
        StackRole::Store => {
            let _ = writeln!(
                s,
                "bind {addr}\nprotected-mode yes\nrequirepass {REDIS_PASSWORD}"
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "bind 127.0.0.1 -::1\nprotected-mode yes\nrequirepass {REDIS_PASSWORD}"
            );
        }
    }
    let _ = writeln!(
        s,
        "port {REDIS_PORT}\ndaemonize no\npidfile /run/redis/redis-server.pid\n\
         dir /var/lib/redis\nlogfile \"\"\nsave \"\"\nappendonly no\nmaxmemory 32mb"
    );
    s
}

/// The Django project's files, relative to [`APP_ROOT`].
pub fn django_files(cfg: &LabConfig, db: Ipv4Addr, cache: Ipv4Addr) -> Vec<(String, String)> {
    let _ = cfg;
    let settings = format!(
        r#"# rampart lab: the app behind web1 (gunicorn on {APP_PORT_TLS}, TLS)
SECRET_KEY = "{SECRET_KEY}"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_ratelimit",
    "items",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "labsite.urls"
WSGI_APPLICATION = "labsite.wsgi.application"
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "labapp",
        "USER": "labapp",
        "PASSWORD": "{DB_PASSWORD}",
        "HOST": "{db}",
        "PORT": "{PG_PORT}",
        "CONN_MAX_AGE": 0,
    }}
}}
CACHES = {{
    "default": {{
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://{cache}:{REDIS_PORT}/0",
        "OPTIONS": {{"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2}},
    }}
}}
RATELIMIT_ENABLE = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"#
    );
    let settings_debug = format!(
        "# rampart lab: the app behind web2 (gunicorn on {APP_PORT_PLAIN}, plain HTTP)\n\
         from .settings import *  # noqa: F401,F403\n\n\
         DEBUG = True\n\
         RATELIMIT_ENABLE = False\n"
    );
    let files: [(&str, String); 13] = [
        (
            "manage.py",
            "#!/usr/bin/env python3\nimport os\nimport sys\n\n\
             if __name__ == \"__main__\":\n    \
             os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"labsite.settings\")\n    \
             from django.core.management import execute_from_command_line\n\n    \
             execute_from_command_line(sys.argv)\n"
                .into(),
        ),
        ("labsite/__init__.py", String::new()),
        ("labsite/settings.py", settings),
        ("labsite/settings_debug.py", settings_debug),
        (
            "labsite/urls.py",
            "from django.urls import path\n\nfrom items import views\n\n\
             urlpatterns = [\n    path(\"app/\", views.index),\n    path(\"app/health\", views.health),\n]\n"
                .into(),
        ),
        (
            "labsite/wsgi.py",
            "import os\n\nfrom django.core.wsgi import get_wsgi_application\n\n\
             os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"labsite.settings\")\n\
             application = get_wsgi_application()\n"
                .into(),
        ),
        ("items/__init__.py", String::new()),
        (
            "items/models.py",
            "from django.db import models\n\n\nclass Item(models.Model):\n    \
             name = models.CharField(max_length=100, unique=True)\n"
                .into(),
        ),
        ("items/migrations/__init__.py", String::new()),
        (
            "items/migrations/0001_initial.py",
            "from django.db import migrations, models\n\n\n\
             class Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n    \
             operations = [\n        migrations.CreateModel(\n            name=\"Item\",\n            \
             fields=[\n                (\"id\", models.AutoField(auto_created=True, primary_key=True, \
             serialize=False, verbose_name=\"ID\")),\n                \
             (\"name\", models.CharField(max_length=100, unique=True)),\n            ],\n        ),\n    ]\n"
                .into(),
        ),
        (
            "items/migrations/0002_seed.py",
            "from django.db import migrations\n\n\n\
             def seed(apps, schema_editor):\n    \
             apps.get_model(\"items\", \"Item\").objects.get_or_create(name=\"lab-item\")\n\n\n\
             class Migration(migrations.Migration):\n    dependencies = [(\"items\", \"0001_initial\")]\n    \
             operations = [migrations.RunPython(seed, migrations.RunPython.noop)]\n"
                .into(),
        ),
        (
            "items/views.py",
            "from django.core.cache import cache\nfrom django.http import HttpResponse\n\
             from django_ratelimit.decorators import ratelimit\n\nfrom .models import Item\n\n\n\
             @ratelimit(key=\"ip\", rate=\"600/m\", block=True)\ndef index(request):\n    \
             names = \",\".join(Item.objects.order_by(\"name\").values_list(\"name\", flat=True))\n    \
             cache.add(\"rampart-lab-hits\", 0)\n    hits = cache.incr(\"rampart-lab-hits\")\n    \
             return HttpResponse(f\"labapp items={names} hits={hits}\\n\", content_type=\"text/plain\")\n\n\n\
             @ratelimit(key=\"ip\", rate=\"600/m\", block=True)\ndef health(request):\n    \
             return HttpResponse(\"ok\\n\", content_type=\"text/plain\")\n"
                .into(),
        ),
        ("items/apps.py", "from django.apps import AppConfig\n\n\nclass ItemsConfig(AppConfig):\n    name = \"items\"\n".into()),
    ];
    files.into_iter().map(|(p, t)| (p.to_string(), t)).collect()
}

// ---------------------------------------------------------------------------------------
// steps of `lab up`

pub(super) fn write(host: &str, path: &Path, data: &[u8], mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(LabError::io(host, "mkdir", dir))?;
    }
    fs::write(path, data).map_err(LabError::io(host, "write file", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(LabError::io(host, "chmod", path))
}

/// uid and gid of a system user, from the machine's /etc/passwd (the hosts share it).
pub(super) fn ids(host: &str, user: &str) -> Result<(u32, u32), LabError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(LabError::io(
        host,
        "passwd",
        Path::new("/etc/passwd"),
    ))?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        })
        .flatten()
        .ok_or_else(|| LabError::Failed {
            host: host.into(),
            stage: "system user",
            detail: format!("no user {user:?} in /etc/passwd (is its package installed?)"),
        })
}

fn dir_owned_by(host: &str, holder: u32, dir: &str, user: &str) -> Result<(), LabError> {
    let p = in_view(holder, dir);
    fs::create_dir_all(&p).map_err(LabError::io(host, "mkdir", &p))?;
    let (uid, gid) = ids(host, user)?;
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(LabError::io(host, "chown", &p))
}

fn address_of(cfg: &LabConfig, role: StackRole) -> Option<Ipv4Addr> {
    cfg.hosts()
        .into_iter()
        .find(|h| h.stack_role() == role)
        .map(|h| h.address)
}

/// Writes a stack host's files into its view (called when the host is made).
pub(super) fn configure(
    cfg: &LabConfig,
    h: &HostSpec,
    holder: u32,
    app_cert: Option<(&Path, &Path)>,
) -> Result<(), LabError> {
    // `app_cert`: the host's own key and certificate from the lab CA (app1: gunicorn's TLS
    // port; db1: PostgreSQL's, left unused while ssl = off).
    let name = h.name.as_str();
    match h.stack_role() {
        StackRole::Db => {
            let app = cfg.segment_net(Segment::App);
            write(
                name,
                &in_view(holder, &format!("{PG_CONF_DIR}/postgresql.conf")),
                postgresql_conf(h.address).as_bytes(),
                0o644,
            )?;
            write(
                name,
                &in_view(holder, &format!("{PG_CONF_DIR}/pg_hba.conf")),
                pg_hba(app).as_bytes(),
                0o640,
            )?;
            write(
                name,
                &in_view(holder, &format!("{PG_CONF_DIR}/pg_ident.conf")),
                b"# rampart lab\n",
                0o640,
            )?;
            fs::create_dir_all(in_view(holder, &format!("{PG_CONF_DIR}/conf.d")))
                .map_err(LabError::io(name, "mkdir", Path::new(PG_CONF_DIR)))?;
            // The host's own certificate (lab CA), for when TLS is turned on (pg-enable-tls).
            if let Some((key, crt)) = app_cert {
                let (uid, gid) = ids(name, "postgres")?;
                for (from, to, mode) in [(key, "server.key", 0o600), (crt, "server.crt", 0o644)] {
                    let data = fs::read(from).map_err(LabError::io(name, "TLS file", from))?;
                    let p = in_view(holder, &format!("{PG_CONF_DIR}/{to}"));
                    write(name, &p, &data, mode)?;
                    std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                        .map_err(LabError::io(name, "chown", &p))?;
                }
            }
            for f in ["pg_hba.conf", "pg_ident.conf"] {
                let p = in_view(holder, &format!("{PG_CONF_DIR}/{f}"));
                let (uid, gid) = ids(name, "postgres")?;
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                    .map_err(LabError::io(name, "chown", &p))?;
            }
        }
        StackRole::Cache | StackRole::App | StackRole::Store => {
            write(
                name,
                &in_view(holder, "/etc/redis/redis.conf"),
                redis_conf(h.stack_role(), h.address).as_bytes(),
                0o640,
            )?;
            let p = in_view(holder, "/etc/redis/redis.conf");
            let (uid, gid) = ids(name, "redis")?;
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .map_err(LabError::io(name, "chown", &p))?;
        }
        StackRole::Web | StackRole::None => {}
    }
    if h.stack_role() == StackRole::App {
        let db = address_of(cfg, StackRole::Db).unwrap_or(h.address);
        let cache = address_of(cfg, StackRole::Cache).unwrap_or(h.address);
        for (rel, text) in django_files(cfg, db, cache) {
            write(
                name,
                &in_view(holder, &format!("{APP_ROOT}/{rel}")),
                text.as_bytes(),
                0o644,
            )?;
        }
        if let Some((key, crt)) = app_cert {
            let k = fs::read(key).map_err(LabError::io(name, "TLS key", key))?;
            let c = fs::read(crt).map_err(LabError::io(name, "TLS certificate", crt))?;
            write(
                name,
                &in_view(holder, &format!("{APP_TLS_DIR}/{name}.key")),
                &k,
                0o600,
            )?;
            write(
                name,
                &in_view(holder, &format!("{APP_TLS_DIR}/{name}.crt")),
                &c,
                0o644,
            )?;
        }
    }
    if h.stack_role() == StackRole::Web {
        let ca = cfg.ca_cert();
        let c = fs::read(&ca).map_err(LabError::io(name, "lab CA", &ca))?;
        write(name, &in_view(holder, "/etc/nginx/tls/ca.crt"), &c, 0o644)?;
    }
    Ok(())
}

fn as_user(host: &str, stage: &'static str, holder: u32, user: &str) -> Cmd {
    Cmd::in_host(host, stage, holder, "setpriv")
        .arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .args(["--init-groups", "--"])
}

/// Starts PostgreSQL (running initdb first when the data directory is new).
pub(super) fn start_postgres(name: &str, holder: u32, log: &Path) -> Result<(), LabError> {
    dir_owned_by(name, holder, "/run/postgresql", "postgres")?;
    if !in_view(holder, &format!("{PG_DATA}/PG_VERSION")).exists() {
        dir_owned_by(name, holder, "/var/lib/postgresql/15", "postgres")?;
        as_user(name, "initdb", holder, "postgres")
            .arg(format!("{PG_BIN}/initdb"))
            .args(["-D", PG_DATA, "-U", "postgres", "--auth-local=peer"])
            .args([
                "--auth-host=scram-sha-256",
                "--no-instructions",
                "-E",
                "UTF8",
            ])
            .run()?;
    }
    as_user(name, "start postgres", holder, "postgres")
        .arg(format!("{PG_BIN}/postgres"))
        .arg(format!("--config-file={PG_CONF_DIR}/postgresql.conf"))
        .spawn_detached(log)?;
    Ok(())
}

pub(super) fn start_redis(name: &str, holder: u32, log: &Path) -> Result<(), LabError> {
    dir_owned_by(name, holder, "/run/redis", "redis")?;
    as_user(name, "start redis", holder, "redis")
        .args(["/usr/bin/redis-server", "/etc/redis/redis.conf"])
        .spawn_detached(log)?;
    Ok(())
}

pub(super) fn start_gunicorn(
    name: &str,
    addr: Ipv4Addr,
    holder: u32,
    port: u16,
    log: &Path,
) -> Result<(), LabError> {
    let module = settings_module(port);
    let mut cmd = Cmd::in_host(name, "start gunicorn", holder, "env")
        .arg(format!("DJANGO_SETTINGS_MODULE={module}"))
        .arg(format!("{VENV}/bin/python3"))
        .args(["-m", "gunicorn", "--chdir", APP_ROOT, "--workers", "1"])
        .arg("--bind")
        .arg(format!("{addr}:{port}"))
        .arg("--pid")
        .arg(format!("/run/rampart-lab/gunicorn-{port}.pid"))
        .args(["--access-logfile", "/var/log/gunicorn-access.log"]);
    if port == APP_PORT_TLS {
        cmd = cmd
            .arg("--certfile")
            .arg(format!("{APP_TLS_DIR}/{name}.crt"))
            .arg("--keyfile")
            .arg(format!("{APP_TLS_DIR}/{name}.key"));
    }
    cmd.arg("labsite.wsgi").spawn_detached(log)?;
    Ok(())
}

/// After every host is up: the app's role and database on db1, then the app's migrations
/// from app1 (both idempotent; skipped once done for this db1).
pub(super) fn bootstrap(
    cfg: &LabConfig,
    holder_of: impl Fn(&str) -> Option<u32>,
) -> Result<bool, LabError> {
    let hosts = cfg.hosts();
    let (Some(db), Some(app)) = (
        hosts.iter().find(|h| h.stack_role() == StackRole::Db),
        hosts.iter().find(|h| h.stack_role() == StackRole::App),
    ) else {
        return Ok(false);
    };
    let (Some(db_holder), Some(app_holder)) = (holder_of(&db.name), holder_of(&app.name)) else {
        return Ok(false);
    };
    let marker = in_view(db_holder, STACK_READY);
    if marker.exists() {
        return Ok(false);
    }
    let ready = sys::wait_until(Duration::from_secs(20), || {
        as_user(&db.name, "pg_isready", db_holder, "postgres")
            .arg(format!("{PG_BIN}/pg_isready"))
            .args(["-q", "-h", "/run/postgresql"])
            .succeeds()
    });
    if !ready {
        return Err(LabError::Failed {
            host: db.name.clone(),
            stage: "postgres ready",
            detail: "PostgreSQL did not accept connections within 20 s (see its log in the \
                     host's logs/)"
                .into(),
        });
    }
    as_user(&db.name, "create app database", db_holder, "postgres")
        .arg("/usr/bin/psql")
        .args([
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "/run/postgresql",
            "-d",
            "postgres",
        ])
        .stdin(pg_bootstrap_sql())
        .run()?;
    Cmd::in_host(&app.name, "migrate app", app_holder, "env")
        .arg("DJANGO_SETTINGS_MODULE=labsite.settings")
        .arg(format!("{VENV}/bin/python3"))
        .arg(format!("{APP_ROOT}/manage.py"))
        .args(["migrate", "--noinput", "-v", "0"])
        .run()?;
    write(&db.name, &marker, b"", 0o644)?;
    Ok(true)
}

/// The virtualenv with the pinned PyPI packages, made when missing.
pub(super) fn ensure_venv() -> Result<bool, LabError> {
    let py = Path::new(VENV).join("bin/python3");
    let ok = py.exists()
        && Cmd::new("lab", "venv check", &py)
            .args([
                "-c",
                "import django_ratelimit, django_redis, gunicorn, psycopg2",
            ])
            .succeeds();
    if ok {
        return Ok(false);
    }
    Cmd::new("lab", "make venv", "/usr/bin/python3")
        .args(["-m", "venv", "--system-site-packages", VENV])
        .run()?;
    Cmd::new("lab", "pip install", Path::new(VENV).join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(PIP_PACKAGES)
        .run()?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn db1_is_plain_and_cache1_has_no_password() {
        let cfg = LabConfig::default();
        let pg = postgresql_conf(cfg.addr(12, 11));
        assert!(pg.contains("\nssl = off\n"));
        assert!(pg.contains("listen_addresses = 'localhost,10.77.12.11'"));
        let hba = pg_hba(cfg.segment_net(Segment::App));
        assert!(hba.contains("host    labapp    labapp  10.77.11.0/24"));
        let cache = redis_conf(StackRole::Cache, cfg.addr(12, 21));
        assert!(cache.contains("bind 10.77.12.21\nprotected-mode no\n"));
        assert!(!cache.contains("requirepass"));
        let app = redis_conf(StackRole::App, cfg.addr(11, 11));
        assert!(app.contains(&format!("requirepass {REDIS_PASSWORD}")));
        assert!(app.contains("bind 127.0.0.1 -::1"));
        let store = redis_conf(StackRole::Store, cfg.addr(11, 31));
        assert!(store.contains("bind 10.77.11.31\nprotected-mode yes\n"));
        assert!(store.contains(&format!("requirepass {REDIS_PASSWORD}")));
    }

    #[test]
    fn the_two_apps_differ_in_debug_and_rate_limits() {
        let cfg = LabConfig::default();
        let files = django_files(&cfg, cfg.addr(12, 11), cfg.addr(12, 21));
        let get = |p: &str| files.iter().find(|(n, _)| n == p).unwrap().1.clone();
        assert!(get("labsite/settings.py").contains("DEBUG = False"));
        assert!(get("labsite/settings.py").contains("redis://10.77.12.21:6379/0"));
        let dbg = get("labsite/settings_debug.py");
        assert!(dbg.contains("DEBUG = True") && dbg.contains("RATELIMIT_ENABLE = False"));
        assert_eq!(settings_module(APP_PORT_PLAIN), "labsite.settings_debug");
        assert_eq!(settings_module(APP_PORT_TLS), "labsite.settings");
        // What rampart's parser makes of them (the probe would blank the secrets first).
        let s = crate::collect::django::parse_settings(
            "/x/labsite/settings_debug.py",
            "labsite.settings_debug",
            &dbg,
        );
        assert_eq!(s.imports.as_deref(), Some("labsite.settings"));
        let views =
            crate::collect::django::parse_views("/x/items/views.py", &get("items/views.py"));
        assert_eq!(views.len(), 2);
        assert!(views.iter().all(|v| v.limited_by.is_some()));
        assert!(pg_bootstrap_sql().contains("\\gexec"));
    }
}
