//! Planning on the lab's real collected states (tests/fixtures/frames, captured from the
//! lab) with the shipped inventory: the commands, the rollback, the guard's verdicts, and
//! "nothing to do" once a fix is in place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::collect::probes::state_from_frames;
use crate::ssh::command::parse_frames;
use crate::state::{Probed, Protocol};

fn load(host: &str) -> HostState {
    let dir = format!(
        "{}/tests/fixtures/frames/{host}",
        env!("CARGO_MANIFEST_DIR")
    );
    let nonce = std::fs::read_to_string(format!("{dir}/nonce")).unwrap();
    let stdout = std::fs::read(format!("{dir}/stdout")).unwrap();
    let stderr = std::fs::read(format!("{dir}/stderr")).unwrap();
    state_from_frames(host, &parse_frames(nonce.trim(), &stdout, &stderr))
}

fn inv() -> Inventory {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml");
    Inventory::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn bastion() -> Vec<GuardSource> {
    vec![GuardSource {
        addr: "10.77.9.10".parse().unwrap(),
        why: "the bastion edge".into(),
    }]
}

fn kv(s: &[&str]) -> Vec<(String, String)> {
    s.iter().map(|x| split_param(x).unwrap()).collect()
}

fn texts(p: &FixPlan) -> Vec<String> {
    p.steps.iter().map(|s| s.command.render(false)).collect()
}

#[test]
fn restrict_db_port_adds_the_segment_before_deleting_anywhere() {
    let p = plan(
        &inv(),
        &load("db1"),
        "fw-restrict-to-segment",
        &kv(&["port=5432", "segment=app"]),
        &bastion(),
    )
    .unwrap();
    assert_eq!(
        texts(&p),
        [
            "'ufw' 'allow' 'proto' 'tcp' 'from' '10.77.11.0/24' 'to' 'any' 'port' '5432'",
            "'ufw' 'delete' 'allow' 'proto' 'tcp' 'to' 'any' 'port' '5432'",
        ]
    );
    assert_eq!(p.risk, Risk::High);
    assert_eq!(
        p.rollback,
        Some(Rollback {
            kind: RollbackKind::Ufw,
            secs: 60
        })
    );
    assert!(
        p.notes.iter().any(|n| n.contains("10.77.9.10")),
        "{:?}",
        p.notes
    );
    // Save, arm, two changes, cancel.
    let seq = p.sequence();
    assert_eq!(seq.len(), 5);
    assert_eq!(seq[0].command.name(), "fix-rollback-save");
    assert_eq!(seq[4].command.name(), "fix-rollback-cancel");
    let view = p.view(false);
    assert_eq!(view.commands.len(), 5);
    assert_eq!(view.risk, crate::tui::model::Risk::High);
}

#[test]
fn lockout_guard_refuses_before_anything_is_built_to_send() {
    let inv = inv();
    let db1 = load("db1");
    // SSH only from the app segment: the bastion's 10.77.9.10 would be shut out.
    let e = plan(
        &inv,
        &db1,
        "fw-restrict-to-segment",
        &kv(&["port=22", "segment=app"]),
        &bastion(),
    )
    .unwrap_err();
    assert!(matches!(e, FixError::Lockout { .. }), "{e}");
    assert!(e.to_string().contains("10.77.9.10"), "{e}");
    // Closing SSH under a drop policy: refused too.
    let e = plan(&inv, &db1, "fw-close-port", &kv(&["port=22"]), &bastion()).unwrap_err();
    assert!(matches!(e, FixError::Lockout { .. }), "{e}");
    // Unknown source: a firewall change cannot be checked, so it is refused.
    let e = plan(&inv, &db1, "fw-close-port", &kv(&["port=5432"]), &[]).unwrap_err();
    assert!(matches!(e, FixError::Lockout { .. }), "{e}");
    // Banning the way in is refused as well.
    let e = plan(
        &inv,
        &db1,
        "f2b-ban-ip",
        &kv(&["ip=10.77.9.10"]),
        &bastion(),
    )
    .unwrap_err();
    assert!(matches!(e, FixError::Lockout { .. }), "{e}");
    // Closing the database port is fine.
    let p = plan(&inv, &db1, "fw-close-port", &kv(&["port=5432"]), &bastion()).unwrap();
    assert_eq!(
        texts(&p),
        ["'ufw' 'delete' 'allow' 'proto' 'tcp' 'to' 'any' 'port' '5432'"]
    );
}

#[test]
fn default_deny_allows_ssh_first() {
    let inv = inv();
    let app1 = load("app1");
    let p = plan(&inv, &app1, "fw-enable-default-deny", &[], &bastion()).unwrap();
    assert_eq!(
        texts(&p),
        [
            "'ufw' 'prepend' 'allow' 'proto' 'tcp' 'from' '10.77.9.0/24' 'to' 'any' 'port' '22'",
            "'ufw' 'default' 'deny' 'incoming'",
            "'ufw' '--force' 'enable'",
        ]
    );
    // A source outside the admin segment gets its own allow.
    let mut src = bastion();
    src.push(GuardSource {
        addr: "10.77.0.1".parse().unwrap(),
        why: "rampart".into(),
    });
    let p = plan(&inv, &app1, "fw-enable-default-deny", &[], &src).unwrap();
    assert!(texts(&p)[1].contains("'10.77.0.1/32'"), "{:?}", texts(&p));
    // On a host that already denies by default: nothing to do.
    let p = plan(
        &inv,
        &load("web1"),
        "fw-enable-default-deny",
        &[],
        &bastion(),
    )
    .unwrap();
    assert!(p.is_noop() && p.sequence().is_empty(), "{:?}", p.steps);
}

#[test]
fn applying_twice_builds_nothing_the_second_time() {
    let inv = inv();
    let mut db1 = load("db1");
    // The state after the fix: the 5432 rules admit only the app segment.
    if let Probed::Ok(fw) = &mut db1.firewall {
        let app: ipnet::IpNet = "10.77.11.0/24".parse().unwrap();
        for r in fw.rules.iter_mut() {
            if r.dports.contains(5432) && !r.dports.is_any() {
                r.sources = vec![app];
            }
        }
        assert!(
            !fw.admits("203.0.113.77".parse().unwrap(), Protocol::Tcp, 5432)
                .admitted()
        );
    }
    let p = plan(
        &inv,
        &db1,
        "fw-restrict-to-segment",
        &kv(&["port=5432", "segment=app"]),
        &bastion(),
    )
    .unwrap();
    assert!(p.is_noop(), "{:?}", texts(&p));
    // Already-good hosts: every other fix is a no-op where its finding is absent.
    let web1 = load("web1");
    for fix in [
        "f2b-start",
        "nginx-add-rate-limit",
        "ssh-disable-password-auth",
    ] {
        let p = plan(&inv, &web1, fix, &[], &bastion()).unwrap();
        assert!(p.is_noop(), "{fix}: {:?}", texts(&p));
    }
}

#[test]
fn daemon_fixes_use_drop_ins_tests_and_reloads() {
    let inv = inv();
    let vpn1 = load("vpn1");
    let p = plan(
        &inv,
        &vpn1,
        "ssh-disable-password-auth",
        &kv(&["rollback=5"]),
        &bastion(),
    )
    .unwrap();
    assert_eq!(
        p.rollback.as_ref().map(|r| (r.kind, r.secs)),
        Some((RollbackKind::Sshd, 5))
    );
    let t = texts(&p);
    assert_eq!(t.len(), 3);
    assert!(t[0].contains("/etc/ssh/sshd_config.d/00-rampart-password-auth.conf"));
    assert!(t[1].contains("sshd -t"));
    assert!(t[2].contains("kill -HUP") && !t[2].contains("restart"));
    let stdin = String::from_utf8(p.steps[0].command.stdin_bytes().unwrap().to_vec()).unwrap();
    assert!(stdin.contains("PasswordAuthentication no"));

    let web2 = load("web2");
    let p = plan(&inv, &web2, "f2b-start", &[], &bastion()).unwrap();
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.risk, Risk::Low);
    assert!(p.rollback.is_none());
    let p = plan(
        &inv,
        &web2,
        "nginx-add-rate-limit",
        &kv(&["rate=5", "burst=7"]),
        &bastion(),
    )
    .unwrap();
    let stdin = String::from_utf8(p.steps[0].command.stdin_bytes().unwrap().to_vec()).unwrap();
    assert!(
        stdin.contains("rate=5r/s") && stdin.contains("burst=7"),
        "{stdin}"
    );
    assert!(texts(&p)[1].contains("nginx -t"));
    // The dry-run text shows the drop-in's content.
    let shown = p.rendered(false).join("\n");
    assert!(
        shown.contains("| limit_req zone=rampart_perip burst=7 nodelay;"),
        "{shown}"
    );

    // fail2ban ban/unban with typed values.
    let p = plan(
        &inv,
        &web2,
        "f2b-ban-ip",
        &kv(&["ip=10.77.0.99"]),
        &bastion(),
    );
    assert!(
        matches!(p, Err(FixError::Precondition { .. })),
        "fail2ban is stopped on web2: {p:?}"
    );
    let p = plan(
        &inv,
        &load("web1"),
        "f2b-ban-ip",
        &kv(&["ip=10.77.0.99"]),
        &bastion(),
    )
    .unwrap();
    assert_eq!(
        texts(&p),
        ["'fail2ban-client' 'set' 'sshd' 'banip' '10.77.0.99'"]
    );
    let p = plan(
        &inv,
        &load("web1"),
        "f2b-unban-ip",
        &kv(&["ip=10.77.0.99"]),
        &bastion(),
    )
    .unwrap();
    assert!(p.is_noop());
}

