//! The `rampart` binary: parse the command line, run one subcommand, map errors to exit
//! statuses. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use rampart::cli::{Cli, Command, EXIT_USAGE};
use rampart::inventory::Inventory;

/// A failure carrying the exit status it should end the process with.
#[derive(Debug)]
struct Exit {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Exit {
    fn from(e: E) -> Self {
        Exit {
            code: 1,
            error: e.into(),
        }
    }
}

fn usage(error: impl Into<anyhow::Error>) -> Exit {
    Exit {
        code: EXIT_USAGE as u8,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard = init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(Exit { code, error }) => {
            // One line: the chain of causes, outermost first.
            let msg: Vec<String> = error.chain().map(|c| c.to_string()).collect();
            eprintln!("rampart: {}", msg.join(": "));
            ExitCode::from(code)
        }
    }
}

/// Logs go to a file in the state dir, never to the terminal (the console owns it).
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = rampart::paths::state_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "rampart.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The HTTP client's trace-level wire dump would hold sink credentials.
    let filter = rampart::alerts::secret::quiet_http_client_logs(filter);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

fn load_inventory(cli: &Cli) -> Result<Inventory, Exit> {
    Inventory::load(&cli.global.inventory).map_err(usage)
}

fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::from(anyhow::Error::new(e).context("cannot start the async runtime")))
}

