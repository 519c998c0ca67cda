#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use super::*;
use crate::inventory::Inventory;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Renders and loads with the real loader: what `rampart init` would write must load.
fn loads(imp: &Imported) -> Inventory {
    let text = render(imp, Path::new("test-source"));
    Inventory::parse(&text, Path::new("imported.toml"))
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

fn host<'a>(inv: &'a Inventory, name: &str) -> &'a crate::inventory::Host {
    inv.host(name)
        .unwrap_or_else(|| panic!("no host {name} in {:?}", inv.hosts))
}

fn no_map() -> RoleMap {
    RoleMap::default()
}

#[test]
fn guesses_roles_from_names() {
    for (name, role) in [
        ("web1", Some("web")),
        ("webservers", Some("web")),
        ("prod-web-03", Some("web")),
        ("dbservers", Some("db")),
        ("databases", Some("db")),
        ("db1.example.net", Some("db")),
        ("edge", Some("bastion")),
        ("jump-01", Some("bastion")),
        ("redis-a", Some("cache")),
        ("vpn1", Some("vpn")),
        ("monitoring", Some("monitoring")),
        ("app1", Some("app")),
        ("payments", None),
        ("", None),
    ] {
        assert_eq!(guess_role(name), role, "{name}");
    }
}

#[test]
fn jumps_parse_like_openssh() {
    assert_eq!(
        parse_jumps("ops@jump.example.net:2222,[2001:db8::1]:22"),
        vec![
            Jump {
                user: Some("ops".into()),
                host: "jump.example.net".into(),
                port: Some(2222)
            },
            Jump {
                user: None,
                host: "2001:db8::1".into(),
                port: Some(22)
            }
        ]
    );
    assert!(parse_jumps("").is_empty());
}

#[test]
fn role_map_parses_and_refuses_bad_items() {
    let m = RoleMap::parse(&["WebServers=web".into(), "misc=".into()]).unwrap();
    assert_eq!(m.get("webservers"), Some(Some("web")));
    assert_eq!(m.get("misc"), Some(None));
    assert_eq!(m.get("other"), None);
    assert!(RoleMap::parse(&["noequals".into()]).is_err());
    assert!(RoleMap::parse(&["a=$(id)".into()]).is_err());
}

#[test]
fn ssh_config_lab_shape() {
    // The shape `rampart lab up` writes (src/lab/config.rs `ssh_config`).
    let text = "# rampart lab\nHost edge\n\tHostName 10.77.0.10\nHost web1\n\tHostName 10.77.10.11\n\tProxyJump edge\nHost db1\n\tHostName 10.77.12.11\n\tProxyJump edge\n\nHost *\n\tUser root\n\tIdentityFile /state/id_ed25519\n\tUserKnownHostsFile /state/known_hosts\n";
    let imp = ssh_config::parse(text, Path::new("ssh_config"), &no_map()).unwrap();
    let inv = loads(&imp);
    assert_eq!(inv.hosts.len(), 3);
    assert_eq!(host(&inv, "edge").roles, vec!["bastion"]);
    assert_eq!(host(&inv, "edge").bastion, None);
    assert_eq!(host(&inv, "web1").bastion.as_deref(), Some("edge"));
    assert_eq!(host(&inv, "db1").roles, vec!["db"]);
    assert_eq!(host(&inv, "db1").address.to_string(), "10.77.12.11");
    assert_eq!(host(&inv, "db1").user, "root");
    assert_eq!(
        host(&inv, "web1").identity_files,
        vec![std::path::PathBuf::from("/state/id_ed25519")]
    );
}