#[test]
fn sshd_fixes_refuse_a_setting_a_match_block_turns_back_on() {
    let inv = inv();
    let mut db1 = load("db1");
    let Probed::Ok(sshd) = &mut db1.sshd else {
        panic!("db1 sshd: {:?}", db1.sshd)
    };
    sshd.matches.push(crate::state::SshdMatch {
        origin: "/etc/ssh/sshd_config:22".into(),
        criteria: "Address 10.77.9.0/24".into(),
        body: vec![],
        probes: vec![crate::state::SshdMatchProbe {
            addr: Some("10.77.9.1".parse().unwrap()),
            user: Some("root".into()),
            effective: crate::state::SshdAuth {
                password_authentication: Some(true),
                ..Default::default()
            },
        }],
    });
    let err = plan(&inv, &db1, "ssh-disable-password-auth", &[], &bastion()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("Match Address 10.77.9.0/24 at /etc/ssh/sshd_config:22")
            && msg.contains("edit that block"),
        "{msg}"
    );
    // Root login is not what the block turns on: that fix still plans as before.
    let p = plan(&inv, &db1, "ssh-disable-root-login", &[], &bastion()).unwrap();
    assert!(p.is_noop(), "{:?}", texts(&p));
}

#[test]
fn unknown_fix_and_host_are_errors() {
    let inv = inv();
    assert!(matches!(
        plan(&inv, &load("db1"), "fw-nope", &[], &bastion()),
        Err(FixError::UnknownFix(_))
    ));
    let mut st = load("db1");
    st.host = "nope".into();
    assert!(matches!(
        plan(&inv, &st, "f2b-start", &[], &bastion()),
        Err(FixError::UnknownHost { .. })
    ));
    let st = HostState::unreachable("db1", "connect", "timed out");
    assert!(matches!(
        plan(&inv, &st, "f2b-start", &[], &bastion()),
        Err(FixError::NotCollected { .. })
    ));
}

