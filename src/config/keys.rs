//! What the configuration file (and the environment) may say, before
//! defaults and validation: every key optional, unknown keys refused.

use super::duration;
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
    /// The coordinator's standby (`gpactivatestandby` moves the coordinator there).
    pub(super) standby_host: Option<String>,
    pub(super) standby_port: Option<u16>,
    pub(super) database: Option<String>,
    pub(super) user: Option<String>,
    /// Refused: a password belongs in a file or the environment, not in the config.
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_env: Option<String>,
    pub(super) family: Option<FamilyChoice>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) scrape_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) instance_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) topology_refresh: Option<Duration>,
    pub(super) concurrency: Option<usize>,
    pub(super) pool_size: Option<usize>,
    pub(super) collectors: Option<Vec<CollectorName>>,
    pub(super) top_n: Option<TopN>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) prepared_age_threshold: Option<Duration>,
    pub(super) replication_lag_threshold_bytes: Option<u64>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) statement_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) lock_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) connect_timeout: Option<Duration>,
    pub(super) sslmode: Option<SslMode>,
    pub(super) sslrootcert: Option<PathBuf>,
    pub(super) sslcert: Option<PathBuf>,
    pub(super) sslkey: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub(super) peak_window: Option<Duration>,
    /// Bytes of server log the `log` collector reads per instance per round.
    pub(super) log_max_bytes_per_round: Option<u64>,
}

/// `or` and `has` of [`ClusterKeys`], over every field once.
macro_rules! cluster_keys_fields {
    ($($field:ident),* $(,)?) => {
        impl ClusterKeys {
            /// Keys set here win over `fallback`.
            pub(super) fn or(self, fallback: &ClusterKeys) -> ClusterKeys {
                let f = fallback.clone();
                ClusterKeys { $($field: self.$field.or(f.$field)),* }
            }

            /// True when the key `name` (a field, or `top_n.<cap>`) is set here.
            pub(super) fn has(&self, name: &str) -> bool {
                match name.split('.').next().unwrap_or(name) {
                    $(stringify!($field) => self.$field.is_some(),)*
                    _ => false,
                }
            }
        }
    };
}

cluster_keys_fields!(
    name,
    host,
    port,
    standby_host,
    standby_port,
    database,
    user,
    password,
    password_file,
    password_env,
    family,
    scrape_interval,
    instance_timeout,
    topology_refresh,
    concurrency,
    pool_size,
    collectors,
    top_n,
    prepared_age_threshold,
    replication_lag_threshold_bytes,
    statement_timeout,
    lock_timeout,
    connect_timeout,
    sslmode,
    sslrootcert,
    sslcert,
    sslkey,
    peak_window,
    log_max_bytes_per_round,
);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebKeys {
    /// One address, or a list of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub(super) listen_address: Option<Vec<String>>,
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

/// An address, or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Addresses;
    impl<'de> serde::de::Visitor<'de> for Addresses {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an address such as \"127.0.0.1:9297\", or a list of them")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(vec![s.to_owned()])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut all = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                all.push(s);
            }
            Ok(all)
        }
    }
    struct Optional;
    impl<'de> serde::de::Visitor<'de> for Optional {
        type Value = Option<Vec<String>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            Addresses.expecting(f)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Addresses).map(Some)
        }
    }
    d.deserialize_option(Optional)
}
