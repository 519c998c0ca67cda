use std::path::Path;

use super::*;

const GOOD: &str = r#"
[defaults]
user = "root"
port = 22
identity_files = ["~/.ssh/id_ed25519"]
known_hosts = ["~/.ssh/known_hosts"]
bastion = "edge"
sudo = false
read_only = false

[segments]
dmz   = ["10.10.0.0/24"]
app   = ["10.10.1.0/24"]
data  = ["10.10.2.0/24"]
admin = ["10.10.9.0/24", "fd00:9::/64"]

[roles.web]
allow_ports = [22, 80, 443]
[roles.db]
allow_ports = [22, 5432]
reachable_from = { 5432 = ["app"], 22 = ["admin"] }

[[host]]
name = "edge"
address = "203.0.113.10"
roles = ["bastion"]
bastion = "none"

[[host]]
name = "web1"
address = "10.10.1.11"
roles = ["web"]

[[host]]
name = "db1"
address = "db1.internal.example"
roles = ["db"]
port = 2222
user = "audit"
sudo = true

[alerting]
alertmanager = ["http://127.0.0.1:9093"]
"#;

fn parse(text: &str) -> Result<Inventory, InventoryError> {
    Inventory::parse(text, Path::new("inv.toml"))
}

/// Parses `GOOD` with `from` replaced by `to`, expecting an error; returns its message.
fn bad(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "fixture lacks {from:?}");
    let text = GOOD.replacen(from, to, 1);
    match parse(&text) {
        Ok(_) => panic!("accepted bad inventory: {from:?} -> {to:?}"),
        Err(e) => e.to_string(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).expect("needle");
    text[..at].matches('\n').count() + 1
}

#[test]
fn parses_the_contract_example() {
    let inv = parse(GOOD).expect("valid");
    assert_eq!(inv.hosts.len(), 3);
    let edge = inv.host("edge").expect("edge");
    assert_eq!(edge.bastion, None);
    let web1 = inv.host("web1").expect("web1");
    assert_eq!(web1.bastion.as_deref(), Some("edge"));
    assert_eq!(web1.address, Address::Ip("10.10.1.11".parse().expect("ip")));
    let db1 = inv.host("db1").expect("db1");
    assert_eq!(db1.port, 2222);
    assert_eq!(db1.user, "audit");
    assert!(db1.sudo);
    assert_eq!(db1.address, Address::Dns("db1.internal.example".into()));
    assert_eq!(
        inv.roles["db"].reachable_from[&5432],
        vec!["app".to_string()]
    );
    // Built-in keys the file did not set survive the override.
    assert!(inv.roles["db"].data_tier);
    assert!(inv.roles.contains_key("cache"));
    assert_eq!(inv.segments["admin"].len(), 2);
    assert_eq!(inv.alerting.alertmanager, vec!["http://127.0.0.1:9093"]);
    assert!(!edge.identity_files[0].to_string_lossy().contains('~'));
    assert_eq!(web1.line, line_of(GOOD, "[[host]]\nname = \"web1\""));
}

#[test]
fn hop_chain_lists_bastions_first() {
    let text = GOOD.replace(
        "[alerting]",
        "[[host]]\nname = \"deep\"\naddress = \"10.10.2.50\"\nbastion = \"db1\"\n\n[alerting]",
    );
    let inv = parse(&text).expect("valid");
    let chain: Vec<&str> = inv
        .hop_chain("deep")
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(chain, ["edge", "db1", "deep"]);
    assert!(inv.hop_chain("nope").is_empty());
}

#[test]
fn default_bastion_naming_itself_is_direct() {
    let text = GOOD.replacen("bastion = \"none\"\n", "", 1);
    let inv = parse(&text).expect("valid");
    assert_eq!(inv.host("edge").expect("edge").bastion, None);
}

#[test]
fn unknown_key_names_line_and_key() {
    let text = GOOD.replace("sudo = true", "sudo = true\nproxy_command = \"nc %h\"");
    let e = parse(&text).expect_err("unknown key");
    let msg = e.to_string();
    assert!(msg.starts_with("inv.toml:"), "{msg}");
    assert!(msg.contains("proxy_command"), "{msg}");
    assert_eq!(e.line(), line_of(&text, "proxy_command"), "{msg}");
}

#[test]
fn unknown_top_level_table() {
    let msg = bad("[alerting]", "[alertting]");
    assert!(msg.contains("alertting"), "{msg}");
}

#[test]
fn duplicate_host_names() {
    let msg = bad("name = \"web1\"", "name = \"edge\"");
    assert!(msg.contains("duplicate host \"edge\""), "{msg}");
    assert!(msg.contains("first defined on line"), "{msg}");
}

