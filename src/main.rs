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
    };
    let report = rt
        .block_on(rampart::audit::audit(inventory, &req))
        .map_err(audit_error)?;
    rampart::audit::write_report(&report, &req).map_err(audit_error)?;
    Ok(ExitCode::from(report.exit_code()))
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

fn run(cli: Cli) -> Result<ExitCode, Exit> {
    match &cli.command {
        Some(Command::Lab(args)) => {
            rampart::lab::run(&args.action).map_err(lab_error)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Demo(_)) => {
            let _inventory = load_inventory(&cli)?;
            rampart::lab::run(&rampart::cli::LabAction::Up { hosts: None }).map_err(lab_error)?;
            Err(Exit {
                code: 1,
                error: anyhow::anyhow!("the console is not built yet (issue 6); the lab is up"),
            })
        }
        Some(Command::Console(_)) | None => {
            let _inventory = load_inventory(&cli)?;
            Err(Exit {
                code: 1,
                error: anyhow::anyhow!("the console is not built yet (issue 6)"),
            })
        }
        Some(Command::Audit(args)) => {
            let inventory = load_inventory(&cli)?;
            audit(&inventory, args, &cli)
        }
        Some(Command::Watch(_)) | Some(Command::Fix(_)) | Some(Command::Diff(_)) => {
            let _inventory = load_inventory(&cli)?;
            Err(Exit {
                code: 1,
                error: anyhow::anyhow!("this subcommand is not built yet"),
            })
        }
    }
}