#[test]
fn ssh_connection_parses() {
    assert_eq!(
        parse_ssh_connection("10.77.9.10 51234 10.77.12.11 22\n"),
        Some("10.77.9.10".parse().unwrap())
    );
    assert_eq!(
        parse_ssh_connection("fe80::1%eth0 1 fe80::2 22"),
        Some("fe80::1".parse().unwrap())
    );
    assert_eq!(parse_ssh_connection(""), None);
    assert_eq!(parse_ssh_connection("garbage"), None);
}

/// The plan in words for fw-enable-default-deny on the lab's app1 (no firewall): the steps
/// in order, what is saved, the new drop policy and SSH rule, ports that stop being let in
/// from anywhere, the guard's source and the rule that admits SSH afterwards, the timer.
#[test]
fn default_deny_plan_reads_in_words() {
    let p = plan(
        &inv(),
        &load("app1"),
        "fw-enable-default-deny",
        &[],
        &bastion(),
    )
    .unwrap();
    let d = &p.description;
    assert_eq!(d.steps.len(), p.sequence().len(), "{:?}", d.steps);
    assert!(
        d.steps[0].starts_with("1. save the current"),
        "{:?}",
        d.steps
    );
    assert!(
        d.steps
            .iter()
            .any(|s| s.contains("deny incoming by default"))
    );
    assert!(d.saved.as_deref().is_some_and(|s| s.contains("saved")));
    assert!(
        d.rules_added
            .iter()
            .any(|r| r.contains("22") && r.contains("10.77.9.0/24")),
        "{:?}",
        d.rules_added
    );
    assert!(
        d.policies.iter().any(|p| p.ends_with("→ drop")),
        "{:?}",
        d.policies
    );
    // SSH from anywhere is no longer let in; from the bastion it still is. The app's port
    // closes even to the bastion: exactly what the person confirming should see.
    assert!(
        d.admitted
            .iter()
            .any(|a| a.starts_with("22/tcp from anywhere: admitted") && a.contains("→ refused")),
        "{:?}",
        d.admitted
    );
    assert!(
        !d.admitted
            .iter()
            .any(|a| a.starts_with("22/tcp from 10.77.9.10")),
        "{:?}",
        d.admitted
    );
    assert_eq!(d.guard.len(), 1, "{:?}", d.guard);
    assert!(
        d.guard[0].contains("10.77.9.10")
            && d.guard[0]
                .contains("still admitted afterwards by accept tcp dport 22 from 10.77.9.0/24"),
        "{:?}",
        d.guard
    );
    assert!(
        d.rollback.as_deref().is_some_and(|r| r.contains("60 s")),
        "{:?}",
        d.rollback
    );
    // A fix already in place says so and nothing else.
    let p = plan(
        &inv(),
        &load("web1"),
        "fw-enable-default-deny",
        &[],
        &bastion(),
    )
    .unwrap();
    assert_eq!(p.description.steps.len(), 1);
    assert!(p.description.rules_added.is_empty() && p.description.guard.is_empty());
}

