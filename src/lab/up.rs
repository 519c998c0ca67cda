//! `lab up`: packages, keys, the network, each host's view and daemons. Idempotent: every
//! step first looks whether its result is already there, and a host found half-made is made
//! again from scratch (its processes killed, its overlay layers wiped; its keys kept).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::LabError;
use super::config::{
    self, Daemon, FAIL2BAN_SSHD_FILTER_LOCAL, Firewall, HostSpec, LISTENER_PY, LabConfig,
    NGINX_CONF, Segment, WG_IF, WgKeys, WgRole, in_view,
};
use super::sys::{self, Cmd};

/// Programs the lab runs, and the Debian package that ships each.
const PROGRAMS: &[(&str, &str)] = &[
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/bin/ssh", "openssh-client"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/bin/ssh-keyscan", "openssh-client"),
    ("/usr/sbin/ufw", "ufw"),
    ("/usr/sbin/nft", "nftables"),
    ("/usr/sbin/iptables", "iptables"),
    ("/usr/sbin/iptables-legacy-restore", "iptables"),
    ("/usr/sbin/ipset", "ipset"),
    ("/usr/bin/fail2ban-server", "fail2ban"),
    ("/usr/sbin/nginx", "nginx"),
    ("/usr/bin/openssl", "openssl"),
    (
        "/usr/bin/prometheus-node-exporter",
        "prometheus-node-exporter",
    ),
    ("/usr/bin/wg", "wireguard-tools"),
    ("/usr/bin/python3", "python3"),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/sbin/dockerd", "docker.io"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/ss", "iproute2"),
    // The hostile suite audits through a sudoers policy (`rampart audit --print-sudoers`).
    ("/usr/bin/sudo", "sudo"),
    ("/usr/bin/crowdsec", "crowdsec"),
    ("/usr/bin/cscli", "crowdsec"),
    ("/usr/sbin/zabbix_agentd", "zabbix-agent"),
    // fail2ban's systemd backend (vpn1's blind jail) needs the journal bindings to start.
    (
        "/usr/lib/python3/dist-packages/systemd/journal.py",
        "python3-systemd",
    ),
    ("/usr/bin/curl", "curl"),
    // The Django stack (super::stack).
    ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
    ("/usr/bin/psql", "postgresql-client-15"),
    ("/usr/bin/redis-server", "redis-server"),
    ("/usr/bin/gunicorn", "gunicorn"),
    (
        "/usr/lib/python3/dist-packages/django/__init__.py",
        "python3-django",
    ),
    (
        "/usr/lib/python3/dist-packages/psycopg2/__init__.py",
        "python3-psycopg2",
    ),
    (
        "/usr/lib/python3/dist-packages/redis/__init__.py",
        "python3-redis",
    ),
    ("/usr/lib/python3.11/ensurepip/__init__.py", "python3-venv"),
    ("/usr/bin/setpriv", "util-linux"),
    // fwd1: firewalld on its own system bus.
    ("/usr/sbin/firewalld", "firewalld"),
    ("/usr/bin/firewall-cmd", "firewalld"),
    ("/usr/bin/dbus-daemon", "dbus"),
];

/// Written before crowdsec's package is installed: a non-empty Central API credentials
/// file makes its postinst skip `cscli capi register`, so installing never calls out.
const CROWDSEC_CAPI: &str = "/etc/crowdsec/online_api_credentials.yaml";

const PYTHON: &str = "/usr/bin/python3";

/// Things `up` made, one line each, for the user.
type Made = Mutex<Vec<String>>;

fn note(made: &Made, line: String) {
    if let Ok(mut m) = made.lock() {
        m.push(line);
    }
}

