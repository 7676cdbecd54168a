//! `kizuna`: one binary per organisation, wiring the Kizuna crates behind one command line.
//!
//! This is the only crate that knows every other one and the only place `anyhow` is used: each
//! subcommand turns typed library errors into a message for the person at the terminal and an
//! exit status. Library crates stay free of process concerns (arguments, exit codes, stdout).

mod cmd;
mod config;
mod hub;
mod live;
mod sightings;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator. Serving a page allocates and frees a few hundred
/// small strings (one per column of each object read) next to a few large buffers (the envelope,
/// TLS records); glibc's malloc spent about a fifth of the hub's CPU on that under `wrk`, mostly
/// in `malloc_consolidate` (see bench/taxii/README.md, "nginx").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kizuna (絆): a threat-intelligence hub for allied cyber-defence organisations.
///
/// Stores STIX 2.1 intelligence, serves it over TAXII 2.1 with TLS, authentication, per-partner
/// access and TLP 2.0 markings enforced, and evaluates STIX patterns.
#[derive(Debug, Parser)]
#[command(name = "kizuna", version, propagate_version = true)]
struct Cli {
    /// Data directory (SQLite store, TLS material). Overrides `data` in the config file.
    #[arg(long, global = true, env = "KIZUNA_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Configuration file (TOML). Default: ./kizuna.toml when it exists.
    #[arg(long, global = true, env = "KIZUNA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `kizuna_taxii=debug` (RUST_LOG syntax).
    #[arg(long, global = true, env = "KIZUNA_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the TAXII 2.1 hub (HTTPS). A fresh data directory gets an API root, a read-write
    /// collection and an `admin` account.
    Serve(cmd::serve::ServeArgs),
    /// Manage accounts: who may connect, to which collections, up to which TLP level.
    #[command(subcommand)]
    Account(cmd::account::AccountCommand),
    /// Manage collections.
    #[command(subcommand)]
    Collection(cmd::collection::CollectionCommand),
    /// Validate STIX 2.1 files (bundle, single object or JSON lines).
    Validate(cmd::validate::ValidateArgs),
    /// Import STIX objects from files into a collection.
    Import(cmd::import::ImportArgs),
    /// Export a collection's objects as JSON lines or a bundle.
    Export(cmd::export::ExportArgs),
    /// Query the audit log: writes, deletes, failed logins and every object version served.
    Audit(cmd::audit::AuditArgs),
    /// STIX patterns: check, explain, match (a drop-in for stix2-matcher).
    #[command(subcommand)]
    Pattern(cmd::pattern::PatternCommand),
    /// Sensors: extract STIX observables from mail and network logs and match indicators.
    #[command(subcommand)]
    Scan(cmd::scan::ScanCommand),
    /// Bulk matching: indicators against a stream of observations, hits as STIX sightings.
    Match(cmd::detect_match::MatchArgs),
    /// Partner hubs this one federates with (`[[partner]]` in kizuna.toml).
    #[command(subcommand)]
    Partner(cmd::partner::PartnerCommand),
    /// Pull from and push to partners now (`serve` also does it on a schedule).
    Sync(cmd::sync::SyncArgs),
    /// Egress policy: why an object would or would not go to a partner.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// The hash-chained egress ledger: what went to whom.
    #[command(subcommand)]
    Ledger(cmd::ledger::LedgerCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli.log) {
        eprintln!("kizuna: {e}");
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kizuna: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = config::Config::load(cli.config.as_deref(), cli.data)?;
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => cmd::serve::run(&config, config_path, args),
        Command::Account(c) => cmd::account::run(&config, c),
        Command::Collection(c) => cmd::collection::run(&config, c),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Import(args) => cmd::import::run(&config, args),
        Command::Export(args) => cmd::export::run(&config, args),
        Command::Audit(args) => cmd::audit::run(&config, args),
        Command::Pattern(c) => cmd::pattern::run(c),
        Command::Scan(c) => cmd::scan::run(&config, c),
        Command::Match(args) => cmd::detect_match::run(&config, args),
        Command::Partner(c) => cmd::partner::run(&config, config_path, c),
        Command::Sync(args) => cmd::sync::run(&config, config_path, args),
        Command::Policy(c) => cmd::policy::run(&config, config_path, c),
        Command::Ledger(c) => cmd::ledger::run(&config, c),
    }
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
