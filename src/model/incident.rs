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
    /// Unix time of the latest round at or below the threshold: the episode
    /// lasted from `started_at` to here ([`Incident::seconds`]).
    pub last_below_at: f64,
    /// Unix time of the round that ended it, `end_after_rounds` rounds above
    /// the threshold after `last_below_at`; `None` while it lasts.
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
    /// Connections the instance's server log shows it refused (53300) while
    /// the episode lasted, by role and coordinator session id (the `log`
    /// collector; empty without it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<IncidentRefusal>,
}

/// Refused connections of one role and coordinator session (`con14`; empty
/// for a connection that was no query executor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRefusal {
    pub usename: String,
    pub sess_id: String,
    pub count: u64,
}

/// Most role and session pairs an episode lists; more are added to the last.
pub const MAX_REFUSALS: usize = 100;

/// Adds refusals (role, session id) to an episode's list.
pub fn add_refusals(list: &mut Vec<IncidentRefusal>, new: &[(String, String)]) {
    for (usename, sess_id) in new {
        let found = list
            .iter()
            .position(|r| r.usename == *usename && r.sess_id == *sess_id);
        match found {
            Some(i) => list[i].count += 1,
            None if list.len() < MAX_REFUSALS => list.push(IncidentRefusal {
                usename: usename.clone(),
                sess_id: sess_id.clone(),
                count: 1,
            }),
            None => {
                if let Some(last) = list.last_mut() {
                    last.count += 1;
                }
            }
        }
    }
}

impl Incident {
    /// How long the instance was at or below the threshold, as far as the
    /// rounds saw: from the first such round to the last (0 for one round).
    /// The rounds above it that ended the episode do not count.
    pub fn seconds(&self) -> f64 {
        (self.last_below_at - self.started_at).max(0.0)
    }
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
