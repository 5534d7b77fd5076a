//! From raw keys to [`Settings`]: `[defaults]` under each cluster,
//! command-line overrides, defaults, and timeouts derived from the interval.

use super::incidents;
use super::keys::{ClusterKeys, FileKeys, WebKeys};
use super::origin::{env_or, ClusterOrigin};
use super::secrets::{pgpass, read_password_file};
use super::validate::validate;
use super::{
    invalid, permissions, ClusterConfig, ConfigError, FamilyChoice, Overrides, Secret, Settings,
    Web, DEFAULT_INSTANCE_TIMEOUT, DEFAULT_LISTEN_ADDRESS, DEFAULT_LOCK_TIMEOUT,
    DEFAULT_LOG_MAX_BYTES_PER_ROUND, DEFAULT_STATEMENT_TIMEOUT, DEFAULT_TELEMETRY_PATH,
};
use crate::tls::database::{DbTls, TlsKeys};
use std::net::SocketAddr;
use std::time::Duration;

/// `replication_lag_threshold_bytes` unless set: 1 GiB of WAL a mirror has
/// not replayed is minutes of recovery at a promotion.
pub const DEFAULT_REPLICATION_LAG_THRESHOLD_BYTES: u64 = 1 << 30;

pub(super) fn build(file: FileKeys, o: &Overrides) -> Result<Settings, ConfigError> {
    let web = build_web(file.web, o)?;
    let incidents = incidents::build(file.incidents)?;
    if file.clusters.is_empty() {
        return Err(invalid("clusters", "at least one cluster is required"));
    }
    let mut clusters = Vec::with_capacity(file.clusters.len());
    for (i, own) in file.clusters.iter().enumerate() {
        let origin = ClusterOrigin {
            at: format!("clusters[{i}]"),
            own,
            defaults: &file.defaults,
            overrides: o,
        };
        let mut keys = own.clone().or(&file.defaults);
        if let Some(interval) = o.collect_interval {
            keys.scrape_interval = Some(interval);
        }
        if let Some(family) = o.family {
            keys.family = Some(family);
        }
        let mut cluster = build_cluster(&origin, keys)?;
        cluster.incidents = incidents.clone();
        clusters.push(cluster);
    }
    for (i, c) in clusters.iter().enumerate() {
        if clusters[..i].iter().any(|other| other.name == c.name) {
            return Err(invalid(
                format!("clusters[{i}].name"),
                format!("duplicate cluster name {:?}", c.name),
            ));
        }
    }
    Ok(Settings {
        web,
        incidents,
        clusters,
    })
}

fn build_web(keys: WebKeys, o: &Overrides) -> Result<Web, ConfigError> {
    // Flags win over the file, which wins over the default.
    let (listen, listen_key) = match (&o.listen_addresses[..], keys.listen_address) {
        ([], Some(file)) => (file, env_or("web.listen_address")),
        ([], None) => (vec![DEFAULT_LISTEN_ADDRESS.into()], String::new()),
        (flags, _) => (flags.to_vec(), "--web.listen-address".into()),
    };
    if listen.is_empty() {
        return Err(invalid(listen_key, "give at least one address"));
    }
    let mut listen_addresses = Vec::with_capacity(listen.len());
    for address in &listen {
        let parsed = parse_listen_address(address).ok_or_else(|| {
            invalid(
                &listen_key,
                format!("{address:?} is not host:port (e.g. 0.0.0.0:9297, [::1]:9297 or :9297)"),
            )
        })?;
        if listen_addresses.contains(&parsed) {
            return Err(invalid(&listen_key, format!("{address:?} is given twice")));
        }
        listen_addresses.push(parsed);
    }
    let (telemetry_path, path_key) = match (&o.telemetry_path, keys.telemetry_path) {
        (Some(flag), _) => (flag.clone(), "--web.telemetry-path".into()),
        (None, Some(file)) => (file, env_or("web.telemetry_path")),
        (None, None) => (DEFAULT_TELEMETRY_PATH.into(), String::new()),
    };
    if !telemetry_path.starts_with('/') || telemetry_path.len() < 2 {
        return Err(invalid(
            path_key,
            format!("{telemetry_path:?} must be a path such as /metrics"),
        ));
    }
    Ok(Web {
        listen_addresses,
        telemetry_path,
    })
}

/// Accepts `host:port` and the exporter-toolkit shorthand `:port`.
fn parse_listen_address(s: &str) -> Option<SocketAddr> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse().ok()
}

