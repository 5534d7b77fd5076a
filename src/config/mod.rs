//! Configuration: a TOML or YAML file (or a single `--coordinator.dsn`), with
//! environment overrides, validated into [`Settings`]. Every error names the key.
pub mod conninfo;
pub mod permissions;

use crate::model::family::Family;
use crate::tls::database::{DbTls, SslMode, TlsKeys};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub clusters: Vec<ClusterConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Web {
    pub listen_address: SocketAddr,
    pub telemetry_path: String,
}

/// `auto` detects the family from the coordinator's `version()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamilyChoice {
    Auto,
    Gp6,
    Gp7,
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

/// Collectors that can be switched on and off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectorName {
    Connections,
    Prepared,
    Locks,
    Settings,
    Sessions,
    Topology,
}

impl CollectorName {
    pub const ALL: [CollectorName; 6] = [
        CollectorName::Connections,
        CollectorName::Prepared,
        CollectorName::Locks,
        CollectorName::Settings,
        CollectorName::Sessions,
        CollectorName::Topology,
    ];
}

/// Caps on label values per instance; the rest is summed into `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopN {
    #[serde(default = "default_top_n")]
    pub usename: usize,
    #[serde(default = "default_top_n")]
    pub datname: usize,
    #[serde(default = "default_top_n")]
    pub application_name: usize,
    /// Coordinator sessions listed by the segment backends they hold.
    #[serde(default = "default_top_n")]
    pub sessions: usize,
}

fn default_top_n() -> usize {
    10
}

