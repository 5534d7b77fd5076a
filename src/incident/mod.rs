//! Incident memory: each time an instance's ordinary connection headroom
//! falls to the configured threshold, one record of who held the slots
//! (`Detector`), kept in memory and optionally in a JSON-lines file
//! (`store`). Uses `config` and `model`.

pub mod store;

use crate::config::IncidentSettings;
use crate::model::incident::{Incident, IncidentSession};
use crate::model::view::InstanceView;
use std::collections::BTreeMap;
use store::Store;
use tracing::{info, warn};

/// The open episodes of one cluster, by content id: an episode follows the
/// content across a failover, as the slots it is about do.
#[derive(Debug, Default)]
pub struct Detector {
    open: BTreeMap<i16, Open>,
}

#[derive(Debug)]
struct Open {
    id: String,
    /// Consecutive rounds above the threshold so far.
    clear_rounds: u32,
}

impl Detector {
    /// Follows one round of `cluster` that ended at `now` (unix seconds):
    /// starts an episode for an instance at or below the threshold, with the
    /// sessions `holders` names for its content, extends open ones, and ends
    /// those above the threshold for `end_after_rounds` rounds. Instances not
    /// collected this round change nothing.
    pub fn observe(
        &mut self,
        cluster: &str,
        settings: &IncidentSettings,
        now: f64,
        views: &[InstanceView],
        holders: impl Fn(i16) -> Vec<IncidentSession>,
        store: &Store,
    ) {
        for view in views.iter().filter(|v| v.up == Some(true)) {
            let Some(slots) = &view.connections else {
                continue;
            };
            let c = &view.catalog;
            let below = slots.headroom_ordinary <= settings.threshold;
            match (self.open.get_mut(&c.content), below) {
                (None, true) => {
                    let incident = Incident {
                        id: format!("{cluster}/{}/{}", c.content, (now * 1000.0).round() as u64),
                        cluster: cluster.to_owned(),
                        started_at: now,
                        ended_at: None,
                        threshold: settings.threshold,
                        instance: c.clone(),
                        figures: slots.clone(),
                        rounds: 1,
                        lowest_headroom: slots.headroom_ordinary,
                        peak_used: slots.used,
                        sessions: holders(c.content),
                    };
                    let top = incident.sessions.first();
                    warn!(
                        %cluster, content = c.content, dbid = c.dbid, address = %c.address,
                        port = c.port, used = slots.used, max_connections = slots.max_connections,
                        headroom = slots.headroom_ordinary,
                        top_session = top.map(|s| s.session.sess_id.as_str()).unwrap_or(""),
                        top_user = top.map(|s| s.session.usename.as_str()).unwrap_or(""),
                        top_backends = top.map_or(0.0, |s| s.backends_here),
                        id = %incident.id,
                        "ordinary connection slots exhausted: incident started"
                    );
                    self.open.insert(
                        c.content,
                        Open {
                            id: incident.id.clone(),
                            clear_rounds: 0,
                        },
                    );
                    store.start(incident);
                }
                (Some(open), true) => {
                    open.clear_rounds = 0;
                    store.update(&open.id, |i| {
                        i.rounds += 1;
                        i.lowest_headroom = i.lowest_headroom.min(slots.headroom_ordinary);
                        i.peak_used = i.peak_used.max(slots.used);
                    });
                }
                (Some(open), false) => {
                    open.clear_rounds += 1;
                    if open.clear_rounds >= settings.end_after_rounds {
                        let id = open.id.clone();
                        self.open.remove(&c.content);
                        if let Some(i) = store.end(&id, now) {
                            info!(
                                %cluster, content = c.content, dbid = c.dbid, address = %c.address,
                                port = c.port, seconds = (now - i.started_at).round(),
                                rounds = i.rounds, lowest_headroom = i.lowest_headroom,
                                peak_used = i.peak_used, id = %id,
                                "ordinary connection slots back above the threshold: incident ended"
                            );
                        }
                    }
                }
                (None, false) => {}
            }
        }
    }
}
