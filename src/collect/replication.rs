//! Replication as each primary (and the coordinator, for its standby) sees
//! it in its own `pg_stat_replication`: the walsender's state and sync state
//! and how many bytes of WAL the mirror is behind; and where that and the
//! catalog's `status`/`mode` of the mirror disagree.

use super::{items, Collected, Collector, Ctx, Row};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::catalog::SegmentRow;
use crate::model::family::Family;
use crate::model::figures::ReplicationFigures;

pub struct Replication;

static STATE: Desc = Desc::gauge(
    "greenplum_replication_state",
    "1 with the state of the instance's walsender to its mirror (coordinator: standby): startup, \
     catchup, streaming, backup, stopping (GP7+), or none without a walsender.",
);
static SYNC_STATE: Desc = Desc::gauge(
    "greenplum_replication_sync_state",
    "1 with the sync_state of the instance's walsender to its mirror: sync, async, potential, \
     quorum (GP7+), or none without a walsender.",
);
static LAG_BYTES: Desc = Desc::gauge(
    "greenplum_replication_lag_bytes",
    "Bytes of WAL between the instance's current position and what its mirror was sent, has \
     flushed and has replayed (label position); only while a walsender runs.",
);
static LAG_SECONDS: Desc = Desc::gauge(
    "greenplum_replication_lag_seconds",
    "The walsender's write_lag, flush_lag and replay_lag (label position), 0 once the mirror has \
     caught up; GP7+ only, only while a walsender runs.",
);
static DISAGREEMENT: Desc = Desc::gauge(
    "greenplum_replication_catalog_disagreement",
    "1 when gp_segment_configuration says the content's mirror is up and in sync but its primary \
     has no streaming walsender, or the reverse; 0 when they agree. Only for contents with a \
     mirror (coordinator: standby) whose primary was collected.",
);

/// The walsender state that means the mirror follows.
const STREAMING: &str = "streaming";

impl Collector for Replication {
    fn name(&self) -> CollectorName {
        CollectorName::Replication
    }

    fn sql(&self, family: Family) -> &'static str {
        match family {
            Family::Gp6 => include_str!("replication_gp6.sql"),
            Family::Gp7 => include_str!("replication_gp7.sql"),
        }
    }

    fn write(&self, rows: &[&Row], ctx: &Ctx, out: &mut Writer) {
        let l = ctx.labels;
        for r in items(rows, "state") {
            out.sample(&STATE, l, &[("state", r.label(0))], 1.0);
        }
        for r in items(rows, "sync_state") {
            out.sample(&SYNC_STATE, l, &[("sync_state", r.label(0))], 1.0);
        }
        for r in items(rows, "lag_bytes") {
            out.sample(&LAG_BYTES, l, &[("position", r.label(0))], r.value);
        }
        for r in items(rows, "lag_seconds") {
            out.sample(&LAG_SECONDS, l, &[("position", r.label(0))], r.value);
        }
    }
}

/// The figures of this collector's rows of one instance.
pub fn figures(rows: &[&Row]) -> ReplicationFigures {
    let label = |item: &str| {
        items(rows, item)
            .next()
            .map_or_else(|| "none".to_owned(), |r| r.label(0).to_owned())
    };
    let lag = |position: &str| {
        items(rows, "lag_bytes")
            .find(|r| r.label(0) == position)
            .map(|r| r.value)
    };
    ReplicationFigures {
        state: label("state"),
        sync_state: label("sync_state"),
        sent_lag_bytes: lag("sent"),
        flush_lag_bytes: lag("flush"),
        replay_lag_bytes: lag("replay"),
        catalog_mirror: None,
        disagrees: false,
    }
}

/// Adds the catalog's mirror row of its content to an instance's figures,
/// and whether the two disagree (as the series says).
pub fn with_catalog(figures: &mut ReplicationFigures, content: i16, catalog: &[SegmentRow]) {
    let Some(mirror) = catalog
        .iter()
        .find(|r| r.content == content && r.role == 'm')
    else {
        return;
    };
    figures.catalog_mirror = Some(format!("{}/{}", mirror.status, mirror.mode));
    figures.disagrees = catalog_in_sync(mirror) != (figures.state == STREAMING);
}

/// Whether the catalog says a content's mirror is up and in sync.
fn catalog_in_sync(mirror: &SegmentRow) -> bool {
    mirror.status == 'u' && mirror.mode == 's'
}

/// `greenplum_replication_catalog_disagreement` of every content that has a
/// mirror row in `catalog` and whose acting primary is among `instances`
/// (this collector's rows of the instances collected this round).
pub fn write_disagreement(catalog: &[SegmentRow], instances: &[Collected], out: &mut Writer) {
    for &(labels, content, rows) in instances {
        let Some(mirror) = catalog
            .iter()
            .find(|r| r.content == content && r.role == 'm')
        else {
            continue;
        };
        let mine = super::rows_of(CollectorName::Replication, rows);
        let Some(state) = items(&mine, "state").next() else {
            continue;
        };
        let streaming = state.label(0) == STREAMING;
        let differ = catalog_in_sync(mirror) != streaming;
        out.sample(&DISAGREEMENT, labels, &[], f64::from(u8::from(differ)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(item: &'static str, label: &str, value: f64) -> Row {
        Row {
            collector: "replication",
            item: item.into(),
            labels: vec![label.to_owned()],
            value,
        }
    }

    fn catalog_row(dbid: i16, role: char, status: char, mode: char) -> SegmentRow {
        SegmentRow {
            dbid,
            content: 0,
            role,
            preferred_role: role,
            mode,
            status,
            port: 6000,
            hostname: "sdw1".into(),
            address: "127.0.0.1".into(),
        }
    }

    fn disagreement(mirror: Option<(char, char)>, state: &str) -> String {
        let mut catalog = vec![catalog_row(2, 'p', 'u', 's')];
        if let Some((status, mode)) = mirror {
            catalog.push(catalog_row(5, 'm', status, mode));
        }
        let rows = vec![row("state", state, 1.0)];
        let mut w = Writer::default();
        write_disagreement(
            &catalog,
            &[("cluster=\"c\",content=\"0\"", 0, &rows)],
            &mut w,
        );
        w.encode()
    }

    #[test]
    fn the_catalog_and_the_primary_disagree_either_way() {
        let value = |text: String| {
            text.lines()
                .find(|l| l.starts_with("greenplum_replication_catalog_disagreement{"))
                .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        };
        assert_eq!(
            value(disagreement(Some(('u', 's')), "streaming")).as_deref(),
            Some("0")
        );
        assert_eq!(
            value(disagreement(Some(('u', 's')), "none")).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(disagreement(Some(('u', 's')), "catchup")).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(disagreement(Some(('d', 'n')), "streaming")).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(disagreement(Some(('u', 'n')), "catchup")).as_deref(),
            Some("0")
        );
        assert_eq!(
            value(disagreement(Some(('d', 'n')), "none")).as_deref(),
            Some("0")
        );
        // No mirror, no series.
        assert_eq!(value(disagreement(None, "none")), None);
    }

    #[test]
    fn figures_say_none_without_a_walsender() {
        let rows = [row("state", "none", 1.0), row("sync_state", "none", 1.0)];
        let refs: Vec<&Row> = rows.iter().collect();
        let f = figures(&refs);
        assert_eq!((f.state.as_str(), f.sync_state.as_str()), ("none", "none"));
        assert_eq!(f.replay_lag_bytes, None);
        let rows = [
            row("state", "streaming", 1.0),
            row("lag_bytes", "replay", 4096.0),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(figures(&refs).replay_lag_bytes, Some(4096.0));
    }
}
