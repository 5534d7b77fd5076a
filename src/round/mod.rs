//! The collection rounds of one cluster: keep the topology fresh, collect
//! every scraped instance in parallel (bounded), each under its own deadline,
//! and render the results. Rounds run on an interval, never per HTTP request.
//!
//! Staleness contract: an instance that failed this round shows `greenplum_up 0`,
//! its error counters and `greenplum_last_error_info`, but none of its figures:
//! no value older than the last round is ever served as current.
//!
//! A round never waits longer than `instance_timeout` for any instance, nor
//! for the coordinator's catalog: work still running then is kept (see
//! [`crate::round::job`]) rather than cancelled and repeated, so a hung instance
//! costs one connection and one statement however many rounds it stays hung.
pub mod backoff;
pub mod job;
pub mod service;
pub mod snapshot;
pub mod target;

use crate::collect::{self, sessions};
use crate::config::{ClusterConfig, CollectorName};
use crate::db::pool::{self, Checkout, Endpoint};
use crate::db::topology;
use crate::metrics::{render_labels, Desc, Writer};
use crate::model::attribution::Attribution;
use crate::model::catalog::SegmentRow;
use crate::model::error::{ErrorKind, ScrapeError};
use crate::model::family::{self, Family, ServerVersion};
use crate::model::view::{CatalogView, ClusterView, InstanceView};
use crate::round::backoff::Backoff;
use crate::round::job::{stuck_after, Job};
use crate::round::target::{unix_seconds, Plan, Target};
use deadpool_postgres::Pool;
use snapshot::Snapshot;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

static CLUSTER_INFO: Desc = Desc::gauge(
    "greenplum_cluster_info",
    "The cluster's detected family and version() of the coordinator.",
);
static RESERVED_USABLE: Desc = Desc::gauge(
    "greenplum_exporter_reserved_connections_usable",
    "1 when the exporter's role may use superuser_reserved_connections (superuser, or member of \
     pg_use_reserved_connections where that exists), so it still connects to a full segment; 0 when not.",
);
static ROUND_DURATION: Desc = Desc::gauge(
    "greenplum_exporter_round_duration_seconds",
    "Wall time of the cluster's last collection round.",
);
static INTERVAL: Desc = Desc::gauge(
    "greenplum_exporter_collect_interval_seconds",
    "The cluster's configured collection interval (scrape_interval).",
);
static ROUNDS: Desc = Desc::counter(
    "greenplum_exporter_rounds_total",
    "Collection rounds completed for the cluster.",
);
static ROUND_TIMESTAMP: Desc = Desc::gauge(
    "greenplum_exporter_last_round_timestamp_seconds",
    "Unix time the cluster's last round finished.",
);
static TARGETS: Desc = Desc::gauge(
    "greenplum_exporter_instances",
    "Instances the exporter collects for the cluster (primaries and coordinator).",
);
static PENDING: Desc = Desc::gauge(
    "greenplum_exporter_pending_collections",
    "Collections still running after their round's deadline (hung or very slow instances); \
     at most one per instance.",
);
static TOPOLOGY_REFRESHES: Desc = Desc::counter(
    "greenplum_exporter_topology_refreshes_total",
    "Reads of gp_segment_configuration by result (success or error).",
);

/// The coordinator's dbid on every Greenplum cluster (gpinitsystem assigns 1);
/// used to label it before the catalog has been read.
const COORDINATOR_DBID: i16 = 1;

/// The coordinator once reached: its pool in the right family's utility mode.
#[derive(Clone)]
struct Coordinator {
    pool: Pool,
    family: Family,
    version: String,
    reserved_usable: bool,
}

/// What one read of the coordinator brings back.
struct TopologyRead {
    /// Set when this read first reached the coordinator.
    reached: Option<Coordinator>,
    rows: Vec<SegmentRow>,
}

#[derive(Default)]
struct Refresh {
    job: Option<Job<TopologyRead>>,
    last_start: Option<Instant>,
    /// Set after a connection failure: an instance may have moved.
    wanted: bool,
    retry: Backoff,
    last_error: Option<ScrapeError>,
    ok: u64,
    failed: u64,
}

#[derive(Default)]
struct Stats {
    rounds: u64,
    last_round: Duration,
    last_round_end: Option<SystemTime>,
}

