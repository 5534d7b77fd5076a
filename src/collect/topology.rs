//! Catalog view of the cluster: every instance's status and sync mode as
//! `gp_segment_configuration` records them (mirrors included), and counts.
//! Role and preferred role are labels of `greenplum_instance_info`: after a
//! failover the acting primary is `greenplum_instance_info{role="p",
//! preferred_role="m"}` (what the alert reads), no series of its own.
//! The sync mode only where the content has a mirror: the coordinator row
//! says `n` whenever there is no standby, as do unmirrored segments.

use crate::metrics::{render_labels, Desc, Writer};
use crate::model::catalog::SegmentRow;
use std::collections::{BTreeMap, BTreeSet};

static STATUS_UP: Desc = Desc::gauge(
    "greenplum_catalog_instance_up",
    "1 when gp_segment_configuration marks the instance up (status u), 0 when down.",
);
static SYNCED: Desc = Desc::gauge(
    "greenplum_catalog_instance_synchronized",
    "1 when the catalog mode is s (primary and mirror in sync); only for contents with a mirror \
     (the coordinator: with a standby), where mode means something.",
);
static COUNTS: Desc = Desc::gauge(
    "greenplum_catalog_instances",
    "Catalog rows by role (p/m) and status (u/d); the coordinator rows included.",
);

/// Writes catalog series of `cluster`, one per row by its dbid (which stays
/// with a row across failovers; `greenplum_instance_info` describes it).
pub fn write(rows: &[SegmentRow], cluster: &str, cluster_labels: &str, out: &mut Writer) {
    let mut counts: BTreeMap<(char, char), u32> = BTreeMap::new();
    // Without a mirror (or standby) mode is always n: that is no fault.
    let mirrored: BTreeSet<i16> = rows
        .iter()
        .filter(|r| r.role == 'm')
        .map(|r| r.content)
        .collect();
    for row in rows {
        let l = render_labels(&[
            ("cluster", cluster),
            ("content", &row.content.to_string()),
            ("dbid", &row.dbid.to_string()),
        ]);
        out.sample(&STATUS_UP, &l, &[], f64::from(u8::from(row.status == 'u')));
        if mirrored.contains(&row.content) {
            out.sample(&SYNCED, &l, &[], f64::from(u8::from(row.mode == 's')));
        }
        *counts.entry((row.role, row.status)).or_default() += 1;
    }
    for role in ['p', 'm'] {
        for status in ['u', 'd'] {
            let n = counts.get(&(role, status)).copied().unwrap_or(0);
            let (r, s) = (role.to_string(), status.to_string());
            out.sample(
                &COUNTS,
                cluster_labels,
                &[("role", &r), ("status", &s)],
                f64::from(n),
            );
        }
    }
}