impl Default for TopN {
    fn default() -> Self {
        TopN {
            usename: default_top_n(),
            datname: default_top_n(),
            application_name: default_top_n(),
            sessions: default_top_n(),
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
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub connect_timeout: Duration,
    /// `sslmode` and its files, read and checked.
    pub tls: DbTls,
}

impl ClusterConfig {
    pub fn collector_enabled(&self, c: CollectorName) -> bool {
        self.collectors.contains(&c)
    }
}

/// Keys a cluster may set, and `[defaults]` may set for every cluster.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterKeys {
    name: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    user: Option<String>,
    /// Refused: a password belongs in a file or the environment, not in the config.
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    family: Option<FamilyChoice>,
    #[serde(default, with = "humantime_serde")]
    scrape_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    instance_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    topology_refresh: Option<Duration>,
    concurrency: Option<usize>,
    pool_size: Option<usize>,
    collectors: Option<Vec<CollectorName>>,
    top_n: Option<TopN>,
    #[serde(default, with = "humantime_serde")]
    prepared_age_threshold: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    statement_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    lock_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    sslmode: Option<SslMode>,
    sslrootcert: Option<PathBuf>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
}

impl ClusterKeys {
    /// Keys set here win over `fallback`.
    fn or(self, fallback: &ClusterKeys) -> ClusterKeys {
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
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebKeys {
    listen_address: Option<String>,
    telemetry_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKeys {
    #[serde(default)]
    web: WebKeys,
    #[serde(default)]
    defaults: ClusterKeys,
    #[serde(default)]
    clusters: Vec<ClusterKeys>,
}

/// Command-line values that take part in the configuration.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub coordinator_dsn: Option<String>,
    pub cluster_name: Option<String>,
    pub collect_interval: Option<Duration>,
    pub listen_address: Option<String>,
    pub telemetry_path: Option<String>,
}

pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9297";
const DEFAULT_INSTANCE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(3);
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
        (Some(path), None) => read_file(path)?,
        (None, Some(dsn)) => FileKeys {
            clusters: vec![keys_from_dsn(dsn, o.cluster_name.clone())?],
            ..read_env_only()?
        },
        (None, None) => {
            return Err(invalid(
                "--config.file",
                "no cluster configured: give --config.file or --coordinator.dsn",
            ))
        }
    };
    build(file, o)
}

fn read_file(path: &Path) -> Result<FileKeys, ConfigError> {
    if !path.is_file() {
        return Err(invalid(
            "--config.file",
            format!("{}: no such file", path.display()),
        ));
    }
    permissions::warn_if_exposed("--config.file", path);
    config::Config::builder()
        .add_source(config::File::from(path))
        .add_source(env_source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| invalid(path.display().to_string(), e.to_string()))
}

fn read_env_only() -> Result<FileKeys, ConfigError> {
    config::Config::builder()
        .add_source(env_source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| invalid(format!("{ENV_PREFIX}_*"), e.to_string()))
}

fn env_source() -> config::Environment {
    // Only `GPSE_<SECTION>__<KEY>`: other GPSE_ variables (GPSE_LOG,
    // GPSE_COORDINATOR_DSN) belong to the command line, not the file's keys.
    let prefix = format!("{ENV_PREFIX}_");
    let vars = std::env::vars()
        .filter(|(name, _)| name.strip_prefix(&prefix).is_some_and(|k| k.contains("__")))
        .collect();
    config::Environment::with_prefix(ENV_PREFIX)
        .source(Some(vars))
        .prefix_separator("_")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("defaults.collectors")
        .try_parsing(true)
}

/// A single cluster from a libpq DSN (key=value or URL); the password comes
/// from the DSN, `PGPASSWORD` or the pgpass file, as with libpq.
fn keys_from_dsn(dsn: &str, name: Option<String>) -> Result<ClusterKeys, ConfigError> {
    let key = "--coordinator.dsn";
    // tokio-postgres knows neither verify-ca / verify-full nor the TLS files.
    let (dsn, tls) = crate::config::conninfo::take_tls_keys(dsn).map_err(|e| invalid(key, e))?;
    let cfg: tokio_postgres::Config = dsn
        .parse()
        .map_err(|e: tokio_postgres::Error| invalid(key, format!("not a valid DSN: {e}")))?;
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(_) => {
            return Err(invalid(
                key,
                "Unix-socket hosts are not supported; give a TCP host",
            ))
        }
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg
        .get_user()
        .map(str::to_owned)
        .or_else(|| std::env::var("PGUSER").ok())
        .unwrap_or_else(|| "gpadmin".into());
    let database = cfg
        .get_dbname()
        .map(str::to_owned)
        .unwrap_or_else(|| "postgres".into());
    let password = match cfg.get_password() {
        Some(p) => Some(String::from_utf8_lossy(p).into_owned()),
        None => std::env::var("PGPASSWORD")
            .ok()
            .or_else(|| pgpass::lookup(&host, port, &database, &user)),
    };
    let tls = tls_from_env(tls)?;
    Ok(ClusterKeys {
        name: Some(name.unwrap_or_else(|| host.clone())),
        host: Some(host),
        port: Some(port),
        database: Some(database),
        user: Some(user),
        password,
        sslmode: tls.sslmode,
        sslrootcert: tls.sslrootcert,
        sslcert: tls.sslcert,
        sslkey: tls.sslkey,
        ..ClusterKeys::default()
    })
}

/// libpq's `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` for what the
/// DSN leaves unset.
fn tls_from_env(dsn: TlsKeys) -> Result<TlsKeys, ConfigError> {
    let path = |var: &str| std::env::var_os(var).map(PathBuf::from);
    let sslmode = match (dsn.sslmode, std::env::var("PGSSLMODE")) {
        (Some(mode), _) => Some(mode),
        (None, Ok(v)) => Some(
            SslMode::parse(&v)
                .ok_or_else(|| invalid("PGSSLMODE", format!("{v:?} is not a valid sslmode")))?,
        ),
        (None, Err(_)) => None,
    };
    Ok(TlsKeys {
        sslmode,
        sslrootcert: dsn.sslrootcert.or_else(|| path("PGSSLROOTCERT")),
        sslcert: dsn.sslcert.or_else(|| path("PGSSLCERT")),
        sslkey: dsn.sslkey.or_else(|| path("PGSSLKEY")),
    })
}

fn build(file: FileKeys, o: &Overrides) -> Result<Settings, ConfigError> {
    let web = build_web(file.web, o)?;
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
        clusters.push(build_cluster(&format!("clusters[{i}]"), keys, from_dsn)?);
    }
    for (i, c) in clusters.iter().enumerate() {
        if clusters[..i].iter().any(|other| other.name == c.name) {
            return Err(invalid(
                format!("clusters[{i}].name"),
                format!("duplicate cluster name {:?}", c.name),
            ));
        }
    }
    Ok(Settings { web, clusters })
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
    };
    validate(at, &cfg)?;
    Ok(cfg)
}

