//! One scraped instance (the coordinator or a primary segment): its labels,
//! pool, the collection that may still be running from an earlier round, its
//! retry schedule, and what the last attempts found.

use crate::collect::{self, Ctx, Row};
use crate::config::{ClusterConfig, CollectorName};
use crate::db::pool::Endpoint;
use crate::db::pool::Pool;
use crate::metrics::{Desc, Writer};
use crate::model::catalog::SegmentRow;
use crate::model::error::{ErrorKind, ScrapeError};
use crate::model::view::InstanceView;
use crate::round::backoff::Backoff;
use crate::round::job::{stuck_after, Job};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;
use tracing::{info, warn};

static UP: Desc = Desc::gauge(
    "greenplum_up",
    "1 when the exporter collected the instance this round, 0 when it could not.",
);
static DURATION: Desc = Desc::gauge(
    "greenplum_scrape_duration_seconds",
    "Time the instance's last collection attempt took, connecting included.",
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
    "Present while the instance is failing: why (kind), the server's SQLSTATE if it answered, \
     and the error message (first line, at most 200 characters).",
);

pub(crate) struct Target {
    pub row: SegmentRow,
    pub labels: String,
    pub endpoint: Endpoint,
    /// `None` for the coordinator before its family is known.
    pub pool: Option<Pool>,
    job: Option<Job<Vec<Row>>>,
    retry: Backoff,
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

/// What one round found for an instance.
pub(crate) type Outcome = Result<(Result<Vec<Row>, ScrapeError>, Duration), Job<Vec<Row>>>;

/// What a round needs to start a collection.
pub(crate) struct Plan {
    pub statement: Arc<str>,
    pub params: collect::Params,
    pub slots: Arc<Semaphore>,
    pub deadline: Duration,
    pub interval: Duration,
}

impl Target {
    pub fn new(row: SegmentRow, labels: String, endpoint: Endpoint, pool: Option<Pool>) -> Target {
        Target {
            row,
            labels,
            endpoint,
            pool,
            job: None,
            retry: Backoff::default(),
            state: InstanceState::default(),
        }
    }

    /// The collection to wait for this round: the one still running from an
    /// earlier round, else a new one. `None` while the retry backoff lasts or
    /// when there is no pool.
    pub fn job_for_round(&mut self, now: Instant, plan: &Plan) -> Option<Job<Vec<Row>>> {
        if let Some(job) = self.job.take() {
            if job.is_finished() || job.age() < stuck_after(plan.interval) {
                return Some(job);
            }
            warn!(
                content = self.row.content,
                dbid = self.row.dbid,
                seconds = job.age().as_secs(),
                "abandoning a collection that never answered"
            );
            job.abort();
        }
        if !self.retry.ready(now) {
            return None;
        }
        let pool = self.pool.clone()?;
        let (sql, params) = (plan.statement.clone(), plan.params);
        Some(Job::spawn_bounded(
            plan.slots.clone(),
            plan.deadline,
            move || async move { collect::run(&pool, &sql, params).await },
        ))
    }

    /// Records this round's outcome; returns the error, if any.
    pub fn record(&mut self, cluster: &str, outcome: Outcome, plan: &Plan) -> Option<&ScrapeError> {
        match outcome {
            Ok((Ok(rows), took)) => {
                self.retry.succeeded();
                self.succeeded(cluster, rows, took);
                None
            }
            Ok((Err(e), took)) => {
                self.retry.failed(Instant::now(), plan.interval);
                self.state.duration = took;
                Some(self.failed(cluster, e))
            }
            Err(job) => {
                self.job = Some(job);
                self.state.duration = plan.deadline;
                let e = ScrapeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within {}",
                        humantime::format_duration(plan.deadline)
                    ),
                );
                Some(self.failed(cluster, e))
            }
        }
    }

    /// Records a failure found without contacting the instance (no pool yet).
    pub fn record_error(&mut self, cluster: &str, e: ScrapeError) {
        self.state.duration = Duration::ZERO;
        self.failed(cluster, e);
    }

    fn succeeded(&mut self, cluster: &str, rows: Vec<Row>, took: Duration) {
        let s = &mut self.state;
        if s.up != Some(true) {
            info!(%cluster, content = self.row.content, dbid = self.row.dbid,
                  address = %self.endpoint.host, port = self.endpoint.port, "instance up");
        }
        s.rows = rows;
        s.up = Some(true);
        s.duration = took;
        s.last_success = Some(SystemTime::now());
        s.last_error = None;
    }

    fn failed(&mut self, cluster: &str, e: ScrapeError) -> &ScrapeError {
        let s = &mut self.state;
        if s.up != Some(false) {
            warn!(%cluster, content = self.row.content, dbid = self.row.dbid,
                  address = %self.endpoint.host, port = self.endpoint.port, error = %e,
                  "instance down");
        }
        s.rows.clear();
        s.up = Some(false);
        *s.errors.entry(e.kind).or_default() += 1;
        s.last_error.insert(e)
    }

    /// True while a collection from an earlier round is still running.
    pub fn is_pending(&self) -> bool {
        self.job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// Closes the pool and cancels a running collection.
    pub fn close(&mut self) {
        if let Some(job) = self.job.take() {
            job.abort();
        }
        if let Some(pool) = self.pool.take() {
            // The coordinator's pool also serves the catalog reads; the runner closes it.
            if !self.row.is_coordinator() {
                pool.close();
            }
        }
    }

    /// This round's rows, when the instance was collected this round.
    pub fn rows_if_up(&self) -> Option<&[Row]> {
        (self.state.up == Some(true)).then_some(self.state.rows.as_slice())
    }

    /// The status page's and `top`'s view of this instance.
    pub fn view(&self, enabled: &[CollectorName]) -> InstanceView {
        let s = &self.state;
        collect::instance_view(
            &self.row,
            s.up,
            s.last_error.as_ref(),
            self.rows_if_up(),
            enabled,
        )
    }

    pub fn render(&self, cfg: &ClusterConfig, w: &mut Writer) {
        let s = &self.state;
        let Some(up) = s.up else { return };
        let l = &self.labels;
        w.sample(&UP, l, &[], f64::from(u8::from(up)));
        // Per-instance times to the microsecond and millisecond: finer digits
        // mean nothing here and cost bytes on every instance's line.
        w.sample(&DURATION, l, &[], s.duration.as_micros() as f64 / 1e6);
        if let Some(ts) = s.last_success {
            w.sample(
                &LAST_SUCCESS,
                l,
                &[],
                (unix_seconds(ts) * 1e3).round() / 1e3,
            );
        }
        for (kind, n) in &s.errors {
            w.sample(&ERRORS, l, &[("kind", kind.label())], *n as f64);
        }
        if let Some(e) = &s.last_error {
            let sqlstate = e.sqlstate.as_deref().unwrap_or("");
            let labels = [
                ("kind", e.kind.label()),
                ("sqlstate", sqlstate),
                ("message", e.label_message()),
            ];
            w.sample(&LAST_ERROR, l, &labels, 1.0);
        }
        if up {
            let ctx = Ctx {
                labels: l,
                content: self.row.content,
                cluster: cfg,
            };
            collect::write_instance(&s.rows, &cfg.collectors, &ctx, w);
        }
    }
}

pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
