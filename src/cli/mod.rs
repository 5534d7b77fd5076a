//! The command line: flags, named as Prometheus exporters name theirs, and
//! the `top` subcommand. Uses `config` (overrides), `round` (a round of the
//! daemon's own code for `top`) and `model` (the views it prints).

pub mod from;
pub mod incidents;
pub mod table;
pub mod top;

use crate::config::Overrides;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
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

#[derive(Debug, Parser)]
#[command(
    name = "greenplum_segment_exporter",
    // GPSE_* come from build.rs.
    version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("GPSE_GIT_COMMIT"),
        ", built ",
        env!("GPSE_BUILD_DATE"),
        ")"
    ),
    about = "Prometheus exporter of per-segment connection, prepared-transaction and lock figures \
             of Greenplum-family clusters, read in utility mode"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

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

    /// Address to listen on, host:port or :port [default: 0.0.0.0:9297].
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub listen_address: Option<String>,

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

    #[arg(long = "log.format", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
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
            listen_address: self.listen_address.clone(),
            telemetry_path: self.telemetry_path.clone(),
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
