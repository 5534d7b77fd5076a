//! What the benchmark binaries share: the exporter's statement and its
//! collectors' parts, taken from the exporter's source, never copied.

use gpemu_harness::Family;
use greenplum_segment_exporter::collect::{self, tag, COLLECTORS};
use greenplum_segment_exporter::config::CollectorName;
use greenplum_segment_exporter::model::family::Family as ExporterFamily;

fn exporter_family(family: Family) -> ExporterFamily {
    match family {
        Family::Gp6 => ExporterFamily::Gp6,
        Family::Gp7 => ExporterFamily::Gp7,
    }
}

/// The statement the exporter runs on every instance, every collector on.
pub fn exporter_statement(family: Family) -> String {
    collect::statement(exporter_family(family), &CollectorName::ALL)
}

/// Each collector's part of the statement alone, by the collector's tag.
pub fn collector_parts(family: Family) -> Vec<(String, String)> {
    let f = exporter_family(family);
    COLLECTORS
        .iter()
        .map(|c| {
            (
                tag(c.name()).to_owned(),
                format!("SELECT * FROM (\n{}\n) AS t", c.sql(f)),
            )
        })
        .collect()
}
