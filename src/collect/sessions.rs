//! Who holds the segment slots. Every query executor on a segment carries the
//! `sess_id` of the coordinator session it serves; the coordinator's own
//! `pg_stat_activity` says whose session that is. Joining the two (across the
//! instances of one round) attributes segment backends to coordinator
//! sessions, users and applications, and tells cached gangs of idle sessions
//! from executors at work. The limits give a configuration-risk figure: how
//! many sessions at a typical gang size the segments can hold, against the
//! coordinator's slots.

use super::{items, top_n, ClusterCtx, Collector, InstanceRows, Row, OTHER};
use crate::config::CollectorName;
use crate::family::Family;
use crate::metrics::{Desc, Writer};
use std::collections::{BTreeMap, HashMap};

pub struct Sessions;

static BACKENDS: Desc = Desc::gauge(
    "greenplum_backends",
    "Client backends on the instance by kind: executor_active (query executors of a coordinator \
     session that is not idle), executor_idle_session (cached gangs of an idle coordinator session, \
     released after gp_vmem_idle_resource_timeout), executor_orphaned (of no live coordinator \
     session), executor_unattributed (coordinator not read this round), dispatcher (coordinator \
     sessions, on the coordinator), utility (local and utility-mode sessions), exporter.",
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

const EXECUTOR_KINDS: [&str; 4] = [
    "executor_active",
    "executor_idle_session",
    "executor_orphaned",
    "executor_unattributed",
];
const LOCAL_KINDS: [&str; 2] = ["utility", "exporter"];

impl Collector for Sessions {
    fn name(&self) -> CollectorName {
        CollectorName::Sessions
    }

    fn sql(&self, family: Family) -> &'static str {
        match family {
            Family::Gp6 => concat!(
                include_str!("client_backends_gp6.sql"),
                include_str!("sessions.sql")
            ),
            Family::Gp7 => concat!(
                include_str!("client_backends_gp7.sql"),
                include_str!("sessions.sql")
            ),
        }
    }

    fn write_cluster(&self, instances: &[InstanceRows], ctx: &ClusterCtx, out: &mut Writer) {
        let coordinator = instances.iter().find(|i| i.content < 0);
        let sessions = coordinator.map(|c| coordinator_sessions(&c.rows));
        let mut held = Attribution::default();
        for inst in instances {
            if inst.content < 0 {
                let dispatchers = items(&inst.rows, "by_session").map(|r| r.value).sum();
                out.sample(
                    &BACKENDS,
                    inst.labels,
                    &[("kind", "dispatcher")],
                    dispatchers,
                );
            } else {
                let kinds = held.add_segment(&inst.rows, sessions.as_ref());
                for (kind, n) in EXECUTOR_KINDS.iter().zip(kinds) {
                    out.sample(&BACKENDS, inst.labels, &[("kind", kind)], n);
                }
            }
            for kind in LOCAL_KINDS {
                let n = items(&inst.rows, "local")
                    .filter(|r| r.label(0) == kind)
                    .map(|r| r.value)
                    .sum();
                out.sample(&BACKENDS, inst.labels, &[("kind", kind)], n);
            }
        }
        let top = ctx.cluster.top_n;
        let l = ctx.labels;
        held.write_by(
            &held.by_user,
            "usename",
            top.usename,
            (&BY_USER, &BY_USER_MAX),
            l,
            out,
        );
        let apps = (&BY_APPLICATION, &BY_APPLICATION_MAX);
        held.write_by(
            &held.by_application,
            "application_name",
            top.application_name,
            apps,
            l,
            out,
        );
        if let Some(sessions) = &sessions {
            held.write_sessions(sessions, top.sessions, l, out);
        }
        write_overcommit(instances, l, out);
    }
}

/// A coordinator session as the coordinator's `pg_stat_activity` shows it.
struct Session<'r> {
    usename: &'r str,
    application_name: &'r str,
    client_addr: &'r str,
    state: &'r str,
    age: f64,
}

fn coordinator_sessions<'r>(rows: &[&'r Row]) -> HashMap<&'r str, Session<'r>> {
    items(rows, "coordinator_session")
        .map(|r| {
            let session = Session {
                usename: r.label(1),
                application_name: r.label(2),
                client_addr: r.label(3),
                state: r.label(4),
                age: r.value,
            };
            (r.label(0), session)
        })
        .collect()
}

