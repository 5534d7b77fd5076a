//! From raw keys to [`Settings`]: `[defaults]` under each cluster,
//! command-line overrides, defaults, and timeouts derived from the interval.

use super::incidents;
use super::keys::{ClusterKeys, FileKeys, WebKeys};
use super::secrets::{pgpass, read_password_file};
use super::validate::validate;
use super::{
    invalid, permissions, ClusterConfig, CollectorName, ConfigError, FamilyChoice, Overrides,
    Secret, Settings, Web, DEFAULT_INSTANCE_TIMEOUT, DEFAULT_LISTEN_ADDRESS, DEFAULT_LOCK_TIMEOUT,
    DEFAULT_STATEMENT_TIMEOUT, DEFAULT_TELEMETRY_PATH,
};
use crate::tls::database::{DbTls, TlsKeys};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) fn build(file: FileKeys, o: &Overrides) -> Result<Settings, ConfigError> {
    let web = build_web(file.web, o)?;
    let incidents = incidents::build(file.incidents)?;
    if file.clusters.is_empty() {
        return Err(invalid("clusters", "at least one cluster is required"));
    }
    let from_dsn = o.coordinator_dsn.is_some();
    let mut clusters = Vec::with_capacity(file.clusters.len());
    for (i, raw) in file.clusters.into_iter().enumerate() {
        let mut keys = raw.or(&file.defaults);
        if let Some(interval) = o.collect_interval {
            keys.scrape_interval = Some(interval);
        }
        let mut cluster = build_cluster(&format!("clusters[{i}]"), keys, from_dsn)?;
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
    let listen = o
        .listen_address
        .clone()
        .or(keys.listen_address)
        .unwrap_or_else(|| DEFAULT_LISTEN_ADDRESS.into());
    let listen_address = parse_listen_address(&listen)
        .ok_or_else(|| invalid("web.listen_address", format!("{listen:?} is not host:port")))?;
    let telemetry_path = o
        .telemetry_path
        .clone()
        .or(keys.telemetry_path)
        .unwrap_or_else(|| DEFAULT_TELEMETRY_PATH.into());
    if !telemetry_path.starts_with('/') || telemetry_path.len() < 2 {
        return Err(invalid(
            "web.telemetry_path",
            format!("{telemetry_path:?} must be a path such as /metrics"),
        ));
    }
    Ok(Web {
        listen_address,
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

fn build_cluster(at: &str, k: ClusterKeys, from_dsn: bool) -> Result<ClusterConfig, ConfigError> {
    let key = |name: &str| format!("{at}.{name}");
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
        permissions::warn_if_exposed(&key("sslkey"), path, permissions::Holds::Secret);
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
    let cfg = ClusterConfig {
        name: k.name.unwrap_or_else(|| host.clone()),
        port,
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
        collectors: k.collectors.unwrap_or_else(|| CollectorName::ALL.to_vec()),
        top_n: k.top_n.unwrap_or_default(),
        prepared_age_threshold: k.prepared_age_threshold.unwrap_or(Duration::from_secs(300)),
        statement_timeout,
        lock_timeout,
        connect_timeout: k.connect_timeout.unwrap_or(instance_timeout),
        tls,
        peak_window: k.peak_window,
        incidents: Default::default(),
    };
    validate(at, &cfg)?;
    Ok(cfg)
}