#[test]
fn hsts_fix_is_a_tested_drop_in_and_refuses_where_it_would_not_reach() {
    let inv = inv();
    let web2 = load("web2");
    let p = plan(&inv, &web2, "nginx-add-hsts", &[], &bastion()).unwrap();
    let t = texts(&p);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(t[0].contains("/etc/nginx/conf.d/rampart-hsts.conf"));
    assert!(t[1].contains("nginx -t"));
    assert!(t[2].contains("reload"));
    let stdin = String::from_utf8(p.steps[0].command.stdin_bytes().unwrap().to_vec()).unwrap();
    assert!(
        stdin.contains("add_header Strict-Transport-Security \"max-age=31536000\" always;"),
        "{stdin}"
    );
    assert!(p.rollback.is_none());
    // web1 sends HSTS already: nothing to do.
    let p = plan(&inv, &load("web1"), "nginx-add-hsts", &[], &bastion()).unwrap();
    assert!(p.is_noop(), "{:?}", texts(&p));
    // A server with add_headers of its own would not inherit an http-level header: refused.
    let mut web2 = load("web2");
    if let Probed::Ok(n) = &mut web2.nginx {
        for s in n.servers.iter_mut().filter(|s| s.serves_tls()) {
            s.own_add_header = Some("/etc/nginx/sites-enabled/lab:12".into());
        }
    }
    let e = plan(&inv, &web2, "nginx-add-hsts", &[], &bastion()).unwrap_err();
    assert!(e.to_string().contains("sites-enabled/lab:12"), "{e}");
}

