//! The console's live flow view: a snapshot made from a real lab capture (fixture) through
//! the reader, decoder and flow table shows in the Traffic pane once the view is open for
//! that host, and a snapshot of another host is ignored.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use rampart::traffic::{FlowTable, PcapReader, drain};
use rampart::tui::render::{buffer_text, render_buffer};
use rampart::tui::{Action, AppUpdate, Options, demo_app};

fn snapshot() -> rampart::traffic::FlowSnapshot {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pcap/eth-web2.pcap"),
    )
    .unwrap();
    let mut r = PcapReader::new();
    r.push(&bytes);
    let mut t = FlowTable::new(1024);
    drain(&mut r, &mut t, None).unwrap();
    t.snapshot(0)
}

#[test]
fn the_flow_view_shows_a_capture_of_the_selected_host() {
    let mut a = demo_app(Options::builtin(false).expect("options")).expect("demo");
    a.apply(Action::ShowTraffic);
    a.apply(Action::Enter);
    let host = a.flow_host.clone().expect("Enter opens the flow view");
    let snap = snapshot();
    // Another host's snapshot is not shown.
    assert!(!a.update(AppUpdate::Flows {
        host: format!("{host}-other"),
        snapshot: Box::new(snap.clone()),
    }));
    let before = buffer_text(&render_buffer(&a, 160, 48));
    assert!(before.contains("waiting for the capture"), "{before}");
    assert!(a.update(AppUpdate::Flows {
        host: host.clone(),
        snapshot: Box::new(snap.clone()),
    }));
    let text = buffer_text(&render_buffer(&a, 160, 48));
    assert!(text.contains("TOP SOURCES"), "{text}");
    let (top, _, _) = snap.top_sources[0];
    assert!(text.contains(&top.to_string()), "{text}");
    let (proto, port, _) = snap.top_dst_ports[0];
    assert!(text.contains(&format!("{port}/{proto}")), "{text}");
    assert!(text.contains("flows tracked"), "{text}");
}
