//! The single-cluster quick start, `--coordinator.dsn`: a libpq DSN, with
//! the password and TLS settings from the DSN or libpq's environment
//! variables and pgpass file.

use super::keys::ClusterKeys;
use super::secrets::pgpass;
use super::{invalid, ConfigError};
use crate::tls::database::{SslMode, TlsKeys};
use std::path::PathBuf;

/// A single cluster from a libpq DSN (key=value or URL); the password comes
/// from the DSN, `PGPASSWORD` or the pgpass file, as with libpq.
pub(super) fn keys_from_dsn(dsn: &str, name: Option<String>) -> Result<ClusterKeys, ConfigError> {
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