#[test]
fn missing_references() {
    assert!(
        bad("bastion = \"edge\"", "bastion = \"gone\"")
            .contains("bastion \"gone\" is not a [[host]]")
    );
    assert!(
        bad("roles = [\"web\"]", "roles = [\"webb\"]").contains("role \"webb\" is not defined")
    );
    assert!(
        bad("5432 = [\"app\"]", "5432 = [\"apps\"]").contains("segment \"apps\" is not defined")
    );
}

#[test]
fn bastion_loops_and_self() {
    let text = GOOD.replace("bastion = \"none\"", "bastion = \"web1\"");
    let msg = parse(&text).expect_err("loop").to_string();
    assert!(msg.contains("bastion loop"), "{msg}");
    let msg = bad("bastion = \"none\"", "bastion = \"edge\"");
    assert!(msg.contains("its own bastion"), "{msg}");
}

#[test]
fn bad_cidrs_and_ports() {
    assert!(bad("\"10.10.0.0/24\"", "\"10.10.0.0/33\"").contains("is not a CIDR"));
    assert!(bad("\"10.10.0.0/24\"", "\"10.10.0.1/24\"").contains("host bits"));
    assert!(bad("\"10.10.0.0/24\"", "\"ten/8\"").contains("is not a CIDR"));
    assert!(
        bad(
            "allow_ports = [22, 80, 443]",
            "allow_ports = [22, 80, 70000]"
        )
        .contains("not between 1 and 65535")
    );
    assert!(bad("port = 2222", "port = 0").contains("not between 1 and 65535"));
    assert!(bad("port = 2222", "port = -1").contains("not between 1 and 65535"));
    assert!(bad("port = 2222", "port = \"22\"").contains("port"));
    assert!(bad("5432 = [\"app\"]", "x5432 = [\"app\"]").contains("is not a port"));
}

#[test]
fn injection_attempts_are_rejected_on_load() {
    let hostile = [
        "-oProxyCommand=x",
        "a;b",
        "$(id)",
        "`id`",
        "a b",
        "a\\nb",
        "a\\u0000b",
        "a|b",
        "a&b",
        "../etc",
        "",
    ];
    for h in hostile {
        let m = bad("address = \"10.10.1.11\"", &format!("address = \"{h}\""));
        assert!(m.contains("host.web1.address"), "{h}: {m}");
        let m = bad("name = \"web1\"", &format!("name = \"{h}\""));
        assert!(m.contains("host.name"), "{h}: {m}");
        let m = bad("user = \"audit\"", &format!("user = \"{h}\""));
        assert!(m.contains("host.db1.user"), "{h}: {m}");
    }
    // The message shows the value escaped, never raw control characters.
    let m = bad("address = \"10.10.1.11\"", "address = \"\\u001b[2J\"");
    assert!(!m.contains('\x1b'), "{m:?}");
}

#[test]
fn bad_urls_and_settings() {
    assert!(bad("\"http://127.0.0.1:9093\"", "\"ftp://x\"").contains("alerting.alertmanager"));
    assert!(bad("\"http://127.0.0.1:9093\"", "\"http://a b\"").contains("not an http"));
    let text = GOOD.replace("[alerting]", "[transport]\nmax_sessions = 0\n\n[alerting]");
    assert!(
        parse(&text)
            .expect_err("0")
            .to_string()
            .contains("transport.max_sessions")
    );
    let text = GOOD.replace("[alerting]", "[console]\nrefresh_secs = -3\n\n[alerting]");
    assert!(
        parse(&text)
            .expect_err("neg")
            .to_string()
            .contains("console.refresh_secs")
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let text = "[defaults]\nuser = \"root\"\nport = \n";
    let e = parse(text).expect_err("syntax");
    assert_eq!(e.line(), 3, "{e}");
}

#[test]
fn errors_are_one_line() {
    let e = parse("[[host]]\nname = 3\n").expect_err("type");
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
    assert_eq!(e.line(), 2, "{e}");
}

#[test]
fn host_without_address_uses_its_name() {
    let text = GOOD.replace("address = \"db1.internal.example\"\n", "");
    let inv = parse(&text).expect("valid");
    let db1 = inv.host("db1").expect("db1");
    assert!(db1.address_from_name);
    assert_eq!(db1.address, Address::Dns("db1".into()));
}

#[test]
fn read_only_inventory() {
    let inv = parse(&GOOD.replace("read_only = false", "read_only = true")).expect("valid");
    assert!(inv.read_only());
    assert!(inv.hosts.iter().all(|h| h.read_only));
}

#[test]
fn segments_of_an_address() {
    let inv = parse(GOOD).expect("valid");
    assert_eq!(inv.segments_of("10.10.9.4".parse().expect("ip")), ["admin"]);
    assert!(inv.segments_of("192.0.2.1".parse().expect("ip")).is_empty());
}

#[test]
fn name_validators() {
    assert!(is_valid_host_name("web-1.prod"));
    assert!(!is_valid_host_name("-web"));
    assert!(is_valid_dns_name("a.b-c.d"));
    assert!(!is_valid_dns_name("a..b"));
    assert!(!is_valid_dns_name("a-.b"));
    assert!(is_valid_user("_svc"));
    assert!(!is_valid_user("-oUser"));
}

#[test]
fn shipped_inventory_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml");
    let inv = Inventory::load(&path).expect("shipped inventory.toml");
    assert!(inv.host("edge").is_some());
    for h in &inv.hosts {
        if h.name != "edge" {
            assert_eq!(h.bastion.as_deref(), Some("edge"), "{}", h.name);
        }
    }
}

