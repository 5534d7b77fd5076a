//! Collectors: each owns its SQL (per family where the catalogs differ) and
//! turns its rows into samples. The enabled collectors' statements are joined
//! into one statement, so an instance costs one round-trip per round.
//!
//! Every collector's SQL returns rows of `(collector, item, labels text[], value)`.
//! A metric name leads to the one file that computes it. Collectors also give
//! the model's figures of their rows (for the views). Uses `config`, `db` (the
//! pooled connection the statement runs on), `metrics` and `model`.

/// The family's slot holders (`client_backends_<family>.sql`: CTEs `a`, the
/// client backends, and `slot_walsenders`) followed by `$sql`, which
/// aggregates them: the one place that picks what holds connection slots.
macro_rules! on_client_backends {
    ($family:expr, $sql:literal) => {
        match $family {
            Family::Gp6 => concat!(include_str!("client_backends_gp6.sql"), include_str!($sql)),
            Family::Gp7 => concat!(include_str!("client_backends_gp7.sql"), include_str!($sql)),
        }
    };
}

pub mod connections;
pub mod locks;
pub mod log;
mod log_csv;
pub mod log_follow;
pub mod lowest_headroom;
pub mod prepared;
pub mod replication;
pub mod sessions;
pub mod settings;
mod statement;
pub mod topology;

pub use statement::{run, statement, LogRead, Params};

use crate::config::{ClusterConfig, CollectorName};
use crate::metrics::Writer;
use crate::model::catalog::SegmentRow;
use crate::model::error::ScrapeError;
use crate::model::family::Family;
use crate::model::view::{CatalogView, ErrorView, InstanceView};

/// One row of the combined statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The collector's tag ([`tag`]).
    pub collector: &'static str,
    pub item: std::borrow::Cow<'static, str>,
    /// The row's label values, in the order its collector's SQL gives them.
    pub labels: Vec<String>,
    pub value: f64,
}

impl Row {
    /// Label value `i`, empty when the row has fewer.
    pub fn label(&self, i: usize) -> &str {
        self.labels.get(i).map_or("", String::as_str)
    }
}

/// What a collector knows about the instance it writes for.
pub struct Ctx<'a> {
    /// Pre-rendered instance labels (`cluster`, `content`, `dbid`, ...).
    pub labels: &'a str,
    pub content: i16,
    pub cluster: &'a ClusterConfig,
}

/// A per-instance collector.
pub trait Collector: Sync {
    fn name(&self) -> CollectorName;
    /// The statement for `family`, returning rows tagged with this collector's name.
    fn sql(&self, family: Family) -> &'static str;
    /// Writes samples from this collector's rows of one instance; collectors
    /// whose figures join instances write them after the round instead
    /// (see `sessions`).
    fn write(&self, _rows: &[&Row], _ctx: &Ctx, _out: &mut Writer) {}
}

/// One collector's rows of one instance collected this round.
pub struct InstanceRows<'a> {
    /// Pre-rendered instance labels.
    pub labels: &'a str,
    pub content: i16,
    pub rows: Vec<&'a Row>,
}

/// What a collector knows about the cluster it writes for.
pub struct ClusterCtx<'a> {
    /// Pre-rendered `cluster` label.
    pub labels: &'a str,
    pub cluster: &'a ClusterConfig,
}

/// Every per-instance collector, in exposition order.
pub static COLLECTORS: &[&dyn Collector] = &[
    &connections::Connections,
    &prepared::Prepared,
    &locks::Locks,
    &settings::Settings,
    &sessions::Sessions,
    &replication::Replication,
    &log::Log,
];

/// Name of a collector as it appears in the `collector` column.
pub fn tag(name: CollectorName) -> &'static str {
    name.name()
}

/// Writes every enabled collector's samples for one instance.
pub fn write_instance(rows: &[Row], enabled: &[CollectorName], ctx: &Ctx, out: &mut Writer) {
    for c in COLLECTORS.iter().filter(|c| enabled.contains(&c.name())) {
        c.write(&rows_of(c.name(), rows), ctx, out);
    }
}

/// Roles and applications listed per instance in its view.
const TOP_HOLDERS: usize = 3;

/// An instance's view from its catalog row, its state and, when it was
/// collected this round, the figures its enabled collectors' rows give.
pub fn instance_view(
    row: &SegmentRow,
    up: Option<bool>,
    error: Option<&ScrapeError>,
    rows: Option<&[Row]>,
    enabled: &[CollectorName],
) -> InstanceView {
    let of = |name: CollectorName| {
        rows.filter(|_| enabled.contains(&name))
            .map(|rows| rows_of(name, rows))
    };
    let connections = of(CollectorName::Connections);
    let holders = |item: &str| {
        connections
            .as_ref()
            .map(|r| connections::top_holders(r, item, TOP_HOLDERS))
            .unwrap_or_default()
    };
    InstanceView {
        catalog: CatalogView::of(row),
        up,
        error: error.map(ErrorView::of),
        top_users: holders("by_user"),
        top_applications: holders("by_application"),
        connections: connections
            .as_ref()
            .map(|r| connections::slots(r, row.content)),
        prepared: of(CollectorName::Prepared).map(|r| prepared::figures(&r)),
        locks: of(CollectorName::Locks).map(|r| locks::figures(&r)),
        replication: of(CollectorName::Replication).map(|r| replication::figures(&r)),
        waiting: connections
            .as_ref()
            .map(|r| connections::waiting(r))
            .unwrap_or_default(),
        backends: Vec::new(),
        headroom_history: Vec::new(),
    }
}

/// An instance collected this round: its labels, content id and rows.
pub type Collected<'a> = (&'a str, i16, &'a [Row]);

/// One collector's rows of each instance collected this round.
pub fn instance_rows<'a>(
    name: CollectorName,
    instances: &[Collected<'a>],
) -> Vec<InstanceRows<'a>> {
    instances
        .iter()
        .map(|&(labels, content, rows)| InstanceRows {
            labels,
            content,
            rows: rows_of(name, rows),
        })
        .collect()
}

/// One collector's rows among an instance's rows.
pub fn rows_of(name: CollectorName, rows: &[Row]) -> Vec<&Row> {
    let t = tag(name);
    rows.iter().filter(|r| r.collector == t).collect()
}

/// The sum of `values`, 0 when there are none. (`Iterator::sum` of `f64`
/// starts at -0.0, which JSON and tables would show as "-0".)
pub(crate) fn total(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |a, b| a + b)
}

/// Label value of the series that sums everything beyond a top-N cap.
pub(crate) const OTHER: &str = "other";

/// Values by key, largest first.
pub(crate) type Ranked<K> = Vec<(K, f64)>;

/// The `n` largest values and the rest; ties go by key, so the kept set is
/// stable between rounds.
pub(crate) fn top_n<K: Ord>(
    values: impl IntoIterator<Item = (K, f64)>,
    n: usize,
) -> (Ranked<K>, Ranked<K>) {
    let mut all: Ranked<K> = values.into_iter().collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest = all.split_off(n.min(all.len()));
    (all, rest)
}

/// The value of the first row with this item, if any.
pub(crate) fn item(rows: &[&Row], item: &str) -> Option<f64> {
    rows.iter().find(|r| r.item == item).map(|r| r.value)
}

/// Rows of one item.
pub(crate) fn items<'a, 'r: 'a>(
    rows: &'a [&'r Row],
    item: &'a str,
) -> impl Iterator<Item = &'r Row> + 'a {
    rows.iter().copied().filter(move |r| r.item == item)
}
