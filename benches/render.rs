//! Console rendering with 1,000 hosts and their findings: the time to draw one full frame,
//! and the bytes a real crossterm backend writes per refresh when nothing changed and when
//! one host changed.
//!
//! The fleet is built from the lab's real framed outputs (tests/fixtures/frames, six hosts)
//! repeated over 1,000 inventory hosts, and the findings come from the real checks on that
//! state, so the panes hold what a real 1,000-host console would hold.
//!
//! Run: `cargo bench --bench render`. Byte counts are printed (and written to
//! `target/criterion/render-bytes.json`); criterion reports the times.

// A bench that cannot build its console must stop loudly.
#![allow(clippy::panic)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use criterion::{Criterion, criterion_group, criterion_main};
use rampart::collect::probes::state_from_frames;
use rampart::inventory::Inventory;
use rampart::posture::checks::{CheckOptions, evaluate};
use rampart::ssh::command::parse_frames;
use rampart::state::{FleetState, HostState, Listener, Probed, Protocol};
use rampart::tui::{App, AppUpdate, ConnState, Options};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

const HOSTS: usize = 1000;
const LAB: [(&str, &str); 6] = [
    ("edge", "bastion"),
    ("web1", "web"),
    ("web2", "web"),
    ("vpn1", "vpn"),
    ("app1", "app"),
    ("db1", "db"),
];
/// When the fixture frames were captured (see tests/collect_frames.rs).
const NOW: i64 = 1_795_529_940;

/// A terminal writer that only counts (and keeps) what reaches it.
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<Vec<u8>>>);

impl Write for Counting {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Counting {
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |v| v.len())
    }
}

fn inventory() -> Inventory {
    let mut s = String::from(
        "[defaults]\nuser = \"root\"\nbastion = \"edge\"\n\n[segments]\n\
         outside = [\"10.77.0.0/24\"]\nadmin = [\"10.77.9.0/24\"]\n\
         dmz = [\"10.80.0.0/16\"]\napp = [\"10.81.0.0/16\"]\ndata = [\"10.82.0.0/16\"]\n\n\
         [roles.bastion]\nsegments = [\"outside\", \"admin\"]\n\n\
         [[host]]\nname = \"edge\"\naddress = \"10.77.0.10\"\nroles = [\"bastion\"]\nbastion = \"none\"\n",
    );
    for i in 1..HOSTS {
        let (_, role) = LAB[1 + (i - 1) % 5];
        let net = match role {
            "web" | "vpn" => 80,
            "app" => 81,
            _ => 82,
        };
        let _ = write!(
            s,
            "\n[[host]]\nname = \"{role}{i:04}\"\naddress = \"10.{net}.{}.{}\"\nroles = [\"{role}\"]\n",
            i / 250,
            i % 250 + 1
        );
    }
    match Inventory::parse(&s, Path::new("bench/inventory.toml")) {
        Ok(inv) => inv,
        Err(e) => panic!("bench inventory: {e}"),
    }
}

fn lab_state(host: &str) -> HostState {
    let dir = format!(
        "{}/tests/fixtures/frames/{host}",
        env!("CARGO_MANIFEST_DIR")
    );
    let read = |f: &str| std::fs::read(format!("{dir}/{f}")).unwrap_or_default();
    let nonce = String::from_utf8_lossy(&read("nonce")).trim().to_string();
    let frames = parse_frames(&nonce, &read("stdout"), &read("stderr"));
    state_from_frames(host, &frames)
}

/// The fleet: every inventory host gets the state of the lab host of its role.
fn fleet(inv: &Inventory) -> FleetState {
    let templates: Vec<(&str, HostState)> =
        LAB.iter().map(|(h, role)| (*role, lab_state(h))).collect();
    let hosts = inv
        .hosts
        .iter()
        .map(|h| {
            let role = h.roles.first().map_or("web", String::as_str);
            let mut st = templates
                .iter()
                .find(|(r, _)| *r == role)
                .map_or_else(|| templates[1].1.clone(), |(_, s)| s.clone());
            st.host = h.name.clone();
            st.collected_at = Some(NOW - 10);
            st
        })
        .collect();
    FleetState { hosts }
}

struct Console {
    app: App,
    fleet: FleetState,
    inv: Inventory,
    findings: usize,
}

fn console() -> Console {
    let inv = inventory();
    let fleet = fleet(&inv);
    let findings = evaluate(&inv, &fleet, &CheckOptions::new(NOW));
    let opts = match Options::builtin(false) {
        Ok(o) => Options { now: NOW, ..o },
        Err(e) => panic!("options: {e}"),
    };
    let mut app = match App::new(&inv, opts) {
        Ok(a) => a,
        Err(e) => panic!("app: {e}"),
    };
    app.update(AppUpdate::RefreshStarted { at: NOW - 30 });
    for h in &fleet.hosts {
        app.update(AppUpdate::Connection {
            host: h.host.clone(),
            state: ConnState::Ok,
        });
        app.update(AppUpdate::HostState(Box::new(h.clone())));
    }
    let n = findings.len();
    app.update(AppUpdate::Findings(findings));
    app.update(AppUpdate::RefreshFinished { at: NOW - 5 });
    Console {
        app,
        fleet,
        inv,
        findings: n,
    }
}

