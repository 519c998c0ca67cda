//! The command line: every subcommand, its options and its `--help` text. Parsing only; the
//! binary (`main.rs`) runs what was asked.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit status for usage and configuration errors (clap uses it for usage errors too).
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version = env!("RAMPART_VERSION"),
    about = "A terminal operations console for the engineers who keep a fleet of Linux servers safe.",
    long_about = "A terminal operations console for the engineers who keep a fleet of Linux servers \
safe. It reads a host inventory, connects over SSH through the bastion to every host in parallel \
(strict host keys), gathers firewalls, listening ports, fail2ban, VPN, sshd, nginx/TLS, monitoring \
agents and traffic, and shows posture findings, live alerts and one-key fixes that cannot lock \
you out.\n\nWith no subcommand it opens the console on ./inventory.toml.",
    after_help = "Examples:\n  rampart                          open the console on ./inventory.toml\n  rampart --read-only -i prod.toml open it where nothing can be changed\n  rampart demo                     bring the practice lab up and open the console on it\n  rampart audit --format sarif -o rampart.sarif\n\nExit status: 0 ok; 1 findings at or above --fail-on (audit); 2 usage or configuration error; 3 some hosts unreachable (audit)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The host inventory (TOML).
    #[arg(
        short = 'i',
        long,
        global = true,
        default_value = "inventory.toml",
        value_name = "FILE"
    )]
    pub inventory: PathBuf,
    /// Never send a mutating command: fixes are disabled, and the transport refuses them.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Colour theme: a file in themes/ or in the user's config dir (default, light,
    /// high-contrast, mono).
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
    /// Learn host keys that are not yet known (like StrictHostKeyChecking=accept-new); a changed
    /// key is still refused.
    #[arg(long, global = true)]
    pub accept_new: bool,
    /// Capture live traffic on this local interface with pnet (when rampart runs on the jump
    /// host itself) instead of tcpdump over SSH; needs CAP_NET_RAW.
    #[arg(long, global = true, value_name = "IFACE")]
    pub local_capture: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the interactive console (the default).
    #[command(
        after_help = "Example:\n  rampart console --inventory prod.toml --theme high-contrast"
    )]
    Console(ConsoleArgs),
    /// Headless, read-only audit of every host: findings, scores and CI exit codes.
    #[command(
        after_help = "Examples:\n  rampart audit                              text report on the terminal\n  rampart audit --format json -o audit.json\n  rampart audit --format sarif --fail-on medium --waivers waivers.toml\n\nExit status: 0 no un-waived finding at or above --fail-on; 1 there is one; 2 usage or configuration error; 3 some hosts could not be reached or collected (wins over 1)."
    )]
    Audit(AuditArgs),
    /// Headless, read-only: print alerts as they fire and resolve.
    #[command(
        after_help = "Examples:\n  rampart watch --json --duration 10m | jq .\n  rampart watch --capture 'web*'\n\nAlerts go to the inventory's [alerting] Alertmanagers and webhooks too; sink failures are printed on stderr."
    )]
    Watch(WatchArgs),
    /// Apply one fix to one or more hosts (asks for confirmation; journaled).
    #[command(
        after_help = "Examples:\n  rampart fix --host db1 --fix fw-restrict-to-segment --param port=5432 --dry-run\n  rampart fix --host web2 --fix f2b-start --yes"
    )]
    Fix(FixArgs),
    /// Show what changed between stored snapshots.
    #[command(
        after_help = "Examples:\n  rampart diff                  the latest audit against the one before\n  rampart diff --since 1h\n  rampart diff --since 42 --format json\n\nExit status: 0 nothing changed; 1 something changed; 2 usage error or not enough history."
    )]
    Diff(DiffArgs),
    /// Manage the practice lab of real hosts on this machine (needs root).
    #[command(
        after_help = "Examples:\n  sudo rampart lab up\n  sudo rampart lab status\n  sudo rampart lab down"
    )]
    Lab(LabArgs),
    /// Bring the practice lab up if needed and open the console on it.
    #[command(after_help = "Example:\n  sudo cargo run --release -- demo")]
    Demo(ConsoleArgs),
    /// Write an inventory (--inventory, default ./inventory.toml) from an ssh_config, an Ansible
    /// inventory or EC2 instances, and report what was guessed and what needs a human.
    #[command(
        after_help = "Examples:\n  rampart init --from-ssh-config                   from ~/.ssh/config\n  rampart init --from-ansible hosts.yml --role-map webservers=web\n  ansible-inventory -i hosts --list > inv.json && rampart init --from-ansible inv.json\n  aws ec2 describe-instances > ec2.json && rampart init --from-aws-ec2 ec2.json -i prod.toml\n\nThe file is validated before it is written; an existing file is kept unless --force."
    )]
    Init(InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        after_help = "Examples:\n  rampart completions bash > /etc/bash_completion.d/rampart\n  rampart completions zsh > \"${fpath[1]}/_rampart\"\n  rampart completions fish > ~/.config/fish/completions/rampart.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line, on stdout.
    #[command(after_help = "Example:\n  rampart man > /usr/local/share/man/man1/rampart.1")]
    Man,
}