/// How many scale hosts the lab has now (recorded by the last `up`).
pub fn current_scale_hosts(cfg: &LabConfig) -> u32 {
    fs::read_to_string(cfg.state_dir.join("scale_hosts"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub fn up(cfg: &LabConfig) -> Result<Vec<String>, LabError> {
    let made = Made::default();
    ensure_packages(&made)?;
    if super::stack::ensure_venv()? {
        note(
            &made,
            format!(
                "made {} (pip: {})",
                super::stack::VENV,
                super::stack::PIP_PACKAGES.join(" ")
            ),
        );
    }
    let boringtun = ensure_boringtun(&made)?;
    mkdir_private(&cfg.state_dir)?;
    let lock =
        fs::File::create(cfg.lock_file()).map_err(LabError::io("lab", "lock", &cfg.lock_file()))?;
    lock.lock()
        .map_err(LabError::io("lab", "lock", &cfg.lock_file()))?;

    let keys = ensure_keys(cfg, &made)?;
    let hosts = cfg.hosts();
    remove_surplus_scale_hosts(cfg, &made);
    ensure_network(cfg, &hosts, &made)?;

    let ctx = Ctx {
        cfg,
        keys: &keys,
        boringtun: &boringtun,
        made: &made,
    };
    // Hosts are independent once the network exists; make them a few at a time.
    let errors: Mutex<Vec<LabError>> = Mutex::default();
    for chunk in hosts.chunks(8) {
        std::thread::scope(|s| {
            for h in chunk {
                let ctx = &ctx;
                let errors = &errors;
                s.spawn(move || {
                    if let Err(e) = ensure_host(ctx, h)
                        && let Ok(mut v) = errors.lock()
                    {
                        v.push(e);
                    }
                });
            }
        });
    }
    if let Some(e) = errors.into_inner().ok().and_then(|mut v| {
        if v.is_empty() {
            None
        } else {
            Some(v.remove(0))
        }
    }) {
        return Err(e);
    }

    if super::stack::bootstrap(cfg, |n| live_holder(cfg, n))? {
        note(
            &made,
            "made the app's database on db1 and migrated the app".into(),
        );
    }
    write_client_files(cfg, &hosts)?;
    let n = cfg.scale_hosts.to_string();
    write_file(
        "lab",
        &cfg.state_dir.join("scale_hosts"),
        n.as_bytes(),
        0o644,
    )?;
    poke_wireguard(cfg, &hosts);
    drop(lock);
    Ok(made.into_inner().unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// packages and keys

fn ensure_packages(made: &Made) -> Result<(), LabError> {
    let mut missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if missing.contains(&"crowdsec") {
        let capi = Path::new(CROWDSEC_CAPI);
        if fs::metadata(capi).map_or(true, |m| m.len() == 0) {
            mkdir("lab", Path::new("/etc/crowdsec"))?;
            write_file(
                "lab",
                capi,
                b"# rampart lab: CrowdSec runs offline: no Central API registration.\n",
                0o600,
            )?;
        }
    }
    // Packages must not start their daemons in the root namespace (docker.io would start a
    // dockerd there): the lab starts its own. Debian's policy-rc.d says so, while we install.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        write_file(
            "lab",
            policy,
            b"#!/bin/sh\n# rampart lab up\nexit 101\n",
            0o755,
        )?;
    }
    let result = install_packages(&missing);
    if own_policy {
        let _ = fs::remove_file(policy);
    }
    result?;
    note(made, format!("installed packages: {}", missing.join(" ")));
    Ok(())
}

fn install_packages(missing: &[&str]) -> Result<(), LabError> {
    let install = Cmd::new("lab", "install packages", "env")
        .args([
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
        ])
        .args(missing);
    if install.run().is_err() {
        // The package lists may be missing or stale on a fresh machine.
        Cmd::new("lab", "apt-get update", "apt-get")
            .args(["update", "-q"])
            .run()?;
        install.run()?;
    }
    Ok(())
}

fn cargo_bin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(h).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs
}

fn ensure_boringtun(made: &Made) -> Result<PathBuf, LabError> {
    let dirs = cargo_bin_dirs();
    if let Some(p) = sys::find_program("boringtun-cli", &dirs) {
        return Ok(p);
    }
    let cargo = sys::find_program("cargo", &dirs).ok_or_else(|| LabError::Failed {
        host: "lab".into(),
        stage: "install boringtun-cli",
        detail: "boringtun-cli is missing and cargo was not found to install it \
                 (install Rust with rustup, then run `cargo install boringtun-cli`)"
            .into(),
    })?;
    Cmd::new("lab", "install boringtun-cli", cargo)
        .args(["install", "--locked", "boringtun-cli"])
        .run()?;
    note(made, "installed boringtun-cli with cargo".into());
    sys::find_program("boringtun-cli", &dirs).ok_or_else(|| LabError::Failed {
        host: "lab".into(),
        stage: "install boringtun-cli",
        detail: "cargo install succeeded but boringtun-cli is not on PATH or in ~/.cargo/bin"
            .into(),
    })
}

fn mkdir_private(dir: &Path) -> Result<(), LabError> {
    fs::create_dir_all(dir).map_err(LabError::io("lab", "state dir", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(LabError::io(
        "lab",
        "state dir",
        dir,
    ))
}

fn mkdir(host: &str, dir: &Path) -> Result<(), LabError> {
    fs::create_dir_all(dir).map_err(LabError::io(host, "mkdir", dir))
}

fn write_file(host: &str, path: &Path, data: &[u8], mode: u32) -> Result<(), LabError> {
    fs::write(path, data).map_err(LabError::io(host, "write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(LabError::io(host, "chmod", path))
}

/// Where root's home is inside a lab host.
pub const LAB_ROOT_HOME: &str = "/var/lib/rampart-lab/root";

/// Gives root a home of the host's own (in its private /var), set in the host's private
/// /etc/passwd. The machine's real /root stays out of the hosts' sessions: its shell start-up
/// files (a pyenv rehash taking a lock in a shared directory, say) would otherwise run, and
/// contend, in every session of every lab host.
fn private_root_home(name: &str, pid: u32) -> Result<(), LabError> {
    let home = in_view(pid, LAB_ROOT_HOME);
    mkdir(name, &home)?;
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700))
        .map_err(LabError::io(name, "chmod", &home))?;
    let passwd = in_view(pid, "/etc/passwd");
    let text = read_file(name, &passwd)?;
    let edited = set_root_home(&text, LAB_ROOT_HOME);
    if edited != text {
        write_file(name, &passwd, edited.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Puts `127.0.1.1 NAME` in the host's private /etc/hosts, as Debian's installer does: the
/// lab has no DNS, and programs that look up their own name (sudo does, every call) would
/// otherwise wait for the resolver to time out.
fn own_name_in_hosts(name: &str, pid: u32) -> Result<(), LabError> {
    let hosts = in_view(pid, "/etc/hosts");
    let text = read_file(name, &hosts).unwrap_or_default();
    let edited = with_own_name(&text, name);
    if edited != text {
        write_file(name, &hosts, edited.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `/etc/hosts` text with a `127.0.1.1 NAME` line (added once).
fn with_own_name(hosts: &str, name: &str) -> String {
    let present = hosts.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some("127.0.1.1") && w.any(|n| n == name)
    });
    if present {
        return hosts.to_string();
    }
    let mut out = hosts.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("127.0.1.1\t{name}\n"));
    out
}

/// `/etc/passwd` text with root's home directory (the sixth field) set to `home`.
fn set_root_home(passwd: &str, home: &str) -> String {
    let mut out = String::with_capacity(passwd.len() + home.len());
    for line in passwd.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"root") && fields.len() == 7 {
            fields[5] = home;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn read_file(host: &str, path: &Path) -> Result<String, LabError> {
    fs::read_to_string(path).map_err(LabError::io(host, "read", path))
}

/// An ed25519 key pair made once per lab with ssh-keygen.
fn ensure_ssh_key(host: &str, path: &Path, comment: &str) -> Result<bool, LabError> {
    let mut pubpath = path.as_os_str().to_owned();
    pubpath.push(".pub");
    if path.exists() && Path::new(&pubpath).exists() {
        return Ok(false);
    }
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(&pubpath);
    Cmd::new(host, "ssh-keygen", "ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .run()?;
    Ok(true)
}

struct Keys {
    client_public: String,
    /// The lab user CA's public key, for every sshd's `TrustedUserCAKeys`.
    user_ca_public: String,
    wg: WgKeys,
}

fn ensure_keys(cfg: &LabConfig, made: &Made) -> Result<Keys, LabError> {
    if ensure_ssh_key("lab", &cfg.client_key(), "rampart-lab-client")? {
        note(
            made,
            format!("made lab client key {}", cfg.client_key().display()),
        );
    }
    let mut pubpath = cfg.client_key().into_os_string();
    pubpath.push(".pub");
    let client_public = read_file("lab", Path::new(&pubpath))?;
    if ensure_ssh_key("lab", &cfg.user_ca_key(), "rampart-lab-user-ca")? {
        note(
            made,
            format!("made lab SSH user CA {}", cfg.user_ca_key().display()),
        );
    }
    let mut ca_pubpath = cfg.user_ca_key().into_os_string();
    ca_pubpath.push(".pub");
    let user_ca_public = read_file("lab", Path::new(&ca_pubpath))?;

    let ca_dir = cfg.state_dir.join("ca");
    mkdir("lab", &ca_dir)?;
    let ca_key = ca_dir.join("ca.key");
    if !ca_key.exists() || !cfg.ca_cert().exists() {
        Cmd::new("lab", "lab CA", "openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=rampart lab CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
            ])
            .arg(&ca_key)
            .arg("-out")
            .arg(cfg.ca_cert())
            .run()?;
        note(made, format!("made lab CA {}", cfg.ca_cert().display()));
    }

    let wg_dir = cfg.state_dir.join("wg");
    mkdir("lab", &wg_dir)?;
    let pair = |name: &str| -> Result<(String, String), LabError> {
        let key = wg_dir.join(format!("{name}.key"));
        if !key.exists() {
            let k = Cmd::new("lab", "wg genkey", "wg").arg("genkey").run()?;
            write_file("lab", &key, k.as_bytes(), 0o600)?;
        }
        let private = read_file("lab", &key)?.trim().to_owned();
        let public = Cmd::new("lab", "wg pubkey", "wg")
            .arg("pubkey")
            .stdin(format!("{private}\n"))
            .run()?
            .trim()
            .to_owned();
        Ok((private, public))
    };
    let (server_private, server_public) = pair("vpn1")?;
    let (client_private, client_public_wg) = pair("edge")?;
    let (_, old_laptop_public) = pair("old-laptop")?;
    Ok(Keys {
        client_public,
        user_ca_public,
        wg: WgKeys {
            server_private,
            server_public,
            client_private,
            client_public: client_public_wg,
            old_laptop_public,
        },
    })
}

/// A TLS key and certificate signed by the lab CA, made once per lab.
/// A certificate serial unique to this signing: the time in nanoseconds, the process and the
/// host's name folded in (hex, positive, 15 octets: under the 20 RFC 5280 allows).
fn cert_serial(host: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!(
        "0x1{:012x}{:08x}{:08x}",
        nanos & 0xffff_ffff_ffff,
        std::process::id(),
        name & 0xffff_ffff
    )
}

fn ensure_cert(
    cfg: &LabConfig,
    host: &HostSpec,
    days: u32,
) -> Result<(PathBuf, PathBuf), LabError> {
    let dir = cfg.host_dir(&host.name).join("tls");
    mkdir(&host.name, &dir)?;
    let key = dir.join(format!("{}.key", host.name));
    let crt = dir.join(format!("{}.crt", host.name));
    // A certificate is kept only when it is one (a failed signing must not leave an empty
    // file that every later `lab up` would take for a certificate).
    let whole =
        |p: &Path| fs::read_to_string(p).is_ok_and(|t| t.contains("-----END CERTIFICATE-----"));
    if key.exists() && whole(&crt) {
        return Ok((key, crt));
    }
    let csr = dir.join(format!("{}.csr", host.name));
    let tmp = dir.join(format!("{}.crt.new", host.name));
    Cmd::new(&host.name, "TLS key", "openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
        ])
        .arg(format!("/CN={}", host.name))
        .arg("-addext")
        .arg(format!(
            "subjectAltName=DNS:{},IP:{}",
            host.name, host.address
        ))
        .args(["-addext", "extendedKeyUsage=serverAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .run()?;
    Cmd::new(&host.name, "TLS certificate", "openssl")
        .args([
            "x509",
            "-req",
            "-sha256",
            "-copy_extensions",
            "copy",
            "-days",
        ])
        .arg(days.to_string())
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(cfg.ca_cert())
        .arg("-CAkey")
        .arg(cfg.state_dir.join("ca").join("ca.key"))
        // Hosts are made in parallel: a serial of its own for each certificate rather than
        // `-CAcreateserial`, whose shared ca.srl two signings at once can leave half-written.
        .arg("-set_serial")
        .arg(cert_serial(&host.name))
        .arg("-out")
        .arg(&tmp)
        .run()?;
    fs::rename(&tmp, &crt).map_err(LabError::io(&host.name, "TLS certificate", &crt))?;
    Ok((key, crt))
}

// ---------------------------------------------------------------------------------------
// the network

fn ip(host: &str, stage: &'static str) -> Cmd {
    Cmd::new(host, stage, "ip")
}

fn ensure_netns(cfg: &LabConfig, name: &str, made: &Made) -> Result<(), LabError> {
    let ns = cfg.netns(name);
    if !sys::netns_path(&ns).exists() {
        ip(name, "netns").args(["netns", "add", &ns]).run()?;
        note(made, format!("made netns {ns}"));
    }
    ip(name, "loopback")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .run()?;
    Ok(())
}

fn link_exists(netns: Option<&str>, link: &str) -> bool {
    let mut c = ip("lab", "probe link");
    if let Some(ns) = netns {
        c = c.args(["-n", ns]);
    }
    c.args(["link", "show", "dev", link]).succeeds()
}

fn sysctl(host: &str, netns: &str, key_value: &str) -> Result<(), LabError> {
    Cmd::in_netns(host, "sysctl", netns, "sysctl")
        .args(["-qw", key_value])
        .run()
        .map(|_| ())
}

/// A veth pair from `inner` in host namespace `ns` to a port named `port` on the segment's
/// bridge in the router namespace.
fn ensure_leg(
    cfg: &LabConfig,
    host: &str,
    ns: &str,
    inner: &str,
    port: &str,
    seg: Segment,
    made: &Made,
) -> Result<(), LabError> {
    let core = cfg.core_netns();
    if !link_exists(Some(ns), inner) {
        // A leftover router end (its host namespace was deleted) would block the name.
        let _ = ip(host, "veth")
            .args(["-n", &core, "link", "del", port])
            .output();
        ip(host, "veth")
            .args([
                "link", "add", inner, "netns", ns, "type", "veth", "peer", "name",
            ])
            .args([port, "netns", &core])
            .run()?;
        note(made, format!("linked {host} {inner} to {}", seg.name()));
    }
    ip(host, "bridge port")
        .args(["-n", &core, "link", "set", port, "master"])
        .arg(format!("br-{}", seg.name()))
        .arg("up")
        .run()?;
    ip(host, "link up")
        .args(["-n", ns, "link", "set", inner, "up"])
        .run()?;
    Ok(())
}

fn addr_replace(
    host: &str,
    ns: &str,
    addr: std::net::Ipv4Addr,
    len: u8,
    dev: &str,
) -> Result<(), LabError> {
    ip(host, "address")
        .args(["-n", ns, "addr", "replace"])
        .arg(format!("{addr}/{len}"))
        .args(["dev", dev])
        .run()
        .map(|_| ())
}

fn ensure_network(cfg: &LabConfig, hosts: &[HostSpec], made: &Made) -> Result<(), LabError> {
    let core = cfg.core_netns();
    ensure_netns(cfg, "core", made)?;
    sysctl("core", &core, "net.ipv4.ip_forward=1")?;
    for seg in Segment::BRIDGED {
        let br = format!("br-{}", seg.name());
        if !link_exists(Some(&core), &br) {
            ip("core", "bridge")
                .args(["-n", &core, "link", "add", &br, "type", "bridge"])
                .run()?;
            note(made, format!("made bridge {br} in {core}"));
        }
        let net = cfg.segment_net(seg);
        addr_replace("core", &core, cfg.gateway(seg), net.prefix_len(), &br)?;
        ip("core", "bridge up")
            .args(["-n", &core, "link", "set", &br, "up"])
            .run()?;
    }

    for h in hosts {
        let ns = cfg.netns(&h.name);
        ensure_netns(cfg, &h.name, made)?;
        // Only the router forwards; the bastion in particular must not route. The Docker
        // host forwards to its containers, as dockerd itself sets it when it starts (set here
        // too, or a warm `lab up` would cut every published port off).
        let forward = if h.runs_docker() {
            "net.ipv4.ip_forward=1"
        } else {
            "net.ipv4.ip_forward=0"
        };
        sysctl(&h.name, &ns, forward)?;
        // Every refused connection gets its ICMP answer: the kernel's per-peer limit (a burst
        // of 6, then one a second) would otherwise turn a firewall's reject into a silent
        // drop when one source tries many ports, as the kernel agreement test does.
        sysctl(&h.name, &ns, "net.ipv4.icmp_ratelimit=0")?;
        if h.is_bastion() {
            let up = cfg.uplink();
            if !link_exists(Some(&ns), "eth0") {
                let _ = ip("edge", "uplink").args(["link", "del", &up]).output();
                ip("edge", "uplink")
                    .args(["link", "add", &up, "type", "veth", "peer", "name", "eth0"])
                    .args(["netns", &ns])
                    .run()?;
                note(made, format!("linked root namespace {up} to edge eth0"));
            }
            let outside = cfg.segment_net(Segment::Outside);
            ip("edge", "uplink address")
                .args(["addr", "replace"])
                .arg(format!("{}/{}", cfg.root_address(), outside.prefix_len()))
                .args(["dev", &up])
                .run()?;
            ip("edge", "uplink up")
                .args(["link", "set", &up, "up"])
                .run()?;
            ip("edge", "link up")
                .args(["-n", &ns, "link", "set", "eth0", "up"])
                .run()?;
            addr_replace("edge", &ns, h.address, outside.prefix_len(), "eth0")?;
            ensure_leg(cfg, "edge", &ns, "eth1", &h.name, Segment::Admin, made)?;
            let admin_len = cfg.segment_net(Segment::Admin).prefix_len();
            if let Some(a) = h.admin_address {
                addr_replace("edge", &ns, a, admin_len, "eth1")?;
            }
            addr_replace("edge", &ns, cfg.edge_test_source(), admin_len, "eth1")?;
            // Everything else in the lab lies behind the router.
            ip("edge", "route")
                .args(["-n", &ns, "route", "replace"])
                .arg(cfg.base.to_string())
                .args(["via"])
                .arg(cfg.gateway(Segment::Admin).to_string())
                .run()?;
        } else {
            ensure_leg(cfg, &h.name, &ns, "eth0", &h.name, h.segment, made)?;
            let len = cfg.segment_net(h.segment).prefix_len();
            addr_replace(&h.name, &ns, h.address, len, "eth0")?;
            ip(&h.name, "route")
                .args(["-n", &ns, "route", "replace", "default", "via"])
                .arg(cfg.gateway(h.segment).to_string())
                .run()?;
        }
    }

    // The root namespace reaches the outside link only. The rest of the lab's /16 is
    // unreachable by routing, so nothing meant for a private host leaves by the default route.
    ip("lab", "root route")
        .args(["route", "replace", "unreachable"])
        .arg(cfg.base.to_string())
        .run()?;
    Ok(())
}

fn remove_surplus_scale_hosts(cfg: &LabConfig, made: &Made) {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    let want: Vec<String> = (1..=cfg.scale_hosts)
        .map(|i| cfg.netns(&LabConfig::scale_name(i)))
        .collect();
    let scale_prefix = format!("{}-s", cfg.prefix);
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_scale = name
            .strip_prefix(&scale_prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_scale && !want.contains(&name) {
            sys::terminate(&sys::netns_pids(&name), Duration::from_secs(2));
            let host = name
                .trim_start_matches(&format!("{}-", cfg.prefix))
                .to_owned();
            let _ = ip(&host, "remove")
                .args(["-n", &cfg.core_netns(), "link", "del", &host])
                .output();
            let _ = ip(&host, "remove").args(["netns", "del", &name]).output();
            let _ = fs::remove_dir_all(cfg.host_dir(&host));
            note(made, format!("removed scale host {host}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// hosts

struct Ctx<'a> {
    cfg: &'a LabConfig,
    keys: &'a Keys,
    boringtun: &'a Path,
    made: &'a Made,
}

fn holder_file(cfg: &LabConfig, host: &str) -> PathBuf {
    cfg.host_dir(host).join("holder.pid")
}

/// The host's holder process, if it is alive, in the host's netns and in a mount namespace of
/// its own.
pub(super) fn live_holder(cfg: &LabConfig, host: &str) -> Option<u32> {
    let pid = sys::read_pid(&holder_file(cfg, host))?;
    let ok = sys::alive_in_netns(pid, &cfg.netns(host))
        && sys::comm(pid).as_deref() == Some("sleep")
        && own_mount_ns(pid);
    ok.then_some(pid)
}

fn own_mount_ns(pid: u32) -> bool {
    let theirs = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let ours = fs::read_link("/proc/self/ns/mnt").ok();
    theirs.is_some() && theirs != ours
}

fn ensure_host(ctx: &Ctx<'_>, h: &HostSpec) -> Result<(), LabError> {
    let cfg = ctx.cfg;
    let dir = cfg.host_dir(&h.name);
    mkdir(&h.name, &dir.join("logs"))?;
    let marker = dir.join("configured");
    let holder = match live_holder(cfg, &h.name) {
        Some(pid) if marker.exists() => {
            // Labs made before these existed get them on the next `lab up`.
            private_root_home(&h.name, pid)?;
            own_name_in_hosts(&h.name, pid)?;
            pid
        }
        _ => {
            let _ = fs::remove_file(&marker);
            let pid = make_host(ctx, h)?;
            write_file(&h.name, &marker, b"", 0o644)?;
            note(ctx.made, format!("made host {} (holder pid {pid})", h.name));
            pid
        }
    };
    ensure_daemons(ctx, h, holder)
}

/// Make a host's view from scratch: kill whatever runs in its netns, start a holder, mount
/// its private /etc, /var and /run, and write its configuration.
fn make_host(ctx: &Ctx<'_>, h: &HostSpec) -> Result<u32, LabError> {
    let cfg = ctx.cfg;
    let name = h.name.as_str();
    let ns = cfg.netns(name);
    let dir = cfg.host_dir(name);
    let mut stale = sys::netns_pids(&ns);
    // A previous holder may sit in a namespace that is no longer the named one.
    if let Some(old) = sys::read_pid(&holder_file(cfg, name))
        && sys::comm(old).as_deref() == Some("sleep")
        && own_mount_ns(old)
    {
        stale.extend(sys::pids_sharing_netns(old));
    }
    let below = sys::descendants(&stale);
    stale.extend(below);
    sys::terminate(&stale, Duration::from_secs(2));

    let layers = dir.join("layers");
    if layers.exists() {
        fs::remove_dir_all(&layers).map_err(LabError::io(name, "wipe layers", &layers))?;
    }
    let child = Cmd::in_netns(name, "holder", &ns, "unshare")
        .args(["--mount", "--uts", "--propagation", "private", "--"])
        .args(["sleep", "infinity"])
        .spawn_detached(&dir.join("logs").join("holder.log"))?;
    let pid = child.id();
    let ready = sys::wait_until(Duration::from_secs(5), || {
        sys::comm(pid).as_deref() == Some("sleep") && own_mount_ns(pid)
    });
    if !ready {
        return Err(LabError::Failed {
            host: name.into(),
            stage: "holder",
            detail: format!("holder process {pid} did not get its own mount namespace"),
        });
    }
    write_file(
        name,
        &holder_file(cfg, name),
        pid.to_string().as_bytes(),
        0o644,
    )?;

    for d in ["etc", "var"] {
        let upper = layers.join(format!("{d}.upper"));
        let work = layers.join(format!("{d}.work"));
        mkdir(name, &upper)?;
        mkdir(name, &work)?;
        Cmd::in_host(name, "overlay", pid, "mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir=/{d},upperdir={},workdir={}",
                upper.display(),
                work.display()
            ))
            .arg(format!("/{d}"))
            .run()?;
    }
    Cmd::in_host(name, "private /run", pid, "mount")
        .args(["-t", "tmpfs", "-o", "mode=0755,size=32m", "tmpfs", "/run"])
        .run()?;
    for d in [
        "/run/sshd",
        "/run/fail2ban",
        "/run/rampart-lab",
        "/run/lock",
        "/run/wireguard",
        "/run/dbus",
    ] {
        mkdir(name, &in_view(pid, d))?;
    }
    private_root_home(name, pid)?;
    own_name_in_hosts(name, pid)?;
    Cmd::in_host(name, "hostname", pid, "hostname")
        .arg(name)
        .run()?;
    write_file(
        name,
        &in_view(pid, "/etc/hostname"),
        format!("{name}\n").as_bytes(),
        0o644,
    )?;

    configure_sshd(ctx, h, pid)?;
    configure_firewall(ctx, h, pid)?;
    if h.fail2ban.is_some() {
        configure_fail2ban(ctx, h, pid)?;
    }
    // Before nginx: web hosts' nginx -t needs the lab CA the stack writes.
    if h.stack_role() != config::StackRole::None {
        let cert = if matches!(
            h.stack_role(),
            config::StackRole::App | config::StackRole::Db
        ) {
            Some(ensure_cert(cfg, h, 365)?)
        } else {
            None
        };
        super::stack::configure(
            cfg,
            h,
            pid,
            cert.as_ref().map(|(k, c)| (k.as_path(), c.as_path())),
        )?;
    }
    if let Some(n) = h.nginx {
        configure_nginx(ctx, h, pid, n.cert_days)?;
    }
    if h.crowdsec {
        configure_crowdsec(h, pid)?;
    }
    if h.zabbix_agent {
        configure_zabbix_agent(h, pid)?;
    }
    if let Some(role) = h.wireguard {
        let server = cfg
            .hosts()
            .into_iter()
            .find(|x| x.wireguard == Some(WgRole::Server))
            .map(|x| x.address)
            .unwrap_or(h.address);
        let conf = config::wg_conf(cfg, role, server, &ctx.keys.wg);
        mkdir(name, &in_view(pid, "/etc/wireguard"))?;
        write_file(
            name,
            &in_view(pid, &format!("/etc/wireguard/{WG_IF}.conf")),
            conf.as_bytes(),
            0o600,
        )?;
    }
    Ok(pid)
}

fn remove_in_view(pid: u32, path: &str) {
    let _ = fs::remove_file(in_view(pid, path));
}

fn configure_sshd(ctx: &Ctx<'_>, h: &HostSpec, pid: u32) -> Result<(), LabError> {
    let name = h.name.as_str();
    let key = ctx.cfg.host_dir(name).join("ssh_host_ed25519_key");
    ensure_ssh_key(name, &key, &format!("root@{name}"))?;
    // The machine's own host keys must not show through the overlay.
    for t in ["rsa", "ecdsa", "ed25519", "dsa"] {
        remove_in_view(pid, &format!("/etc/ssh/ssh_host_{t}_key"));
        remove_in_view(pid, &format!("/etc/ssh/ssh_host_{t}_key.pub"));
    }
    // Drop-ins of the machine's sshd must not decide the lab's settings.
    if let Ok(entries) = fs::read_dir(in_view(pid, "/etc/ssh/sshd_config.d")) {
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    let private = fs::read(&key).map_err(LabError::io(name, "host key", &key))?;
    let mut pubpath = key.clone().into_os_string();
    pubpath.push(".pub");
    let public = fs::read(&pubpath).map_err(LabError::io(name, "host key", Path::new(&pubpath)))?;
    write_file(
        name,
        &in_view(pid, "/etc/ssh/ssh_host_ed25519_key"),
        &private,
        0o600,
    )?;
    write_file(
        name,
        &in_view(pid, "/etc/ssh/ssh_host_ed25519_key.pub"),
        &public,
        0o644,
    )?;
    write_file(
        name,
        &in_view(pid, "/etc/ssh/sshd_config"),
        config::sshd_config(h).as_bytes(),
        0o644,
    )?;
    let ak = in_view(pid, "/etc/ssh/authorized_keys");
    mkdir(name, &ak)?;
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o755))
        .map_err(LabError::io(name, "chmod", &ak))?;
    write_file(
        name,
        &ak.join("root"),
        ctx.keys.client_public.as_bytes(),
        0o600,
    )?;
    write_file(
        name,
        &in_view(pid, "/etc/ssh/trusted_user_ca_keys"),
        ctx.keys.user_ca_public.as_bytes(),
        0o644,
    )?;
    // Make sure fail2ban finds the log file even before sshd's first line.
    write_file(name, &in_view(pid, "/var/log/auth.log"), b"", 0o640)?;
    Cmd::in_host(name, "sshd -t", pid, "/usr/sbin/sshd")
        .arg("-t")
        .run()?;
    Ok(())
}

fn configure_firewall(ctx: &Ctx<'_>, h: &HostSpec, pid: u32) -> Result<(), LabError> {
    let name = h.name.as_str();
    match &h.firewall {
        Firewall::Ufw { enabled, rules } => {
            let ufw = |args: &[&str]| {
                Cmd::in_host(name, "ufw", pid, "ufw")
                    .args(args)
                    .run()
                    .map(|_| ())
            };
            ufw(&["default", "deny", "incoming"])?;
            ufw(&["default", "allow", "outgoing"])?;
            for r in rules {
                Cmd::in_host(name, "ufw rule", pid, "ufw")
                    .args(r.args())
                    .run()?;
            }
            if *enabled {
                ufw(&["--force", "enable"])?;
            } else {
                ufw(&["--force", "disable"])?;
            }
        }
        Firewall::Nft { .. } => {
            let conf = config::nftables_conf(ctx.cfg, h);
            write_file(
                name,
                &in_view(pid, "/etc/nftables.conf"),
                conf.as_bytes(),
                0o755,
            )?;
            Cmd::in_host(name, "nftables", pid, "nft")
                .args(["-f", "/etc/nftables.conf"])
                .run()?;
        }
        Firewall::IptablesLegacy => {
            // Where Debian's iptables-persistent and ipset-persistent keep them.
            mkdir(name, &in_view(pid, "/etc/iptables"))?;
            let files = [
                ("/etc/iptables/ipsets", config::legacy_ipsets(ctx.cfg)),
                ("/etc/iptables/rules.v4", config::legacy_rules_v4()),
                (
                    "/etc/iptables/rules.v6",
                    config::LEGACY_RULES_V6.to_string(),
                ),
            ];
            for (path, text) in &files {
                write_file(name, &in_view(pid, path), text.as_bytes(), 0o640)?;
            }
            // Sets first: a rule naming a set that does not exist is refused.
            Cmd::in_host(name, "ipset", pid, "ipset")
                .args(["-exist", "-file", "/etc/iptables/ipsets", "restore"])
                .run()?;
            Cmd::in_host(name, "iptables-legacy", pid, "iptables-legacy-restore")
                .arg("/etc/iptables/rules.v4")
                .run()?;
            Cmd::in_host(name, "ip6tables-legacy", pid, "ip6tables-legacy-restore")
                .arg("/etc/iptables/rules.v6")
                .run()?;
            // Plain `iptables` / `iptables-save` are the legacy ones here, as on a host set up
            // before nf_tables (the alternatives live in the host's own /etc and /var).
            for tool in ["iptables", "ip6tables"] {
                Cmd::in_host(name, "iptables alternative", pid, "update-alternatives")
                    .args(["--set", tool])
                    .arg(format!("/usr/sbin/{tool}-legacy"))
                    .run()?;
            }
        }
        Firewall::Firewalld => {
            // Its permanent configuration; the daemon (ensure_daemons) loads it into nft.
            for (rel, text) in config::firewalld_zones(ctx.cfg) {
                let p = in_view(pid, &format!("/etc/firewalld/{rel}"));
                if let Some(dir) = p.parent() {
                    mkdir(name, dir)?;
                }
                write_file(name, &p, text.as_bytes(), 0o644)?;
            }
        }
        Firewall::None => {}
    }
    Ok(())
}

fn configure_fail2ban(ctx: &Ctx<'_>, h: &HostSpec, pid: u32) -> Result<(), LabError> {
    let name = h.name.as_str();
    write_file(
        name,
        &in_view(pid, "/etc/fail2ban/jail.d/rampart-lab.local"),
        config::fail2ban_jail(ctx.cfg, h).as_bytes(),
        0o644,
    )?;
    write_file(
        name,
        &in_view(pid, "/etc/fail2ban/filter.d/sshd.local"),
        FAIL2BAN_SSHD_FILTER_LOCAL.as_bytes(),
        0o644,
    )
}

fn configure_crowdsec(h: &HostSpec, pid: u32) -> Result<(), LabError> {
    let name = h.name.as_str();
    write_file(
        name,
        &in_view(pid, "/etc/crowdsec/config.yaml"),
        config::CROWDSEC_CONF.as_bytes(),
        0o644,
    )?;
    // Debian's WAL override is in the lab's config already.
    remove_in_view(pid, "/etc/crowdsec/config.yaml.local");
    write_file(
        name,
        &in_view(pid, "/etc/crowdsec/acquis.yaml"),
        config::CROWDSEC_ACQUIS.as_bytes(),
        0o644,
    )
}

fn configure_zabbix_agent(h: &HostSpec, pid: u32) -> Result<(), LabError> {
    let name = h.name.as_str();
    write_file(
        name,
        &in_view(pid, "/etc/zabbix/zabbix_agentd.conf"),
        config::zabbix_agent_conf(h).as_bytes(),
        0o644,
    )?;
    mkdir(name, &in_view(pid, "/run/zabbix"))?;
    mkdir(name, &in_view(pid, "/var/log/zabbix-agent"))?;
    // The agent drops root for the zabbix user, which must own its pid and log dirs.
    for d in ["/run/zabbix", "/var/log/zabbix-agent"] {
        Cmd::in_host(name, "chown zabbix", pid, "chown")
            .args(["zabbix:zabbix", d])
            .run()?;
    }
    Ok(())
}

/// Where a web host's nginx proxies `/app/` to: the app host's address.
fn app_upstream(cfg: &LabConfig, h: &HostSpec) -> Option<std::net::Ipv4Addr> {
    if h.stack_role() != config::StackRole::Web {
        return None;
    }
    cfg.hosts()
        .into_iter()
        .find(|x| x.stack_role() == config::StackRole::App)
        .map(|x| x.address)
}

fn configure_nginx(ctx: &Ctx<'_>, h: &HostSpec, pid: u32, days: u32) -> Result<(), LabError> {
    let name = h.name.as_str();
    let (key, crt) = ensure_cert(ctx.cfg, h, days)?;
    write_file(
        name,
        &in_view(pid, "/etc/nginx/nginx.conf"),
        NGINX_CONF.as_bytes(),
        0o644,
    )?;
    remove_in_view(pid, "/etc/nginx/sites-enabled/default");
    write_file(
        name,
        &in_view(pid, "/etc/nginx/sites-enabled/lab"),
        config::nginx_site_with_app(h, app_upstream(ctx.cfg, h)).as_bytes(),
        0o644,
    )?;
    let tls = in_view(pid, "/etc/nginx/tls");
    mkdir(name, &tls)?;
    let k = fs::read(&key).map_err(LabError::io(name, "TLS key", &key))?;
    let c = fs::read(&crt).map_err(LabError::io(name, "TLS certificate", &crt))?;
    write_file(name, &tls.join(format!("{name}.key")), &k, 0o600)?;
    write_file(name, &tls.join(format!("{name}.crt")), &c, 0o644)?;
    Cmd::in_host(name, "nginx -t", pid, "nginx")
        .arg("-t")
        .run()?;
    Ok(())
}

/// The daemon's pid, if its pid file names a live process in the host's netns.
pub(super) fn daemon_pid(cfg: &LabConfig, host: &str, holder: u32, d: Daemon) -> Option<u32> {
    let pid = sys::read_pid(&in_view(holder, &d.pid_file()))?;
    if d == Daemon::DockerPostgres {
        // In the container's own namespaces: alive, postgres, and a descendant of one of
        // the host's processes (its containerd shim).
        return (sys::alive(pid)
            && sys::comm(pid).as_deref() == Some("postgres")
            && sys::ancestors(pid)
                .iter()
                .any(|a| sys::alive_in_netns(*a, &cfg.netns(host))))
        .then_some(pid);
    }
    sys::alive_in_netns(pid, &cfg.netns(host)).then_some(pid)
}

fn ensure_daemons(ctx: &Ctx<'_>, h: &HostSpec, holder: u32) -> Result<(), LabError> {
    let cfg = ctx.cfg;
    let name = h.name.as_str();
    let logs = cfg.host_dir(name).join("logs");
    for d in h.expected_daemons() {
        if daemon_pid(cfg, name, holder, d).is_some() {
            continue;
        }
        let log = logs.join(format!("{}.log", d.name().replace(':', "-")));
        match d {
            Daemon::Sshd => {
                Cmd::in_host(name, "start sshd", holder, "/usr/sbin/sshd")
                    .args(["-E", "/var/log/auth.log"])
                    .run_daemonizing(&log)?;
            }
            Daemon::Fail2ban => {
                Cmd::in_host(name, "start fail2ban", holder, "fail2ban-client")
                    .args(["-x", "start"])
                    .run_daemonizing(&log)?;
            }
            Daemon::Nginx => {
                Cmd::in_host(name, "start nginx", holder, "nginx").run_daemonizing(&log)?;
            }
            Daemon::NodeExporter => {
                let child = Cmd::in_host(
                    name,
                    "start node exporter",
                    holder,
                    "/usr/bin/prometheus-node-exporter",
                )
                .args(["--web.listen-address=:9100"])
                .spawn_detached(&log)?;
                record_pid(name, holder, d, child.id())?;
            }
            Daemon::Listener(port) => {
                let child = Cmd::in_host(name, "start listener", holder, PYTHON)
                    .args(["-c", LISTENER_PY])
                    .arg(port.to_string())
                    .spawn_detached(&log)?;
                record_pid(name, holder, d, child.id())?;
            }
            Daemon::Boringtun => start_wireguard(ctx, h, holder, &log)?,
            Daemon::Crowdsec => {
                let child = Cmd::in_host(name, "start crowdsec", holder, "/usr/bin/crowdsec")
                    .args(["-c", "/etc/crowdsec/config.yaml"])
                    .spawn_detached(&log)?;
                record_pid(name, holder, d, child.id())?;
            }
            Daemon::ZabbixAgent => {
                let child = Cmd::in_host(
                    name,
                    "start zabbix agent",
                    holder,
                    "/usr/sbin/zabbix_agentd",
                )
                .args(["-f", "-c", "/etc/zabbix/zabbix_agentd.conf"])
                .spawn_detached(&log)?;
                record_pid(name, holder, d, child.id())?;
            }
            Daemon::Postgres => super::stack::start_postgres(name, holder, &log)?,
            Daemon::Redis => super::stack::start_redis(name, holder, &log)?,
            Daemon::Gunicorn(port) => {
                super::stack::start_gunicorn(name, h.address, holder, port, &log)?;
            }
            Daemon::Dockerd => super::docker::start_dockerd(name, holder, &log)?,
            Daemon::DockerPostgres => super::docker::start_pg_container(name, holder, &log)?,
            Daemon::Dbus => {
                let child = Cmd::in_host(name, "start dbus", holder, "/usr/bin/dbus-daemon")
                    .args(["--system", "--nofork", "--nopidfile"])
                    .spawn_detached(&log)?;
                record_pid(name, holder, d, child.id())?;
            }
            Daemon::Firewalld => {
                let child = Cmd::in_host(name, "start firewalld", holder, "/usr/sbin/firewalld")
                    .args(["--nofork", "--nopid"])
                    .spawn_detached(&log)?;
                record_pid(name, holder, d, child.id())?;
            }
        }
        let started = sys::wait_until(Duration::from_secs(10), || {
            daemon_pid(cfg, name, holder, d).is_some()
        });
        if !started {
            return Err(LabError::Failed {
                host: name.into(),
                stage: "start daemon",
                detail: format!("{} did not start (see {})", d.name(), log.display()),
            });
        }
        if !daemon_ready(name, holder, d) {
            return Err(LabError::Failed {
                host: name.into(),
                stage: "start daemon",
                detail: format!("{} did not become ready (see {})", d.name(), log.display()),
            });
        }
        note(ctx.made, format!("started {} on {name}", d.name()));
    }
    Ok(())
}

/// Waits (bounded) until a freshly started daemon does its job, where its pid alone does not
/// say so: the bus socket exists; firewalld has loaded its zones into nft (`--state` says
/// `running` only then).
fn daemon_ready(name: &str, holder: u32, d: Daemon) -> bool {
    match d {
        Daemon::Dbus => {
            let sock = in_view(holder, "/run/dbus/system_bus_socket");
            sys::wait_until(Duration::from_secs(10), || sock.exists())
        }
        Daemon::Firewalld => sys::wait_until(Duration::from_secs(30), || {
            Cmd::in_host(name, "firewalld state", holder, "/usr/bin/firewall-cmd")
                .arg("--state")
                .succeeds()
        }),
        _ => true,
    }
}

fn record_pid(host: &str, holder: u32, d: Daemon, pid: u32) -> Result<(), LabError> {
    write_file(
        host,
        &in_view(holder, &d.pid_file()),
        format!("{pid}\n").as_bytes(),
        0o644,
    )
}

fn start_wireguard(ctx: &Ctx<'_>, h: &HostSpec, holder: u32, log: &Path) -> Result<(), LabError> {
    let name = h.name.as_str();
    let Some(role) = h.wireguard else {
        return Ok(());
    };
    // A stale interface (its boringtun died) would make the new one fail to start.
    let _ = Cmd::in_host(name, "wireguard", holder, "ip")
        .args(["link", "del", WG_IF])
        .output();
    remove_in_view(holder, &format!("/run/wireguard/{WG_IF}.sock"));
    let child = Cmd::in_host(name, "start boringtun", holder, ctx.boringtun)
        .args([
            "--foreground",
            "--disable-drop-privileges",
            "--threads",
            "1",
            "--log",
            "/var/log/boringtun.log",
            WG_IF,
        ])
        .spawn_detached(log)?;
    record_pid(name, holder, Daemon::Boringtun, child.id())?;
    let sock = in_view(holder, &format!("/run/wireguard/{WG_IF}.sock"));
    if !sys::wait_until(Duration::from_secs(5), || sock.exists()) {
        return Err(LabError::Failed {
            host: name.into(),
            stage: "start boringtun",
            detail: format!("no UAPI socket {} (see {})", sock.display(), log.display()),
        });
    }
    Cmd::in_host(name, "wg setconf", holder, "wg")
        .args(["setconf", WG_IF])
        .arg(format!("/etc/wireguard/{WG_IF}.conf"))
        .run()?;
    Cmd::in_host(name, "wireguard address", holder, "ip")
        .args(["addr", "replace"])
        .arg(format!(
            "{}/{}",
            ctx.cfg.wg_address(role),
            ctx.cfg.vpn_net().prefix_len()
        ))
        .args(["dev", WG_IF])
        .run()?;
    Cmd::in_host(name, "wireguard up", holder, "ip")
        .args(["link", "set", WG_IF, "up"])
        .run()?;
    Ok(())
}

/// Send one datagram from the WireGuard client through the tunnel so the handshake with the
/// server happens now rather than at the first keepalive.
fn poke_wireguard(cfg: &LabConfig, hosts: &[HostSpec]) {
    let Some(client) = hosts.iter().find(|h| h.wireguard == Some(WgRole::Client)) else {
        return;
    };
    let Some(holder) = live_holder(cfg, &client.name) else {
        return;
    };
    let target = cfg.wg_address(WgRole::Server).to_string();
    let _ = Cmd::in_host(&client.name, "wireguard handshake", holder, PYTHON)
        .args([
            "-c",
            "import socket, sys\n\
             socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', (sys.argv[1], 9))",
            &target,
        ])
        .output();
}

fn write_client_files(cfg: &LabConfig, hosts: &[HostSpec]) -> Result<(), LabError> {
    let mut kh = String::new();
    for h in hosts {
        let mut p = cfg
            .host_dir(&h.name)
            .join("ssh_host_ed25519_key")
            .into_os_string();
        p.push(".pub");
        let public = read_file(&h.name, Path::new(&p))?;
        kh.push_str(&config::known_hosts_line(h, &public));
        kh.push('\n');
    }
    write_file("lab", &cfg.known_hosts(), kh.as_bytes(), 0o644)?;
    write_file(
        "lab",
        &cfg.ssh_config(),
        config::ssh_config(cfg, hosts).as_bytes(),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_name_is_added_once() {
        let once = super::with_own_name("127.0.0.1\tlocalhost\n", "web1");
        assert_eq!(once, "127.0.0.1\tlocalhost\n127.0.1.1\tweb1\n");
        assert_eq!(super::with_own_name(&once, "web1"), once);
        assert_eq!(super::with_own_name("", "db1"), "127.0.1.1\tdb1\n");
    }

    #[test]
    fn root_home_is_replaced_only_for_root() {
        let p = "root:x:0:0:root:/root:/bin/bash\nrootless:x:1:1::/root2:/bin/sh\n";
        assert_eq!(
            super::set_root_home(p, "/var/lib/x"),
            "root:x:0:0:root:/var/lib/x:/bin/bash\nrootless:x:1:1::/root2:/bin/sh\n"
        );
    }
}