#[test]
fn ssh_config_unknown_jump_becomes_a_bastion_and_wildcards_are_not_hosts() {
    let text = "Host app-*\n  User deploy\nHost api1 api2\n  ProxyJump ops@gw.example.net:2222\n  Port 2200\nHost !skip *.corp\n  User x\n";
    let imp = ssh_config::parse(text, Path::new("c"), &no_map()).unwrap();
    let inv = loads(&imp);
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["api1", "api2", "gw.example.net"]);
    let gw = host(&inv, "gw.example.net");
    assert_eq!(gw.port, 2222);
    assert_eq!(gw.user, "ops");
    assert_eq!(gw.roles, vec!["bastion"]);
    assert_eq!(
        host(&inv, "api2").bastion.as_deref(),
        Some("gw.example.net")
    );
    assert_eq!(host(&inv, "api2").port, 2200);
    assert!(
        imp.notes
            .iter()
            .any(|n| n.message.contains("gw.example.net"))
    );
}

#[test]
fn ssh_config_two_jump_chain() {
    let text = "Host outer\n  HostName 192.0.2.1\nHost inner\n  HostName 10.0.0.1\n  ProxyJump outer\nHost deep\n  HostName 10.1.0.1\n  ProxyJump outer,inner\n";
    let inv = loads(&ssh_config::parse(text, Path::new("c"), &no_map()).unwrap());
    assert_eq!(host(&inv, "deep").bastion.as_deref(), Some("inner"));
    assert_eq!(host(&inv, "inner").bastion.as_deref(), Some("outer"));
    let chain: Vec<&str> = inv
        .hop_chain("deep")
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(chain, vec!["outer", "inner", "deep"]);
}

#[test]
fn ssh_config_bastion_loops_are_broken_and_reported() {
    let text = "Host a\n  ProxyJump b\nHost b\n  ProxyJump c\nHost c\n  ProxyJump a\nHost d\n  ProxyJump d\n";
    let imp = ssh_config::parse(text, Path::new("c"), &no_map()).unwrap();
    let inv = loads(&imp);
    assert_eq!(inv.hosts.len(), 4);
    assert_eq!(host(&inv, "d").bastion, None);
    assert!(
        imp.notes.iter().any(|n| n.message.contains("bastion loop")),
        "{:?}",
        imp.notes
    );
}

#[test]
fn ssh_config_hostile_values_are_not_written() {
    let text =
        "Host evil\n  HostName -oProxyCommand=x\nHost ok1\n  HostName 192.0.2.5\n  User $(id)\n";
    let imp = ssh_config::parse(text, Path::new("c"), &no_map()).unwrap();
    let inv = loads(&imp);
    assert!(inv.host("evil").is_none());
    assert_ne!(host(&inv, "ok1").user, "$(id)");
    assert!(
        imp.notes
            .iter()
            .any(|n| n.kind == NoteKind::NeedsHuman && n.message.contains("evil"))
    );
}

fn check_ini_import(imp: &Imported) {
    let inv = loads(imp);
    let jump = host(&inv, "jump.example.net");
    assert_eq!(jump.address.to_string(), "203.0.113.10");
    assert_eq!(jump.roles, vec!["bastion"]);
    assert_eq!(jump.user, "ops");
    let web1 = host(&inv, "web01.example.net");
    assert_eq!(web1.port, 2222);
    assert_eq!(web1.user, "deploy");
    assert_eq!(web1.roles, vec!["web"]);
    assert_eq!(web1.bastion.as_deref(), Some("jump.example.net"));
    assert!(web1.tags["ansible_groups"].contains("webservers"));
    let db = host(&inv, "db1");
    assert_eq!(db.user, "postgres-admin", "host vars win over group vars");
    assert_eq!(db.roles, vec!["db"]);
    assert_eq!(db.address.to_string(), "10.20.2.11");
    assert_eq!(host(&inv, "prom1").roles, vec!["monitoring"]);
    assert_eq!(inv.hosts.len(), 6);
}

#[test]
fn ansible_ini_and_its_list_output_agree() {
    let ini = ansible::import(&fixture("hosts.ini"), Path::new("hosts.ini"), &no_map()).unwrap();
    check_ini_import(&ini);
    let json = ansible::import(
        &fixture("hosts.ini.list.json"),
        Path::new("hosts.ini.list.json"),
        &no_map(),
    )
    .unwrap();
    check_ini_import(&json);
}

