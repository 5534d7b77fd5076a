//! What a round produced, as the status page, `/api/v1/instances` and `top`
//! show it: per instance the figures `/metrics` has, from the same round, as
//! one serialisable value (built by `collect::instance_view`).

use crate::model::attribution::Attribution;
use crate::model::catalog::SegmentRow;
use crate::model::error::ScrapeError;
use crate::model::figures::{LockFigures, PreparedFigures, ReplicationFigures, Slots};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A name the exporter mostly writes from its own constants, but that is
/// read back from a running exporter's API too (`top --from`).
pub type Name = Cow<'static, str>;

/// The JSON document of `/api/v1/instances` and `top --json`.
#[derive(Serialize)]
pub struct Document<'a> {
    pub clusters: Vec<&'a ClusterView>,
}

/// [`Document`] as `top --from` reads it back.
#[derive(Deserialize)]
pub struct OwnedDocument {
    pub clusters: Vec<ClusterView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterView {
    pub cluster: String,
    pub family: Option<Name>,
    pub version: Option<String>,
    /// Unix time the round these figures come from ended.
    pub round_finished_at: Option<f64>,
    /// The configured collection interval (`scrape_interval`), seconds: a
    /// round's figures are replaced about this often.
    #[serde(default)]
    pub interval_seconds: f64,
    /// The coordinator and the primaries, as collected.
    pub instances: Vec<InstanceView>,
    /// Catalog rows of instances that are not collected (mirrors, standby).
    pub not_collected: Vec<CatalogView>,
    /// Who holds the segment slots (collector `sessions`), when enabled.
    pub attribution: Option<Attribution>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceView {
    pub catalog: CatalogView,
    /// `None` before the first attempt.
    pub up: Option<bool>,
    pub error: Option<ErrorView>,
    pub connections: Option<Slots>,
    pub prepared: Option<PreparedFigures>,
    pub locks: Option<LockFigures>,
    /// The walsender to the mirror (collector `replication`); absent in the
    /// API of an exporter before it had one.
    #[serde(default)]
    pub replication: Option<ReplicationFigures>,
    /// Roles holding most slots here.
    pub top_users: Vec<(String, f64)>,
    /// Applications holding most slots here.
    pub top_applications: Vec<(String, f64)>,
    /// Backends by kind (collector `sessions`).
    pub backends: Vec<(Name, f64)>,
    /// Backends waiting, by reason (`lock`, `resource_group`, ...).
    pub waiting: Vec<(String, f64)>,
    /// Ordinary headroom of the last rounds, oldest first: `[unix time, slots
    /// left]`, rounds in which the instance was not collected left out.
    pub headroom_history: Vec<[f64; 2]>,
}

/// An instance as `gp_segment_configuration` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorView {
    pub kind: Name,
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

impl ErrorView {
    pub fn of(e: &ScrapeError) -> ErrorView {
        ErrorView {
            kind: Name::Borrowed(e.kind.label()),
            sqlstate: e.sqlstate.clone(),
            message: e.message.clone(),
        }
    }
}
