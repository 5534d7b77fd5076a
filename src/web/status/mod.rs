//! The status page: the instances as a grid of tiles coloured by connection
//! headroom, the recorded incidents and who holds the segment slots. The
//! server writes the whole page from the latest rounds, so it reads the same
//! without script; the script (in `page.html`) then replaces the clusters
//! part every refresh with `?fragment=clusters`, keeps the age of the figures
//! current, shows times in the reader's zone, and raises a banner when the
//! exporter stops answering. No external assets, and no version: that is in
//! `greenplum_exporter_build_info` only, for those allowed to scrape.

mod cluster;
mod html;
mod incidents;
mod line;
mod tile;

use crate::model::incident::Incident;
use crate::round::snapshot::Snapshot;
use html::Esc;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

const PAGE: &str = include_str!("page.html");

/// How often the page asks for new figures: every collection interval (so
/// it notices an exporter gone within two), within these bounds.
const REFRESH_MIN: Duration = Duration::from_secs(1);
const REFRESH_MAX: Duration = Duration::from_secs(5);

/// The whole page; `telemetry_path` for its link to the metrics.
pub fn page(snapshot: &Snapshot, telemetry_path: &str) -> String {
    PAGE.replace("@METRICS_PATH@", &Esc(telemetry_path).to_string())
        .replace("@CLUSTERS@", &clusters(snapshot))
}

/// The part of the page the script replaces: every configured cluster, and
/// the incidents kept from clusters no longer configured. Its attributes say
/// when it was made (server time) and how often to ask again.
pub fn clusters(snapshot: &Snapshot) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let views = snapshot.views();
    let recorded = snapshot.incidents().list();
    let of =
        |name: &str| -> Vec<&Incident> { recorded.iter().filter(|e| e.cluster == name).collect() };
    let refresh = views
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .map(|v| Duration::from_secs_f64(v.interval_seconds.max(0.0)))
        .min()
        .unwrap_or(REFRESH_MAX)
        .clamp(REFRESH_MIN, REFRESH_MAX);
    let mut out = format!(
        "<div id=\"clusters\" data-rendered-at=\"{now}\" data-refresh-ms=\"{}\">",
        refresh.as_millis()
    );
    for (name, view) in &views {
        match view {
            Some(v) => out.push_str(&cluster::section(v, &of(name), now)),
            None => out.push_str(&cluster::waiting(name)),
        }
    }
    let mut gone: Vec<&str> = recorded
        .iter()
        .map(|e| e.cluster.as_str())
        .filter(|c| !views.iter().any(|(name, _)| name == c))
        .collect();
    gone.sort_unstable();
    gone.dedup();
    for name in gone {
        let _ = write!(
            out,
            "<section data-cluster=\"{0}\"><h2>Cluster {0} (not collected now)</h2>{1}</section>",
            Esc(name),
            incidents::list(&of(name))
        );
    }
    out.push_str("</div>");
    out
}
