//! Configuration: a TOML or YAML file (or a single `--coordinator.dsn`), with
//! environment overrides, validated into [`Settings`]. Every error names the
//! key. Uses `model` (families) and `tls` (the database TLS files are read and
//! checked here, so a bad one stops the exporter at start-up).
//!
//! `keys`: what the file may say (`duration`: how durations are written);
//! `file`: the file and the environment; `origin`: where a key was written
//! (file section, environment variable or flag), for errors; `dsn` and
//! `conninfo`: the single-cluster quick start; `collectors`: the collector
//! registry and its flags; `settings`: defaults and derived values;
//! `validate`; `top_n`: label caps; `secrets` and `permissions`: passwords
//! and who may read them; `diff`: what a reload changed.

mod collectors;
pub mod conninfo;
mod diff;
mod dsn;
mod duration;
mod file;
mod incidents;
mod keys;
mod origin;
pub mod permissions;
mod secrets;
mod settings;
mod top_n;
mod validate;

use crate::model::family::Family;
use crate::tls::database::DbTls;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use collectors::{CollectorFlags, CollectorName, Registered, REGISTRY};
pub use diff::changes;
pub use incidents::IncidentSettings;
pub use top_n::TopN;

/// Prefix of environment overrides: `GPSE_WEB__LISTEN_ADDRESS`, `GPSE_DEFAULTS__SCRAPE_INTERVAL`.
pub const ENV_PREFIX: &str = "GPSE";

/// Hard cap of connections per instance: the exporter must never be the one
/// that fills a segment.
pub const MAX_POOL_SIZE: usize = 2;

/// An invalid configuration, naming the offending key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// A password; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The validated configuration the exporter runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub web: Web,
    pub incidents: IncidentSettings,
    pub clusters: Vec<ClusterConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Web {
    /// One listener each (`--web.listen-address` may be repeated).
    pub listen_addresses: Vec<SocketAddr>,
    pub telemetry_path: String,
}

/// `auto` detects the family from the `server_version` the coordinator's
/// login reports (`db::probe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamilyChoice {
    Auto,
    Gp6,
    Gp7,
}

impl ClusterConfig {
    /// Where the coordinator may be, in the order tried: the configured
    /// coordinator, then its standby.
    pub fn coordinator_addresses(&self) -> Vec<(String, u16)> {
        std::iter::once((self.host.clone(), self.port))
            .chain(self.standby.clone())
            .collect()
    }
}

impl FamilyChoice {
    pub fn fixed(self) -> Option<Family> {
        match self {
            FamilyChoice::Auto => None,
            FamilyChoice::Gp6 => Some(Family::Gp6),
            FamilyChoice::Gp7 => Some(Family::Gp7),
        }
    }
}

/// One monitored cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// Value of the `cluster` label.
    pub name: String,
    pub host: String,
    pub port: u16,
    /// The coordinator's standby, `host:port`: tried when the coordinator
    /// does not answer, and collected as the coordinator once it is the one
    /// not in recovery (after `gpactivatestandby`).
    pub standby: Option<(String, u16)>,
    pub database: String,
    pub user: String,
    pub password: Option<Secret>,
    pub family: FamilyChoice,
    pub scrape_interval: Duration,
    /// Deadline of one instance's collection, connecting included.
    pub instance_timeout: Duration,
    pub topology_refresh: Duration,
    /// Instances collected at the same time.
    pub concurrency: usize,
    /// Connections kept per instance (1 or 2).
    pub pool_size: usize,
    pub collectors: Vec<CollectorName>,
    pub top_n: TopN,
    pub prepared_age_threshold: Duration,
    /// Served as `greenplum_replication_lag_threshold_bytes`: the replay lag
    /// the alert `GreenplumMirrorReplayLagHigh` compares with.
    pub replication_lag_threshold_bytes: u64,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub connect_timeout: Duration,
    /// `sslmode` and its files, read and checked.
    pub tls: DbTls,
    /// Peaks (`greenplum_connections_used_peak`, `..._headroom_ordinary_min`)
    /// over this window; `None`: since the previous scrape of `/metrics`.
    pub peak_window: Option<Duration>,
    /// The `[incidents]` section, for detecting and recording episodes.
    pub incidents: IncidentSettings,
    /// Bytes of server log the `log` collector reads per instance per round;
    /// more is skipped (and counted).
    pub log_max_bytes_per_round: u64,
}

impl ClusterConfig {
    pub fn collector_enabled(&self, c: CollectorName) -> bool {
        self.collectors.contains(&c)
    }
}

/// Command-line values that take part in the configuration.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub coordinator_dsn: Option<String>,
    pub cluster_name: Option<String>,
    pub collect_interval: Option<Duration>,
    /// `--collect.family`: every cluster's family, over the file's.
    pub family: Option<FamilyChoice>,
    /// `--web.listen-address`, each given (empty: the file's or the default).
    pub listen_addresses: Vec<String>,
    pub telemetry_path: Option<String>,
    pub collectors: CollectorFlags,
}

pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9297";
/// `--web.max-requests`' default: requests served at once; more are
/// answered 503 at once rather than queued. Enough for 50 concurrent
/// scrapers, few enough to bound the CPU that bcrypt checks of basic auth
/// can take.
pub const DEFAULT_MAX_REQUESTS: usize = 64;
const DEFAULT_INSTANCE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(3);
/// A round's server log per instance: a segment's log gains a few kB a
/// round even while refusing; a coordinator with `log_statement = 'all'`
/// may gain megabytes, which are skipped (and counted) beyond this.
const DEFAULT_LOG_MAX_BYTES_PER_ROUND: u64 = 1 << 20;
/// Less could not hold one record with its statement text; more would make
/// one instance's read the round's cost.
const MIN_LOG_BYTES: u64 = 4096;
const MAX_LOG_BYTES: u64 = 64 << 20;
/// Short: a collector must never queue behind a DDL lock on a catalog it reads.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";

/// Reads and validates the configuration from the file and/or flags.
pub fn load(o: &Overrides) -> Result<Settings, ConfigError> {
    let file = match (&o.config_file, &o.coordinator_dsn) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "--coordinator.dsn",
                "cannot be combined with --config.file; describe the cluster in the file",
            ))
        }
        (Some(path), None) => file::read_file(path)?,
        (None, Some(dsn)) => keys::FileKeys {
            clusters: vec![dsn::keys_from_dsn(dsn, o.cluster_name.clone())?],
            ..file::read_env_only()?
        },
        (None, None) => {
            return Err(invalid(
                "--config.file",
                "no cluster configured: give --config.file or --coordinator.dsn",
            ))
        }
    };
    settings::build(file, o)
}

#[cfg(test)]
mod example_tests;
#[cfg(test)]
mod tests;