#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from_ssh_config", "from_ansible", "from_aws_ec2"])))]
pub struct InitArgs {
    /// Import the `Host` entries of an ssh_config (default ~/.ssh/config); ProxyJump becomes
    /// the bastion.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub from_ssh_config: Option<Option<PathBuf>>,
    /// Import an Ansible inventory: INI, YAML, or `ansible-inventory --list` JSON.
    #[arg(long, value_name = "FILE")]
    pub from_ansible: Option<PathBuf>,
    /// Import `aws ec2 describe-instances` JSON: tags give roles, subnets give segments.
    #[arg(long, value_name = "FILE")]
    pub from_aws_ec2: Option<PathBuf>,
    /// With --from-aws-ec2: `aws ec2 describe-subnets` JSON, for the segments' real CIDRs.
    #[arg(long, value_name = "FILE", requires = "from_aws_ec2")]
    pub aws_subnets: Option<PathBuf>,
    /// Map a group (Ansible), a role tag value (EC2) or a name stem (ssh_config) to a role,
    /// e.g. webservers=web; `GROUP=` ignores the group. Wins over the guesses by name.
    #[arg(long = "role-map", value_name = "GROUP=ROLE", value_delimiter = ',')]
    pub role_map: Vec<String>,
    /// Overwrite the inventory file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the inventory on stdout instead of writing the file.
    #[arg(long)]
    pub stdout: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ConsoleArgs {
    /// Draw with ASCII only, for terminals without Unicode line drawing.
    #[arg(long)]
    pub ascii: bool,
    /// Capture the mouse: the wheel scrolls, a click selects a row or a tab, a click on the
    /// selected row opens it. Off by default, because while the mouse is captured the
    /// terminal cannot select text to copy (most terminals still do with Shift held).
    #[arg(long)]
    pub mouse: bool,
    /// Serve Prometheus metrics (scores, findings, reachability, collection time, alerts) at
    /// http://ADDR/metrics, e.g. 127.0.0.1:9810.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
    Html,
    Sarif,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when an un-waived finding is at or above this severity.
    #[arg(long, value_enum, default_value = "high")]
    pub fail_on: SeverityArg,
    /// Only hosts whose name matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub hosts: Option<String>,
    /// Only hosts with one of these roles (comma-separated).
    #[arg(long, value_name = "R", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Waiver file (TOML).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Only connect and print each host's connection state.
    #[arg(long)]
    pub connect_only: bool,
    /// Do not store this audit in the history database.
    #[arg(long)]
    pub no_history: bool,
    /// The history database (default: $XDG_DATA_HOME/rampart/history.sqlite3).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Print a sudoers policy letting USER (default rampart) run exactly the read-only probes
    /// as root (for `sudo = true`), and exit.
    #[arg(long, value_name = "USER", num_args = 0..=1, default_missing_value = "rampart")]
    pub print_sudoers: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this long (e.g. 30s, 10m, 2h); default: until interrupted.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Capture live traffic (tcpdump over SSH) on hosts whose name matches this glob, for
    /// LIVE-* and F2B-BANNED-STILL-SEEN alerts.
    #[arg(long, value_name = "GLOB", default_value = "*")]
    pub capture: String,
    /// Capture no live traffic (collection-based alerts only).
    #[arg(long)]
    pub no_capture: bool,
    /// Serve Prometheus metrics (scores, findings, reachability, collection time, alerts) at
    /// http://ADDR/metrics, e.g. 127.0.0.1:9810.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args, Clone)]
pub struct FixArgs {
    /// Host(s) to fix, one at a time in this order, stopping at the first failure.
    #[arg(long = "host", required = true, value_name = "H")]
    pub hosts: Vec<String>,
    /// Fix ID (see the README's fix catalogue).
    #[arg(long, value_name = "ID")]
    pub fix: String,
    /// Fix parameters, e.g. port=5432 or ip=10.77.0.99.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// Print the exact commands and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DiffArgs {
    /// Compare the latest snapshot with the newest one at least this old (30m, 1h, 2d, 1h30m)
    /// or with a snapshot by ID (42). Default: the snapshot before the latest.
    #[arg(long, value_name = "DURATION|SNAPSHOT")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
    /// The history database (default: $XDG_DATA_HOME/rampart/history.sqlite3).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
}

#[derive(Debug, Subcommand, Clone)]
pub enum LabAction {
    /// Create (or repair) the lab; installs missing Debian packages. Idempotent.
    Up {
        /// Also add N light hosts (sshd only) behind the bastion, for benchmarks.
        #[arg(long, value_name = "N")]
        hosts: Option<u32>,
    },
    /// Remove every namespace, link, process and file the lab made.
    Down,
    /// Show every lab host and whether its daemons are up (exit 1 if something is down).
    Status,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_the_console() {
        let cli = Cli::try_parse_from(["rampart"]).expect("parses");
        assert!(cli.command.is_none());
        assert_eq!(cli.global.inventory, PathBuf::from("inventory.toml"));
    }

    #[test]
    fn globals_after_subcommand() {
        let cli = Cli::try_parse_from([
            "rampart",
            "audit",
            "--read-only",
            "-i",
            "x.toml",
            "--format",
            "sarif",
        ])
        .expect("parses");
        assert!(cli.global.read_only);
        assert_eq!(cli.global.inventory, PathBuf::from("x.toml"));
        match cli.command {
            Some(Command::Audit(a)) => assert_eq!(a.format, ReportFormat::Sarif),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn init_needs_exactly_one_source() {
        assert!(Cli::try_parse_from(["rampart", "init"]).is_err());
        assert!(
            Cli::try_parse_from([
                "rampart",
                "init",
                "--from-ansible",
                "a",
                "--from-aws-ec2",
                "b"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from(["rampart", "init", "--from-ssh-config"]).expect("parses");
        match cli.command {
            Some(Command::Init(a)) => assert_eq!(a.from_ssh_config, Some(None)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn metrics_takes_a_socket_address() {
        let cli = Cli::try_parse_from(["rampart", "watch", "--metrics", "127.0.0.1:9810"])
            .expect("parses");
        match cli.command {
            Some(Command::Watch(w)) => assert_eq!(w.metrics.map(|a| a.port()), Some(9810)),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["rampart", "watch", "--metrics", "localhost"]).is_err());
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = Cli::try_parse_from(["rampart", "audit", "--format", "pdf"]).expect_err("bad");
        assert_eq!(e.exit_code(), EXIT_USAGE);
    }
}
