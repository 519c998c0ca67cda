//! The console's runner: the gathering side of `rampart` (the TUI never opens a connection).
//!
//! It holds a read-only transport, refreshes the fleet on an interval and on demand, and
//! sends typed [`AppUpdate`]s to the console as each host's state arrives: connection states,
//! host states, traffic rates, findings. It answers the console's [`Effect`]s (refresh, fix
//! plans and fixes, flow view). Collection only ever uses a `Transport<ReadOnly>`; a fix asks
//! for write access on its own, which read-only mode refuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::inventory::Inventory;
use crate::posture::checks::{self, CheckOptions};
use crate::ssh::{HostKeyPolicy, ReadOnly, Transport, TransportOptions};
use crate::state::{Counters, FleetState, HostState, Probed};
use crate::tui::model::{AppUpdate, ConnState, Effect};

/// How the console was asked to run.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub read_only: bool,
    pub accept_new: bool,
    pub refresh: Duration,
}

/// The gathering side's memory between refreshes.
struct Gatherer {
    inv: Arc<Inventory>,
    opts: ConsoleOptions,
    transport: Arc<Transport<ReadOnly>>,
    updates: mpsc::Sender<AppUpdate>,
    fleet: FleetState,
    counters: BTreeMap<String, Counters>,
    cloud: Vec<crate::posture::cloud::SecurityGroup>,
}

/// Builds the read-only transport the console collects with.
pub fn transport(
    inv: &Inventory,
    accept_new: bool,
) -> Result<Transport<ReadOnly>, crate::ssh::SshError> {
    let mut topts = TransportOptions::from_inventory(inv);
    if accept_new {
        topts.host_keys = HostKeyPolicy::AcceptNew;
    }
    Transport::new(inv, topts)
}

/// Runs the gathering side until the console quits (the effects channel closes or says
/// Quit). Never returns an error: failures become updates the console shows.
pub async fn gather(
    inv: Arc<Inventory>,
    opts: ConsoleOptions,
    transport: Arc<Transport<ReadOnly>>,
    updates: mpsc::Sender<AppUpdate>,
    mut effects: mpsc::Receiver<Effect>,
) {
    // Forward every host's connection state as it changes.
    for host in transport.hosts() {
        if let Some(mut rx) = transport.subscribe(&host) {
            let tx = updates.clone();
            tokio::spawn(async move {
                loop {
                    let state = ConnState::from(&*rx.borrow_and_update());
                    if tx
                        .send(AppUpdate::Connection {
                            host: host.clone(),
                            state,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    let cloud = crate::audit::load_cloud(&inv).unwrap_or_else(|e| {
        let _ = updates.try_send(AppUpdate::Message(format!("cloud security groups: {e}")));
        Vec::new()
    });
    let mut g = Gatherer {
        inv,
        opts,
        transport,
        updates,
        fleet: FleetState::default(),
        counters: BTreeMap::new(),
        cloud,
    };
    let mut interval = tokio::time::interval(g.opts.refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => g.refresh().await,
            effect = effects.recv() => match effect {
                None | Some(Effect::Quit) => break,
                Some(Effect::Refresh) => {
                    g.refresh().await;
                    interval.reset();
                }
                Some(other) => g.handle(other).await,
            },
        }
    }
    g.transport.close().await;
}

impl Gatherer {
    async fn send(&self, u: AppUpdate) {
        // The console is gone when this fails; the loop notices through the effects channel.
        let _ = self.updates.send(u).await;
    }

    /// Collects every host, sending each state as it arrives, then recomputes findings.
    async fn refresh(&mut self) {
        let now = crate::audit::now_secs();
        self.send(AppUpdate::RefreshStarted { at: now }).await;
        let inv = Arc::clone(&self.inv);
        let hosts: Vec<&crate::inventory::Host> = inv.hosts.iter().collect();
        let transport = Arc::clone(&self.transport);
        let mut pending: futures::stream::FuturesUnordered<_> = hosts
            .iter()
            .map(|h| crate::collect::collect_host(&transport, h))
            .collect();
        let am = crate::audit::alertmanager_ok(&inv);
        tokio::pin!(am);
        let mut am_result = None;
        let mut am_done = false;
        let mut states: Vec<HostState> = Vec::with_capacity(hosts.len());
        loop {
            tokio::select! {
                next = pending.next() => match next {
                    Some(state) => {
                        self.traffic(&state).await;
                        self.send(AppUpdate::HostState(Box::new(state.clone()))).await;
                        states.push(state);
                    }
                    None => break,
                },
                r = &mut am, if !am_done => {
                    am_result = r;
                    am_done = true;
                }
            }
        }
        if !am_done {
            am_result = am.await;
        }
        drop(pending);
        // Keep the last good state of a host that failed this time, so findings do not
        // flap; its connection state already tells the operator it is failing.
        for s in states {
            if let Some(i) = self.fleet.hosts.iter().position(|h| h.host == s.host) {
                if s.is_unreachable() {
                    continue;
                }
                self.fleet.hosts[i] = s;
            } else {
                self.fleet.hosts.push(s);
            }
        }
        let mut opts = CheckOptions::new(now).with_thresholds(&self.inv.alerting.thresholds);
        opts.alertmanager_ok = am_result;
        opts.cloud = self.cloud.clone();
        let findings = checks::evaluate(&self.inv, &self.fleet, &opts);
        self.send(AppUpdate::Findings(findings)).await;
        self.send(AppUpdate::RefreshFinished {
            at: crate::audit::now_secs(),
        })
        .await;
    }

    /// Sends the host's counter rates since its previous sample.
    async fn traffic(&mut self, state: &HostState) {
        let Probed::Ok(c) = &state.counters else {
            return;
        };
        if let Some(prev) = self.counters.get(&state.host)
            && let Some(rates) = c.rates(prev, self.opts.refresh.as_secs_f64())
        {
            self.send(AppUpdate::Traffic {
                host: state.host.clone(),
                rates,
            })
            .await;
        }
        self.counters.insert(state.host.clone(), c.clone());
    }

    async fn handle(&mut self, effect: Effect) {
        match effect {
            Effect::PlanFix { host, fix, .. } | Effect::ApplyFix { host, fix, .. } => {
                let reason = if self.opts.read_only {
                    "read-only mode: fixes cannot be sent".to_string()
                } else {
                    "one-key fixes are not built yet".to_string()
                };
                self.send(AppUpdate::FixPlanFailed { host, fix, reason })
                    .await;
            }
            Effect::FlowView { host: Some(h) } => {
                self.send(AppUpdate::Message(format!(
                    "flow view of {h}: live capture is not built yet"
                )))
                .await;
            }
            // Acknowledge and silence are kept by the console itself; nothing to send.
            Effect::AcknowledgeAlert { .. }
            | Effect::SilenceAlert { .. }
            | Effect::FlowView { host: None }
            | Effect::Refresh
            | Effect::Quit => {}
        }
    }
}
