//! Reaching the coordinator: its family (set, or from the `server_version`
//! its login reports), what the exporter learns on first contact
//! (`version()`, whether its role may use the reserved slots), and the
//! catalog reads that keep the topology fresh.

use crate::config::ClusterConfig;
use crate::db::pool::Pool;
use crate::db::pool::{self, Checkout, Endpoint};
use crate::db::probe;
use crate::db::topology;
use crate::model::catalog::{SegmentRow, COORDINATOR_DBID};
use crate::model::error::{ErrorKind, ScrapeError};
use crate::model::family::{self, Family, ServerVersion};
use std::sync::Arc;
use tracing::debug;

/// The coordinator once reached: where (the configured coordinator or its
/// standby) and its pool in the right family's utility mode.
#[derive(Clone)]
pub(super) struct Coordinator {
    pub(super) host: String,
    pub(super) port: u16,
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
/// family when `auto`) if `known` is `None`. With a standby configured, a
/// known coordinator that fails the read is looked for again at every
/// address (after `gpactivatestandby` it is the standby), in the same read.
pub(super) async fn read_topology(
    cfg: Arc<ClusterConfig>,
    known: Option<Coordinator>,
) -> Result<TopologyRead, ScrapeError> {
    let (rows, reached) = match known {
        Some(c) => match catalog_of(&c.pool).await {
            Err(e) if cfg.standby.is_none() => return Err(e),
            Err(e) => {
                debug!(cluster = %cfg.name, address = %c.host, port = c.port, error = %e,
                       "the coordinator does not answer; looking for the active one");
                let c = reach_coordinator(&cfg).await?;
                (catalog_of(&c.pool).await, Some(c))
            }
            Ok(rows) => (Ok(rows), None),
        },
        None => {
            let c = reach_coordinator(&cfg).await?;
            (catalog_of(&c.pool).await, Some(c))
        }
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            if let Some(c) = reached {
                c.pool.close();
            }
            return Err(e);
        }
    };
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

async fn catalog_of(pool: &Pool) -> Result<Vec<SegmentRow>, ScrapeError> {
    let client = Checkout::get(pool).await?;
    let rows = topology::read_catalog(client.client()).await;
    client.release();
    Ok(rows?)
}

/// What the exporter learns from the coordinator on first contact, and
/// whether it is a standby still in recovery (not the active coordinator).
const IDENTIFY_SQL: &str = "SELECT version(), \
     current_setting('is_superuser') = 'on' OR EXISTS ( \
       SELECT 1 FROM pg_roles r WHERE r.rolname = 'pg_use_reserved_connections' \
       AND pg_has_role(current_user, r.oid, 'USAGE')), pg_is_in_recovery()";

/// The active coordinator: the first address (the coordinator, then its
/// standby) that accepts a login and is not in recovery. A standby in
/// recovery refuses (57P03) or answers in hot standby; either way it is
/// passed over. The error is the configured coordinator's.
async fn reach_coordinator(cfg: &ClusterConfig) -> Result<Coordinator, ScrapeError> {
    let mut first_error = None;
    for (host, port) in cfg.coordinator_addresses() {
        match reach_at(cfg, &host, port).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                debug!(cluster = %cfg.name, address = %host, port, error = %e,
                       "not the active coordinator");
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least the configured coordinator"))
}

/// Connects to the coordinator at `host:port` in its family's utility mode
/// (with `family = auto`, the family its login reports: [`detect_family`]),
/// then reads `version()`.
async fn reach_at(cfg: &ClusterConfig, host: &str, port: u16) -> Result<Coordinator, ScrapeError> {
    let fixed = cfg.family.fixed();
    let family = match fixed {
        Some(f) => f,
        None => detect_family(cfg, host, port).await?,
    };
    let endpoint = Endpoint {
        host: host.to_owned(),
        port,
        family,
        content: -1,
        dbid: COORDINATOR_DBID,
    };
    let pool = pool::build(cfg, &endpoint);
    let identified = identify(&pool)
        .await
        .and_then(|(version, reserved_usable, in_recovery)| {
            if in_recovery {
                return Err(ScrapeError::new(
                    ErrorKind::Unavailable,
                    format!("{host}:{port} is in recovery: a standby, not the active coordinator"),
                ));
            }
            check_product(&version, fixed.is_some())?;
            Ok((version, reserved_usable))
        });
    match identified {
        Ok((version, reserved_usable)) => Ok(Coordinator {
            host: host.to_owned(),
            port,
            pool,
            family,
            version,
            reserved_usable,
        }),
        Err(e) => {
            pool.close();
            Err(e)
        }
    }
}

/// The family from the `server_version` of one ordinary login that runs no
/// statement (`db::probe`): no login is refused, so the coordinator's log
/// holds no FATAL from the exporter.
async fn detect_family(cfg: &ClusterConfig, host: &str, port: u16) -> Result<Family, ScrapeError> {
    let report = probe::login_report(cfg, host, port).await?;
    let reported = report.server_version.as_deref().unwrap_or("");
    let Some(family) = Family::from_server_version(reported) else {
        return Err(ScrapeError::new(
            ErrorKind::NotGreenplum,
            format!(
                "the coordinator's login reported server_version {reported:?}, no PostgreSQL \
                 version; set family = gp6 or gp7"
            ),
        ));
    };
    debug!(cluster = %cfg.name, server_version = reported,
           gp_server_version = report.gp_server_version.as_deref().unwrap_or(""),
           family = family.name(), "family from the server_version reported at login");
    Ok(family)
}

/// Refuses what `version()` says the exporter cannot collect: Greenplum 5,
/// or (unless the family was set) a product that is not of the Greenplum family.
fn check_product(version: &str, family_fixed: bool) -> Result<(), ScrapeError> {
    match ServerVersion::parse(version) {
        Some(v) if !v.is_supported() => Err(ScrapeError::new(
            ErrorKind::NotSupported,
            format!(
                "{v} is not supported: the exporter needs Greenplum or Greengage {}+ \
                 or Apache Cloudberry ({version:?})",
                family::MIN_SUPPORTED_MAJOR
            ),
        )),
        None if !family_fixed => Err(ScrapeError::new(
            ErrorKind::NotGreenplum,
            format!(
                "version() names no Greenplum-family product ({version:?}); set family = gp6 or gp7"
            ),
        )),
        _ => Ok(()),
    }
}

async fn identify(pool: &Pool) -> Result<(String, bool, bool), ScrapeError> {
    let client = Checkout::get(pool).await?;
    let row = client.query_one(IDENTIFY_SQL, &[]).await;
    client.release();
    let row = row?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}
