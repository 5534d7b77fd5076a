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
    // A host list (`host=mdw,smdw`, `postgresql://mdw:5432,smdw:5432/...`): the
    // coordinator, then its standby; each host takes its own port of a port
    // list, or the one port given.
    let mut hosts = Vec::new();
    for h in cfg.get_hosts() {
        match h {
            tokio_postgres::config::Host::Tcp(h) => hosts.push(h.clone()),
            _ => {
                return Err(invalid(
                    key,
                    "Unix-socket hosts are not supported; give a TCP host",
                ))
            }
        }
    }
    if hosts.len() > 2 {
        return Err(invalid(
            key,
            "at most two hosts: the coordinator and its standby",
        ));
    }
    let ports = cfg.get_ports();
    let port_of = |i: usize| match ports.len() {
        0 => 5432,
        1 => ports[0],
        _ => ports.get(i).copied().unwrap_or(5432),
    };
    let host = hosts.first().cloned().unwrap_or_else(|| "localhost".into());
    let port = port_of(0);
    let standby = hosts.get(1).map(|h| (h.clone(), port_of(1)));
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
        standby_host: standby.as_ref().map(|s| s.0.clone()),
        standby_port: standby.map(|s| s.1),
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

#[cfg(test)]
mod tests {
    use crate::config::{load, ClusterConfig, ConfigError, Overrides};

    fn dsn(d: &str) -> Result<ClusterConfig, ConfigError> {
        load(&Overrides {
            coordinator_dsn: Some(d.into()),
            ..Overrides::default()
        })
        .map(|s| s.clusters[0].clone())
    }

    #[test]
    fn a_host_list_names_the_standby_coordinator() {
        let c = dsn("host=mdw,smdw port=5432,6000 user=mon password=x").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("mdw", 5432));
        assert_eq!(c.standby, Some(("smdw".into(), 6000)));
        // As libpq: in a URL each host has its own port, 5432 where none is given.
        let c = dsn("postgresql://mon:x@mdw,smdw:5433/postgres").unwrap();
        assert_eq!(
            c.coordinator_addresses(),
            [("mdw".into(), 5432), ("smdw".into(), 5433)]
        );
        assert_eq!(dsn("host=mdw user=mon password=x").unwrap().standby, None);
        assert!(dsn("host=a,b,c user=mon password=x").is_err());
    }
}