fn validate(at: &str, c: &ClusterConfig) -> Result<(), ConfigError> {
    let key = |name: &str| format!("{at}.{name}");
    let label_ok = |s: &str| !s.is_empty() && !s.chars().any(|ch| ch.is_control());
    if !label_ok(&c.name) {
        return Err(invalid(key("name"), "must be a non-empty label value"));
    }
    if c.port == 0 {
        return Err(invalid(key("port"), "must be between 1 and 65535"));
    }
    if c.scrape_interval < Duration::from_secs(1) {
        return Err(invalid(key("scrape_interval"), "must be at least 1s"));
    }
    if c.instance_timeout.is_zero() || c.instance_timeout >= c.scrape_interval {
        return Err(invalid(
            key("instance_timeout"),
            "must be above 0 and below scrape_interval, so a round ends before the next starts",
        ));
    }
    if c.topology_refresh < c.scrape_interval {
        return Err(invalid(
            key("topology_refresh"),
            "must be at least scrape_interval",
        ));
    }
    if c.concurrency == 0 {
        return Err(invalid(key("concurrency"), "must be at least 1"));
    }
    if c.pool_size == 0 || c.pool_size > MAX_POOL_SIZE {
        return Err(invalid(
            key("pool_size"),
            format!(
                "must be 1 or {MAX_POOL_SIZE}: every connection is a slot taken on each segment"
            ),
        ));
    }
    if c.statement_timeout.is_zero() || c.statement_timeout > c.instance_timeout {
        return Err(invalid(
            key("statement_timeout"),
            "must be above 0 and at most instance_timeout",
        ));
    }
    if c.lock_timeout.is_zero() || c.lock_timeout > c.statement_timeout {
        return Err(invalid(
            key("lock_timeout"),
            "must be above 0 and at most statement_timeout",
        ));
    }
    if c.connect_timeout.is_zero() || c.connect_timeout > c.instance_timeout {
        return Err(invalid(
            key("connect_timeout"),
            "must be above 0 and at most instance_timeout",
        ));
    }
    if c.collectors.is_empty() {
        return Err(invalid(key("collectors"), "enable at least one collector"));
    }
    for (name, n) in [
        ("usename", c.top_n.usename),
        ("datname", c.top_n.datname),
        ("application_name", c.top_n.application_name),
        ("sessions", c.top_n.sessions),
    ] {
        if n == 0 || n > 1000 {
            return Err(invalid(
                key(&format!("top_n.{name}")),
                "must be between 1 and 1000",
            ));
        }
    }
    Ok(())
}

fn read_password_file(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    permissions::warn_if_exposed(key, path);
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(Secret::new(password))
}

/// libpq's password file (`PGPASSFILE`, default `~/.pgpass`).
mod pgpass {
    use std::path::PathBuf;

