//! What a round leaves behind besides its samples: the views of its
//! instances and who held the segment slots, and what later rounds need to
//! remember: the coordinator sessions seen dispatching, each content's recent
//! ordinary headroom (the status page's lines), the rounds in which it had
//! none left, and the incidents.

use super::target::Target;
use super::Runner;
use crate::collect::{self, lowest_headroom, sessions};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::attribution::Attribution;
use crate::model::view::{InstanceView, Name};
use std::collections::{BTreeMap, VecDeque};

/// Rounds of headroom each view carries for the status page.
const HISTORY_ROUNDS: usize = 40;

static EXHAUSTED_ROUNDS: Desc = Desc::counter(
    "greenplum_connections_exhausted_rounds_total",
    "Collection rounds in which the instance had no ordinary connection slot left (headroom 0); \
     counts bursts that come and go between two scrapes.",
);

/// The views and attribution of the last round.
#[derive(Default)]
pub(super) struct Digest {
    /// By content, then dbid.
    pub instances: Vec<InstanceView>,
    pub attribution: Option<Attribution>,
}

/// What the rounds so far showed of one content.
#[derive(Default)]
pub(super) struct Memory {
    /// `[unix time, ordinary headroom]` of the last rounds that collected it.
    history: VecDeque<[f64; 2]>,
    exhausted_rounds: u64,
}

impl Runner {
    /// Builds the round's views and attribution and follows them, for a
    /// round that ended at `now` (unix seconds).
    pub(super) fn digest(&mut self, now: f64) {
        let mut targets: Vec<&Target> = self.targets.values().collect();
        targets.sort_by_key(|t| (t.row.content, t.row.dbid));
        let mut instances: Vec<InstanceView> = targets
            .iter()
            .map(|t| t.view(&self.cfg.collectors))
            .collect();
        let collected = super::render::collected(&targets);
        let rows: Vec<_> = collected.iter().map(|(_, r)| *r).collect();
        let session_rows = collect::instance_rows(CollectorName::Sessions, &rows);
        let attribution = self
            .cfg
            .collector_enabled(CollectorName::Sessions)
            .then(|| {
                self.dispatchers.update(&session_rows);
                let mut a = sessions::attribute(&session_rows, self.cfg.top_n, &self.dispatchers);
                for ((i, _), kinds) in collected.iter().zip(&a.kinds) {
                    instances[*i].backends = kinds
                        .iter()
                        .map(|(k, n)| (Name::Borrowed(*k), *n))
                        .collect();
                }
                let top = self.cfg.top_n.application_name;
                a.lowest_headroom = lowest_headroom::segments(&instances, &session_rows, top);
                a
            });

        let live: Vec<i16> = targets.iter().map(|t| t.row.content).collect();
        self.memory.retain(|content, _| live.contains(content));
        for view in &mut instances {
            let memory = self.memory.entry(view.catalog.content).or_default();
            if let (Some(true), Some(slots)) = (view.up, &view.connections) {
                if memory.history.len() == HISTORY_ROUNDS {
                    memory.history.pop_front();
                }
                memory.history.push_back([now, slots.headroom_ordinary]);
                if slots.headroom_ordinary <= 0.0 {
                    memory.exhausted_rounds += 1;
                }
            }
            view.headroom_history = memory.history.iter().copied().collect();
        }

        let settings = &self.cfg.incidents;
        let sessions_on = self.cfg.collector_enabled(CollectorName::Sessions);
        let holders = |content| match sessions_on {
            true => sessions::holders_on(
                &session_rows,
                content,
                settings.sessions,
                settings.query_text_chars > 0,
            ),
            false => Vec::new(),
        };
        let refused: BTreeMap<i16, Vec<(String, String)>> = targets
            .iter()
            .map(|t| (t.row.content, t.take_log_refusals()))
            .collect();
        let refusals = |content| refused.get(&content).cloned().unwrap_or_default();
        self.incidents.observe(
            &self.cfg.name,
            settings,
            now,
            &instances,
            holders,
            refusals,
            &self.store,
        );
        self.digest = Digest {
            instances,
            attribution,
        };
    }

    /// The exhausted-rounds counter of every instance collected this round.
    pub(super) fn write_memory(&self, targets: &[&Target], w: &mut Writer) {
        for t in targets.iter().filter(|t| t.rows_if_up().is_some()) {
            if let Some(m) = self.memory.get(&t.row.content) {
                w.sample(&EXHAUSTED_ROUNDS, &t.labels, &[], m.exhausted_rounds as f64);
            }
        }
    }
}

/// Memory of every content of a cluster.
pub(super) type Memories = BTreeMap<i16, Memory>;
