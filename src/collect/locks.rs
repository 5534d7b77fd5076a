//! Lock waits: waiting backends by lock type and mode, distinct blockers and
//! the longest current wait. A statement queued in a resource queue is not a
//! lock wait here (on GP6 it is an ungranted lock of type `resource queue`):
//! `greenplum_backends_waiting{reason="resource_queue"}` counts it.

use super::{item, items, total, Collector, Ctx, Row};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::family::Family;
use crate::model::figures::LockFigures;

pub struct Locks;

static WAITING: Desc = Desc::gauge(
    "greenplum_lock_waiting_backends",
    "Backends waiting for a lock on the instance (not statements queued in a resource queue).",
);
static WAITERS: Desc = Desc::gauge(
    "greenplum_lock_waiters",
    "Backends waiting for a lock, by lock type and requested mode (only combinations present).",
);
static BLOCKERS: Desc = Desc::gauge(
    "greenplum_lock_blockers",
    "Distinct sessions holding a lock that another backend waits for.",
);
static LONGEST: Desc = Desc::gauge(
    "greenplum_lock_wait_longest_seconds",
    "Longest current lock wait (0 when nothing waits).",
);

impl Collector for Locks {
    fn name(&self) -> CollectorName {
        CollectorName::Locks
    }

    fn sql(&self, family: Family) -> &'static str {
        match family {
            Family::Gp6 => include_str!("locks_gp6.sql"),
            Family::Gp7 => include_str!("locks_gp7.sql"),
        }
    }

    fn write(&self, rows: &[&Row], ctx: &Ctx, out: &mut Writer) {
        let l = ctx.labels;
        for r in items(rows, "waiters") {
            let labels = [("locktype", r.label(0)), ("mode", r.label(1))];
            out.sample(&WAITERS, l, &labels, r.value);
        }
        let w = figures(rows);
        out.sample(&WAITING, l, &[], w.waiting);
        out.sample(&BLOCKERS, l, &[], w.blockers);
        out.sample(&LONGEST, l, &[], w.longest_wait_seconds);
    }
}

pub fn figures(rows: &[&Row]) -> LockFigures {
    LockFigures {
        waiting: total(items(rows, "waiters").map(|r| r.value)),
        blockers: item(rows, "blockers").unwrap_or(0.0),
        longest_wait_seconds: item(rows, "longest_wait").unwrap_or(0.0),
    }
}
