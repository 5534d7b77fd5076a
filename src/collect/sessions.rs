//! Who holds the segment slots. Every query executor on a segment carries the
//! `sess_id` of the coordinator session it serves; the coordinator's own
//! `pg_stat_activity` says whose session that is. Joining the two (across the
//! instances of one round) attributes segment backends to coordinator
//! sessions, users and applications, and tells cached gangs of idle sessions
//! from executors at work. The limits give a configuration-risk figure: how
//! many sessions at a typical gang size the segments can hold, against the
//! coordinator's slots.

use super::{items, top_n, total, ClusterCtx, Collector, InstanceRows, Row, OTHER};
use crate::config::{CollectorName, TopN};
use crate::metrics::{Desc, Writer};
use crate::model::attribution::{Attribution, Holder, Overcommit, SessionHolder, SessionIdentity};
use crate::model::family::Family;
use crate::model::incident::IncidentSession;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct Sessions;

static BACKENDS: Desc = Desc::gauge(
    "greenplum_backends",
    "Client backends on the instance by kind: executor_active (query executors of a coordinator \
     session that is not idle), executor_idle_session (cached gangs of an idle coordinator session, \
     released after gp_vmem_idle_resource_timeout), executor_orphaned (of no live coordinator \
     session), executor_unattributed (coordinator not read this round; present only then), dispatcher (on the \
     coordinator: sessions seen holding executors on a segment), utility (local and utility-mode \
     sessions; on the coordinator also sessions never seen dispatching), exporter.",
);
static SESSIONS: Desc = Desc::gauge(
    "greenplum_sessions",
    "Distributed sessions on the instance (kind=\"distributed\"): on a segment, distinct coordinator \
     session ids of its query executors; on the coordinator, sessions seen holding executors on a \
     segment. Local sessions (one backend each) are greenplum_backends of kind utility and exporter.",
);
static BY_USER: Desc = Desc::gauge(
    "greenplum_segment_backends_by_user",
    "Segment backends held by the coordinator sessions of a role, summed over segments; the top N \
     roles, the rest as usename=\"other\".",
);
static BY_USER_MAX: Desc = Desc::gauge(
    "greenplum_segment_backends_by_user_max",
    "Segment backends held by the coordinator sessions of a role on the segment where it holds \
     most (same roles as greenplum_segment_backends_by_user).",
);
static BY_APPLICATION: Desc = Desc::gauge(
    "greenplum_segment_backends_by_application",
    "Segment backends held by coordinator sessions by their application_name, summed over \
     segments; the top N, the rest as application_name=\"other\".",
);
static BY_APPLICATION_MAX: Desc = Desc::gauge(
    "greenplum_segment_backends_by_application_max",
    "Segment backends held by coordinator sessions by application_name on the segment where it \
     holds most (same applications as greenplum_segment_backends_by_application).",
);
static BY_SESSION: Desc = Desc::gauge(
    "greenplum_session_segment_backends",
    "Segment backends held by a coordinator session, summed over segments; the top N sessions, \
     the rest as sess_id=\"other\".",
);
static SESSION_AGE: Desc = Desc::gauge(
    "greenplum_session_age_seconds",
    "Age of a coordinator session listed in greenplum_session_segment_backends.",
);
static CAPACITY: Desc = Desc::gauge(
    "greenplum_config_segment_session_capacity",
    "Coordinator sessions the smallest segment's ordinary slots can hold at a typical gang size: \
     floor((max_connections - superuser_reserved_connections) / (1 + gp_cached_segworkers_threshold)).",
);
static COORDINATOR_SLOTS: Desc = Desc::gauge(
    "greenplum_config_coordinator_session_slots",
    "Ordinary slots of the coordinator: max_connections - superuser_reserved_connections.",
);
static OVERCOMMIT: Desc = Desc::gauge(
    "greenplum_config_segment_overcommit_ratio",
    "greenplum_config_coordinator_session_slots over greenplum_config_segment_session_capacity: \
     above 1 a full coordinator can exhaust the segments' ordinary slots.",
);

/// Coordinator sessions seen holding executors on a segment, this round or
/// earlier, for as long as they are on the coordinator. Every coordinator
/// session has a positive `sess_id`, utility-mode ones included, so only
/// executors on a segment show that a session dispatches.
#[derive(Debug, Default)]
pub struct Dispatchers(BTreeSet<String>);

