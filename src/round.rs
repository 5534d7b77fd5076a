//! The collection round of one cluster: refresh the topology when due, collect
//! every scraped instance in parallel (bounded), each under its own deadline,
//! and render the results. Rounds run on an interval, never per HTTP request.
//!
//! Staleness contract: an instance that failed this round shows `greenplum_up 0`,
//! its error counters and `greenplum_last_error_info`, but none of its figures:
//! no value older than the last round is ever served as current.

use crate::collect::{self, Ctx, Row};
use crate::config::{ClusterConfig, CollectorName};
use crate::error::{ErrorKind, ScrapeError};
use crate::family::{Family, ServerVersion};
use crate::metrics::{render_labels, Desc, Snapshot, Writer};
use crate::pool::{self, Endpoint};
use crate::topology::{self, SegmentRow};
use deadpool_postgres::Pool;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_postgres::types::Type;
use tracing::{debug, info, warn};

static UP: Desc = Desc::gauge(
    "greenplum_up",
    "1 when the exporter collected the instance this round, 0 when it could not.",
);
static DURATION: Desc = Desc::gauge(
    "greenplum_scrape_duration_seconds",
    "Time the instance's collection took this round, connecting included.",
);
static LAST_SUCCESS: Desc = Desc::gauge(
    "greenplum_last_success_timestamp_seconds",
    "Unix time of the instance's last successful collection.",
);
static ERRORS: Desc = Desc::counter(
    "greenplum_scrape_errors_total",
    "Failed collections of the instance by kind.",
);
static LAST_ERROR: Desc = Desc::gauge(
    "greenplum_last_error_info",
    "Present while the instance is failing: why (kind) and the server's SQLSTATE, if it answered.",
);
static CLUSTER_INFO: Desc = Desc::gauge(
    "greenplum_cluster_info",
    "The cluster's detected family and version() of the coordinator.",
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
static TOPOLOGY_REFRESHES: Desc = Desc::counter(
    "greenplum_exporter_topology_refreshes_total",
    "Reads of gp_segment_configuration by result (success or error).",
);

/// One scraped instance: its catalog row, labels, pool and history.
struct Target {
    row: SegmentRow,
    labels: String,
    endpoint: Endpoint,
    /// `None` for the coordinator placeholder before the coordinator answered.
    pool: Option<Pool>,
    state: InstanceState,
}

#[derive(Default)]
struct InstanceState {
    /// `None` until the first attempt.
    up: Option<bool>,
    duration: Duration,
    last_success: Option<SystemTime>,
    errors: BTreeMap<ErrorKind, u64>,
    last_error: Option<ScrapeError>,
    rows: Vec<Row>,
}

#[derive(Default)]
struct Stats {
    rounds: u64,
    last_round: Duration,
    last_round_end: Option<SystemTime>,
    refresh_ok: u64,
    refresh_failed: u64,
}

/// Collects one cluster round after round.
pub struct Runner {
    cfg: ClusterConfig,
    cluster_labels: String,
    family: Option<Family>,
    version: Option<String>,
    /// The configured coordinator endpoint, once its family is known.
    coordinator: Option<Pool>,
    /// Last catalog read; kept while the coordinator is unreachable.
    catalog: Vec<SegmentRow>,
    targets: BTreeMap<i16, Target>,
    statement: Option<Arc<str>>,
    last_refresh: Option<Instant>,
    refresh_wanted: bool,
    last_refresh_error: Option<ScrapeError>,
    stats: Stats,
}

/// The coordinator's dbid on every Greenplum cluster (gpinitsystem assigns 1);
/// used to label it before the catalog has been read.
const COORDINATOR_DBID: i16 = 1;

impl Runner {
    pub fn new(cfg: ClusterConfig) -> Runner {
        let cluster_labels = render_labels(&[("cluster", &cfg.name)]);
        let mut runner = Runner {
            cluster_labels,
            family: None,
            version: None,
            coordinator: None,
            catalog: Vec::new(),
            targets: BTreeMap::new(),
            statement: None,
            last_refresh: None,
            refresh_wanted: true,
            last_refresh_error: None,
            stats: Stats::default(),
            cfg,
        };
        runner.family = runner.cfg.family.fixed();
        runner
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Rounds on the interval until `shutdown` changes; an in-flight round is
    /// abandoned at shutdown. Publishes every round into `snapshot`.
    pub async fn run(mut self, snapshot: Arc<Snapshot>, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.cfg.scrape_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => break,
            }
            tokio::select! {
                _ = self.round() => {}
                _ = shutdown.changed() => break,
            }
            snapshot.publish(&self.cfg.name, self.render());
        }
        self.close();
    }

    /// Closes every pool; the connections end with them.
    fn close(&mut self) {
        for p in self.targets.values().filter_map(|t| t.pool.as_ref()) {
            p.close();
        }
        if let Some(p) = &self.coordinator {
            p.close();
        }
        info!(cluster = %self.cfg.name, "closed connections");
    }

    /// One round: topology when due, then every instance.
    pub async fn round(&mut self) {
        let started = Instant::now();
        if self.refresh_due() {
            self.refresh_topology().await;
        }
        let results = self.collect_all().await;
        for (dbid, result, took) in results {
            self.record(dbid, result, took);
        }
        self.stats.rounds += 1;
        self.stats.last_round = started.elapsed();
        self.stats.last_round_end = Some(SystemTime::now());
        debug!(cluster = %self.cfg.name, seconds = self.stats.last_round.as_secs_f64(), "round done");
    }

    fn refresh_due(&self) -> bool {
        match self.last_refresh {
            None => true,
            Some(t) => self.refresh_wanted || t.elapsed() >= self.cfg.topology_refresh,
        }
    }

    async fn refresh_topology(&mut self) {
        self.last_refresh = Some(Instant::now());
        match self.read_topology().await {
            Ok(rows) => {
                self.stats.refresh_ok += 1;
                self.refresh_wanted = false;
                if self.last_refresh_error.take().is_some() {
                    info!(cluster = %self.cfg.name, "coordinator catalog readable again");
                }
                if rows != self.catalog {
                    info!(cluster = %self.cfg.name, rows = rows.len(), "topology read");
                    self.catalog = rows;
                }
            }
            Err(e) => {
                self.stats.refresh_failed += 1;
                if self.last_refresh_error.as_ref() != Some(&e) {
                    warn!(cluster = %self.cfg.name, error = %e,
                          "cannot read gp_segment_configuration; keeping the last known topology");
                }
                self.last_refresh_error = Some(e);
            }
        }
        self.sync_targets();
    }

    async fn read_topology(&mut self) -> Result<Vec<SegmentRow>, ScrapeError> {
        let pool = self.coordinator_pool().await?;
        let deadline = self.cfg.instance_timeout;
        let read = async {
            let client = pool.get().await?;
            Ok::<_, ScrapeError>(topology::read_catalog(&**client).await?)
        };
        let rows = timeout(deadline, read)
            .await
            .map_err(|_| timed_out(deadline))??;
        if !rows
            .iter()
            .any(|r| r.is_coordinator() && r.is_scrape_target())
        {
            return Err(ScrapeError::new(
                ErrorKind::NotGreenplum,
                "gp_segment_configuration has no active coordinator row (content -1, role p)",
            ));
        }
        Ok(rows)
    }

    /// The coordinator pool, detecting the family on first contact when `auto`.
    async fn coordinator_pool(&mut self) -> Result<Pool, ScrapeError> {
        if let Some(pool) = &self.coordinator {
            return Ok(pool.clone());
        }
        let candidates: Vec<Family> = match self.cfg.family.fixed() {
            Some(f) => vec![f],
            None => Family::PROBE_ORDER.to_vec(),
        };
        let mut last_err = None;
        for family in candidates {
            let pool = pool::build(&self.cfg, &self.coordinator_endpoint(family));
            match self.server_version(&pool).await {
                Ok(version) => return self.adopt_coordinator(pool, family, version),
                Err(e) if self.cfg.family.fixed().is_none() && refuses_utility_option(&e) => {
                    debug!(cluster = %self.cfg.name, family = family.name(), error = %e, "not this family");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one candidate family"))
    }

    fn coordinator_endpoint(&self, family: Family) -> Endpoint {
        Endpoint {
            host: self.cfg.host.clone(),
            port: self.cfg.port,
            family,
        }
    }

    async fn server_version(&self, pool: &Pool) -> Result<String, ScrapeError> {
        let deadline = self.cfg.instance_timeout;
        let query = async {
            let client = pool.get().await?;
            let row = client.query_one("SELECT version()", &[]).await?;
            Ok::<String, ScrapeError>(row.get(0))
        };
        timeout(deadline, query)
            .await
            .map_err(|_| timed_out(deadline))?
    }

    fn adopt_coordinator(
        &mut self,
        pool: Pool,
        probed: Family,
        version: String,
    ) -> Result<Pool, ScrapeError> {
        let detected = ServerVersion::parse(&version).map(|v| v.family());
        let family = match (self.cfg.family.fixed(), detected) {
            (Some(f), _) => f,
            (None, Some(f)) => f,
            (None, None) => {
                return Err(ScrapeError::new(
                    ErrorKind::NotGreenplum,
                    format!("version() names no Greenplum-family product ({version:?}); set family = gp6 or gp7"),
                ))
            }
        };
        // Late GP7 also accepts gp_session_role; use the family's own option anyway.
        let pool = if family == probed {
            pool
        } else {
            pool.close();
            pool::build(&self.cfg, &self.coordinator_endpoint(family))
        };
        info!(cluster = %self.cfg.name, family = family.name(), %version, "coordinator reached");
        self.family = Some(family);
        self.version = Some(version);
        self.statement = Some(Arc::from(collect::statement(family, &self.cfg.collectors)));
        self.coordinator = Some(pool.clone());
        Ok(pool)
    }

    /// Makes the targets follow the catalog: new primaries get a pool, gone ones
    /// lose theirs, moved ones (failover) get a new pool under the same dbid.
    fn sync_targets(&mut self) {
        let Some(family) = self.family else {
            self.ensure_coordinator_placeholder();
            return;
        };
        let wanted: Vec<SegmentRow> = if self.catalog.is_empty() {
            vec![self.coordinator_placeholder_row()]
        } else {
            self.catalog
                .iter()
                .filter(|r| r.is_scrape_target())
                .cloned()
                .collect()
        };
        self.targets.retain(|dbid, t| {
            let keep = wanted.iter().any(|r| r.dbid == *dbid);
            if let (false, Some(p)) = (keep, &t.pool) {
                p.close();
            }
            keep
        });
        for row in wanted {
            let endpoint = self.endpoint_of(&row, family);
            let labels = self.labels_of(&row);
            let current = self.targets.get(&row.dbid);
            let unchanged = current.is_some_and(|t| t.endpoint == endpoint && t.pool.is_some());
            let fresh_pool = (!unchanged).then(|| self.pool_for(&row, &endpoint));
            let target = self.targets.entry(row.dbid).or_insert_with(|| Target {
                row: row.clone(),
                labels: String::new(),
                endpoint: endpoint.clone(),
                pool: None,
                state: InstanceState::default(),
            });
            if let Some(pool) = fresh_pool {
                if let Some(old) = target.pool.replace(pool) {
                    info!(cluster = %self.cfg.name, dbid = row.dbid, content = row.content,
                          address = %endpoint.host, port = endpoint.port, "instance moved");
                    old.close();
                }
            }
            target.endpoint = endpoint;
            target.labels = labels;
            target.row = row;
        }
    }

    /// Before the coordinator was ever reached there is no family and no
    /// catalog: show the coordinator as a target that is down, with the reason.
    fn ensure_coordinator_placeholder(&mut self) {
        let row = self.coordinator_placeholder_row();
        if self.targets.contains_key(&row.dbid) {
            return;
        }
        let family = self.cfg.family.fixed().unwrap_or(Family::PROBE_ORDER[0]);
        let target = Target {
            labels: self.labels_of(&row),
            pool: None,
            endpoint: self.coordinator_endpoint(family),
            row,
            state: InstanceState::default(),
        };
        self.targets.insert(target.row.dbid, target);
    }

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
            Some(p) if row.is_coordinator() => p.clone(),
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

    async fn collect_all(&self) -> Vec<(i16, Result<Vec<Row>, ScrapeError>, Duration)> {
        let jobs: Vec<(i16, Option<Pool>)> = self
            .targets
            .iter()
            .map(|(dbid, t)| (*dbid, t.pool.clone()))
            .collect();
        let statement = self.statement.clone();
        let no_topology = self.last_refresh_error.clone();
        let deadline = self.cfg.instance_timeout;
        let stale_after = self.cfg.prepared_age_threshold.as_secs_f64();
        futures::stream::iter(jobs)
            .map(|(dbid, pool)| {
                let statement = statement.clone();
                let no_topology = no_topology.clone();
                async move {
                    let started = Instant::now();
                    let result = match (statement, pool) {
                        (Some(sql), Some(pool)) => {
                            collect_instance(&pool, &sql, stale_after, deadline).await
                        }
                        _ => Err(no_topology.unwrap_or_else(|| {
                            ScrapeError::new(ErrorKind::NoTopology, "coordinator not reached yet")
                        })),
                    };
                    (dbid, result, started.elapsed())
                }
            })
            .buffer_unordered(self.cfg.concurrency)
            .collect()
            .await
    }

    fn record(&mut self, dbid: i16, result: Result<Vec<Row>, ScrapeError>, took: Duration) {
        let cluster = self.cfg.name.clone();
        let Some(t) = self.targets.get_mut(&dbid) else {
            return;
        };
        let s = &mut t.state;
        s.duration = took;
        let was_up = s.up;
        match result {
            Ok(rows) => {
                s.rows = rows;
                s.up = Some(true);
                s.last_success = Some(SystemTime::now());
                s.last_error = None;
                if was_up != Some(true) {
                    info!(%cluster, content = t.row.content, dbid, address = %t.endpoint.host,
                          port = t.endpoint.port, "instance up");
                }
            }
            Err(e) => {
                s.rows.clear();
                s.up = Some(false);
                *s.errors.entry(e.kind).or_default() += 1;
                if was_up != Some(false) {
                    warn!(%cluster, content = t.row.content, dbid, address = %t.endpoint.host,
                          port = t.endpoint.port, error = %e, "instance down");
                }
                if e.is_connection_failure() {
                    self.refresh_wanted = true;
                }
                s.last_error = Some(e);
            }
        }
    }

    /// This cluster's samples after the last round.
    pub fn render(&self) -> Writer {
        let mut w = Writer::default();
        let mut targets: Vec<&Target> = self.targets.values().collect();
        targets.sort_by_key(|t| (t.row.content, t.row.dbid));
        for t in targets {
            self.render_target(t, &mut w);
        }
        if self.cfg.collector_enabled(CollectorName::Topology) {
            collect::topology::write(
                &self.catalog,
                &self.cluster_labels,
                |r| self.labels_of(r),
                &mut w,
            );
        }
        self.render_cluster(&mut w);
        w
    }

    fn render_target(&self, t: &Target, w: &mut Writer) {
        let s = &t.state;
        let Some(up) = s.up else { return };
        let l = &t.labels;
        w.sample(&UP, l, &[], f64::from(u8::from(up)));
        w.sample(&DURATION, l, &[], s.duration.as_secs_f64());
        if let Some(ts) = s.last_success {
            w.sample(&LAST_SUCCESS, l, &[], unix_seconds(ts));
        }
        for (kind, n) in &s.errors {
            w.sample(&ERRORS, l, &[("kind", kind.label())], *n as f64);
        }
        if let Some(e) = &s.last_error {
            let sqlstate = e.sqlstate.as_deref().unwrap_or("");
            w.sample(
                &LAST_ERROR,
                l,
                &[("kind", e.kind.label()), ("sqlstate", sqlstate)],
                1.0,
            );
        }
        if up {
            let ctx = Ctx {
                labels: l,
                content: t.row.content,
                cluster: &self.cfg,
            };
            collect::write_instance(&s.rows, &self.cfg.collectors, &ctx, w);
        }
    }

    fn render_cluster(&self, w: &mut Writer) {
        let l = &self.cluster_labels;
        if let (Some(family), Some(version)) = (self.family, &self.version) {
            w.sample(
                &CLUSTER_INFO,
                l,
                &[("family", family.name()), ("version", version)],
                1.0,
            );
        }
        w.sample(&ROUND_DURATION, l, &[], self.stats.last_round.as_secs_f64());
        w.sample(&INTERVAL, l, &[], self.cfg.scrape_interval.as_secs_f64());
        w.sample(&ROUNDS, l, &[], self.stats.rounds as f64);
        if let Some(ts) = self.stats.last_round_end {
            w.sample(&ROUND_TIMESTAMP, l, &[], unix_seconds(ts));
        }
        w.sample(&TARGETS, l, &[], self.targets.len() as f64);
        w.sample(
            &TOPOLOGY_REFRESHES,
            l,
            &[("result", "success")],
            self.stats.refresh_ok as f64,
        );
        w.sample(
            &TOPOLOGY_REFRESHES,
            l,
            &[("result", "error")],
            self.stats.refresh_failed as f64,
        );
    }
}

/// Runs the round's single statement on one instance within `deadline`.
async fn collect_instance(
    pool: &Pool,
    sql: &str,
    stale_after_seconds: f64,
    deadline: Duration,
) -> Result<Vec<Row>, ScrapeError> {
    let work = async {
        let client = pool.get().await?;
        let statement = client.prepare_typed_cached(sql, &[Type::FLOAT8]).await?;
        let rows = client.query(&statement, &[&stale_after_seconds]).await?;
        Ok::<_, ScrapeError>(rows.iter().map(decode_row).collect())
    };
    timeout(deadline, work)
        .await
        .map_err(|_| timed_out(deadline))?
}

fn decode_row(r: &tokio_postgres::Row) -> Row {
    Row {
        collector: r.get(0),
        item: r.get(1),
        label1: r.get::<_, Option<String>>(2).unwrap_or_default(),
        label2: r.get::<_, Option<String>>(3).unwrap_or_default(),
        value: r.get::<_, Option<f64>>(4).unwrap_or(0.0),
    }
}

fn timed_out(deadline: Duration) -> ScrapeError {
    ScrapeError::new(
        ErrorKind::Timeout,
        format!("no answer within {}", humantime::format_duration(deadline)),
    )
}

/// The server refused the family's utility option: try the other family.
fn refuses_utility_option(e: &ScrapeError) -> bool {
    match e.sqlstate.as_deref() {
        // unrecognized configuration parameter "gp_session_role" (GP7, Cloudberry)
        Some("42704") => true,
        // GP6 refusing gp_role: "System was started in master-only utility mode"
        Some("57P03") => e.message.contains("utility mode"),
        _ => false,
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
