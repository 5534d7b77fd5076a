//! Utility-mode connection pools: one small pool per scraped instance. The
//! connection stays open between rounds, so the exporter already holds its
//! slot when a segment fills up. TLS follows the cluster's `sslmode`; with
//! `verify-full` a segment's certificate must name its catalog `address`.

use crate::config::ClusterConfig;
use crate::model::family::Family;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::time::Duration;
use tokio_postgres::NoTls;

/// `application_name` of every exporter session, so a DBA can find them.
pub const APPLICATION_NAME: &str = "greenplum_segment_exporter";

/// Idle TCP keepalive: notices a vanished instance between rounds.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// Where a pool connects and in which family's utility mode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub family: Family,
}

/// Session settings that keep the exporter harmless during an incident:
/// read-only, short statement and lock timeouts and, where the family has the
/// setting, no transaction left open. Only settings the family's server knows:
/// one it does not know makes it refuse the connection (FATAL 42704).
fn session_options(c: &ClusterConfig, family: Family) -> String {
    let mut options = format!(
        "{} -c default_transaction_read_only=on -c statement_timeout={} -c lock_timeout={}",
        family.utility_option(),
        c.statement_timeout.as_millis(),
        c.lock_timeout.as_millis(),
    );
    if family.has_idle_in_transaction_timeout() {
        let ms = c.instance_timeout.as_millis().max(1000);
        options.push_str(&format!(" -c idle_in_transaction_session_timeout={ms}"));
    }
    options
}

/// libpq-style settings of one instance's connections.
pub fn pg_config(c: &ClusterConfig, at: &Endpoint) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&at.host)
        .port(at.port)
        .dbname(&c.database)
        .user(&c.user)
        .application_name(APPLICATION_NAME)
        .options(session_options(c, at.family))
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
    let config = pg_config(c, at);
    let manager_config = ManagerConfig {
        // Only checks that the connection is open: no extra statement per round.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match c.tls.connector() {
        Some(tls) => Manager::from_config(config, tls, manager_config),
        None => Manager::from_config(config, NoTls, manager_config),
    };
    Pool::builder(manager)
        .max_size(c.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(c.instance_timeout))
        .create_timeout(Some(c.connect_timeout))
        .recycle_timeout(Some(c.instance_timeout))
        .build()
        .expect("a pool with a runtime and a non-zero size")
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
}

impl std::ops::Deref for Checkout {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.0.as_ref().expect("present until released")
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
