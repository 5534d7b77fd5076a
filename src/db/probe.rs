//! The family probe: one ordinary login to the coordinator that runs no
//! statement, for the `server_version` every PostgreSQL-based server reports
//! at login (`9.4.26` on Greenplum 6, `12.12` on Greenplum 7).
//!
//! Why not try each family's utility-mode option until one is accepted: the
//! refused one is a `FATAL 42704 unrecognized configuration parameter` in the
//! coordinator's log at every start of the daemon and every `top`, which a DBA
//! grepping for FATAL counts as a client failing. Why an ordinary session is
//! harmless here: the coordinator starts processes on the segments only for a
//! statement it dispatches, and this session sends no statement at all (so no
//! resource queue has anything to admit either).

use crate::config::ClusterConfig;
use crate::db::error::login_failed;
use crate::db::pool;
use crate::model::error::{ErrorKind, ScrapeError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::{Client, Connection, NoTls};

/// What the coordinator reported at login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginReport {
    /// `server_version`, the PostgreSQL base (`None` if not reported).
    pub server_version: Option<String>,
    /// `gp_server_version`, the Greenplum release, for the log.
    pub gp_server_version: Option<String>,
}

/// Logs in to the coordinator at `host:port` without utility mode and leaves
/// at once, within `connect_timeout` like a pool's login.
pub async fn login_report(
    c: &ClusterConfig,
    host: &str,
    port: u16,
) -> Result<LoginReport, ScrapeError> {
    let config = pool::probe_config(c, host, port);
    let login = async {
        match c.tls.connector() {
            Some(tls) => Ok(report(config.connect(tls).await.map_err(login_failed)?).await),
            None => Ok(report(config.connect(NoTls).await.map_err(login_failed)?).await),
        }
    };
    tokio::time::timeout(c.connect_timeout, login)
        .await
        .unwrap_or_else(|_| {
            Err(ScrapeError::new(
                ErrorKind::Timeout,
                format!(
                    "the coordinator did not complete a login within {}",
                    humantime::format_duration(c.connect_timeout)
                ),
            ))
        })
}

/// Reads the parameters the server sent at login, then ends the session
/// with a Terminate message (dropping the client), after which the server
/// logs nothing.
async fn report<S, T>((client, connection): (Client, Connection<S, T>)) -> LoginReport
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let reported = LoginReport {
        server_version: connection.parameter("server_version").map(str::to_owned),
        gp_server_version: connection.parameter("gp_server_version").map(str::to_owned),
    };
    drop(client);
    // Ends once the Terminate message is written; an error then changes nothing.
    let _ = connection.await;
    reported
}