/// `GOOD` with an https Alertmanager and its `[alerting.auth]` table.
fn with_sink_auth(auth: &str) -> Result<Inventory, InventoryError> {
    let text = GOOD.replace(
        "alertmanager = [\"http://127.0.0.1:9093\"]",
        &format!(
            "alertmanager = [\"https://am.example.net:9443/\"]\n\
             [alerting.auth.\"https://am.example.net:9443\"]\n{auth}\n"
        ),
    );
    parse(&text)
}

#[test]
fn sink_auth_reads_sources_not_secrets() {
    use crate::alerts::secret::SecretSource;
    let inv = with_sink_auth(
        "username = \"rampart\"\npassword_file = \"/etc/rampart/am.pw\"\nca_file = \"/etc/ca.pem\"\n\
         client_cert_file = \"/etc/c.pem\"\nclient_key_file = \"/etc/c.key\"",
    )
    .expect("valid");
    let a = &inv.alerting.auth["https://am.example.net:9443"];
    assert_eq!(a.username.as_deref(), Some("rampart"));
    assert_eq!(
        a.password,
        Some(SecretSource::File("/etc/rampart/am.pw".into()))
    );
    assert_eq!(a.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    let inv = with_sink_auth("bearer_token_env = \"AM_TOKEN\"").expect("valid");
    assert_eq!(
        inv.alerting.auth["https://am.example.net:9443"].bearer_token,
        Some(SecretSource::Env("AM_TOKEN".into()))
    );
}

#[test]
fn sink_auth_refuses_inline_secrets_without_echoing_them() {
    for line in [
        "username = \"u\"\npassword = \"hunter2-inline\"",
        "bearer_token = \"hunter2-inline\"",
        "token = \"hunter2-inline\"",
    ] {
        let e = with_sink_auth(line).expect_err(line).to_string();
        assert!(e.contains("inline secrets are refused"), "{e}");
        assert!(!e.contains("hunter2-inline"), "{e}");
    }
    let e = bad(
        "\"http://127.0.0.1:9093\"",
        "\"https://am:hunter2-url@127.0.0.1:9093\"",
    );
    assert!(e.contains("credentials in a URL are refused"), "{e}");
    assert!(!e.contains("hunter2-url"), "{e}");
}

#[test]
fn sink_auth_combinations_are_checked() {
    for (auth, want) in [
        ("password_file = \"/p\"", "needs both username"),
        (
            "username = \"u\"\npassword_file = \"/p\"\nbearer_token_file = \"/t\"",
            "not both",
        ),
        (
            "bearer_token_file = \"/t\"\nbearer_token_env = \"T\"",
            "not both",
        ),
        (
            "bearer_token_env = \"1BAD-NAME\"",
            "environment variable name",
        ),
        ("client_cert_file = \"/c.pem\"", "client_key_file"),
    ] {
        let e = with_sink_auth(auth).expect_err(auth).to_string();
        assert!(e.contains(want), "{auth}: {e}");
    }
    // A table for a URL that is no sink, and credentials over plain http to another host.
    let text = GOOD.replace(
        "alertmanager = [\"http://127.0.0.1:9093\"]",
        "alertmanager = [\"http://am.example.net:9093\"]\n\
         [alerting.auth.\"http://other:9093\"]\nbearer_token_env = \"T\"\n",
    );
    assert!(
        parse(&text)
            .expect_err("no sink")
            .to_string()
            .contains("not one of")
    );
    let text = GOOD.replace(
        "alertmanager = [\"http://127.0.0.1:9093\"]",
        "alertmanager = [\"http://am.example.net:9093\"]\n\
         [alerting.auth.\"http://am.example.net:9093\"]\nbearer_token_env = \"T\"\n",
    );
    assert!(
        parse(&text)
            .expect_err("clear")
            .to_string()
            .contains("clear text")
    );
}