fn check_yaml_import(imp: &Imported) {
    let inv = loads(imp);
    let pay = host(&inv, "pay-1");
    assert_eq!(pay.roles, vec!["app"], "mapped by --role-map");
    assert_eq!(pay.port, 2200);
    assert_eq!(
        pay.bastion.as_deref(),
        Some("bastion1"),
        "from ProxyCommand"
    );
    assert_eq!(
        host(&inv, "redis-b").bastion.as_deref(),
        Some("bastion1"),
        "from -J"
    );
    assert_eq!(host(&inv, "redis-a").roles, vec!["cache"]);
    assert_eq!(host(&inv, "fe-1").roles, vec!["web"]);
    assert_eq!(host(&inv, "bastion1").roles, vec!["bastion"]);
    assert_eq!(host(&inv, "fe-2").user, "admin");
    assert_eq!(inv.hosts.len(), 6);
}

#[test]
fn ansible_yaml_and_its_list_output_agree() {
    let map = RoleMap::parse(&["payments=app".into(), "frontend=web".into()]).unwrap();
    let yaml = ansible::import(&fixture("hosts.yml"), Path::new("hosts.yml"), &map).unwrap();
    check_yaml_import(&yaml);
    let json = ansible::import(
        &fixture("hosts.yml.list.json"),
        Path::new("hosts.yml.list.json"),
        &map,
    )
    .unwrap();
    check_yaml_import(&json);
}

#[test]
fn ansible_ranges() {
    assert_eq!(
        ansible::expand_range("web[01:03].x").unwrap(),
        vec!["web01.x", "web02.x", "web03.x"]
    );
    assert_eq!(
        ansible::expand_range("n[0:10:5]").unwrap(),
        vec!["n0", "n5", "n10"]
    );
    assert_eq!(
        ansible::expand_range("db-[a:c]").unwrap(),
        vec!["db-a", "db-b", "db-c"]
    );
    assert!(ansible::expand_range("x[1:99999999]").is_err());
    assert!(ansible::expand_range("x[3:1]").is_err());
    assert!(ansible::expand_range("x[1:2:0]").is_err());
}

#[test]
fn ansible_errors_name_the_line() {
    let e = ansible::import("[web\nweb1\n", Path::new("h.ini"), &no_map()).unwrap_err();
    assert!(e.to_string().starts_with("h.ini:1:"), "{e}");
    let e = ansible::import("[web]\nweb1 port\n", Path::new("h.ini"), &no_map()).unwrap_err();
    assert!(e.to_string().starts_with("h.ini:2:"), "{e}");
    let e = ansible::import("{\"all\": ", Path::new("h.json"), &no_map()).unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
}

#[test]
fn ansible_proxy_args() {
    let j = ansible::jumps_in_args("-o StrictHostKeyChecking=no -o ProxyJump=a@b:2,c").unwrap();
    assert_eq!(j.len(), 2);
    assert_eq!(j[0].host, "b");
    assert_eq!(j[0].port, Some(2));
    let j = ansible::jumps_in_args("-o 'ProxyCommand ssh -q -W %h:%p -p 2200 -l ops gw'").unwrap();
    assert_eq!(
        j,
        vec![Jump {
            user: Some("ops".into()),
            host: "gw".into(),
            port: Some(2200)
        }]
    );
    assert_eq!(ansible::jumps_in_args("-o ProxyCommand='nc %h %p'"), None);
    assert_eq!(ansible::jumps_in_args("-C"), None);
}

