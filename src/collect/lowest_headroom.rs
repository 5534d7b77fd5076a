//! Who holds the slots of the segments closest to running out: the
//! [`SEGMENTS`] segments with the least ordinary headroom, and their client
//! backends by application, query executors counted under the application of
//! the coordinator session they serve (on a segment they have none of their
//! own). Served for those few segments only, so the dashboard's first row
//! names who fills a segment at the cost of a fixed number of series,
//! whatever the size of the cluster. Who by role needs no series of its own:
//! executors log in as their session's role, so `greenplum_connections_by_user`
//! of the segment says it.

use super::sessions::{coordinator_sessions, Session};
use super::{items, top_n, total, InstanceRows, OTHER};
use crate::metrics::{Desc, Writer};
use crate::model::attribution::SegmentHolders;
use crate::model::view::InstanceView;
use std::collections::{BTreeMap, HashMap};

/// Segments listed: a screen's table of them, and at most
/// `SEGMENTS × (top_n.application_name + 1)` series.
pub const SEGMENTS: usize = 5;

static BY_APPLICATION: Desc = Desc::gauge(
    "greenplum_lowest_headroom_connections_by_application",
    "Client backends of the 5 segments with the least ordinary headroom, by application: query \
     executors under the application_name of the coordinator session they serve (empty when \
     that session is not known), other sessions under their own; the top N applications, the \
     rest as application_name=\"other\".",
);

/// The [`SEGMENTS`] segments collected this round with the least ordinary
/// headroom (ties by content, so the list holds still while they last), and
/// the `n` applications holding most of each, then `other`. `views` are the
/// round's instance views, `instances` the sessions collector's rows of the
/// instances collected this round.
pub fn segments(
    views: &[InstanceView],
    instances: &[InstanceRows],
    n: usize,
) -> Vec<SegmentHolders> {
    let mut lowest: Vec<(f64, i16)> = views
        .iter()
        .filter(|v| v.catalog.content >= 0 && v.up == Some(true))
        .filter_map(|v| Some((v.connections.as_ref()?.headroom_ordinary, v.catalog.content)))
        .collect();
    lowest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    lowest.truncate(SEGMENTS);
    let sessions = instances
        .iter()
        .find(|i| i.content < 0)
        .map(|c| coordinator_sessions(&c.rows));
    lowest
        .into_iter()
        .filter_map(|(headroom, content)| {
            let segment = instances.iter().find(|i| i.content == content)?;
            Some(SegmentHolders {
                content,
                headroom_ordinary: headroom,
                by_application: by_application(segment, sessions.as_ref(), n),
            })
        })
        .collect()
}

/// One segment's client backends by application, the `n` holding most, then
/// `other`. Together they are all its client backends (walsenders, which
/// hold slots on GP6, are no client's).
fn by_application(
    segment: &InstanceRows,
    sessions: Option<&HashMap<&str, Session>>,
    n: usize,
) -> Vec<(String, f64)> {
    let mut held: BTreeMap<&str, f64> = BTreeMap::new();
    for r in items(&segment.rows, "local") {
        *held.entry(r.label(1)).or_default() += r.value;
    }
    for r in items(&segment.rows, "by_session") {
        let session = sessions.and_then(|s| s.get(r.label(0)));
        let application = session.map_or("", |s| s.application_name);
        *held.entry(application).or_default() += r.value;
    }
    let (kept, rest) = top_n(held, n);
    let mut out: Vec<(String, f64)> = kept
        .into_iter()
        .map(|(name, v)| (name.to_owned(), v))
        .collect();
    if !rest.is_empty() {
        out.push((OTHER.to_owned(), total(rest.iter().map(|(_, v)| *v))));
    }
    out
}

/// Writes `lowest`'s samples; `instances` as given to [`segments`].
pub fn write(lowest: &[SegmentHolders], instances: &[InstanceRows], out: &mut Writer) {
    for s in lowest {
        let Some(segment) = instances.iter().find(|i| i.content == s.content) else {
            continue;
        };
        for (application, n) in &s.by_application {
            let label = [("application_name", application.as_str())];
            out.sample(&BY_APPLICATION, segment.labels, &label, *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_names_the_number_of_segments_served() {
        assert!(BY_APPLICATION
            .help
            .contains(&format!("the {SEGMENTS} segments")));
    }
}