/// One host's state changes the way a new listener would change it, and the findings are
/// recomputed, as a refresh that found one change sends them.
fn one_host_changed(c: &Console) -> Vec<AppUpdate> {
    let mut fleet = c.fleet.clone();
    let Some(st) = fleet.hosts.get_mut(1) else {
        return Vec::new();
    };
    if let Probed::Ok(ls) = &mut st.listeners {
        ls.push(Listener {
            protocol: Protocol::Tcp,
            address: None,
            interface: None,
            port: 6379,
            processes: Vec::new(),
        });
    }
    let changed = st.clone();
    let findings = evaluate(&c.inv, &fleet, &CheckOptions::new(NOW));
    vec![
        AppUpdate::RefreshStarted { at: NOW },
        AppUpdate::HostState(Box::new(changed)),
        AppUpdate::Findings(findings),
        AppUpdate::RefreshFinished { at: NOW + 1 },
    ]
}

fn crossterm_terminal(out: &Counting, w: u16, h: u16) -> Terminal<CrosstermBackend<Counting>> {
    match Terminal::with_options(
        CrosstermBackend::new(out.clone()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
        },
    ) {
        Ok(t) => t,
        Err(e) => panic!("terminal: {e}"),
    }
}

/// Bytes written to the terminal, as the event loop draws (only when the app's revision
/// moved): the first frame; a refresh where nothing changed (every host's state and the same
/// findings sent again); a refresh where one host changed. Also the bytes of a redraw forced
/// with nothing changed (what the loop's revision check saves).
fn bytes_per_refresh(c: &Console, w: u16, h: u16) -> [usize; 4] {
    let mut app = c.app.clone();
    let out = Counting::default();
    let mut term = crossterm_terminal(&out, w, h);
    let mut drawn = None;
    let mut draw = |term: &mut Terminal<CrosstermBackend<Counting>>, app: &App, force: bool| {
        if force || drawn != Some(app.revision) {
            if let Err(e) = term.draw(|f| rampart::tui::draw(f, app)) {
                panic!("draw: {e}");
            }
            drawn = Some(app.revision);
        }
    };
    draw(&mut term, &app, false);
    let first = out.len();
    for h in &c.fleet.hosts {
        app.update(AppUpdate::Connection {
            host: h.host.clone(),
            state: ConnState::Ok,
        });
        app.update(AppUpdate::HostState(Box::new(h.clone())));
    }
    app.update(AppUpdate::Findings(c.app.findings.clone()));
    draw(&mut term, &app, false);
    let idle = out.len() - first;
    draw(&mut term, &app, true);
    let forced = out.len() - first - idle;
    for u in one_host_changed(c) {
        app.update(u);
    }
    draw(&mut term, &app, false);
    let changed = out.len() - first - idle - forced;
    [first, idle, changed, forced]
}

fn benches(cr: &mut Criterion) {
    let c = console();
    let mut report = String::from("{");
    for (w, h) in [(160u16, 48u16), (240, 70)] {
        let [first, idle, changed, forced] = bytes_per_refresh(&c, w, h);
        eprintln!(
            "render-bytes {w}x{h}: {} hosts, {} findings: first frame {first} B, \
             nothing changed {idle} B, one host changed {changed} B \
             (a redraw forced with nothing changed: {forced} B)",
            c.fleet.hosts.len(),
            c.findings
        );
        let _ = write!(
            report,
            "{}\"{w}x{h}\":{{\"hosts\":{},\"findings\":{},\"first\":{first},\"idle\":{idle},\"one_host\":{changed},\"forced_redraw\":{forced}}}",
            if report.len() > 1 { "," } else { "" },
            c.fleet.hosts.len(),
            c.findings
        );
    }
    report.push('}');
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let _ = std::fs::create_dir_all(format!("{dir}/criterion"));
    let _ = std::fs::write(format!("{dir}/criterion/render-bytes.json"), report);

    let mut g = cr.benchmark_group("render_1000_hosts");
    for (w, h) in [(160u16, 48u16), (240, 70)] {
        // A full frame: every cell drawn into a fresh buffer (what the first frame, a
        // resize or a pane switch costs).
        g.bench_function(format!("full_frame_{w}x{h}"), |b| {
            let mut term = match Terminal::new(TestBackend::new(w, h)) {
                Ok(t) => t,
                Err(e) => panic!("terminal: {e}"),
            };
            b.iter(|| {
                term.clear().ok();
                term.draw(|f| rampart::tui::draw(f, black_box(&c.app)))
                    .map(|_| ())
                    .ok();
            });
        });
    }
    // The fleet pane's rows (filter, group, sort by score): part of every frame.
    g.bench_function("fleet_rows", |b| {
        b.iter(|| black_box(&c.app).fleet_rows());
    });
    // A refresh where nothing changed, on the real crossterm backend (its diff writes
    // nothing, so this is the cost of drawing and comparing).
    g.bench_function("idle_refresh_160x48_crossterm", |b| {
        let out = Counting::default();
        let mut term = crossterm_terminal(&out, 160, 48);
        b.iter(|| {
            term.draw(|f| rampart::tui::draw(f, black_box(&c.app)))
                .map(|_| ())
                .ok();
        });
    });
    // Applying one changed host's state and the recomputed findings to the app state.
    g.bench_function("apply_one_host_update", |b| {
        let updates = one_host_changed(&c);
        b.iter_batched(
            || (c.app.clone(), updates.clone()),
            |(mut app, ups)| {
                for u in ups {
                    app.update(u);
                }
                app
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group! {
    name = render;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(render);