/// leg1's firewall after a plan's steps, as the lockout guard saw it.
fn simulated(host: &str, fix: &str, params: &[&str], state: &HostState) -> crate::state::Firewall {
    let spec = crate::fix::catalogue::FIXES
        .iter()
        .find(|f| f.id == fix)
        .unwrap();
    let inventory = inv();
    super::build::build(
        spec,
        &super::build::Input {
            inv: &inventory,
            host: inventory.hosts.iter().find(|h| h.name == host).unwrap(),
            state,
            params: &super::params::parse(spec, &kv(params)).unwrap(),
            sources: &bastion(),
            now: 1_796_542_509,
        },
    )
    .unwrap()
    .simulated
    .unwrap()
}

#[test]
fn an_iptables_legacy_exposure_is_closed_in_the_legacy_tables() {
    // leg1: node exporter reached through a nat REDIRECT 9180 → 9100 and an iptables-legacy
    // `--ctstate DNAT` accept; ufw is installed but inactive, so the fix must not go
    // through ufw: one drop first in the legacy INPUT chain, under a legacy rollback.
    let leg1 = load("leg1");
    let p = plan(
        &inv(),
        &leg1,
        "fw-close-port",
        &kv(&["port=9100"]),
        &bastion(),
    )
    .unwrap();
    assert_eq!(
        texts(&p),
        [
            "'iptables-legacy' '-w' '-I' 'INPUT' '1' '!' '-i' 'lo' '-p' 'tcp' '--dport' '9100' \
          '-m' 'conntrack' '--ctstate' 'NEW' '-m' 'comment' '--comment' 'rampart:fw-close-port' \
          '-j' 'DROP'"
        ]
    );
    assert_eq!(
        p.rollback.as_ref().map(|r| r.kind),
        Some(RollbackKind::IptablesLegacy)
    );
    let seq = p.sequence();
    assert_eq!(seq[0].command.name(), "fix-rollback-save");
    let save = seq[0].command.render(false);
    assert!(save.contains("iptables-legacy-save"), "{save}");
    let restore = String::from_utf8_lossy(seq[0].command.stdin_bytes().unwrap()).into_owned();
    assert!(restore.contains("iptables-legacy-restore"), "{restore}");
    // The plan in words: the new drop before → after, and 9100 no longer admitted.
    let d = &p.description;
    assert!(
        d.rules_added.iter().any(|r| r.contains("9100")),
        "{:?}",
        d.rules_added
    );
    assert!(
        d.admitted
            .iter()
            .any(|a| a.contains("9100") && a.contains("→ refused")),
        "{:?}",
        d.admitted
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("lockout guard") && n.contains("10.77.9.10")),
        "{:?}",
        p.notes
    );
    // The model agrees: neither 9100 nor the redirected 9180 lets anyone in afterwards, and
    // SSH from the admin set (the bastion) still gets in.
    let sim = simulated("leg1", "fw-close-port", &["port=9100"], &leg1);
    for src in ["203.0.113.7", "10.77.10.11", "10.77.11.11", "10.77.9.10"] {
        for port in [9100, 9180] {
            let v = sim.admits(src.parse().unwrap(), Protocol::Tcp, port);
            assert!(!v.admitted(), "{src} → {port}: {v:#?}");
        }
    }
    assert!(
        sim.admits("10.77.9.10".parse().unwrap(), Protocol::Tcp, 22)
            .admitted()
    );
}

