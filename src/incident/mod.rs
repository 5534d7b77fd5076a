//! Incident memory: each time an instance's ordinary connection headroom
//! falls to the configured threshold, one record of who held the slots
//! (`Detector`), kept in memory and optionally in a JSON-lines file
//! (`store`). Uses `config` and `model`.

pub mod store;

use crate::config::IncidentSettings;
use crate::model::incident::{add_refusals, Incident, IncidentSession};
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
    /// those above the threshold for `end_after_rounds` rounds (a debounce:
    /// the episode's length stays that of its rounds at or below). Instances
    /// not collected this round change nothing. `refusals` gives the
    /// connections a content refused this round (role, session id), which an
    /// open episode lists.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        cluster: &str,
        settings: &IncidentSettings,
        now: f64,
        views: &[InstanceView],
        holders: impl Fn(i16) -> Vec<IncidentSession>,
        refusals: impl Fn(i16) -> Vec<(String, String)>,
        store: &Store,
    ) {
        for view in views.iter().filter(|v| v.up == Some(true)) {
            let Some(slots) = &view.connections else {
                continue;
            };
            let c = &view.catalog;
            let below = slots.headroom_ordinary <= settings.threshold;
            let refused = refusals(c.content);
            if let (Some(open), false) = (self.open.get(&c.content), refused.is_empty()) {
                store.update(&open.id, |i| add_refusals(&mut i.refusals, &refused));
            }
            match (self.open.get_mut(&c.content), below) {
                (None, true) => {
                    let mut incident = Incident {
                        id: format!("{cluster}/{}/{}", c.content, (now * 1000.0).round() as u64),
                        cluster: cluster.to_owned(),
                        started_at: now,
                        last_below_at: now,
                        ended_at: None,
                        threshold: settings.threshold,
                        instance: c.clone(),
                        figures: slots.clone(),
                        rounds: 1,
                        lowest_headroom: slots.headroom_ordinary,
                        peak_used: slots.used,
                        sessions: holders(c.content),
                        refusals: Vec::new(),
                    };
                    add_refusals(&mut incident.refusals, &refused);
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
                        i.last_below_at = now;
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
                            // `seconds`: at or below the threshold; then
                            // `above_seconds` above it until the episode ended.
                            info!(
                                %cluster, content = c.content, dbid = c.dbid, address = %c.address,
                                port = c.port, seconds = i.seconds().round(),
                                above_seconds = (now - i.last_below_at).round(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figures::Slots;
    use crate::model::view::CatalogView;

    fn round(headroom: f64) -> Vec<InstanceView> {
        let used = 20.0 - headroom;
        vec![InstanceView {
            catalog: CatalogView {
                content: 1,
                dbid: 3,
                role: 'p',
                preferred_role: 'p',
                status: 'u',
                mode: 'n',
                hostname: "sdw1".into(),
                address: "10.0.0.1".into(),
                port: 6001,
            },
            up: Some(true),
            error: None,
            connections: Some(Slots {
                used,
                max_connections: 30.0,
                superuser_reserved: 10.0,
                headroom_ordinary: headroom,
                ..Slots::default()
            }),
            prepared: None,
            locks: None,
            replication: None,
            top_users: Vec::new(),
            top_applications: Vec::new(),
            backends: Vec::new(),
            waiting: Vec::new(),
            headroom_history: Vec::new(),
        }]
    }

    /// What the real cluster showed: headroom 0 in three rounds 5 s apart,
    /// then three rounds above it that end the episode. It lasted 10 s, from
    /// the first to the last round at 0, not the 25 s to the end.
    #[test]
    fn an_episode_lasts_from_its_first_to_its_last_round_at_the_threshold() {
        let settings = IncidentSettings::default();
        assert_eq!(settings.end_after_rounds, 3);
        let store = Store::in_memory(10);
        let mut d = Detector::default();
        let t0 = 1_796_169_600.0;
        for (i, headroom) in [0.0, 0.0, 0.0, 6.0, 7.0, 8.0].into_iter().enumerate() {
            let now = t0 + 5.0 * i as f64;
            d.observe(
                "edw",
                &settings,
                now,
                &round(headroom),
                |_| Vec::new(),
                // Refusals the log showed in the second round (two of session
                // 14) and in the fifth, above the threshold but before the end.
                |_| match i {
                    1 => vec![("app".into(), "con14".into()); 2],
                    4 => vec![("app".into(), "con31".into())],
                    _ => Vec::new(),
                },
                &store,
            );
        }
        let [episode] = <[Incident; 1]>::try_from(store.list()).unwrap();
        assert_eq!(episode.started_at, t0);
        assert_eq!(episode.last_below_at, t0 + 10.0);
        assert_eq!(episode.seconds(), 10.0);
        assert_eq!(episode.ended_at, Some(t0 + 25.0));
        assert_eq!(episode.rounds, 3);
        let refusals: Vec<(&str, &str, u64)> = episode
            .refusals
            .iter()
            .map(|r| (r.usename.as_str(), r.sess_id.as_str(), r.count))
            .collect();
        assert_eq!(refusals, [("app", "con14", 2), ("app", "con31", 1)]);
    }
}
