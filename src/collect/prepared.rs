//! Prepared (two-phase) transactions: count, limit, oldest age and how many
//! are older than the configured threshold (likely orphaned). The headroom
//! (limit - count) is the views' and PromQL's to compute, not a series.

use super::{item, Collector, Ctx, Row};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::family::Family;
use crate::model::figures::PreparedFigures;

pub struct Prepared;

static COUNT: Desc = Desc::gauge(
    "greenplum_prepared_transactions",
    "Prepared transactions on the instance (pg_prepared_xacts).",
);
static MAX: Desc = Desc::gauge(
    "greenplum_prepared_transactions_max",
    "The instance's max_prepared_transactions.",
);
static OLDEST: Desc = Desc::gauge(
    "greenplum_prepared_transactions_oldest_age_seconds",
    "Age of the oldest prepared transaction (0 when none).",
);
static STALE: Desc = Desc::gauge(
    "greenplum_prepared_transactions_stale",
    "Prepared transactions older than the configured prepared_age_threshold (likely orphaned).",
);

impl Collector for Prepared {
    fn name(&self) -> CollectorName {
        CollectorName::Prepared
    }

    fn sql(&self, _family: Family) -> &'static str {
        include_str!("prepared.sql")
    }

    fn write(&self, rows: &[&Row], ctx: &Ctx, out: &mut Writer) {
        let l = ctx.labels;
        let p = figures(rows);
        out.sample(&COUNT, l, &[], p.count);
        out.sample(&MAX, l, &[], p.max);
        out.sample(&OLDEST, l, &[], p.oldest_age_seconds);
        // Zero on a healthy instance, and no signal while zero: served only
        // while there are any (at 1024 segments ~70 kB a scrape).
        if p.stale > 0.0 {
            out.sample(&STALE, l, &[], p.stale);
        }
    }
}

pub fn figures(rows: &[&Row]) -> PreparedFigures {
    let count = item(rows, "count").unwrap_or(0.0);
    let max = item(rows, "max").unwrap_or(0.0);
    PreparedFigures {
        count,
        max,
        headroom: (max - count).max(0.0),
        oldest_age_seconds: item(rows, "oldest_age").unwrap_or(0.0),
        stale: item(rows, "stale").unwrap_or(0.0),
    }
}