impl Dispatchers {
    /// Adds the sessions with executors on the segments collected this round
    /// and, when the coordinator was read, forgets those no longer on it.
    pub fn update(&mut self, instances: &[InstanceRows]) {
        for segment in instances.iter().filter(|i| i.content >= 0) {
            for r in items(&segment.rows, "by_session") {
                if !self.0.contains(r.label(0)) {
                    self.0.insert(r.label(0).to_owned());
                }
            }
        }
        if let Some(c) = instances.iter().find(|i| i.content < 0) {
            let live: BTreeSet<&str> = items(&c.rows, "by_session").map(|r| r.label(0)).collect();
            self.0.retain(|id| live.contains(id.as_str()));
        }
    }

    fn contains(&self, sess_id: &str) -> bool {
        self.0.contains(sess_id)
    }
}

const EXECUTOR_KINDS: [&str; 4] = [
    "executor_active",
    "executor_idle_session",
    "executor_orphaned",
    "executor_unattributed",
];

/// Kinds that are zero on a healthy instance: served only while non-zero
/// (at 1024 segments a zero series costs ~75 kB a scrape). Unattributed
/// executors exist only while the coordinator is not read; orphaned ones are
/// a fault (alert `GreenplumOrphanedExecutors` tests `> 0`).
const SERVED_WHILE_PRESENT: [&str; 2] = ["executor_orphaned", "executor_unattributed"];

impl Collector for Sessions {
    fn name(&self) -> CollectorName {
        CollectorName::Sessions
    }

    fn sql(&self, family: Family) -> &'static str {
        on_client_backends!(family, "sessions.sql")
    }
}

/// Joins the sessions collector's rows of the instances collected this round;
/// `dispatchers` already holds this round's (see [`Dispatchers::update`]).
pub fn attribute(instances: &[InstanceRows], top: TopN, dispatchers: &Dispatchers) -> Attribution {
    let coordinator = instances.iter().find(|i| i.content < 0);
    let sessions = coordinator.map(|c| coordinator_sessions(&c.rows));
    let mut held = Held::default();
    let (kinds, distributed_sessions) = instances
        .iter()
        .map(|inst| {
            let local = |kind: &str| {
                let rows = items(&inst.rows, "local").filter(|r| r.label(0) == kind);
                total(rows.map(|r| r.value))
            };
            let (utility, exporter) = (local("utility"), local("exporter"));
            if inst.content < 0 {
                // One backend per coordinator session.
                let (mut dispatching, mut undisclosed) = (0.0, 0.0);
                for r in items(&inst.rows, "by_session") {
                    match dispatchers.contains(r.label(0)) {
                        true => dispatching += r.value,
                        false => undisclosed += r.value,
                    }
                }
                let kinds = vec![
                    ("dispatcher", dispatching),
                    ("utility", utility + undisclosed),
                    ("exporter", exporter),
                ];
                (kinds, dispatching)
            } else {
                let executors = held.add_segment(&inst.rows, sessions.as_ref());
                let mut kinds: Vec<(&'static str, f64)> =
                    EXECUTOR_KINDS.into_iter().zip(executors).collect();
                kinds.extend([("utility", utility), ("exporter", exporter)]);
                let distributed = items(&inst.rows, "by_session").count() as f64;
                (kinds, distributed)
            }
        })
        .unzip();
    let (sessions, other_sessions) = match &sessions {
        Some(s) => held.top_sessions(s, top.sessions),
        None => (Vec::new(), 0.0),
    };
    Attribution {
        kinds,
        distributed_sessions,
        by_user: top_holders(&held.by_user, top.usename),
        by_application: top_holders(&held.by_application, top.application_name),
        sessions,
        other_sessions,
        overcommit: overcommit(instances),
        lowest_headroom: Vec::new(),
    }
}

/// Writes the attribution's samples; `instances` as given to [`attribute`].
pub fn write(a: &Attribution, instances: &[InstanceRows], ctx: &ClusterCtx, out: &mut Writer) {
    for (inst, kinds) in instances.iter().zip(&a.kinds) {
        for (kind, n) in kinds {
            if SERVED_WHILE_PRESENT.contains(kind) && *n == 0.0 {
                continue;
            }
            out.sample(&BACKENDS, inst.labels, &[("kind", kind)], *n);
        }
    }
    // Local sessions are one backend each: greenplum_backends utility plus
    // exporter, not served again (at 1024 segments ~65 kB a scrape).
    for (inst, distributed) in instances.iter().zip(&a.distributed_sessions) {
        out.sample(
            &SESSIONS,
            inst.labels,
            &[("kind", "distributed")],
            *distributed,
        );
    }
    let l = ctx.labels;
    let by = [
        (&a.by_user, "usename", &BY_USER, &BY_USER_MAX),
        (
            &a.by_application,
            "application_name",
            &BY_APPLICATION,
            &BY_APPLICATION_MAX,
        ),
    ];
    for (holders, label, sum, max) in by {
        for h in holders {
            out.sample(sum, l, &[(label, &h.name)], h.segment_backends);
            out.sample(max, l, &[(label, &h.name)], h.most_on_one_segment);
        }
    }
    for holder in &a.sessions {
        let s = &holder.session;
        let labels = [
            ("sess_id", s.sess_id.as_str()),
            ("usename", &s.usename),
            ("application_name", &s.application_name),
            ("client_addr", &s.client_addr),
            ("state", &s.state),
        ];
        out.sample(&BY_SESSION, l, &labels, holder.segment_backends);
        out.sample(&SESSION_AGE, l, &labels, s.age_seconds);
    }
    if a.other_sessions > 0.0 {
        let other = [
            ("sess_id", OTHER),
            ("usename", ""),
            ("application_name", ""),
            ("client_addr", ""),
            ("state", ""),
        ];
        out.sample(&BY_SESSION, l, &other, a.other_sessions);
    }
    if let Some(o) = &a.overcommit {
        out.sample(&CAPACITY, l, &[], o.segment_session_capacity);
        out.sample(&COORDINATOR_SLOTS, l, &[], o.coordinator_session_slots);
        if let Some(ratio) = o.ratio {
            out.sample(&OVERCOMMIT, l, &[], ratio);
        }
    }
}

/// A coordinator session as the coordinator's `pg_stat_activity` shows it.
pub(super) struct Session<'r> {
    usename: &'r str,
    pub(super) application_name: &'r str,
    client_addr: &'r str,
    state: &'r str,
    /// Empty unless query text is read (`incidents.query_text`).
    query: &'r str,
    age: f64,
}

