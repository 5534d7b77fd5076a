//! Utility-mode connection pools: one small pool per scraped instance. The
//! connection stays open between rounds, so the exporter already holds its
//! slot when a segment fills up. TLS follows the cluster's `sslmode`; with
//! `verify-full` a segment's certificate must name its catalog `address`.
//!
//! The pool's manager is the exporter's own (deadpool's `Manager` over
//! deadpool-postgres's `ClientWrapper`), so that everything that happens on a
//! connection is logged with the instance it belongs to: server notices and
//! warnings at their level, a connection the server ends with its message and
//! SQLSTATE. A closed connection is dropped without a word: the collection
//! that follows reports the instance down, once.

use crate::config::ClusterConfig;
use crate::model::family::Family;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_postgres::ClientWrapper;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::error::{DbError, Severity};
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, Connection, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, info, warn};

pub type Pool = managed::Pool<Manager>;
pub type Object = managed::Object<Manager>;
pub type PoolError = managed::PoolError<tokio_postgres::Error>;

/// `application_name` of every exporter session, so a DBA can find them.
pub const APPLICATION_NAME: &str = "greenplum_segment_exporter";

/// Idle TCP keepalive: notices a vanished instance between rounds.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// Where a pool connects, in which family's utility mode, and which instance
/// (content, dbid) its log lines name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub family: Family,
    pub content: i16,
    pub dbid: i16,
}

/// Session settings that keep the exporter harmless during an incident:
/// read-only, short statement and lock timeouts. Both families know them.
fn harmless_options(c: &ClusterConfig) -> String {
    format!(
        "-c default_transaction_read_only=on -c statement_timeout={} -c lock_timeout={}",
        c.statement_timeout.as_millis(),
        c.lock_timeout.as_millis(),
    )
}

/// A pooled session's settings: the family's utility mode, the harmless
/// settings and, where the family has the setting, no transaction left open.
/// Only settings the family's server knows: one it does not know makes it
/// refuse the connection (FATAL 42704).
fn session_options(c: &ClusterConfig, family: Family) -> String {
    let mut options = format!("{} {}", family.utility_option(), harmless_options(c));
    if family.has_idle_in_transaction_timeout() {
        let ms = c.instance_timeout.as_millis().max(1000);
        options.push_str(&format!(" -c idle_in_transaction_session_timeout={ms}"));
    }
    options
}

/// libpq-style settings of one instance's connections.
pub fn pg_config(c: &ClusterConfig, at: &Endpoint) -> tokio_postgres::Config {
    config_for(c, &at.host, at.port, session_options(c, at.family))
}

/// The coordinator's login of the family probe (`db::probe`): no utility
/// option, since which one the server takes is what the probe finds out, and
/// only settings every family has; `host:port` is the coordinator's or its
/// standby's.
pub fn probe_config(c: &ClusterConfig, host: &str, port: u16) -> tokio_postgres::Config {
    config_for(c, host, port, harmless_options(c))
}

fn config_for(c: &ClusterConfig, host: &str, port: u16, options: String) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .port(port)
        .dbname(&c.database)
        .user(&c.user)
        .application_name(APPLICATION_NAME)
        .options(options)
        .connect_timeout(c.connect_timeout)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .ssl_mode(c.tls.pg_ssl_mode());
    if let Some(p) = &c.password {
        cfg.password(p.expose());
    }
    cfg
}

/// A pool of at most `pool_size` connections (validated to 1 or 2).
pub fn build(c: &ClusterConfig, at: &Endpoint) -> Pool {
    let manager = Manager {
        config: pg_config(c, at),
        tls: c.tls.connector(),
        instance: Arc::new(Instance {
            cluster: c.name.clone(),
            endpoint: at.clone(),
        }),
    };
    Pool::builder(manager)
        .max_size(c.pool_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(c.instance_timeout))
        .create_timeout(Some(c.connect_timeout))
        .recycle_timeout(Some(c.instance_timeout))
        .build()
        .expect("a pool with a runtime and a non-zero size")
}

/// Makes one instance's connections and checks them before reuse.
pub struct Manager {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    instance: Arc<Instance>,
}

/// One pooled connection (deadpool-postgres's client with the task that
/// drives its socket) and the round's statement once prepared on it.
pub struct Session {
    client: ClientWrapper,
    /// Found again by the text's address (or, failing that, by comparing
    /// it), not by hashing it as a statement cache keyed by text does: the
    /// round's statement is kilobytes, hashed and copied for every instance
    /// in every round. A reload that changes the collectors changes the
    /// text, and the statement is prepared anew.
    prepared: Option<(Arc<str>, Statement)>,
}

impl Session {
    /// `sql` with parameters of `types`, prepared on this connection the
    /// first time and reused after.
    pub async fn prepared(
        &mut self,
        sql: &Arc<str>,
        types: &[Type],
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some((text, statement)) = &self.prepared {
            if (Arc::ptr_eq(text, sql) || text == sql) && statement.params() == types {
                return Ok(statement.clone());
            }
        }
        let statement = self.client.prepare_typed(sql, types).await?;
        self.prepared = Some((sql.clone(), statement.clone()));
        Ok(statement)
    }
}

impl std::ops::Deref for Session {
    type Target = ClientWrapper;
    fn deref(&self) -> &ClientWrapper {
        &self.client
    }
}

