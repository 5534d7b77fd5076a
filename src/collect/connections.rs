//! Connection slots: client backends by state, the limits, headroom for
//! ordinary roles and superusers, oldest idle transaction and active query,
//! and counts by user, database and application.

use super::{item, items, top_n, total, Collector, Ctx, Row, OTHER};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::family::Family;
use crate::model::figures::Slots;

pub struct Connections;

static BY_STATE: Desc = Desc::gauge(
    "greenplum_connections",
    "Client backends on the instance by state (each holds a max_connections slot).",
);
static USED: Desc = Desc::gauge(
    "greenplum_connections_used",
    "max_connections slots in use: client backends (the exporter's own included) and, on GP6, \
     walsenders.",
);
static WALSENDERS: Desc = Desc::gauge(
    "greenplum_connections_walsenders",
    "Walsenders holding max_connections slots (GP6 only: PostgreSQL 12+ gives them their own).",
);
static WAITING: Desc = Desc::gauge(
    "greenplum_backends_waiting",
    "Client backends waiting, by reason: lock, resource_group, resource_queue, replication and, \
     on GP7+, the other wait_event_types of active backends (lwlock, io, ipc, timeout, ...); \
     a reason is present only while a backend waits for it.",
);
static MAX: Desc = Desc::gauge(
    "greenplum_connections_max",
    "The instance's max_connections.",
);
static RESERVED: Desc = Desc::gauge(
    "greenplum_connections_superuser_reserved",
    "The instance's superuser_reserved_connections.",
);
static HEADROOM_ORDINARY: Desc = Desc::gauge(
    "greenplum_connections_headroom_ordinary",
    "Slots left for non-superuser roles: max_connections - superuser_reserved_connections - used (not below 0).",
);
static OLDEST_IDLE_IN_TX: Desc = Desc::gauge(
    "greenplum_connections_oldest_idle_in_transaction_seconds",
    "Longest time a client backend has been idle in transaction (0 when none).",
);
static OLDEST_ACTIVE: Desc = Desc::gauge(
    "greenplum_connections_oldest_active_query_seconds",
    "Age of the oldest running query, the exporter's own excluded (0 when none).",
);
static BY_USER: Desc = Desc::gauge(
    "greenplum_connections_by_user",
    "Client backends by role; beyond the top-N cap the rest is summed as usename=\"other\".",
);
static BY_DATABASE: Desc = Desc::gauge(
    "greenplum_connections_by_database",
    "Client backends by database; beyond the top-N cap the rest is summed as datname=\"other\".",
);
static BY_APPLICATION: Desc = Desc::gauge(
    "greenplum_connections_by_application",
    "Client backends by application_name (empty for query executors); beyond the top-N cap the rest is summed as application_name=\"other\".",
);

/// The states every instance shows in normal work: always exported, zero
/// when absent, so graphs and rules over them have no gaps. The rare ones
/// (`idle in transaction (aborted)`, `fastpath function call`, `disabled`,
/// or any a newer server adds) are exported while present: at 1024
/// segments a zero series costs ~90 kB a scrape.
const STATES: [&str; 3] = ["active", "idle", "idle in transaction"];

/// On GP6+ segments one slot above the superuser reserve is kept for the FTS prober.
const FTS_SLOTS_ON_SEGMENTS: f64 = 1.0;

impl Collector for Connections {
    fn name(&self) -> CollectorName {
        CollectorName::Connections
    }