    pub fn lookup(host: &str, port: u16, database: &str, user: &str) -> Option<String> {
        let path = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
        if crate::config::permissions::is_exposed(&path) {
            // libpq ignores such a file; so do we, saying why.
            tracing::warn!(path = %path.display(), "password file has group or world access \
                           and is ignored; permissions should be u=rw (0600) or less");
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        find(&text, host, &port.to_string(), database, user)
    }

    /// First matching `host:port:database:user:password` line; `*` matches
    /// anything, `\:` and `\\` are escapes.
    pub fn find(text: &str, host: &str, port: &str, database: &str, user: &str) -> Option<String> {
        let wanted = [host, port, database, user];
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(split_fields)
            .find(|f| {
                f.len() == 5
                    && f[..4]
                        .iter()
                        .zip(wanted)
                        .all(|(have, want)| have == "*" || have == want)
            })
            .map(|mut f| f.remove(4))
    }

    fn split_fields(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => fields.last_mut().unwrap().extend(chars.next()),
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn load_file(ext: &str, text: &str) -> Result<Settings, ConfigError> {
        let f = file(ext, text);
        load(&Overrides {
            config_file: Some(f.path().to_owned()),
            ..Overrides::default()
        })
    }

    #[test]
    fn toml_and_yaml_give_the_same_settings() {
        let pw = file(".pass", "s3cret\n");
        let toml = format!(
            "[defaults]\nscrape_interval = \"10s\"\n[[clusters]]\nname = \"prod\"\nhost = \"mdw\"\n\
             password_file = \"{}\"\ncollectors = [\"connections\", \"locks\"]\n",
            pw.path().display()
        );
        let yaml = format!(
            "defaults:\n  scrape_interval: 10s\nclusters:\n  - name: prod\n    host: mdw\n    \
             password_file: {}\n    collectors: [connections, locks]\n",
            pw.path().display()
        );
        let a = load_file(".toml", &toml).unwrap();
        let b = load_file(".yaml", &yaml).unwrap();
        assert_eq!(a, b);
        let c = &a.clusters[0];
        assert_eq!(c.scrape_interval, Duration::from_secs(10));
        assert_eq!(c.password.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(
            c.collectors,
            [CollectorName::Connections, CollectorName::Locks]
        );
        assert_eq!(c.port, 5432);
        assert_eq!(c.pool_size, 1);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "[[clusters]]\nhost = \"mdw\"\npool_size = 3\n",
                "clusters[0].pool_size",
            ),
            ("[[clusters]]\nport = 5432\n", "clusters[0].host"),
            (
                "[[clusters]]\nhost = \"mdw\"\npassword = \"x\"\n",
                "clusters[0].password",
            ),
            (
                "[[clusters]]\nhost = \"a\"\nscrape_interval = \"5s\"\ninstance_timeout = \"5s\"\n",
                "clusters[0].instance_timeout",
            ),
            (
                "[[clusters]]\nhost = \"mdw\"\nscrape_interval = \"soon\"\n",
                "scrape_interval",
            ),
            ("[[clusters]]\nhost = \"mdw\"\nbogus = 1\n", "bogus"),
            (
                "[[clusters]]\nhost = \"a\"\n[[clusters]]\nhost = \"a\"\n",
                "clusters[1].name",
            ),
            (
                "[web]\nlisten_address = \"nowhere\"\n[[clusters]]\nhost = \"a\"\n",
                "web.listen_address",
            ),
        ];
        for (text, key) in cases {
            let err = load_file(".toml", text).expect_err(text).to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
    }

    #[test]
    fn inline_password_is_refused_and_never_echoed() {
        let err = load_file(
            ".toml",
            "[[clusters]]\nhost = \"mdw\"\npassword = \"hunter2\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<redacted>");
    }

    #[test]
    fn dsn_quick_start() {
        let s = load(&Overrides {
            coordinator_dsn: Some("postgresql://gpadmin:pw@mdw:6000/gpdb".into()),
            collect_interval: Some(Duration::from_secs(30)),
            listen_address: Some(":9999".into()),
            ..Overrides::default()
        })
        .unwrap();
        let c = &s.clusters[0];
        assert_eq!(
            (c.host.as_str(), c.port, c.database.as_str()),
            ("mdw", 6000, "gpdb")
        );
        assert_eq!(c.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(c.scrape_interval, Duration::from_secs(30));
        assert_eq!(c.name, "mdw");
        assert_eq!(s.web.listen_address.port(), 9999);

        let kv = load(&Overrides {
            coordinator_dsn: Some("host=10.0.0.1 port=5432 user=mon dbname=postgres".into()),
            cluster_name: Some("edw".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(kv.clusters[0].user, "mon");
        assert_eq!(kv.clusters[0].name, "edw");
    }

    #[test]
    fn unset_timeouts_follow_a_short_interval() {
        let s = load(&Overrides {
            coordinator_dsn: Some("host=mdw".into()),
            collect_interval: Some(Duration::from_secs(2)),
            ..Overrides::default()
        })
        .unwrap();
        let c = &s.clusters[0];
        assert_eq!(c.instance_timeout, Duration::from_secs(1));
        assert_eq!(c.statement_timeout, Duration::from_millis(600));
        assert_eq!(c.lock_timeout, Duration::from_millis(600));
        assert_eq!(c.connect_timeout, Duration::from_secs(1));

        let s = load_file(".toml", "[[clusters]]\nhost = \"mdw\"\n").unwrap();
        let c = &s.clusters[0];
        assert_eq!(c.scrape_interval, Duration::from_secs(15));
        assert_eq!(c.instance_timeout, Duration::from_secs(5));
        assert_eq!(c.statement_timeout, Duration::from_secs(3));
        assert_eq!(c.lock_timeout, Duration::from_secs(1));
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:5432:*:gpadmin:nope\nmdw:*:*:gpadmin:pa\\:ss\n*:*:*:*:any\n";
        assert_eq!(
            pgpass::find(text, "mdw", "5432", "postgres", "gpadmin").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass::find(text, "sdw1", "1", "x", "y").as_deref(),
            Some("any")
        );
        assert_eq!(
            pgpass::find(
                "mdw:5432:postgres:gpadmin:x",
                "mdw",
                "5433",
                "postgres",
                "gpadmin"
            ),
            None
        );
    }
}