impl managed::Manager for Manager {
    type Type = Session;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Session, tokio_postgres::Error> {
        let instance = self.instance.clone();
        // Boxed: a connect future (TLS included) is kilobytes, and would
        // otherwise be part of every collection task, connecting or not.
        let (client, task) = match &self.tls {
            Some(tls) => {
                let (client, connection) = Box::pin(self.config.connect(tls.clone())).await?;
                (client, tokio::spawn(drive(connection, instance)))
            }
            None => {
                let (client, connection) = Box::pin(self.config.connect(NoTls)).await?;
                (client, tokio::spawn(drive(connection, instance)))
            }
        };
        Ok(Session {
            client: ClientWrapper::new(client, task),
            prepared: None,
        })
    }

    /// Only checks that the connection is open: no extra statement per round.
    async fn recycle(
        &self,
        client: &mut Session,
        _: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

/// The instance a pool's connections go to, as log lines name it.
struct Instance {
    cluster: String,
    endpoint: Endpoint,
}

/// Runs one connection until it ends, logging what the server says on it.
async fn drive<S, T>(mut connection: Connection<S, T>, instance: Arc<Instance>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notice(notice)) => instance.notice(&notice),
            Ok(_) => {}
            Err(e) => {
                instance.ended(&e);
                return;
            }
        }
    }
}

impl Instance {
    /// A notice or warning from the server, at its own level.
    fn notice(&self, n: &DbError) {
        let (cluster, e) = (&self.cluster, &self.endpoint);
        let sqlstate = n.code().code();
        match n.parsed_severity() {
            Some(Severity::Warning) => warn!(
                %cluster, content = e.content, dbid = e.dbid, address = %e.host, port = e.port,
                sqlstate, "server warning: {}", n.message()
            ),
            Some(Severity::Debug) => debug!(
                %cluster, content = e.content, dbid = e.dbid, address = %e.host, port = e.port,
                sqlstate, "server debug message: {}", n.message()
            ),
            _ => info!(
                %cluster, content = e.content, dbid = e.dbid, address = %e.host, port = e.port,
                sqlstate, "server notice: {}", n.message()
            ),
        }
    }

    /// The connection ended with an error: the server's own reason (a FATAL,
    /// e.g. an administrator's termination) is worth a line; a lost socket is
    /// reported by the next collection.
    fn ended(&self, error: &tokio_postgres::Error) {
        let (cluster, e) = (&self.cluster, &self.endpoint);
        match error.as_db_error() {
            Some(db) => warn!(
                %cluster, content = e.content, dbid = e.dbid, address = %e.host, port = e.port,
                sqlstate = db.code().code(), "connection ended by the server: {}: {}",
                db.severity(), db.message()
            ),
            None => debug!(
                %cluster, content = e.content, dbid = e.dbid, address = %e.host, port = e.port,
                "connection lost: {error}"
            ),
        }
    }
}

/// A connection taken from a pool for one unit of work. [`Checkout::release`]
/// returns it to the pool; dropped without that (the work was cancelled in
/// the middle of a statement) it is closed instead, because a connection
/// with an unanswered statement on it would queue every later one.
pub struct Checkout(Option<Object>);

impl Checkout {
    pub async fn get(pool: &Pool) -> Result<Checkout, PoolError> {
        Ok(Checkout(Some(pool.get().await?)))
    }

    /// Gives the connection back for the next round.
    pub fn release(mut self) {
        drop(self.0.take());
    }

    /// The connection's client, for statements of its own.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

impl std::ops::Deref for Checkout {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.0.as_ref().expect("present until released")
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut Object {
        self.0.as_mut().expect("present until released")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            // Detached from the pool, the client is dropped and its connection closed.
            drop(Object::take(object));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every setting a real server of the family knows (Greenplum 6.24.3,
    /// 7.0.0; tests/gpemu/catalog): one it does not know in the startup
    /// options makes it refuse every connection.
    fn settings_of(family: Family) -> HashSet<&'static str> {
        let list = match family {
            Family::Gp6 => include_str!("../../tests/gpemu/catalog/gp6_settings.txt"),
            Family::Gp7 => include_str!("../../tests/gpemu/catalog/gp7_settings.txt"),
        };
        list.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::trim)
            .collect()
    }

    #[test]
    fn startup_options_name_only_settings_the_family_has() {
        let overrides = crate::config::Overrides {
            coordinator_dsn: Some("host=mdw user=gpadmin password=x".to_owned()),
            ..Default::default()
        };
        let cfg = crate::config::load(&overrides).unwrap().clusters.remove(0);
        let names = |options: &str| -> Vec<String> {
            options
                .split_whitespace()
                .filter(|w| *w != "-c")
                .map(|w| w.split('=').next().unwrap_or(w).to_owned())
                .collect()
        };
        // The probe's login goes to a server of either family.
        let probe = harmless_options(&cfg);
        assert_eq!(names(&probe).len(), 3, "{probe}");
        for family in [Family::Gp6, Family::Gp7] {
            let known = settings_of(family);
            let options = session_options(&cfg, family);
            assert!(names(&options).len() >= 4, "{options}");
            for (name, of) in names(&options)
                .into_iter()
                .map(|n| (n, &options))
                .chain(names(&probe).into_iter().map(|n| (n, &probe)))
            {
                assert!(
                    known.contains(name.as_str()),
                    "{family:?} has no setting {name}: {of}"
                );
            }
        }
    }
}