impl Session<'_> {
    fn identity(&self, sess_id: &str) -> SessionIdentity {
        SessionIdentity {
            sess_id: sess_id.to_owned(),
            usename: self.usename.to_owned(),
            application_name: self.application_name.to_owned(),
            client_addr: self.client_addr.to_owned(),
            state: self.state.to_owned(),
            age_seconds: self.age,
        }
    }
}

/// The coordinator's sessions by `sess_id`, from its rows.
pub(super) fn coordinator_sessions<'r>(rows: &[&'r Row]) -> HashMap<&'r str, Session<'r>> {
    items(rows, "coordinator_session")
        .map(|r| {
            let session = Session {
                usename: r.label(1),
                application_name: r.label(2),
                client_addr: r.label(3),
                state: r.label(4),
                query: r.label(5),
                age: r.value,
            };
            (r.label(0), session)
        })
        .collect()
}

/// Segment backends of attributed sessions: per session (summed over
/// segments), and per user and application for each segment.
#[derive(Default)]
struct Held<'r> {
    by_session: BTreeMap<&'r str, f64>,
    /// One map per segment: name -> backends there.
    by_user: Vec<BTreeMap<&'r str, f64>>,
    by_application: Vec<BTreeMap<&'r str, f64>>,
}

impl<'r> Held<'r> {
    /// Adds one segment's executors; returns them by kind, in `EXECUTOR_KINDS` order.
    fn add_segment(
        &mut self,
        rows: &[&'r Row],
        sessions: Option<&HashMap<&'r str, Session<'r>>>,
    ) -> [f64; 4] {
        let mut kinds = [0.0; 4];
        let mut users = BTreeMap::new();
        let mut applications = BTreeMap::new();
        for r in items(rows, "by_session") {
            let n = r.value;
            let Some(sessions) = sessions else {
                kinds[3] += n;
                continue;
            };
            let Some(s) = sessions.get(r.label(0)) else {
                kinds[2] += n;
                continue;
            };
            kinds[usize::from(s.state == "idle")] += n;
            *self.by_session.entry(r.label(0)).or_default() += n;
            *users.entry(s.usename).or_default() += n;
            *applications.entry(s.application_name).or_default() += n;
        }
        self.by_user.push(users);
        self.by_application.push(applications);
        kinds
    }

    /// The `n` sessions holding most, and the backends of the rest.
    fn top_sessions(
        &self,
        sessions: &HashMap<&str, Session>,
        n: usize,
    ) -> (Vec<SessionHolder>, f64) {
        let (kept, rest) = top_n(self.by_session.iter().map(|(id, v)| (*id, *v)), n);
        let kept = kept
            .into_iter()
            .map(|(id, backends)| SessionHolder {
                session: sessions[id].identity(id),
                segment_backends: backends,
            })
            .collect();
        (kept, total(rest.iter().map(|(_, v)| *v)))
    }
}

/// The coordinator sessions holding most backends on the instance of
/// `content` (on the coordinator: most segment backends), at most `n`, with
/// their backends there and on every instance collected this round. Empty
/// when the coordinator was not read.
pub fn holders_on(
    instances: &[InstanceRows],
    content: i16,
    n: usize,
    with_query: bool,
) -> Vec<IncidentSession> {
    let Some(coordinator) = instances.iter().find(|i| i.content < 0) else {
        return Vec::new();
    };
    let sessions = coordinator_sessions(&coordinator.rows);
    let mut total: HashMap<&str, f64> = HashMap::new();
    let mut here: HashMap<&str, f64> = HashMap::new();
    for inst in instances {
        for r in items(&inst.rows, "by_session") {
            if inst.content >= 0 {
                *total.entry(r.label(0)).or_default() += r.value;
            }
            if inst.content == content {
                *here.entry(r.label(0)).or_default() += r.value;
            }
        }
    }
    let key = |id: &str| {
        if content < 0 {
            total.get(id)
        } else {
            here.get(id)
        }
    };
    let held = sessions
        .keys()
        .filter_map(|id| Some((*id, *key(id)?)))
        .filter(|(_, backends)| *backends > 0.0);
    let (kept, _) = top_n(held, n);
    kept.into_iter()
        .map(|(id, _)| {
            let s = &sessions[id];
            IncidentSession {
                session: s.identity(id),
                backends_here: here.get(id).copied().unwrap_or(0.0),
                backends_total: total.get(id).copied().unwrap_or(0.0),
                query: with_query.then(|| s.query.to_owned()),
            }
        })
        .collect()
}

/// Sum over segments and the most on one segment, for the `n` names holding
/// most and `other` for the rest.
fn top_holders(per_segment: &[BTreeMap<&str, f64>], n: usize) -> Vec<Holder> {
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    for segment in per_segment {
        for (name, v) in segment {
            *sums.entry(name).or_default() += v;
        }
    }
    let (kept, rest) = top_n(sums, n);
    let mut holders: Vec<Holder> = kept
        .iter()
        .map(|(name, sum)| Holder {
            name: (*name).to_owned(),
            segment_backends: *sum,
            most_on_one_segment: most_on_one_segment(per_segment, &[name]),
        })
        .collect();
    if !rest.is_empty() {
        let names: Vec<&str> = rest.iter().map(|(name, _)| *name).collect();
        holders.push(Holder {
            name: OTHER.to_owned(),
            segment_backends: total(rest.iter().map(|(_, v)| *v)),
            most_on_one_segment: most_on_one_segment(per_segment, &names),
        });
    }
    holders
}

/// The most backends `names` hold together on any one segment.
fn most_on_one_segment(per_segment: &[BTreeMap<&str, f64>], names: &[&str]) -> f64 {
    per_segment
        .iter()
        .map(|segment| total(names.iter().filter_map(|n| segment.get(n).copied())))
        .fold(0.0, f64::max)
}

/// The configuration-risk figures, when the coordinator and at least one
/// segment were read this round.
fn overcommit(instances: &[InstanceRows]) -> Option<Overcommit> {
    let value = |i: &InstanceRows, item: &str| super::item(&i.rows, item);
    let coordinator_slots = instances
        .iter()
        .find(|i| i.content < 0)
        .and_then(|c| value(c, "ordinary_slots"))?;
    let segments = instances.iter().filter(|i| i.content >= 0);
    let segment_slots = segments
        .clone()
        .filter_map(|s| value(s, "ordinary_slots"))
        .reduce(f64::min)?;
    // The largest cached gang any segment allows is the risk to plan for.
    let threshold = segments
        .filter_map(|s| value(s, "cached_segworkers_threshold"))
        .fold(0.0, f64::max);
    let capacity = (segment_slots / (1.0 + threshold)).floor().max(0.0);
    Some(Overcommit {
        segment_session_capacity: capacity,
        coordinator_session_slots: coordinator_slots,
        ratio: (capacity > 0.0).then(|| coordinator_slots / capacity),
    })
}
