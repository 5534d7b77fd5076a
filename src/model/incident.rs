//! An episode of an instance running out of ordinary connection slots, as
//! recorded when it starts: when, where, the figures, and the coordinator
//! sessions that held the slots. `/api/v1/incidents`, `top --incidents`, the
//! status page and the incidents file show these.

use crate::model::attribution::SessionIdentity;
use crate::model::figures::Slots;
use crate::model::view::CatalogView;
use serde::{Deserialize, Serialize};

/// The JSON document of `/api/v1/incidents` (newest first).
#[derive(Debug, Serialize, Deserialize)]
pub struct IncidentDocument {
    pub incidents: Vec<Incident>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `<cluster>/<content>/<start in unix milliseconds>`: unique, stable.
    pub id: String,
    pub cluster: String,
    /// Unix time of the round that found the headroom at or below the threshold.
    pub started_at: f64,
    /// Unix time of the round that ended it; `None` while it lasts.
    pub ended_at: Option<f64>,
    /// The threshold it was recorded against (ordinary slots left).
    pub threshold: f64,
    pub instance: CatalogView,
    /// The instance's slots when the episode started.
    pub figures: Slots,
    /// Rounds at or below the threshold so far.
    pub rounds: u64,
    /// The lowest ordinary headroom and the highest `used` seen in the episode.
    pub lowest_headroom: f64,
    pub peak_used: f64,
    /// The coordinator sessions holding most of the instance's backends when
    /// it started, most first (empty when the coordinator was not read).
    pub sessions: Vec<IncidentSession>,
}

/// A coordinator session and what it held when the episode started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentSession {
    #[serde(flatten)]
    pub session: SessionIdentity,
    /// Backends of the session on the instance of the episode.
    pub backends_here: f64,
    /// Backends of the session on every instance collected that round.
    pub backends_total: f64,
    /// Its query text, cut to `incidents.query_text_max_chars`; only with
    /// `incidents.query_text = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}