/// Collects one cluster round after round.
pub struct Runner {
    cfg: Arc<ClusterConfig>,
    cluster_labels: String,
    coordinator: Option<Coordinator>,
    /// Last catalog read; kept while the coordinator is unreachable.
    catalog: Vec<SegmentRow>,
    targets: BTreeMap<i16, Target>,
    statement: Option<Arc<str>>,
    slots: Arc<Semaphore>,
    refresh: Refresh,
    stats: Stats,
}

impl Runner {
    pub fn new(cfg: ClusterConfig) -> Runner {
        let mut runner = Runner {
            cluster_labels: render_labels(&[("cluster", &cfg.name)]),
            coordinator: None,
            catalog: Vec::new(),
            targets: BTreeMap::new(),
            statement: None,
            slots: Arc::new(Semaphore::new(cfg.concurrency)),
            refresh: Refresh {
                wanted: true,
                ..Refresh::default()
            },
            stats: Stats::default(),
            cfg: Arc::new(cfg),
        };
        runner.sync_targets();
        runner
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Rounds on the interval until `shutdown` changes or the configuration
    /// channel closes (the cluster was removed); an in-flight round is
    /// abandoned then. A new configuration is applied between rounds.
    /// Publishes every round into `snapshot`.
    pub async fn run(
        mut self,
        snapshot: Arc<Snapshot>,
        mut config: watch::Receiver<ClusterConfig>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticker = ticker(self.cfg.scrape_interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let new = config.borrow_and_update().clone();
                    if new.scrape_interval != self.cfg.scrape_interval {
                        ticker = ticker_from_now(new.scrape_interval);
                    }
                    self.reconfigure(new);
                    continue;
                }
            }
            tokio::select! {
                _ = self.round() => {}
                _ = shutdown.changed() => break,
            }
            let (samples, view) = self.render();
            snapshot.publish(&self.cfg.name, samples, view);
        }
        self.close();
    }

    /// Closes every pool and cancels running work; the connections end with them.
    pub fn close(&mut self) {
        for t in self.targets.values_mut() {
            t.close();
        }
        self.forget_coordinator();
        info!(cluster = %self.cfg.name, "closed connections");
    }

    fn forget_coordinator(&mut self) {
        if let Some(job) = self.refresh.job.take() {
            job.abort();
        }
        if let Some(c) = self.coordinator.take() {
            c.pool.close();
        }
    }

    /// Applies a reloaded configuration. Pools are kept unless a setting
    /// they connect with changed; then the next round reconnects from scratch.
    fn reconfigure(&mut self, new: ClusterConfig) {
        let reconnect = connection_settings(&self.cfg) != connection_settings(&new);
        if new.concurrency != self.cfg.concurrency {
            self.slots = Arc::new(Semaphore::new(new.concurrency));
        }
        self.cfg = Arc::new(new);
        if reconnect {
            info!(cluster = %self.cfg.name, "connection settings changed: reconnecting");
            for t in self.targets.values_mut() {
                t.close();
            }
            self.targets.clear();
            self.forget_coordinator();
            self.statement = None;
            self.refresh.retry.succeeded();
        }
        if let Some(c) = &self.coordinator {
            self.statement = Some(Arc::from(collect::statement(
                c.family,
                &self.cfg.collectors,
            )));
        }
        self.refresh.wanted = true;
        self.sync_targets();
        info!(cluster = %self.cfg.name, "configuration applied");
    }

    /// One round: topology when due, then every instance.
    pub async fn round(&mut self) {
        let started = Instant::now();
        let deadline = self.cfg.instance_timeout;
        self.start_refresh(started);
        if self.coordinator.is_none() {
            // Nothing can be collected before the coordinator tells the family.
            self.finish_refresh(started + deadline).await;
        }
        self.collect_all().await;
        self.finish_refresh(started + deadline).await;
        self.stats.rounds += 1;
        self.stats.last_round = started.elapsed();
        self.stats.last_round_end = Some(SystemTime::now());
        debug!(cluster = %self.cfg.name, seconds = self.stats.last_round.as_secs_f64(), "round done");
    }

    /// Starts a catalog read when one is due and none is running.
    fn start_refresh(&mut self, now: Instant) {
        let r = &mut self.refresh;
        let due = r.wanted
            || r.last_start
                .is_none_or(|t| now.duration_since(t) >= self.cfg.topology_refresh);
        if let Some(job) = r.job.take() {
            if job.age() < stuck_after(self.cfg.scrape_interval) {
                r.job = Some(job);
                return;
            }
            warn!(cluster = %self.cfg.name, "abandoning a catalog read that never answered");
            job.abort();
        }
        if !due || !r.retry.ready(now) {
            return;
        }
        r.last_start = Some(now);
        let cfg = self.cfg.clone();
        let known = self.coordinator.clone();
        r.job = Some(Job::spawn(read_topology(cfg, known)));
    }

    /// Waits for a running catalog read until `until` and applies it.
    async fn finish_refresh(&mut self, until: Instant) {
        let Some(job) = self.refresh.job.take() else {
            return;
        };
        let wait = until.saturating_duration_since(Instant::now());
        match job.wait(wait).await {
            Ok((result, _)) => self.apply_refresh(result),
            // Still running (coordinator hung or slow): look again next round.
            Err(job) => self.refresh.job = Some(job),
        }
    }

    fn apply_refresh(&mut self, result: Result<TopologyRead, ScrapeError>) {
        let r = &mut self.refresh;
        match result {
            Ok(read) => {
                r.ok += 1;
                r.wanted = false;
                r.retry.succeeded();
                if r.last_error.take().is_some() {
                    info!(cluster = %self.cfg.name, "coordinator catalog readable again");
                }
                if let Some(c) = read.reached {
                    self.adopt_coordinator(c);
                }
                if read.rows != self.catalog {
                    info!(cluster = %self.cfg.name, rows = read.rows.len(), "topology read");
                    self.catalog = read.rows;
                }
            }
            Err(e) => {
                r.failed += 1;
                r.retry.failed(Instant::now(), self.cfg.scrape_interval);
                if r.last_error.as_ref() != Some(&e) {
                    warn!(cluster = %self.cfg.name, error = %e,
                          "cannot read gp_segment_configuration; keeping the last known topology");
                }
                r.last_error = Some(e);
            }
        }
        self.sync_targets();
    }

    fn adopt_coordinator(&mut self, c: Coordinator) {
        info!(cluster = %self.cfg.name, family = c.family.name(), version = %c.version,
              "coordinator reached");
        if !c.reserved_usable {
            warn!(cluster = %self.cfg.name, user = %self.cfg.user,
                  "the exporter's role cannot use superuser_reserved_connections: it will be \
                   refused like any client when a segment is full; connect as a superuser");
        }
        self.statement = Some(Arc::from(collect::statement(
            c.family,
            &self.cfg.collectors,
        )));
        self.coordinator = Some(c);
    }

    fn coordinator_endpoint(&self, family: Family) -> Endpoint {
        Endpoint {
            host: self.cfg.host.clone(),
            port: self.cfg.port,
            family,
        }
    }

    /// Makes the targets follow the catalog: new primaries get a pool, gone ones
    /// lose theirs, moved ones (failover) get a new pool under the same dbid.
    fn sync_targets(&mut self) {
        let family = self.coordinator.as_ref().map(|c| c.family);
        let wanted: Vec<SegmentRow> = match family {
            Some(_) if !self.catalog.is_empty() => self
                .catalog
                .iter()
                .filter(|r| r.is_scrape_target())
                .cloned()
                .collect(),
            _ => vec![self.coordinator_placeholder_row()],
        };
        let cluster = self.cfg.name.clone();
        self.targets.retain(|dbid, t| {
            let keep = wanted.iter().any(|r| r.dbid == *dbid);
            if !keep {
                info!(%cluster, dbid, content = t.row.content, "instance no longer scraped");
                t.close();
            }
            keep
        });
        for row in wanted {
            let fallback = self.cfg.family.fixed().unwrap_or(Family::PROBE_ORDER[0]);
            let endpoint = self.endpoint_of(&row, family.unwrap_or(fallback));
            let labels = self.labels_of(&row);
            let pool = family.map(|_| self.pool_for(&row, &endpoint));
            let Some(t) = self.targets.get_mut(&row.dbid) else {
                self.targets
                    .insert(row.dbid, Target::new(row, labels, endpoint, pool));
                continue;
            };
            if t.endpoint != endpoint || t.pool.is_none() {
                if t.pool.is_some() {
                    info!(%cluster, dbid = row.dbid, content = row.content,
                          address = %endpoint.host, port = endpoint.port, "instance moved");
                }
                t.close();
                t.pool = pool;
                t.endpoint = endpoint;
            }
            t.labels = labels;
            t.row = row;
        }
    }

    /// Before the coordinator was reached there is no family and no catalog:
    /// the coordinator is shown as a target that is down, with the reason.
    fn coordinator_placeholder_row(&self) -> SegmentRow {
        SegmentRow {
            dbid: COORDINATOR_DBID,
            content: -1,
            role: 'p',
            preferred_role: 'p',
            mode: 'n',
            status: 'u',
            port: self.cfg.port,
            hostname: self.cfg.host.clone(),
            address: self.cfg.host.clone(),
        }
    }

    /// The coordinator is reached where the configuration says (its catalog
    /// address may be a name only resolvable inside the cluster); segments at
    /// their catalog `address:port`.
    fn endpoint_of(&self, row: &SegmentRow, family: Family) -> Endpoint {
        if row.is_coordinator() {
            self.coordinator_endpoint(family)
        } else {
            Endpoint {
                host: row.address.clone(),
                port: row.port,
                family,
            }
        }
    }

    fn pool_for(&self, row: &SegmentRow, endpoint: &Endpoint) -> Pool {
        match &self.coordinator {
            Some(c) if row.is_coordinator() => c.pool.clone(),
            _ => pool::build(&self.cfg, endpoint),
        }
    }

    fn labels_of(&self, row: &SegmentRow) -> String {
        render_labels(&[
            ("cluster", &self.cfg.name),
            ("content", &row.content.to_string()),
            ("dbid", &row.dbid.to_string()),
            ("role", &row.role.to_string()),
            ("preferred_role", &row.preferred_role.to_string()),
            ("hostname", &row.hostname),
            ("port", &row.port.to_string()),
        ])
    }

    async fn collect_all(&mut self) {
        let Some(statement) = self.statement.clone() else {
            let e = self.refresh.last_error.clone().unwrap_or_else(|| {
                ScrapeError::new(ErrorKind::NoTopology, "coordinator not reached yet")
            });
            for t in self.targets.values_mut() {
                t.record_error(&self.cfg.name, e.clone());
            }
            return;
        };
        let plan = Plan {
            statement,
            stale_after_seconds: self.cfg.prepared_age_threshold.as_secs_f64(),
            slots: self.slots.clone(),
            deadline: self.cfg.instance_timeout,
            interval: self.cfg.scrape_interval,
        };
        let now = Instant::now();
        let jobs: Vec<_> = self
            .targets
            .iter_mut()
            .filter_map(|(dbid, t)| Some((*dbid, t.job_for_round(now, &plan)?)))
            .collect();
        // Concurrency is bounded by `plan.slots` inside the jobs; waiting is free.
        let outcomes = futures::future::join_all(
            jobs.into_iter()
                .map(|(dbid, job)| async move { (dbid, job.wait(plan.deadline).await) }),
        )
        .await;
        for (dbid, outcome) in outcomes {
            let Some(t) = self.targets.get_mut(&dbid) else {
                continue;
            };
            if let Some(e) = t.record(&self.cfg.name, outcome, &plan) {
                if e.is_connection_failure() {
                    self.refresh.wanted = true;
                }
            }
        }
    }

    /// This cluster's samples after the last round, and the same figures as
    /// a view for the status page and `top`.
    pub fn render(&self) -> (Writer, ClusterView) {
        let mut w = Writer::default();
        let mut targets: Vec<&Target> = self.targets.values().collect();
        targets.sort_by_key(|t| (t.row.content, t.row.dbid));
        let mut instances: Vec<InstanceView> = Vec::with_capacity(targets.len());
        for t in &targets {
            t.render(&self.cfg, &mut w);
            instances.push(t.view(&self.cfg.collectors));
        }
        let attribution = self.render_attribution(&targets, &mut instances, &mut w);
        if self.cfg.collector_enabled(CollectorName::Topology) {
            collect::topology::write(
                &self.catalog,
                &self.cluster_labels,
                |r| self.labels_of(r),
                &mut w,
            );
        }
        self.render_cluster(&mut w);
        let view = ClusterView {
            cluster: self.cfg.name.clone(),
            family: self.coordinator.as_ref().map(|c| c.family.name()),
            version: self.coordinator.as_ref().map(|c| c.version.clone()),
            round_finished_at: self.stats.last_round_end.map(unix_seconds),
            instances,
            not_collected: self
                .catalog
                .iter()
                .filter(|r| !r.is_scrape_target())
                .map(CatalogView::of)
                .collect(),
            attribution,
        };
        (w, view)
    }

    /// Segment backends attributed to coordinator sessions (collector
    /// `sessions`): samples, and each instance's backends by kind in its view.
    fn render_attribution(
        &self,
        targets: &[&Target],
        views: &mut [InstanceView],
        w: &mut Writer,
    ) -> Option<Attribution> {
        if !self.cfg.collector_enabled(CollectorName::Sessions) {
            return None;
        }
        let collected: Vec<(usize, collect::Collected)> = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i, (t.labels.as_str(), t.row.content, t.rows_if_up()?))))
            .collect();
        let rows: Vec<_> = collected.iter().map(|(_, r)| *r).collect();
        let instances = collect::instance_rows(CollectorName::Sessions, &rows);
        let attribution = sessions::attribute(&instances, self.cfg.top_n);
        let ctx = collect::ClusterCtx {
            labels: &self.cluster_labels,
            cluster: &self.cfg,
        };
        sessions::write(&attribution, &instances, &ctx, w);
        for ((i, _), kinds) in collected.iter().zip(&attribution.kinds) {
            views[*i].backends = kinds.clone();
        }
        Some(attribution)
    }

    fn render_cluster(&self, w: &mut Writer) {
        let l = &self.cluster_labels;
        if let Some(c) = &self.coordinator {
            let labels = [("family", c.family.name()), ("version", c.version.as_str())];
            w.sample(&CLUSTER_INFO, l, &labels, 1.0);
            w.sample(
                &RESERVED_USABLE,
                l,
                &[],
                f64::from(u8::from(c.reserved_usable)),
            );
        }
        w.sample(&ROUND_DURATION, l, &[], self.stats.last_round.as_secs_f64());
        w.sample(&INTERVAL, l, &[], self.cfg.scrape_interval.as_secs_f64());
        w.sample(&ROUNDS, l, &[], self.stats.rounds as f64);
        if let Some(ts) = self.stats.last_round_end {
            w.sample(&ROUND_TIMESTAMP, l, &[], unix_seconds(ts));
        }
        w.sample(&TARGETS, l, &[], self.targets.len() as f64);
        let pending = self.targets.values().filter(|t| t.is_pending()).count();
        w.sample(&PENDING, l, &[], pending as f64);
        for (result, n) in [("success", self.refresh.ok), ("error", self.refresh.failed)] {
            w.sample(&TOPOLOGY_REFRESHES, l, &[("result", result)], n as f64);
        }
    }
}