#[test]
fn ec2_instances_tags_and_subnets() {
    let text = fixture("ec2-describe-instances.json");
    let subnets = fixture("ec2-describe-subnets.json");
    let imp = ec2::import(
        &text,
        Path::new("ec2.json"),
        Some((&subnets, Path::new("subnets.json"))),
        &no_map(),
    )
    .unwrap();
    let inv = loads(&imp);
    assert_eq!(inv.hosts.len(), 4, "the terminated instance is skipped");
    let b = host(&inv, "bastion-eu");
    assert_eq!(
        b.address.to_string(),
        "203.0.113.50",
        "the bastion on its public IP"
    );
    assert_eq!(b.bastion, None);
    let web = host(&inv, "shop-web-1");
    assert_eq!(web.roles, vec!["web"]);
    assert_eq!(web.bastion.as_deref(), Some("bastion-eu"));
    assert_eq!(web.tags["env"], "prod");
    let db = host(&inv, "orders-db");
    assert_eq!(db.roles, vec!["db", "backup"]);
    assert!(inv.roles.contains_key("backup"));
    assert!(inv.host("i-0a1b2c3d4e5f60005").is_some());
    assert_eq!(
        inv.segments["subnet-0bbb2222"]
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        vec!["10.40.1.0/24", "2001:db8:40:1::/64"]
    );
    assert_eq!(
        inv.segments["subnet-0ccc3333"][0].to_string(),
        "10.40.2.0/23"
    );
}

#[test]
fn ec2_without_subnets_guesses_and_says_so() {
    let imp = ec2::import(
        &fixture("ec2-describe-instances.json"),
        Path::new("ec2.json"),
        None,
        &no_map(),
    )
    .unwrap();
    let inv = loads(&imp);
    assert_eq!(
        inv.segments["subnet-0ccc3333"][0].to_string(),
        "10.40.2.0/24"
    );
    assert!(
        imp.notes
            .iter()
            .any(|n| n.kind == NoteKind::Guessed && n.message.contains("--aws-subnets"))
    );
}

#[test]
fn write_new_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("inventory.toml");
    write_new(&p, "a = 1\n", false).unwrap();
    let e = write_new(&p, "b = 2\n", false).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "a = 1\n");
    write_new(&p, "b = 2\n", true).unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "b = 2\n");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file left behind");
}

/// Whatever bytes come in, the importers return an error or an inventory that loads.
#[test]
fn importers_never_panic_and_always_write_loadable_files() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 400,
        ..Default::default()
    });
    let pieces = prop::collection::vec(
        prop_oneof![
            Just("[web]\n".to_string()),
            Just("[g:children]\nweb\n".to_string()),
            Just("[g:vars]\nansible_user=$(id)\n".to_string()),
            Just("Host a b\n".to_string()),
            Just("  ProxyJump x@y:22,z\n".to_string()),
            Just("Host y\n  ProxyJump a\n".to_string()),
            Just("[g]\nb ansible_ssh_common_args='-J a'\na ansible_ssh_common_args='-J b'\n".to_string()),
            Just("all:\n  hosts:\n    h1:\n".to_string()),
            Just("h[1:3] ansible_host=-oX ansible_port=70000\n".to_string()),
            Just("{\"_meta\":{\"hostvars\":{\"a\":{\"ansible_host\":\"1.2.3.4\"}}},\"all\":{\"hosts\":[\"a\"]}}".to_string()),
            "[ -~\n\t\u{1b}\u{202e}]{0,40}",
        ],
        0..8,
    );
    runner
        .run(&pieces, |parts| {
            let text = parts.concat();
            for name in ["h.ini", "h.yml", "h.json", "config"] {
                let res = if name == "config" {
                    ssh_config::parse(&text, Path::new(name), &RoleMap::default())
                } else {
                    ansible::import(&text, Path::new(name), &RoleMap::default())
                };
                if let Ok(imp) = res {
                    let out = render(&imp, Path::new(name));
                    prop_assert!(
                        Inventory::parse(&out, Path::new("x.toml")).is_ok(),
                        "does not load:\n{out}"
                    );
                }
            }
            if let Ok(imp) = ec2::import(&text, Path::new("e.json"), None, &RoleMap::default()) {
                let out = render(&imp, Path::new("e.json"));
                prop_assert!(Inventory::parse(&out, Path::new("x.toml")).is_ok(), "{out}");
            }
            Ok(())
        })
        .unwrap();
}