fn console(
    inventory: Inventory,
    args: &rampart::cli::ConsoleArgs,
    cli: &Cli,
) -> Result<ExitCode, Exit> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return Err(usage(anyhow::anyhow!(
            "the console needs a terminal; for reports use `rampart audit`"
        )));
    }
    let read_only = cli.global.read_only || inventory.read_only();
    let theme = cli
        .global
        .theme
        .as_deref()
        .or(inventory.console.theme.as_deref());
    let mut opts = rampart::tui::Options::load(read_only, theme, args.ascii).map_err(usage)?;
    opts.mouse = args.mouse;
    // The alert engine in the runner raises the real alerts.
    opts.derive_alerts = false;
    let app = rampart::tui::App::new(&inventory, opts).map_err(usage)?;
    let rt = runtime()?;
    let refresh = std::time::Duration::from_secs_f64(inventory.console.refresh_secs);
    let inventory = std::sync::Arc::new(inventory);
    let accept_new = cli.global.accept_new;
    rt.block_on(async move {
        let transport = std::sync::Arc::new(
            rampart::console::transport(&inventory, accept_new).map_err(Exit::from)?,
        );
        let metrics = match args.metrics {
            Some(addr) => {
                let m = rampart::metrics::Metrics::new();
                rampart::metrics::serve(addr, m.clone())
                    .await
                    .map_err(usage)?;
                Some(m)
            }
            None => None,
        };
        let (utx, urx) = tokio::sync::mpsc::channel(1024);
        let (etx, erx) = tokio::sync::mpsc::channel(64);
        let gatherer = tokio::spawn(rampart::console::gather(
            inventory,
            rampart::console::ConsoleOptions {
                read_only,
                accept_new,
                refresh,
                metrics,
            },
            std::sync::Arc::clone(&transport),
            utx,
            erx,
        ));
        let result = rampart::tui::run(app, urx, etx).await;
        // The effects channel is closed now: the gatherer stops and closes the transport.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), gatherer).await;
        result.map_err(Exit::from)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn audit(
    inventory: &Inventory,
    args: &rampart::cli::AuditArgs,
    cli: &Cli,
) -> Result<ExitCode, Exit> {
    use std::io::IsTerminal as _;
    let rt = runtime()?;
    if args.connect_only {
        let mut topts = rampart::ssh::TransportOptions::from_inventory(inventory);
        if cli.global.accept_new {
            topts.host_keys = rampart::ssh::HostKeyPolicy::AcceptNew;
        }
        let failed = rt.block_on(async {
            let t = rampart::ssh::Transport::new(inventory, topts)?;
            let failed = rampart::ssh::report::print_connection_states(&t).await;
            t.close().await;
            Ok::<usize, rampart::ssh::SshError>(failed)
        })?;
        return Ok(ExitCode::from(if failed > 0 { 3 } else { 0 }));
    }
    let req = rampart::audit::AuditRequest {
        format: args.format,
        output: args.output.clone(),
        fail_on: severity(args.fail_on),
        hosts: args.hosts.clone(),
        roles: args.roles.clone(),
        waivers: args.waivers.clone(),
        accept_new: cli.global.accept_new,
        color: args.output.is_none()
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        progress: std::io::stderr().is_terminal(),
        history: (!args.no_history).then(|| {
            args.history
                .clone()
                .unwrap_or_else(rampart::store::default_path)
        }),
    };
    let report = rt
        .block_on(rampart::audit::audit(inventory, &req))
        .map_err(audit_error)?;
    rampart::audit::write_report(&report, &req).map_err(audit_error)?;
    Ok(ExitCode::from(report.exit_code()))
}

fn diff(args: &rampart::cli::DiffArgs) -> Result<ExitCode, Exit> {
    use rampart::store::{Since, Store, default_path, now, parse_since};
    let since = match &args.since {
        Some(s) => parse_since(s).map_err(usage)?,
        None => Since::Previous,
    };
    let path = args.history.clone().unwrap_or_else(default_path);
    if !path.exists() {
        return Err(usage(anyhow::anyhow!(
            "{}: no history yet; run `rampart audit` to record a snapshot",
            path.display()
        )));
    }
    let store = Store::open(&path).map_err(usage)?;
    let (from, to) = store.select(&since, now()).map_err(usage)?;
    let d = store.diff(from, to)?;
    match args.format {
        rampart::cli::DiffFormat::Text => print!("{}", d.to_text()),
        rampart::cli::DiffFormat::Json => println!("{}", d.to_json()?),
    }
    Ok(ExitCode::from(if d.is_empty() { 0 } else { 1 }))
}

fn audit_error(e: rampart::audit::AuditError) -> Exit {
    Exit {
        code: e.exit_code(),
        error: anyhow::Error::new(e).context("audit"),
    }
}

fn severity(s: rampart::cli::SeverityArg) -> rampart::posture::Severity {
    use rampart::cli::SeverityArg as A;
    use rampart::posture::Severity as S;
    match s {
        A::Info => S::Info,
        A::Low => S::Low,
        A::Medium => S::Medium,
        A::High => S::High,
        A::Critical => S::Critical,
    }
}

fn lab_error(e: rampart::lab::LabError) -> Exit {
    Exit {
        code: u8::try_from(e.exit_code()).unwrap_or(1),
        error: anyhow::Error::new(e).context("lab"),
    }
}

/// `rampart watch`: headless, read-only; prints alerts as they fire and resolve.
fn watch(
    inventory: &Inventory,
    args: &rampart::cli::WatchArgs,
    cli: &Cli,
) -> Result<ExitCode, Exit> {
    use rampart::alerts::watch as w;
    let duration = match &args.duration {
        Some(d) => {
            Some(w::parse_duration(d).map_err(|e| usage(anyhow::anyhow!("--duration: {e}")))?)
        }
        None => None,
    };
    let opts = w::WatchOptions {
        json: args.json,
        duration,
        capture: (!args.no_capture).then(|| args.capture.clone()),
        local_capture: cli.global.local_capture.clone(),
        accept_new: cli.global.accept_new,
        refresh: std::time::Duration::from_secs_f64(inventory.console.refresh_secs.max(1.0)),
        metrics: args.metrics,
    };
    let rt = runtime()?;
    let mut out = std::io::stdout().lock();
    rt.block_on(w::run(inventory, &opts, &mut out))
        .map_err(|e| Exit::from(anyhow::Error::new(e).context("watch")))?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode, Exit> {
    match &cli.command {
        Some(Command::Lab(args)) => {
            rampart::lab::run(&args.action).map_err(lab_error)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Demo(args)) => {
            let inventory = load_inventory(&cli)?;
            rampart::lab::run(&rampart::cli::LabAction::Up { hosts: None }).map_err(lab_error)?;
            console(inventory, args, &cli)
        }
        Some(Command::Console(args)) => {
            let inventory = load_inventory(&cli)?;
            console(inventory, args, &cli)
        }
        None => {
            let inventory = load_inventory(&cli)?;
            console(inventory, &rampart::cli::ConsoleArgs::default(), &cli)
        }
        Some(Command::Audit(args)) if args.print_sudoers.is_some() => {
            let user = args.print_sudoers.as_deref().unwrap_or("rampart");
            print!("{}", rampart::audit::sudoers_policy(user).map_err(usage)?);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Audit(args)) => {
            let inventory = load_inventory(&cli)?;
            audit(&inventory, args, &cli)
        }
        Some(Command::Fix(args)) => {
            let inventory = load_inventory(&cli)?;
            fix_command(&inventory, args, &cli)
        }
        Some(Command::Diff(args)) => diff(args),
        Some(Command::Watch(args)) => {
            let inventory = load_inventory(&cli)?;
            watch(&inventory, args, &cli)
        }
        Some(Command::Init(args)) => init(args, &cli),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "rampart", &mut out);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `rampart init`: import hosts from an ssh_config, an Ansible inventory or EC2 instances,
/// write a validated inventory, and say what was guessed and what needs a human.
fn init(args: &rampart::cli::InitArgs, cli: &Cli) -> Result<ExitCode, Exit> {
    use rampart::inventory::import;
    let role_map = import::RoleMap::parse(&args.role_map).map_err(usage)?;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map_err(|e| usage(anyhow::anyhow!("{}: cannot read: {e}", p.display())))
    };
    let (imported, source) = if let Some(file) = &args.from_ssh_config {
        let path = file
            .clone()
            .unwrap_or_else(|| rampart::paths::home_dir().join(".ssh/config"));
        (
            import::ssh_config::import(&path, &role_map).map_err(usage)?,
            path,
        )
    } else if let Some(path) = &args.from_ansible {
        let text = read(path)?;
        (
            import::ansible::import(&text, path, &role_map).map_err(usage)?,
            path.clone(),
        )
    } else if let Some(path) = &args.from_aws_ec2 {
        let text = read(path)?;
        let subnets = match &args.aws_subnets {
            Some(p) => Some((read(p)?, p.clone())),
            None => None,
        };
        (
            import::ec2::import(
                &text,
                path,
                subnets.as_ref().map(|(t, p)| (t.as_str(), p.as_path())),
                &role_map,
            )
            .map_err(usage)?,
            path.clone(),
        )
    } else {
        return Err(usage(anyhow::anyhow!(
            "say where to import from: --from-ssh-config, --from-ansible or --from-aws-ec2"
        )));
    };
    let out_path = &cli.global.inventory;
    let text = import::render(&imported, &source);
    // The loader is the judge: what is written must load.
    rampart::inventory::Inventory::parse(&text, out_path).map_err(|e| {
        Exit::from(anyhow::anyhow!(
            "the imported inventory does not validate (a bug; please report it): {e}"
        ))
    })?;
    if args.stdout {
        print!("{text}");
    } else {
        import::write_new(out_path, &text, args.force).map_err(usage)?;
        eprintln!(
            "rampart: wrote {} ({} host(s)) from {}",
            out_path.display(),
            imported.hosts.len(),
            source.display()
        );
    }
    for note in &imported.notes {
        eprintln!("rampart: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `rampart fix`: plan, show, confirm, apply and verify one fix on one host after another,
/// stopping at the first failure. Reports fixes a crash left unfinished first.
fn fix_command(
    inventory: &Inventory,
    args: &rampart::cli::FixArgs,
    cli: &Cli,
) -> Result<ExitCode, Exit> {
    use rampart::fix;
    let params = args
        .params
        .iter()
        .map(|p| fix::split_param(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    fix::check_request(&args.fix, &params).map_err(usage)?;
    for h in &args.hosts {
        if inventory.host(h).is_none() {
            return Err(usage(fix::FixError::UnknownHost { host: h.clone() }));
        }
    }
    let grant = rampart::ssh::WriteGrant::obtain(inventory, cli.global.read_only);
    if let (Err(reason), false) = (&grant, args.dry_run) {
        eprintln!(
            "rampart: fix {} refused: {reason}; nothing was sent (--dry-run shows the plan)",
            args.fix
        );
        return Ok(ExitCode::from(1));
    }
    let mut journal = fix::Journal::new(fix::Journal::default_path());
    match rampart::store::Store::open_default() {
        Ok(store) => journal = journal.with_store(store),
        Err(e) => eprintln!(
            "rampart: history store unavailable ({e}); journaling to {} only",
            journal.path().display()
        ),
    }
    let rt = runtime()?;
    let mut topts = rampart::ssh::TransportOptions::from_inventory(inventory);
    if cli.global.accept_new {
        topts.host_keys = rampart::ssh::HostKeyPolicy::AcceptNew;
    }
    rt.block_on(async {
        let t = rampart::ssh::Transport::new(inventory, topts.clone())?;
        report_unfinished(inventory, &t, &journal).await?;
        let mut plans = Vec::new();
        for host in &args.hosts {
            let p = fix::prepare(&t, inventory, host, &args.fix, &params).await?;
            let sudo = t.spec(host).is_some_and(|s| s.sudo);
            println!(
                "{} on {} (risk {}): {}",
                p.spec.id,
                p.host,
                p.risk.label(),
                p.spec.title
            );
            for n in &p.notes {
                println!("  note: {n}");
            }
            if p.is_noop() {
                println!("  already in place: nothing to send");
            }
            for line in p.rendered(sudo) {
                println!("  {}", line.replace('\n', "\n  "));
            }
            plans.push(p);
        }
        if args.dry_run {
            println!("dry run: nothing was sent");
            t.close().await;
            return Ok(ExitCode::SUCCESS);
        }
        let Ok(grant) = grant else {
            return Ok(ExitCode::from(1));
        };
        if !args.yes && plans.iter().any(|p| !p.is_noop()) && !confirm(&plans)? {
            eprintln!("rampart: not confirmed; nothing was sent");
            t.close().await;
            return Ok(ExitCode::from(1));
        }
        let tw = t.clone().with_write(grant);
        let fresh = fix::Fresh::Inventory(topts);
        let ctx = fix::ApplyContext {
            inv: inventory,
            transport: &tw,
            fresh: &fresh,
            journal: &journal,
        };
        let mut print = |p: fix::Progress| match p {
            fix::Progress::Step { message } => eprintln!("- {message}"),
            fix::Progress::Output { line } => eprintln!("    {line}"),
            fix::Progress::Finished { message, .. } => eprintln!("= {message}"),
            fix::Progress::Refused { reason } => eprintln!("refused: {reason}"),
        };
        let (outcomes, err) = fix::apply_batch(&ctx, &plans, &mut print).await;
        t.close().await;
        if let Some(e) = err {
            return Err(Exit::from(e));
        }
        let all_ok = outcomes.len() == plans.len() && outcomes.iter().all(|o| o.ok());
        Ok(ExitCode::from(if all_ok { 0 } else { 1 }))
    })
}

/// Asks on the terminal. High-risk fixes need the host names typed back.
fn confirm(plans: &[rampart::fix::FixPlan]) -> Result<bool, Exit> {
    use std::io::{BufRead as _, Write as _};
    let high = plans
        .iter()
        .any(|p| p.risk == rampart::fix::Risk::High && !p.is_noop());
    let hosts: Vec<&str> = plans.iter().map(|p| p.host.as_str()).collect();
    let expected = hosts.join(" ");
    if high {
        eprint!("This can cut access. Type the host name(s) to apply ({expected}): ");
    } else {
        eprint!("Apply to {expected}? [y/N] ");
    }
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim();
    Ok(if high {
        answer == expected
    } else {
        matches!(answer, "y" | "Y" | "yes")
    })
}

/// Shows fixes a crash left unfinished, with what each host looks like now, then closes
/// them in the journal as interrupted.
async fn report_unfinished(
    inventory: &Inventory,
    t: &rampart::ssh::Transport,
    journal: &rampart::fix::Journal,
) -> Result<(), Exit> {
    use rampart::fix::journal::{OutcomeKind, Record};
    for u in journal.unfinished()? {
        let Record::Intent {
            run,
            time,
            user,
            host,
            fix,
            commands,
            started,
            ..
        } = &u.intent
        else {
            continue;
        };
        eprintln!(
            "rampart: unfinished fix {fix} on {host} (run {run}, started {time} by {user}): \
             {} of {} commands were sent before rampart stopped",
            u.commands.len(),
            commands.len()
        );
        let state = if inventory.host(host).is_some() {
            Some(rampart::collect::collect_named(t, host).await)
        } else {
            None
        };
        let now_state = match &state {
            Some(s) if s.is_unreachable() => "unreachable now".to_string(),
            Some(s) => {
                let mut f = Vec::new();
                if let Some(h) = inventory.host(host) {
                    rampart::posture::checks::check_host(
                        inventory,
                        h,
                        s,
                        &rampart::posture::checks::CheckOptions::new(rampart::audit::now_secs()),
                        &mut f,
                    );
                }
                let resolves = rampart::fix::fix_spec(fix).map_or(&[][..], |s| s.resolves);
                let open: Vec<String> = f
                    .iter()
                    .filter(|x| resolves.contains(&x.check.as_str()))
                    .map(|x| format!("{}: {}", x.check, x.title))
                    .collect();
                if open.is_empty() {
                    "reachable; no finding this fix resolves".to_string()
                } else {
                    format!("reachable; still open: {}", open.join("; "))
                }
            }
            None => "not in the inventory".to_string(),
        };
        eprintln!("rampart:   {host} now: {now_state}");
        journal.abandon_in_store(
            host,
            fix,
            *started,
            "interrupted; reported on the next start",
        );
        journal.append(&Record::Outcome {
            run: run.clone(),
            time: rampart::posture::fmt_time(rampart::audit::now_secs()),
            host: host.clone(),
            fix: fix.clone(),
            outcome: OutcomeKind::Interrupted,
            verified: false,
            message: format!("interrupted; reported on the next start: {now_state}"),
        })?;
    }
    Ok(())
}