/// Segment backends of attributed sessions: per session (summed over
/// segments), and per user and application for each segment.
#[derive(Default)]
struct Attribution<'r> {
    by_session: BTreeMap<&'r str, f64>,
    /// One map per segment: name -> backends there.
    by_user: Vec<BTreeMap<&'r str, f64>>,
    by_application: Vec<BTreeMap<&'r str, f64>>,
}

impl<'r> Attribution<'r> {
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

    /// Sum over segments and the most on one segment, for the top `n` names
    /// by sum and `other` for the rest.
    fn write_by(
        &self,
        per_segment: &[BTreeMap<&'r str, f64>],
        label: &str,
        n: usize,
        (sum_desc, max_desc): (&'static Desc, &'static Desc),
        labels: &str,
        out: &mut Writer,
    ) {
        let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
        for segment in per_segment {
            for (name, v) in segment {
                *sums.entry(name).or_default() += v;
            }
        }
        let (kept, rest) = top_n(sums, n);
        for (name, sum) in &kept {
            out.sample(sum_desc, labels, &[(label, name)], *sum);
            let most = most_on_one_segment(per_segment, &[name]);
            out.sample(max_desc, labels, &[(label, name)], most);
        }
        if !rest.is_empty() {
            let sum = rest.iter().map(|(_, v)| v).sum();
            out.sample(sum_desc, labels, &[(label, OTHER)], sum);
            let names: Vec<&str> = rest.iter().map(|(name, _)| *name).collect();
            let most = most_on_one_segment(per_segment, &names);
            out.sample(max_desc, labels, &[(label, OTHER)], most);
        }
    }

    fn write_sessions(
        &self,
        sessions: &HashMap<&str, Session>,
        n: usize,
        labels: &str,
        out: &mut Writer,
    ) {
        let (kept, rest) = top_n(self.by_session.iter().map(|(id, v)| (*id, *v)), n);
        for (id, backends) in kept {
            let s = &sessions[id];
            let session_labels = [
                ("sess_id", id),
                ("usename", s.usename),
                ("application_name", s.application_name),
                ("client_addr", s.client_addr),
                ("state", s.state),
            ];
            out.sample(&BY_SESSION, labels, &session_labels, backends);
            out.sample(&SESSION_AGE, labels, &session_labels, s.age);
        }
        if !rest.is_empty() {
            let other = [
                ("sess_id", OTHER),
                ("usename", ""),
                ("application_name", ""),
                ("client_addr", ""),
                ("state", ""),
            ];
            out.sample(
                &BY_SESSION,
                labels,
                &other,
                rest.iter().map(|(_, v)| v).sum(),
            );
        }
    }
}

/// The most backends `names` hold together on any one segment.
fn most_on_one_segment(per_segment: &[BTreeMap<&str, f64>], names: &[&str]) -> f64 {
    per_segment
        .iter()
        .map(|segment| names.iter().filter_map(|n| segment.get(n)).sum::<f64>())
        .fold(0.0, f64::max)
}

/// The configuration-risk figures, when the coordinator and at least one
/// segment were read this round.
fn write_overcommit(instances: &[InstanceRows], labels: &str, out: &mut Writer) {
    let value = |i: &InstanceRows, item: &str| super::item(&i.rows, item);
    let Some(coordinator_slots) = instances
        .iter()
        .find(|i| i.content < 0)
        .and_then(|c| value(c, "ordinary_slots"))
    else {
        return;
    };
    let segments = instances.iter().filter(|i| i.content >= 0);
    let slots = segments.clone().filter_map(|s| value(s, "ordinary_slots"));
    let Some(segment_slots) = slots.reduce(f64::min) else {
        return;
    };
    // The largest cached gang any segment allows is the risk to plan for.
    let threshold = segments
        .filter_map(|s| value(s, "cached_segworkers_threshold"))
        .fold(0.0, f64::max);
    let capacity = (segment_slots / (1.0 + threshold)).floor().max(0.0);
    out.sample(&CAPACITY, labels, &[], capacity);
    out.sample(&COORDINATOR_SLOTS, labels, &[], coordinator_slots);
    if capacity > 0.0 {
        out.sample(&OVERCOMMIT, labels, &[], coordinator_slots / capacity);
    }
}
