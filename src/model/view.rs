//! What the status page, `/api/v1/instances` and `top` show: per instance
//! the figures `/metrics` has, built from the same round by the same
//! collector functions, as one serialisable value.

use crate::collect::connections::{self, Slots};
use crate::collect::locks::{self, LockFigures};
use crate::collect::prepared::{self, PreparedFigures};
use crate::collect::sessions::Attribution;
use crate::collect::{self, Row};
use crate::config::CollectorName;
use crate::db::topology::SegmentRow;
use crate::model::error::ScrapeError;
use serde::Serialize;

/// Roles and applications listed per instance.
const TOP_HOLDERS: usize = 3;

/// The JSON document of `/api/v1/instances` and `top --json`.
#[derive(Serialize)]
pub struct Document<'a> {
    pub clusters: Vec<&'a ClusterView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterView {
    pub cluster: String,
    pub family: Option<&'static str>,
    pub version: Option<String>,
    /// Unix time the round these figures come from ended.
    pub round_finished_at: Option<f64>,
    /// The coordinator and the primaries, as collected.
    pub instances: Vec<InstanceView>,
    /// Catalog rows of instances that are not collected (mirrors, standby).
    pub not_collected: Vec<CatalogView>,
    /// Who holds the segment slots (collector `sessions`), when enabled.
    pub attribution: Option<Attribution>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstanceView {
    pub catalog: CatalogView,
    /// `None` before the first attempt.
    pub up: Option<bool>,
    pub error: Option<ErrorView>,
    pub connections: Option<Slots>,
    pub prepared: Option<PreparedFigures>,
    pub locks: Option<LockFigures>,
    /// Roles holding most slots here.
    pub top_users: Vec<(String, f64)>,
    /// Applications holding most slots here.
    pub top_applications: Vec<(String, f64)>,
    /// Backends by kind (collector `sessions`).
    pub backends: Vec<(&'static str, f64)>,
}

/// An instance as `gp_segment_configuration` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct CatalogView {
    pub content: i16,
    pub dbid: i16,
    pub role: char,
    pub preferred_role: char,
    pub status: char,
    pub mode: char,
    pub hostname: String,
    pub address: String,
    pub port: u16,
}

#[derive(Clone, Debug, Serialize)]
pub struct ErrorView {
    pub kind: &'static str,
    pub sqlstate: Option<String>,
    pub message: String,
}

impl CatalogView {
    pub fn of(row: &SegmentRow) -> CatalogView {
        CatalogView {
            content: row.content,
            dbid: row.dbid,
            role: row.role,
            preferred_role: row.preferred_role,
            status: row.status,
            mode: row.mode,
            hostname: row.hostname.clone(),
            address: row.address.clone(),
            port: row.port,
        }
    }
}

impl InstanceView {
    /// An instance's view from its catalog row, its state and, when it was
    /// collected this round, its rows.
    pub fn new(
        row: &SegmentRow,
        up: Option<bool>,
        error: Option<&ScrapeError>,
        rows: Option<&[Row]>,
        enabled: &[CollectorName],
    ) -> InstanceView {
        let of = |name: CollectorName| {
            rows.filter(|_| enabled.contains(&name))
                .map(|rows| collect::rows_of(name, rows))
        };
        let connections = of(CollectorName::Connections);
        let holders = |item: &str| {
            connections
                .as_ref()
                .map(|r| connections::top_holders(r, item, TOP_HOLDERS))
                .unwrap_or_default()
        };
        InstanceView {
            catalog: CatalogView::of(row),
            up,
            error: error.map(|e| ErrorView {
                kind: e.kind.label(),
                sqlstate: e.sqlstate.clone(),
                message: e.message.clone(),
            }),
            top_users: holders("by_user"),
            top_applications: holders("by_application"),
            connections: connections
                .as_ref()
                .map(|r| connections::slots(r, row.content)),
            prepared: of(CollectorName::Prepared).map(|r| prepared::figures(&r)),
            locks: of(CollectorName::Locks).map(|r| locks::figures(&r)),
            backends: Vec::new(),
        }
    }
}