    fn sql(&self, family: Family) -> &'static str {
        on_client_backends!(family, "connections.sql")
    }

    fn write(&self, rows: &[&Row], ctx: &Ctx, out: &mut Writer) {
        let l = ctx.labels;
        for state in STATES {
            let n = total(
                items(rows, "state")
                    .filter(|r| r.label(0) == state)
                    .map(|r| r.value),
            );
            out.sample(&BY_STATE, l, &[("state", state)], n);
        }
        // The rare states, as the server reports them.
        for r in items(rows, "state").filter(|r| !STATES.contains(&r.label(0))) {
            out.sample(&BY_STATE, l, &[("state", r.label(0))], r.value);
        }
        for (reason, n) in waiting(rows) {
            out.sample(&WAITING, l, &[("reason", &reason)], n);
        }
        let s = slots(rows, ctx.content);
        out.sample(&USED, l, &[], s.used);
        if let Some(n) = s.walsenders {
            out.sample(&WALSENDERS, l, &[], n);
        }
        out.sample(&MAX, l, &[], s.max_connections);
        out.sample(&RESERVED, l, &[], s.superuser_reserved);
        // The superuser headroom and the utilization ratio follow from
        // these in PromQL (docs/metrics.md): not served, at 1024 segments
        // each would cost ~80 kB a scrape.
        out.sample(&HEADROOM_ORDINARY, l, &[], s.headroom_ordinary);

        out.sample(
            &OLDEST_IDLE_IN_TX,
            l,
            &[],
            s.oldest_idle_in_transaction_seconds,
        );
        out.sample(&OLDEST_ACTIVE, l, &[], s.oldest_active_query_seconds);

        let top = ctx.cluster.top_n;
        write_top_n(
            out,
            &BY_USER,
            l,
            "usename",
            items(rows, "by_user"),
            top.usename,
        );
        write_top_n(
            out,
            &BY_DATABASE,
            l,
            "datname",
            items(rows, "by_database"),
            top.datname,
        );
        let apps = items(rows, "by_application");
        write_top_n(
            out,
            &BY_APPLICATION,
            l,
            "application_name",
            apps,
            top.application_name,
        );
    }
}

/// The slot figures from this collector's rows of an instance of `content`.
pub fn slots(rows: &[&Row], content: i16) -> Slots {
    let walsenders = item(rows, "walsenders");
    let used = total(items(rows, "state").map(|r| r.value)) + walsenders.unwrap_or(0.0);
    let max = item(rows, "max_connections").unwrap_or(0.0);
    let reserved = item(rows, "superuser_reserved_connections").unwrap_or(0.0);
    let fts = if content >= 0 {
        FTS_SLOTS_ON_SEGMENTS
    } else {
        0.0
    };
    let ordinary_slots = max - reserved;
    Slots {
        used,
        walsenders,
        max_connections: max,
        superuser_reserved: reserved,
        headroom_ordinary: (ordinary_slots - used).max(0.0),
        headroom_superuser: (max - fts - used).max(0.0),
        utilization: (ordinary_slots > 0.0).then(|| used / ordinary_slots),
        idle_in_transaction: total(
            items(rows, "state")
                .filter(|r| r.label(0) == "idle in transaction")
                .map(|r| r.value),
        ),
        oldest_idle_in_transaction_seconds: item(rows, "oldest_idle_in_transaction").unwrap_or(0.0),
        oldest_active_query_seconds: item(rows, "oldest_active").unwrap_or(0.0),
    }
}

/// Backends waiting by reason, the reasons with at least one, by name.
pub fn waiting(rows: &[&Row]) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = items(rows, "waiting")
        .map(|r| (r.label(0).to_owned(), r.value))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// The roles (`by_user`) or applications (`by_application`) holding most
/// slots on an instance, at most `n`.
pub fn top_holders(rows: &[&Row], item: &str, n: usize) -> Vec<(String, f64)> {
    let (kept, _) = top_n(items(rows, item).map(|r| (r.label(0), r.value)), n);
    kept.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The `n` largest values by label, and the rest summed as `other`.
fn write_top_n<'r>(
    out: &mut Writer,
    desc: &'static Desc,
    labels: &str,
    label: &str,
    rows: impl Iterator<Item = &'r Row>,
    n: usize,
) {
    let (kept, rest) = top_n(rows.map(|r| (r.label(0), r.value)), n);
    for (name, value) in kept {
        out.sample(desc, labels, &[(label, name)], value);
    }
    if !rest.is_empty() {
        let rest = total(rest.iter().map(|(_, v)| *v));
        out.sample(desc, labels, &[(label, OTHER)], rest);
    }
}
