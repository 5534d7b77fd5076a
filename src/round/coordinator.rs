//! Reaching the coordinator: the family probe (each family's utility-mode
//! option until one is accepted), what the exporter learns on first contact
//! (`version()`, whether its role may use the reserved slots), and the
//! catalog reads that keep the topology fresh.

use crate::config::ClusterConfig;
use crate::db::pool::Pool;
use crate::db::pool::{self, Checkout, Endpoint};
use crate::db::topology;
use crate::model::catalog::{SegmentRow, COORDINATOR_DBID};
use crate::model::error::{ErrorKind, ScrapeError};
use crate::model::family::{self, Family, ServerVersion};
use std::sync::Arc;
use tracing::debug;

/// The coordinator once reached: its pool in the right family's utility mode.
#[derive(Clone)]
pub(super) struct Coordinator {
    pub(super) pool: Pool,
    pub(super) family: Family,
    pub(super) version: String,
    pub(super) reserved_usable: bool,
}

/// What one read of the coordinator brings back.
pub(super) struct TopologyRead {
    /// Set when this read first reached the coordinator.
    pub(super) reached: Option<Coordinator>,
    pub(super) rows: Vec<SegmentRow>,
}

/// Reads the catalog, first reaching the coordinator (and detecting its
/// family when `auto`) if `known` is `None`.
pub(super) async fn read_topology(
    cfg: Arc<ClusterConfig>,
    known: Option<Coordinator>,
) -> Result<TopologyRead, ScrapeError> {
    let (pool, reached) = match known {
        Some(c) => (c.pool, None),
        None => {
            let c = reach_coordinator(&cfg).await?;
            (c.pool.clone(), Some(c))
        }
    };
    let client = Checkout::get(&pool).await?;
    let rows = topology::read_catalog(client.client()).await;
    client.release();
    let rows = rows?;
    if !rows
        .iter()
        .any(|r| r.is_coordinator() && r.is_scrape_target())
    {
        return Err(ScrapeError::new(
            ErrorKind::NotGreenplum,
            "gp_segment_configuration has no active coordinator row (content -1, role p)",
        ));
    }
    Ok(TopologyRead { reached, rows })
}

/// What the exporter learns from the coordinator on first contact.
const IDENTIFY_SQL: &str = "SELECT version(), \
     current_setting('is_superuser') = 'on' OR EXISTS ( \
       SELECT 1 FROM pg_roles r WHERE r.rolname = 'pg_use_reserved_connections' \
       AND pg_has_role(current_user, r.oid, 'USAGE'))";

/// Connects to the coordinator in utility mode; with `family = auto` tries
/// each family's option until one is accepted, then reads `version()`.
async fn reach_coordinator(cfg: &ClusterConfig) -> Result<Coordinator, ScrapeError> {
    let fixed = cfg.family.fixed();
    let candidates = fixed.map_or(Family::PROBE_ORDER.to_vec(), |f| vec![f]);
    let mut last_err = None;
    for probed in candidates {
        let endpoint = Endpoint {
            host: cfg.host.clone(),
            port: cfg.port,
            family: probed,
            content: -1,
            dbid: COORDINATOR_DBID,
        };
        let pool = pool::build(cfg, &endpoint);
        match identify(&pool).await {
            Ok((version, reserved_usable)) => {
                let parsed = ServerVersion::parse(&version);
                if let Some(v) = parsed.as_ref().filter(|v| !v.is_supported()) {
                    pool.close();
                    return Err(ScrapeError::new(
                        ErrorKind::NotSupported,
                        format!(
                            "{v} is not supported: the exporter needs Greenplum or Greengage {}+ \
                             or Apache Cloudberry ({version:?})",
                            family::MIN_SUPPORTED_MAJOR
                        ),
                    ));
                }
                let family = match (fixed, parsed) {
                    (Some(f), _) => f,
                    (None, Some(v)) => v.family(),
                    (None, None) => {
                        pool.close();
                        return Err(ScrapeError::new(
                            ErrorKind::NotGreenplum,
                            format!("version() names no Greenplum-family product ({version:?}); set family = gp6 or gp7"),
                        ));
                    }
                };
                // Late GP7 also accepts gp_session_role; use the family's own option anyway.
                let pool = if family == probed {
                    pool
                } else {
                    pool.close();
                    pool::build(cfg, &Endpoint { family, ..endpoint })
                };
                return Ok(Coordinator {
                    pool,
                    family,
                    version,
                    reserved_usable,
                });
            }
            Err(e) if fixed.is_none() && refuses_utility_option(&e, probed) => {
                debug!(cluster = %cfg.name, family = probed.name(), error = %e, "not this family");
                pool.close();
                last_err = Some(e);
            }
            Err(e) => {
                pool.close();
                return Err(e);
            }
        }
    }
    Err(last_err.expect("at least one candidate family"))
}

async fn identify(pool: &Pool) -> Result<(String, bool), ScrapeError> {
    let client = Checkout::get(pool).await?;
    let row = client.query_one(IDENTIFY_SQL, &[]).await;
    client.release();
    let row = row?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The server refused `probed`'s utility option itself, so it is of the
/// other family. Any other refusal, such as another setting the server does
/// not know, is an error of its own and is reported as such.
fn refuses_utility_option(e: &ScrapeError, probed: Family) -> bool {
    match (e.sqlstate.as_deref(), probed) {
        // GP7 / Cloudberry: unrecognized configuration parameter "gp_session_role"
        (Some("42704"), _) => e
            .message
            .contains(&format!("\"{}\"", probed.utility_setting())),
        // GP6 refusing gp_role: "System was started in master-only utility mode"
        (Some("57P03"), Family::Gp7) => e.message.contains("master-only utility mode"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str, message: &str) -> ScrapeError {
        ScrapeError {
            kind: ErrorKind::Query,
            sqlstate: Some(code.to_owned()),
            message: message.to_owned(),
        }
    }

    #[test]
    fn only_a_refused_utility_option_means_the_other_family() {
        let unknown = |name: &str| {
            refused(
                "42704",
                &format!("FATAL: unrecognized configuration parameter \"{name}\""),
            )
        };
        assert!(refuses_utility_option(
            &unknown("gp_session_role"),
            Family::Gp6
        ));
        assert!(refuses_utility_option(&unknown("gp_role"), Family::Gp7));
        // Another setting the server lacks is that setting's problem, not the family's.
        let other = unknown("idle_in_transaction_session_timeout");
        assert!(!refuses_utility_option(&other, Family::Gp6));
        assert!(!refuses_utility_option(&other, Family::Gp7));
        assert!(!refuses_utility_option(
            &unknown("gp_session_role"),
            Family::Gp7
        ));
        let gp6_refusing_gp_role = refused(
            "57P03",
            "FATAL: System was started in master-only utility mode - only utility mode \
             connections are allowed",
        );
        assert!(refuses_utility_option(&gp6_refusing_gp_role, Family::Gp7));
        assert!(!refuses_utility_option(&gp6_refusing_gp_role, Family::Gp6));
        let starting = refused("57P03", "FATAL: the database system is starting up");
        assert!(!refuses_utility_option(&starting, Family::Gp7));
    }
}
