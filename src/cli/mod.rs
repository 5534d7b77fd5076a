//! The command line: flags, named as Prometheus exporters name theirs (and
//! with node_exporter's semantics where it has the same flag), and the `top`
//! subcommand. `collectors`: the `--collector.<name>` flags, derived from
//! the collector registry; `version`: the `--version` build block;
//! `logfmt`: `--log.format=logfmt`. Uses `config` (overrides), `round` (a
//! round of the daemon's own code for `top`) and `model` (the views it
//! prints).

mod collectors;
pub mod from;
pub mod incidents;
pub mod logfmt;
pub mod table;
pub mod top;
pub mod version;

use crate::config::{CollectorFlags, FamilyChoice, Overrides};
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (tracing's format).
    Text,
    /// `key=value` pairs (`ts`, `level`, `target`, `msg`, fields), as
    /// Prometheus and its exporters log.
    Logfmt,
    /// One JSON object per line.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// `--collect.family`: the configuration's `family` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FamilyArg {
    Auto,
    /// Greenplum 6, Greengage 6
    Gp6,
    /// Greenplum 7, Greengage 7, Apache Cloudberry
    Gp7,
}

impl From<FamilyArg> for FamilyChoice {
    fn from(f: FamilyArg) -> FamilyChoice {
        match f {
            FamilyArg::Auto => FamilyChoice::Auto,
            FamilyArg::Gp6 => FamilyChoice::Gp6,
            FamilyArg::Gp7 => FamilyChoice::Gp7,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "greenplum_segment_exporter",
    // `--version` prints the build block of Prometheus exporters (`version`).
    disable_version_flag = true,
    about = "Prometheus exporter of per-segment connection, prepared-transaction and lock figures \
             of Greenplum-family clusters, read in utility mode"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Show the version, revision, branch, build user and date, Rust version
    /// and platform.
    #[arg(long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    /// TOML or YAML configuration file (see config/ for an example).
    #[arg(long = "config.file", value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,

    /// Single-cluster quick start: the coordinator's libpq DSN (key=value or URL).
    /// The password comes from the DSN, PGPASSWORD or the pgpass file.
    #[arg(
        long = "coordinator.dsn",
        value_name = "DSN",
        env = "GPSE_COORDINATOR_DSN",
        global = true
    )]
    pub coordinator_dsn: Option<String>,

    /// `cluster` label value with --coordinator.dsn (default: the DSN's host).
    #[arg(long = "cluster.name", value_name = "NAME", global = true)]
    pub cluster_name: Option<String>,

    /// Collection interval, e.g. 15s (overrides the file's scrape_interval).
    #[arg(long = "collect.interval", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub collect_interval: Option<Duration>,

    /// The clusters' family, over the file's `family` [default: auto, from
    /// the server_version the coordinator's login reports].
    #[arg(
        long = "collect.family",
        value_name = "FAMILY",
        value_enum,
        global = true
    )]
    pub collect_family: Option<FamilyArg>,

    /// Address to listen on, host:port, [ipv6]:port or :port; repeat it for
    /// several (overrides the file's web.listen_address) [default:
    /// 0.0.0.0:9297].
    #[arg(long = "web.listen-address", value_name = "ADDRESS", action = ArgAction::Append)]
    pub listen_addresses: Vec<String>,

    /// Use the listening sockets systemd passes (socket activation, a
    /// .socket unit) instead of --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,

    /// Leave out the exporter's own series: process_*, greenplum_exporter_build_info
    /// and greenplum_exporter_config_last_reload_*.
    #[arg(long = "web.disable-exporter-metrics")]
    pub disable_exporter_metrics: bool,

    /// Requests served at once (every endpoint; each passes basic auth); more
    /// are answered 503. 0: no limit.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = crate::config::DEFAULT_MAX_REQUESTS)]
    pub max_requests: usize,

    /// Path under which to expose metrics [default: /metrics].
    #[arg(long = "web.telemetry-path", value_name = "PATH")]
    pub telemetry_path: Option<String>,

    /// Prometheus exporter-toolkit web configuration (YAML): TLS, client
    /// certificates, basic auth. Re-read on SIGHUP.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// [default: info; warn for `top`]
    #[arg(long = "log.level", value_enum, global = true)]
    pub log_level: Option<LogLevel>,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// The `--collector.<name>` / `--no-collector.<name>` flags (added to
    /// the command from the registry, see [`parse`]).
    #[arg(skip)]
    pub collectors: CollectorFlags,
}

/// The command line of this process; exits with a usage error (code 2) or
/// the help when clap says so.
pub fn parse() -> Cli {
    let matches = collectors::add_flags(Cli::command()).get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.collectors = collectors::from_matches(&matches);
    cli
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One collection round with the daemon's configuration and code, then a
    /// table per instance, lowest connection headroom first.
    Top(TopArgs),
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Collect again every SECONDS and redraw, reusing the connections.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,

    /// Print the figures as JSON (as served at /api/v1/instances).
    #[arg(long)]
    pub json: bool,

    /// Exit 1 when an instance has fewer than N ordinary connection slots
    /// left, 3 when an instance could not be collected.
    #[arg(long = "fail-below", value_name = "N")]
    pub fail_below: Option<u32>,

    /// Read a running exporter's /api/v1/instances (and incidents) instead
    /// of connecting to the cluster: takes no connection slot anywhere; use
    /// it during an incident. http[s]://[user@]host:port; the basic-auth
    /// password in GPSE_FROM_PASSWORD.
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,

    /// With an https:// --from: the CA certificate (PEM) that signed the
    /// exporter's certificate.
    #[arg(long = "from.ca-file", value_name = "FILE", requires = "from")]
    pub from_ca_file: Option<PathBuf>,

    /// List the recorded incidents (from --from, or the configured
    /// incidents.file) instead of the table.
    #[arg(long)]
    pub incidents: bool,
}

impl Cli {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config_file.clone(),
            coordinator_dsn: self.coordinator_dsn.clone(),
            cluster_name: self.cluster_name.clone(),
            collect_interval: self.collect_interval,
            family: self.collect_family.map(FamilyChoice::from),
            listen_addresses: self.listen_addresses.clone(),
            telemetry_path: self.telemetry_path.clone(),
            collectors: self.collectors.clone(),
        }
    }
}

impl LogLevel {
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}
