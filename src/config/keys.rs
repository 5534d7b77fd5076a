//! What the configuration file (and the environment) may say, before
//! defaults and validation: every key optional, unknown keys refused.

use super::incidents::IncidentKeys;
use super::{CollectorName, FamilyChoice, TopN};
use crate::tls::database::SslMode;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Keys a cluster may set, and `[defaults]` may set for every cluster.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterKeys {
    pub(super) name: Option<String>,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) database: Option<String>,
    pub(super) user: Option<String>,
    /// Refused: a password belongs in a file or the environment, not in the config.
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_env: Option<String>,
    pub(super) family: Option<FamilyChoice>,
    #[serde(default, with = "humantime_serde")]
    pub(super) scrape_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) instance_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) topology_refresh: Option<Duration>,
    pub(super) concurrency: Option<usize>,
    pub(super) pool_size: Option<usize>,
    pub(super) collectors: Option<Vec<CollectorName>>,
    pub(super) top_n: Option<TopN>,
    #[serde(default, with = "humantime_serde")]
    pub(super) prepared_age_threshold: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) statement_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) lock_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) connect_timeout: Option<Duration>,
    pub(super) sslmode: Option<SslMode>,
    pub(super) sslrootcert: Option<PathBuf>,
    pub(super) sslcert: Option<PathBuf>,
    pub(super) sslkey: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub(super) peak_window: Option<Duration>,
}

impl ClusterKeys {
    /// Keys set here win over `fallback`.
    pub(super) fn or(self, fallback: &ClusterKeys) -> ClusterKeys {
        let f = fallback.clone();
        ClusterKeys {
            name: self.name.or(f.name),
            host: self.host.or(f.host),
            port: self.port.or(f.port),
            database: self.database.or(f.database),
            user: self.user.or(f.user),
            password: self.password.or(f.password),
            password_file: self.password_file.or(f.password_file),
            password_env: self.password_env.or(f.password_env),
            family: self.family.or(f.family),
            scrape_interval: self.scrape_interval.or(f.scrape_interval),
            instance_timeout: self.instance_timeout.or(f.instance_timeout),
            topology_refresh: self.topology_refresh.or(f.topology_refresh),
            concurrency: self.concurrency.or(f.concurrency),
            pool_size: self.pool_size.or(f.pool_size),
            collectors: self.collectors.or(f.collectors),
            top_n: self.top_n.or(f.top_n),
            prepared_age_threshold: self.prepared_age_threshold.or(f.prepared_age_threshold),
            statement_timeout: self.statement_timeout.or(f.statement_timeout),
            lock_timeout: self.lock_timeout.or(f.lock_timeout),
            connect_timeout: self.connect_timeout.or(f.connect_timeout),
            sslmode: self.sslmode.or(f.sslmode),
            sslrootcert: self.sslrootcert.or(f.sslrootcert),
            sslcert: self.sslcert.or(f.sslcert),
            sslkey: self.sslkey.or(f.sslkey),
            peak_window: self.peak_window.or(f.peak_window),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebKeys {
    pub(super) listen_address: Option<String>,
    pub(super) telemetry_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileKeys {
    #[serde(default)]
    pub(super) web: WebKeys,
    #[serde(default)]
    pub(super) incidents: IncidentKeys,
    #[serde(default)]
    pub(super) defaults: ClusterKeys,
    #[serde(default)]
    pub(super) clusters: Vec<ClusterKeys>,
}
