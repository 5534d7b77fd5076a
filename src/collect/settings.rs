//! Settings that explain the other figures (memory protection, resource
//! manager, gang caching, worker limits).

use super::{items, Collector, Ctx, Row};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::family::Family;

pub struct Settings;

static NUMERIC: Desc = Desc::gauge(
    "greenplum_setting",
    "A numeric or boolean (1 = on) server setting, in the setting's own unit (label unit).",
);
static TEXT: Desc = Desc::gauge(
    "greenplum_setting_info",
    "A textual server setting; the value is in the value label.",
);

impl Collector for Settings {
    fn name(&self) -> CollectorName {
        CollectorName::Settings
    }

    fn sql(&self, _family: Family) -> &'static str {
        include_str!("settings.sql")
    }

    fn write(&self, rows: &[&Row], ctx: &Ctx, out: &mut Writer) {
        for r in items(rows, "numeric") {
            // An empty label is no label to Prometheus: a unitless setting
            // is served without one, the same series in fewer bytes.
            let (name, unit) = (("name", r.label(0)), ("unit", r.label(1)));
            match unit.1.is_empty() {
                true => out.sample(&NUMERIC, ctx.labels, &[name], r.value),
                false => out.sample(&NUMERIC, ctx.labels, &[name, unit], r.value),
            }
        }
        for r in items(rows, "text") {
            let labels = [("name", r.label(0)), ("value", r.label(1))];
            out.sample(&TEXT, ctx.labels, &labels, 1.0);
        }
    }
}