fn build_cluster(origin: &ClusterOrigin, k: ClusterKeys) -> Result<ClusterConfig, ConfigError> {
    let key = |name: &str| origin.key(name);
    let from_dsn = origin.overrides.coordinator_dsn.is_some();
    let host = k.host.ok_or_else(|| invalid(key("host"), "required"))?;
    let port = k.port.unwrap_or(5432);
    let database = k.database.unwrap_or_else(|| "postgres".into());
    let user = k.user.unwrap_or_else(|| "gpadmin".into());
    let password = match (k.password, k.password_file, k.password_env) {
        (Some(_), _, _) if !from_dsn => {
            return Err(invalid(
                key("password"),
                "inline passwords are not accepted; use password_file or password_env",
            ))
        }
        (Some(p), _, _) => Some(Secret::new(p)),
        (None, Some(_), Some(_)) => {
            return Err(invalid(
                key("password_file"),
                "give password_file or password_env, not both",
            ))
        }
        (None, Some(path), None) => Some(read_password_file(&key("password_file"), &path)?),
        (None, None, Some(var)) => Some(Secret::new(std::env::var(&var).map_err(|_| {
            invalid(
                key("password_env"),
                format!("environment variable {var} is not set"),
            )
        })?)),
        // As libpq would; with a DSN the pgpass file was already consulted.
        (None, None, None) if !from_dsn => {
            pgpass::lookup(&host, port, &database, &user).map(Secret::new)
        }
        (None, None, None) => None,
    };
    if let Some(path) = &k.sslkey {
        permissions::warn_if_exposed(&key("sslkey"), path);
    }
    let tls = DbTls::load(TlsKeys {
        sslmode: k.sslmode,
        sslrootcert: k.sslrootcert,
        sslcert: k.sslcert,
        sslkey: k.sslkey,
    })
    .map_err(|(name, why)| invalid(key(name), why))?;
    let scrape_interval = k.scrape_interval.unwrap_or(Duration::from_secs(15));
    // Unset timeouts follow the interval, so `--collect.interval=2s` alone is
    // valid: each stays inside the one above it, as `validate` requires.
    let instance_timeout = k
        .instance_timeout
        .unwrap_or_else(|| DEFAULT_INSTANCE_TIMEOUT.min(scrape_interval / 2));
    // Below the instance deadline, so the server cancels the statement
    // before the exporter gives up on the connection.
    let statement_timeout = k
        .statement_timeout
        .unwrap_or_else(|| DEFAULT_STATEMENT_TIMEOUT.min(instance_timeout * 3 / 5));
    let lock_timeout = k
        .lock_timeout
        .unwrap_or_else(|| DEFAULT_LOCK_TIMEOUT.min(statement_timeout));
    let standby = match (k.standby_host, k.standby_port) {
        (Some(h), p) => Some((h, p.unwrap_or(port))),
        (None, Some(_)) => {
            return Err(invalid(
                key("standby_port"),
                "needs standby_host (the standby coordinator's address)",
            ))
        }
        (None, None) => None,
    };
    let cfg = ClusterConfig {
        name: k.name.unwrap_or_else(|| host.clone()),
        port,
        standby,
        database,
        user,
        host,
        password,
        family: k.family.unwrap_or(FamilyChoice::Auto),
        scrape_interval,
        instance_timeout,
        topology_refresh: k.topology_refresh.unwrap_or(Duration::from_secs(60)),
        concurrency: k.concurrency.unwrap_or(32),
        pool_size: k.pool_size.unwrap_or(1),
        collectors: origin.overrides.collectors.apply(k.collectors),
        top_n: k.top_n.unwrap_or_default(),
        prepared_age_threshold: k.prepared_age_threshold.unwrap_or(Duration::from_secs(300)),
        replication_lag_threshold_bytes: k
            .replication_lag_threshold_bytes
            .unwrap_or(DEFAULT_REPLICATION_LAG_THRESHOLD_BYTES),
        statement_timeout,
        lock_timeout,
        connect_timeout: k.connect_timeout.unwrap_or(instance_timeout),
        tls,
        peak_window: k.peak_window,
        incidents: Default::default(),
        log_max_bytes_per_round: k
            .log_max_bytes_per_round
            .unwrap_or(DEFAULT_LOG_MAX_BYTES_PER_ROUND),
    };
    if cfg.collectors.is_empty() && !origin.overrides.collectors.is_empty() {
        return Err(origin.overrides.collectors.none_left());
    }
    validate(&key, &cfg)?;
    Ok(cfg)
}