/// Settings a pool connects with; a reload that changes one reconnects.
fn connection_settings(c: &ClusterConfig) -> impl PartialEq + '_ {
    (
        (&c.host, c.port, &c.database, &c.user, &c.password, c.family),
        (c.pool_size, c.statement_timeout, c.lock_timeout),
        (c.instance_timeout, c.connect_timeout, &c.tls),
    )
}

fn ticker(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// A ticker whose first tick is one period from now.
fn ticker_from_now(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Reads the catalog, first reaching the coordinator (and detecting its
/// family when `auto`) if `known` is `None`.
async fn read_topology(
    cfg: Arc<ClusterConfig>,
    known: Option<Coordinator>,
) -> Result<TopologyRead, ScrapeError> {
    let (pool, reached) = match known {
        Some(c) => (c.pool, None),
        None => {
            let c = reach_coordinator(&cfg).await?;
            (c.pool.clone(), Some(c))
        }
    };
    let client = Checkout::get(&pool).await?;
    let rows = topology::read_catalog(&***client).await;
    client.release();
    let rows = rows?;
    if !rows
        .iter()
        .any(|r| r.is_coordinator() && r.is_scrape_target())
    {
        return Err(ScrapeError::new(
            ErrorKind::NotGreenplum,
            "gp_segment_configuration has no active coordinator row (content -1, role p)",
        ));
    }
    Ok(TopologyRead { reached, rows })
}

/// What the exporter learns from the coordinator on first contact.
const IDENTIFY_SQL: &str = "SELECT version(), \
     current_setting('is_superuser') = 'on' OR EXISTS ( \
       SELECT 1 FROM pg_roles r WHERE r.rolname = 'pg_use_reserved_connections' \
       AND pg_has_role(current_user, r.oid, 'USAGE'))";

/// Connects to the coordinator in utility mode; with `family = auto` tries
/// each family's option until one is accepted, then reads `version()`.
async fn reach_coordinator(cfg: &ClusterConfig) -> Result<Coordinator, ScrapeError> {
    let fixed = cfg.family.fixed();
    let candidates = fixed.map_or(Family::PROBE_ORDER.to_vec(), |f| vec![f]);
    let mut last_err = None;
    for probed in candidates {
        let endpoint = Endpoint {
            host: cfg.host.clone(),
            port: cfg.port,
            family: probed,
        };
        let pool = pool::build(cfg, &endpoint);
        match identify(&pool).await {
            Ok((version, reserved_usable)) => {
                let parsed = ServerVersion::parse(&version);
                if let Some(v) = parsed.as_ref().filter(|v| !v.is_supported()) {
                    pool.close();
                    return Err(ScrapeError::new(
                        ErrorKind::NotSupported,
                        format!(
                            "{v} is not supported: the exporter needs Greenplum or Greengage {}+ \
                             or Apache Cloudberry ({version:?})",
                            family::MIN_SUPPORTED_MAJOR
                        ),
                    ));
                }
                let family = match (fixed, parsed) {
                    (Some(f), _) => f,
                    (None, Some(v)) => v.family(),
                    (None, None) => {
                        pool.close();
                        return Err(ScrapeError::new(
                            ErrorKind::NotGreenplum,
                            format!("version() names no Greenplum-family product ({version:?}); set family = gp6 or gp7"),
                        ));
                    }
                };
                // Late GP7 also accepts gp_session_role; use the family's own option anyway.
                let pool = if family == probed {
                    pool
                } else {
                    pool.close();
                    pool::build(cfg, &Endpoint { family, ..endpoint })
                };
                return Ok(Coordinator {
                    pool,
                    family,
                    version,
                    reserved_usable,
                });
            }
            Err(e) if fixed.is_none() && refuses_utility_option(&e, probed) => {
                debug!(cluster = %cfg.name, family = probed.name(), error = %e, "not this family");
                pool.close();
                last_err = Some(e);
            }
            Err(e) => {
                pool.close();
                return Err(e);
            }
        }
    }
    Err(last_err.expect("at least one candidate family"))
}

async fn identify(pool: &Pool) -> Result<(String, bool), ScrapeError> {
    let client = Checkout::get(pool).await?;
    let row = client.query_one(IDENTIFY_SQL, &[]).await;
    client.release();
    let row = row?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The server refused `probed`'s utility option itself, so it is of the
/// other family. Any other refusal, such as another setting the server does
/// not know, is an error of its own and is reported as such.
fn refuses_utility_option(e: &ScrapeError, probed: Family) -> bool {
    match (e.sqlstate.as_deref(), probed) {
        // GP7 / Cloudberry: unrecognized configuration parameter "gp_session_role"
        (Some("42704"), _) => e
            .message
            .contains(&format!("\"{}\"", probed.utility_setting())),
        // GP6 refusing gp_role: "System was started in master-only utility mode"
        (Some("57P03"), Family::Gp7) => e.message.contains("master-only utility mode"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str, message: &str) -> ScrapeError {
        ScrapeError {
            kind: ErrorKind::Query,
            sqlstate: Some(code.to_owned()),
            message: message.to_owned(),
        }
    }

    #[test]
    fn only_a_refused_utility_option_means_the_other_family() {
        let unknown = |name: &str| {
            refused(
                "42704",
                &format!("FATAL: unrecognized configuration parameter \"{name}\""),
            )
        };
        assert!(refuses_utility_option(
            &unknown("gp_session_role"),
            Family::Gp6
        ));
        assert!(refuses_utility_option(&unknown("gp_role"), Family::Gp7));
        // Another setting the server lacks is that setting's problem, not the family's.
        let other = unknown("idle_in_transaction_session_timeout");
        assert!(!refuses_utility_option(&other, Family::Gp6));
        assert!(!refuses_utility_option(&other, Family::Gp7));
        assert!(!refuses_utility_option(
            &unknown("gp_session_role"),
            Family::Gp7
        ));
        let gp6_refusing_gp_role = refused(
            "57P03",
            "FATAL: System was started in master-only utility mode - only utility mode \
             connections are allowed",
        );
        assert!(refuses_utility_option(&gp6_refusing_gp_role, Family::Gp7));
        assert!(!refuses_utility_option(&gp6_refusing_gp_role, Family::Gp6));
        let starting = refused("57P03", "FATAL: the database system is starting up");
        assert!(!refuses_utility_option(&starting, Family::Gp7));
    }
}
