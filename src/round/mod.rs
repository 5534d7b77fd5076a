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
//!
//! Owns the collection loop: `service` (one runner per cluster), this
//! runner, `coordinator` (the family, catalog reads), `target` (one
//! instance's pool, job and state), `job`, `backoff`, `render` (samples and
//! views of a round) and `snapshot` (what HTTP serves). Uses everything
//! below it: `collect`, `db`, `config`, `metrics`, `model`.

pub mod backoff;
mod coordinator;
mod digest;
mod encoded;
pub mod job;
pub mod peaks;
mod render;
pub mod service;
pub mod snapshot;
pub mod target;
mod ticker;

use crate::collect::{self, sessions};
use crate::config::{ClusterConfig, CollectorName};
use crate::db::pool::Pool;
use crate::db::pool::{self, Endpoint};
use crate::incident::{self, store::Store};
use crate::metrics::render_labels;
use crate::model::catalog::{SegmentRow, COORDINATOR_DBID};
use crate::model::error::{ErrorKind, ScrapeError};
use crate::model::family::Family;
use crate::round::backoff::Backoff;
use crate::round::job::{stuck_after, Job};
use crate::round::target::{Plan, Target};
use coordinator::{read_topology, Coordinator, TopologyRead};
use snapshot::Snapshot;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use ticker::{ticker, ticker_from_now};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

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
    /// Coordinator sessions seen dispatching (collector `sessions`).
    dispatchers: sessions::Dispatchers,
    /// The last round's views and attribution.
    digest: digest::Digest,
    /// What earlier rounds showed of each content.
    memory: digest::Memories,
    incidents: incident::Detector,
    store: Arc<Store>,
}

impl Runner {
    /// A runner recording its incidents in `store`.
    pub fn new(cfg: ClusterConfig, store: Arc<Store>) -> Runner {
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
            dispatchers: sessions::Dispatchers::default(),
            digest: digest::Digest::default(),
            memory: digest::Memories::default(),
            incidents: incident::Detector::default(),
            store,
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
            // Milliseconds of CPU at a thousand segments, between rounds;
            // scrapes meanwhile are served from the previous snapshot by
            // the HTTP thread.
            let (samples, view, observations) = self.render();
            snapshot.publish(
                &self.cfg.name,
                samples,
                view,
                observations,
                self.cfg.peak_window,
            );
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
        let end = SystemTime::now();
        self.stats.last_round_end = Some(end);
        // Last: it follows the targets as the refresh may have changed them.
        self.digest(target::unix_seconds(end));
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
              address = %c.host, port = c.port, "coordinator reached");
        // Found again elsewhere (its standby, activated): the old pool goes.
        if let Some(old) = self.coordinator.take() {
            old.pool.close();
        }
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
            // Before the family is known the placeholder has no pool: any will do.
            let fallback = self.cfg.family.fixed().unwrap_or(Family::Gp6);
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
    /// address may be a name only resolvable inside the cluster), at the
    /// address found active (the coordinator or its standby); segments at
    /// their catalog `address:port`.
    fn endpoint_of(&self, row: &SegmentRow, family: Family) -> Endpoint {
        let (host, port) = if row.is_coordinator() {
            match &self.coordinator {
                Some(c) => (c.host.clone(), c.port),
                None => (self.cfg.host.clone(), self.cfg.port),
            }
        } else {
            (row.address.clone(), row.port)
        };
        Endpoint {
            host,
            port,
            family,
            content: row.content,
            dbid: row.dbid,
        }
    }

    fn pool_for(&self, row: &SegmentRow, endpoint: &Endpoint) -> Pool {
        match &self.coordinator {
            Some(c) if row.is_coordinator() => c.pool.clone(),
            _ => pool::build(&self.cfg, endpoint),
        }
    }

    /// The labels of a collected instance's samples: the cluster and the
    /// content id, which name the acting primary (or the coordinator) at any
    /// time. What describes it (dbid, role, host, port) changes on failover
    /// and is in `greenplum_instance_info` instead, so series continue.
    fn labels_of(&self, row: &SegmentRow) -> String {
        render_labels(&[
            ("cluster", &self.cfg.name),
            ("content", &row.content.to_string()),
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
            params: collect::Params {
                stale_after_seconds: self.cfg.prepared_age_threshold.as_secs_f64(),
                query_text_chars: self.cfg.incidents.query_text_chars,
            },
            slots: self.slots.clone(),
            deadline: self.cfg.instance_timeout,
            interval: self.cfg.scrape_interval,
            log: self
                .coordinator
                .as_ref()
                .filter(|_| self.cfg.collector_enabled(CollectorName::Log))
                .map(|c| {
                    let max = self.cfg.log_max_bytes_per_round;
                    (collect::log::sql(c.family), max, self.cfg.top_n.usename)
                }),
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
}

/// Settings a pool connects with; a reload that changes one reconnects.
fn connection_settings(c: &ClusterConfig) -> impl PartialEq + '_ {
    (
        (
            &c.host,
            c.port,
            &c.standby,
            &c.database,
            &c.user,
            &c.password,
        ),
        c.family,
        (c.pool_size, c.statement_timeout, c.lock_timeout),
        (c.instance_timeout, c.connect_timeout, &c.tls),
    )
}
