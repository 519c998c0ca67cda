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
    /// Figures for `--metrics` (the server is started by the caller), when asked.
    pub metrics: Option<crate::metrics::Metrics>,
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
    /// Plans shown in the fix dialog, by (host, fix), until applied or replaced.
    plans: BTreeMap<(String, String), crate::fix::FixPlan>,
    journal: crate::fix::Journal,
    /// Alerts: what is happening now, deduplicated; also pushed to Alertmanager / webhooks.
    engine: crate::alerts::AlertEngine,
    sinks: crate::alerts::Sinks,
    /// The last problem each sink reported: a failure is announced once, the status bar
    /// follows the retries.
    sink_problems: Vec<Option<String>>,
    /// The live capture behind the flow view, when it is open.
    capture: Option<crate::traffic::capture::CaptureTask>,
    capture_tx: mpsc::Sender<crate::traffic::capture::CaptureEvent>,
    /// The history: the last snapshot drawn at start, console collections stored (throttled),
    /// the Changes view read from it. `None` when it cannot be opened (said once).
    /// (A mutex: the connection is not `Sync`, and the gatherer's futures must be `Send`.)
    store: Option<std::sync::Mutex<crate::store::Store>>,
    throttle: crate::store::timeline::Throttle,
    /// Incremental refresh: after the first round, an unchanged host costs one cheap exec.
    refresher: Arc<crate::collect::Refresher>,
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
    let (capture_tx, mut capture_rx) = mpsc::channel(64);
    let engine = crate::alerts::AlertEngine::from_inventory(&inv);
    let sinks = crate::alerts::Sinks::from_inventory(&inv, engine.thresholds().resend_secs);
    let mut g = Gatherer {
        inv,
        opts,
        transport,
        updates,
        fleet: FleetState::default(),
        counters: BTreeMap::new(),
        cloud,
        plans: BTreeMap::new(),
        journal: journal(),
        engine,
        sink_problems: vec![None; sinks.statuses().len()],
        sinks,
        capture: None,
        capture_tx,
        store: None,
        throttle: crate::store::timeline::Throttle::default(),
        refresher: Arc::new(crate::collect::Refresher::default()),
    };
    // Before anything is collected: the last stored snapshot, so the console draws the fleet
    // at once instead of waiting for the slowest host.
    g.open_history().await;
    g.report_unfinished().await;
    let mut interval = tokio::time::interval(g.opts.refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Sinks retry in the background; their health is looked at between refreshes too.
    let mut sink_check = tokio::time::interval(Duration::from_secs(1));
    sink_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let has_sinks = !g.sinks.is_empty();
    loop {
        tokio::select! {
            _ = interval.tick() => g.refresh().await,
            _ = sink_check.tick(), if has_sinks => g.check_sinks().await,
            effect = effects.recv() => match effect {
                None | Some(Effect::Quit) => break,
                Some(Effect::Refresh) => {
                    g.refresh().await;
                    interval.reset();
                }
                Some(other) => g.handle(other).await,
            },
            Some(ev) = capture_rx.recv() => g.capture_event(ev).await,
        }
    }
    if let Some(c) = g.capture.take() {
        c.stop().await;
    }
    g.sinks.flush(Duration::from_secs(3)).await;
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
        let refresher = Arc::clone(&self.refresher);
        // Made up front (a lazy map does not satisfy the spawned task's Send bound); they
        // run only as the buffer polls them.
        let started = std::time::Instant::now();
        let futs: Vec<_> = hosts
            .iter()
            .map(|h| crate::metrics::timed(refresher.collect_host(&transport, h)))
            .collect();
        let mut pending =
            futures::stream::iter(futs).buffer_unordered(crate::collect::MAX_IN_FLIGHT);
        let am = crate::audit::alertmanager_ok(&inv);
        tokio::pin!(am);
        let mut am_result = None;
        let mut am_done = false;
        let mut states: Vec<HostState> = Vec::with_capacity(hosts.len());
        let mut took: Vec<Duration> = Vec::with_capacity(hosts.len());
        loop {
            tokio::select! {
                next = pending.next() => match next {
                    Some((state, t)) => {
                        took.push(t);
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
        let round = states.clone();
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
        // Alerts from this round's states (drift, new findings, bans, reachability).
        let mut events = Vec::new();
        for st in &round {
            let own: Vec<crate::posture::Finding> = findings
                .iter()
                .filter(|f| f.host == st.host)
                .cloned()
                .collect();
            events.extend(self.engine.observe_state(st, &own, now));
        }
        self.emit(&events).await;
        if let Some(m) = &self.opts.metrics {
            let timed: Vec<(HostState, Duration)> =
                round.iter().cloned().zip(took.iter().copied()).collect();
            m.record_round(&timed, &findings, started.elapsed(), now);
        }
        self.record(now, &findings).await;
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
            Effect::PlanFix { host, fix, params } => self.plan_fix(host, fix, params).await,
            Effect::ApplyFix { host, fix, .. } => {
                self.apply_fix(host, fix).await;
                // Whatever happened, show the fleet as it is now.
                self.refresh().await;
            }
            Effect::FlowView { host } => {
                // One capture at a time: closing the view, or opening another host's, stops
                // the running one (its channel closes and tcpdump ends on the host).
                if let Some(c) = self.capture.take() {
                    c.stop().await;
                }
                if let Some(h) = host {
                    self.capture = Some(crate::traffic::capture::spawn_remote(
                        (*self.transport).clone(),
                        &h,
                        self.capture_tx.clone(),
                    ));
                }
            }
            Effect::AcknowledgeAlert { id } => {
                let events: Vec<_> = self.engine.acknowledge(&id).into_iter().collect();
                self.emit(&events).await;
            }
            Effect::SilenceAlert { id, until } => {
                let events: Vec<_> = self.engine.silence(&id, until).into_iter().collect();
                self.emit(&events).await;
            }
            Effect::Changes { since } => self.changes(since).await,
            Effect::Refresh | Effect::Quit => {}
        }
    }

    /// A capture's snapshot feeds the flow view and the live-traffic detectors.
    async fn capture_event(&mut self, ev: crate::traffic::capture::CaptureEvent) {
        use crate::traffic::capture::CaptureEvent;
        let now = crate::audit::now_secs();
        match ev {
            CaptureEvent::Snapshot { host, snapshot } => {
                let events = self.engine.observe_flows(&host, &snapshot, now);
                self.send(AppUpdate::Flows { host, snapshot }).await;
                self.emit(&events).await;
            }
            CaptureEvent::Failed { host, message } => {
                self.capture = None;
                self.send(AppUpdate::Message(format!(
                    "flow view of {host}: {}",
                    crate::sanitize::clean_line(&message)
                )))
                .await;
                let events = self.engine.capture_stopped(&host, now);
                self.emit(&events).await;
            }
        }
    }

    /// Sends alert events to the console and the sinks; reports a sink's new problem once.
    async fn emit(&mut self, events: &[crate::alerts::AlertEvent]) {
        let now = crate::audit::now_secs();
        self.sinks.publish(events, now);
        if let Some(m) = &self.opts.metrics {
            m.record_alerts(self.engine.firing());
        }
        for e in events {
            self.send(e.to_update()).await;
        }
        self.check_sinks().await;
    }

    /// Tells the console when a sink starts or stops failing: its new problem once on the
    /// message line, and every sink's health for the status bar.
    async fn check_sinks(&mut self) {
        let statuses: Vec<crate::alerts::SinkStatus> = self
            .sinks
            .statuses()
            .iter()
            .map(|rx| rx.borrow().clone())
            .collect();
        let mut changed = false;
        for (i, status) in statuses.iter().enumerate() {
            let problem = status.problem();
            let Some(slot) = self.sink_problems.get_mut(i) else {
                continue;
            };
            if *slot == problem {
                continue;
            }
            changed = true;
            let message = match (&slot, &problem) {
                (None, Some(p)) => Some(format!("alert sink: {p}")),
                (Some(_), None) => Some(format!("alert sink {} delivers again", status.url)),
                _ => None, // still failing: the status bar counts the retries
            };
            slot.clone_from(&problem);
            if let Some(m) = message {
                self.send(AppUpdate::Message(m)).await;
            }
        }
        if changed {
            self.send(AppUpdate::SinkHealth(statuses)).await;
        }
    }

    /// Builds the plan (reading the host afresh, checking the lockout guard) and shows it.
    async fn plan_fix(&mut self, host: String, fix: String, params: Vec<(String, String)>) {
        if let Err(reason) = crate::ssh::WriteGrant::obtain(&self.inv, self.opts.read_only) {
            self.send(AppUpdate::FixPlanFailed {
                host,
                fix,
                reason: format!("{reason}; nothing was sent"),
            })
            .await;
            return;
        }
        match crate::fix::prepare(&*self.transport, &self.inv, &host, &fix, &params).await {
            Ok(plan) => {
                let sudo = self.transport.spec(&host).is_some_and(|s| s.sudo);
                let view = plan.view(sudo);
                self.plans.insert((host, fix), plan);
                self.send(AppUpdate::FixPlanned(view)).await;
            }
            Err(e) => {
                self.send(AppUpdate::FixPlanFailed {
                    host,
                    fix,
                    reason: e.to_string(),
                })
                .await;
            }
        }
    }

    /// Applies the plan the operator confirmed, reporting progress as it goes.
    async fn apply_fix(&mut self, host: String, fix: String) {
        use crate::tui::model::FixProgress;
        // Whatever the fix changes, the host's next collection is a full one.
        self.refresher.forget(&host);
        let grant = match crate::ssh::WriteGrant::obtain(&self.inv, self.opts.read_only) {
            Ok(g) => g,
            Err(reason) => {
                self.send(AppUpdate::FixProgress(FixProgress::Refused {
                    reason: format!("{reason}; nothing was sent"),
                }))
                .await;
                return;
            }
        };
        let Some(plan) = self.plans.remove(&(host.clone(), fix.clone())) else {
            self.send(AppUpdate::FixPlanFailed {
                host,
                fix,
                reason: "no confirmed plan for this fix; press f again".into(),
            })
            .await;
            return;
        };
        let tw = (*self.transport).clone().with_write(grant);
        let mut topts = TransportOptions::from_inventory(&self.inv);
        if self.opts.accept_new {
            topts.host_keys = HostKeyPolicy::AcceptNew;
        }
        let fresh = crate::fix::Fresh::Inventory(topts);
        let ctx = crate::fix::ApplyContext {
            inv: &self.inv,
            transport: &tw,
            fresh: &fresh,
            journal: &self.journal,
        };
        let tx = self.updates.clone();
        let mut progress = move |p: crate::fix::Progress| {
            // Progress is best effort: a full queue drops a line, never the fix.
            let _ = tx.try_send(AppUpdate::FixProgress(p.into()));
        };
        if let Err(e) = crate::fix::apply(&ctx, &plan, &mut progress).await {
            self.send(AppUpdate::FixProgress(FixProgress::Finished {
                ok: false,
                verified: false,
                message: e.to_string(),
            }))
            .await;
        }
    }

    /// Tells the operator about fixes a previous run left unfinished (rampart was killed).
    async fn report_unfinished(&self) {
        match self.journal.unfinished() {
            Ok(list) => {
                for u in list {
                    if let crate::fix::journal::Record::Intent {
                        run,
                        host,
                        fix,
                        time,
                        ..
                    } = &u.intent
                    {
                        self.send(AppUpdate::Message(format!(
                            "UNFINISHED fix {fix} on {host} (run {run}, started {time}): \
                             {} command(s) were sent; check the host (`rampart fix` reports it too)",
                            u.commands.len()
                        )))
                        .await;
                    }
                }
            }
            Err(e) => {
                self.send(AppUpdate::Message(format!("fix journal unreadable: {e}")))
                    .await;
            }
        }
    }
}

impl Gatherer {
    fn inventory_key(&self) -> String {
        self.inv.path.display().to_string()
    }

    /// Opens the history, sends the last stored snapshot (hosts of this inventory only) and
    /// the fleet score a day ago for the trend, and primes the throttle with the last one.
    async fn open_history(&mut self) {
        let store = match crate::store::Store::open_default() {
            Ok(s) => s,
            Err(e) => {
                self.send(AppUpdate::Message(format!(
                    "history unavailable, nothing stored or shown from it: {e}"
                )))
                .await;
                return;
            }
        };
        let key = self.inventory_key();
        let latest = match crate::store::timeline::latest_of(&store, &key) {
            Ok(l) => l,
            Err(e) => {
                self.send(AppUpdate::Message(format!("history: {e}"))).await;
                None
            }
        };
        if let Some(snap) = &latest {
            let stored = stored_view(&self.inv, snap);
            self.send(AppUpdate::Stored(Box::new(stored))).await;
            let day_ago = snap.meta.taken_at.min(crate::audit::now_secs()) - 86_400;
            let base = crate::store::timeline::at_or_before(&store, &key, day_ago)
                .ok()
                .flatten();
            if let Some(b) = base {
                let v = stored_view(&self.inv, &b);
                let reachable: Vec<&str> = v
                    .states
                    .iter()
                    .filter(|s| !s.is_unreachable())
                    .map(|s| s.host.as_str())
                    .collect();
                self.send(AppUpdate::Baseline {
                    score: fleet_score(&reachable, &v.findings),
                    at: b.meta.taken_at,
                })
                .await;
            }
        }
        self.throttle = crate::store::timeline::Throttle::new(latest);
        self.store = Some(std::sync::Mutex::new(store));
    }

    /// Stores this collection in the history when the throttle says so (a change, or ten
    /// minutes since the last one stored).
    async fn record(&mut self, now: i64, findings: &[crate::posture::Finding]) {
        if self.store.is_none() {
            return;
        }
        let hosts: Result<Vec<_>, _> = self
            .fleet
            .hosts
            .iter()
            .map(|s| crate::store::HostSnapshot::from_state(&s.host, !s.is_unreachable(), s))
            .collect();
        let hosts = match hosts {
            Ok(h) => h,
            Err(e) => {
                let _ = self
                    .updates
                    .send(AppUpdate::Message(format!("history not stored: {e}")))
                    .await;
                return;
            }
        };
        let snap = crate::store::Snapshot {
            meta: crate::store::SnapshotMeta {
                id: 0,
                taken_at: now,
                source: crate::store::Source::Console,
                inventory: self.inv.path.display().to_string(),
                hosts: hosts.len(),
                findings: findings.len(),
            },
            hosts,
            findings: findings.to_vec(),
        };
        if !self.throttle.due(&snap) {
            return;
        }
        let new = crate::store::NewSnapshot {
            taken_at: now,
            source: crate::store::Source::Console,
            inventory: snap.meta.inventory.clone(),
            hosts: snap.hosts.clone(),
            findings: snap.findings.clone(),
        };
        let result = match self.store.as_ref().map(|m| m.lock()) {
            Some(Ok(mut store)) => store.record(&new).inspect(|_| {
                let _ = store.prune(&crate::store::Retention::default(), now);
            }),
            _ => return,
        };
        match result {
            Ok(id) => {
                let mut snap = snap;
                snap.meta.id = id;
                self.throttle.stored(snap);
            }
            Err(e) => {
                let _ = self
                    .updates
                    .send(AppUpdate::Message(format!("history not stored: {e}")))
                    .await;
            }
        }
    }

    /// Reads the drift timeline for the Changes view.
    async fn changes(&mut self, since: crate::store::Since) {
        let key = self.inventory_key();
        let result = match self.store.as_ref().map(|m| m.lock()) {
            Some(Ok(store)) => Some(crate::store::timeline::timeline(
                &store,
                &key,
                &since,
                crate::audit::now_secs(),
            )),
            _ => None,
        };
        let Some(result) = result else {
            self.send(AppUpdate::Message(
                "no history to read changes from (see the message at start)".into(),
            ))
            .await;
            return;
        };
        match result {
            Ok(t) => self.send(AppUpdate::Changes(Box::new(t))).await,
            Err(e) => self.send(AppUpdate::Message(format!("changes: {e}"))).await,
        }
    }
}

/// A stored snapshot as the console draws it: the states of this inventory's hosts (a state
/// that no longer parses is left out, never guessed), and their findings.
fn stored_view(inv: &Inventory, snap: &crate::store::Snapshot) -> crate::tui::model::Stored {
    let states = snap
        .hosts
        .iter()
        .filter(|h| inv.host(&h.host).is_some())
        .filter_map(|h| serde_json::from_value::<HostState>(h.state.clone()).ok())
        .collect();
    let findings = snap
        .findings
        .iter()
        .filter(|f| f.host == crate::posture::FLEET || inv.host(&f.host).is_some())
        .cloned()
        .collect();
    crate::tui::model::Stored {
        taken_at: snap.meta.taken_at,
        source: snap.meta.source.as_str().to_string(),
        states,
        findings,
    }
}

/// The fleet's score from the reached hosts' findings (as the audit computes it).
pub fn fleet_score(reached: &[&str], findings: &[crate::posture::Finding]) -> u32 {
    let scores: Vec<u32> = reached
        .iter()
        .map(|h| crate::posture::score::host_score(h, findings).score)
        .collect();
    crate::posture::score::fleet_score(&scores, findings).score
}

/// The fix journal, mirrored into the history store when it opens.
fn journal() -> crate::fix::Journal {
    let j = crate::fix::Journal::new(crate::fix::Journal::default_path());
    match crate::store::Store::open_default() {
        Ok(store) => j.with_store(store),
        Err(_) => j,
    }
}