#[test]
fn the_legacy_guard_refuses_closing_ssh_and_a_second_run_is_empty() {
    let inv = inv();
    let leg1 = load("leg1");
    // Closing 22 would drop the bastion's new connections before the admin-src accept.
    let e = plan(&inv, &leg1, "fw-close-port", &kv(&["port=22"]), &bastion()).unwrap_err();
    assert!(matches!(e, FixError::Lockout { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("10.77.9.10") && text.contains("rampart:fw-close-port"),
        "{text}"
    );
    // The host after the fix: the drop read back from iptables-legacy-save. Nothing to do.
    let mut after = leg1.clone();
    after.firewall = Probed::Ok(simulated("leg1", "fw-close-port", &["port=9100"], &leg1));
    let p = plan(
        &inv,
        &after,
        "fw-close-port",
        &kv(&["port=9100"]),
        &bastion(),
    )
    .unwrap();
    assert!(p.is_noop(), "{:?}", texts(&p));
    assert!(p.sequence().is_empty());
    // 80 is let in over both families: a drop in each family's legacy INPUT.
    let p = plan(&inv, &leg1, "fw-close-port", &kv(&["port=80"]), &bastion()).unwrap();
    let t = texts(&p);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        t[0].starts_with("'iptables-legacy' '-w' '-I' 'INPUT' '1'"),
        "{t:?}"
    );
    assert!(
        t[1].starts_with("'ip6tables-legacy' '-w' '-I' 'INPUT' '1'"),
        "{t:?}"
    );
    // A port nothing lets in: nothing to do either.
    let p = plan(&inv, &leg1, "fw-close-port", &kv(&["port=23"]), &bastion()).unwrap();
    assert!(p.is_noop(), "{:?}", texts(&p));
    // 9180 itself is redirected to 9100: a drop on 9180 would not close it, so refused.
    let e = plan(
        &inv,
        &leg1,
        "fw-close-port",
        &kv(&["port=9180"]),
        &bastion(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("close 9100 instead"), "{e}");
}

#[test]
fn firewalld_restrict_rebinds_the_zone_and_persists_only_after_verification() {
    let st = load("fwd1");
    let fwd = match &st.firewall {
        Probed::Ok(fw) => fw.firewalld.clone().expect("firewalld zones collected"),
        other => panic!("{other:?}"),
    };
    assert_eq!(fwd.zone("labapp").unwrap().sources, vec!["10.77.0.0/16"]);
    let p = plan(
        &inv(),
        &st,
        "fw-restrict-to-segment",
        &kv(&["port=6379", "segment=app"]),
        &bastion(),
    )
    .unwrap();
    assert_eq!(
        texts(&p),
        [
            "'firewall-cmd' '--zone' 'labapp' '--add-source' '10.77.11.0/24'",
            "'firewall-cmd' '--zone' 'labapp' '--remove-source' '10.77.0.0/16'",
        ]
    );
    let persist: Vec<String> = p.persist.iter().map(|s| s.command.render(false)).collect();
    assert_eq!(
        persist,
        [
            "'firewall-cmd' '--permanent' '--zone' 'labapp' '--add-source' '10.77.11.0/24'",
            "'firewall-cmd' '--permanent' '--zone' 'labapp' '--remove-source' '10.77.0.0/16'",
        ]
    );
    assert_eq!(
        p.rollback.as_ref().map(|r| r.kind),
        Some(RollbackKind::Firewalld)
    );
    // The order sent: save, arm, runtime, permanent (after re-verifying), cancel.
    let seq: Vec<String> = p.sequence().iter().map(|s| s.what.clone()).collect();
    assert!(
        seq[2].starts_with("runtime:") && seq[4].contains("re-verifying"),
        "{seq:?}"
    );
    assert!(seq.last().unwrap().contains("cancel"), "{seq:?}");
    assert!(
        p.notes.iter().any(|n| n.contains("lockout guard")),
        "{:?}",
        p.notes
    );
}

#[test]
fn firewalld_guard_refuses_moving_the_admin_segment_out_of_its_zone() {
    // SSH on fwd1 is the admin zone's (10.77.9.0/24); restricting 22 to the app segment
    // would rebind that zone and send the bastion to `public`, which rejects.
    let e = plan(
        &inv(),
        &load("fwd1"),
        "fw-restrict-to-segment",
        &kv(&["port=22", "segment=app"]),
        &bastion(),
    )
    .unwrap_err();
    assert!(matches!(e, FixError::Lockout { .. }), "{e}");
    assert!(e.to_string().contains("10.77.9.10"), "{e}");
}

#[test]
fn docker_user_restrict_lets_the_app_segment_and_the_containers_in_then_drops() {
    // dock1's real state: lab-pg publishes 5432 on every address, Docker's DOCKER-USER is
    // empty but for its RETURN; the db role allows 5432 from the app segment.
    let st = load("dock1");
    let p = plan(
        &inv(),
        &st,
        "docker-user-restrict",
        &kv(&["port=5432"]),
        &bastion(),
    )
    .unwrap();
    let tail = "'-p' 'tcp' '-m' 'conntrack' '--ctorigdstport' '5432' '--ctdir' 'ORIGINAL' \
                '-m' 'comment' '--comment' 'rampart-docker-user-restrict'";
    assert_eq!(
        texts(&p),
        [
            format!(
                "'iptables-nft' '-w' '-I' 'DOCKER-USER' '1' '-s' '10.77.11.0/24' {tail} '-j' 'RETURN'"
            ),
            format!(
                "'iptables-nft' '-w' '-I' 'DOCKER-USER' '2' '-s' '172.17.0.0/16' {tail} '-j' 'RETURN'"
            ),
            format!("'iptables-nft' '-w' '-I' 'DOCKER-USER' '3' {tail} '-j' 'DROP'"),
        ]
    );
    assert_eq!(
        p.rollback.as_ref().map(|r| r.kind),
        Some(RollbackKind::DockerUser)
    );
    // The simulated ruleset no longer lets the world or the dmz in, and still the app.
    let spec = crate::fix::catalogue::FIXES
        .iter()
        .find(|f| f.id == "docker-user-restrict")
        .unwrap();
    let inventory = inv();
    let sim = super::build::build(
        spec,
        &super::build::Input {
            inv: &inventory,
            host: inventory.hosts.iter().find(|h| h.name == "dock1").unwrap(),
            state: &st,
            params: &super::params::parse(spec, &kv(&["port=5432"])).unwrap(),
            sources: &bastion(),
            now: 1_796_542_509,
        },
    )
    .unwrap()
    .simulated
    .unwrap();
    let at = |a: &str| {
        sim.admits(a.parse().unwrap(), Protocol::Tcp, 5432)
            .admitted()
    };
    assert!(!at("203.0.113.7"));
    assert!(!at("10.77.10.11"));
    assert!(at("10.77.11.11"));
    // A port no container publishes is refused before anything is built.
    let e = plan(
        &inv(),
        &st,
        "docker-user-restrict",
        &kv(&["port=6379"]),
        &bastion(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no running container publishes 6379/tcp"), "{e}");
}

/// The posture findings of one lab host's collected state, with the shipped inventory.
fn findings_of(host: &str) -> Vec<crate::posture::Finding> {
    let fleet = crate::state::FleetState {
        hosts: vec![load(host)],
    };
    let mut opts = crate::posture::checks::CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    crate::posture::checks::evaluate(&inv(), &fleet, &opts)
}

#[test]
fn a_database_let_in_by_a_container_publish_points_to_docker_user() {
    // dock1: PostgreSQL in a container published on 5432; ufw allows 5432 from app only,
    // Docker's NAT comes first. The finding's fix must be DOCKER-USER, not the host's rules.
    let dock = findings_of("dock1");
    let seg = dock
        .iter()
        .find(|f| f.check == "SEG-DB-EXPOSED")
        .unwrap_or_else(|| panic!("no SEG-DB-EXPOSED on dock1: {dock:#?}"));
    assert_eq!(seg.fix.as_deref(), Some("docker-user-restrict"), "{seg:#?}");
    assert!(
        dock.iter().any(|f| f.check == "FW-CONTAINER-BYPASS"),
        "{dock:#?}"
    );
    // A database reached through the host's own INPUT rules keeps the host-firewall fix.
    for host in ["db1", "cache1", "leg1", "fwd1"] {
        for f in findings_of(host) {
            assert_ne!(
                f.fix.as_deref(),
                Some("docker-user-restrict"),
                "{host}: {f:#?}"
            );
        }
    }
}
