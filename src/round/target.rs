//! One scraped instance (the coordinator or a primary segment): its labels,
//! pool, the collection that may still be running from an earlier round, its
//! retry schedule, and what the last attempts found.

use crate::collect::log_follow::Off;
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
use std::sync::{Arc, Mutex};
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
    "Failed collections of the instance by kind; every kind the exporter knows, from 0.",
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
    /// The `log` collector's place in this instance's server log.
    log: Option<collect::log::Shared>,
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
    /// With the `log` collector: its privilege test, bytes per round, roles labelled.
    pub log: Option<(&'static str, u64, usize)>,
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
            log: None,
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
        let log = match plan.log {
            Some((sql, max_bytes, roles)) => Some(collect::LogRead {
                sql,
                follower: self
                    .log
                    .get_or_insert_with(|| {
                        Arc::new(Mutex::new(collect::log_follow::Follower::new(
                            max_bytes, roles,
                        )))
                    })
                    .clone(),
            }),
            None => {
                self.log = None;
                None
            }
        };
        Some(Job::spawn_bounded(
            plan.slots.clone(),
            plan.deadline,
            move || async move { collect::run(&pool, &sql, params, log).await },
        ))
    }

    /// Records this round's outcome; returns the error, if any.
    pub fn record(&mut self, cluster: &str, outcome: Outcome, plan: &Plan) -> Option<&ScrapeError> {
        match outcome {
            Ok((Ok(rows), took)) => {
                self.retry.succeeded();
                self.succeeded(cluster, rows, took);
                self.log_announcements(cluster);
                None
            }
            Ok((Err(e), took)) => {
                match e.kind {
                    ErrorKind::Unavailable => {
                        self.retry.failed_briefly(Instant::now(), plan.interval)
                    }
                    _ => self.retry.failed(Instant::now(), plan.interval),
                }
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

    /// The `log` collector's news about this instance, logged once: why it
    /// is off, or what its read failed with.
    fn log_announcements(&self, cluster: &str) {
        let Some(log) = &self.log else { return };
        let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
        let (content, dbid) = (self.row.content, self.row.dbid);
        let error = f
            .last_error
            .take()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let Some(off) = f.announce.take() else { return };
        let why = match off {
            Off::InsufficientPrivilege => {
                "the role may not read server files: connect as a superuser (GP7: or a member \
                 of pg_read_server_files granted pg_ls_dir, pg_stat_file and pg_read_binary_file)"
            }
            Off::NoCsvLog => "no gpdb-*.csv in log_directory: not Greenplum's CSV server log",
            Off::ReadError => "reading the server log failed",
        };
        warn!(%cluster, content, dbid, reason = off.label(), %error,
              "log collector off for this instance: {why}");
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

    /// Connections the `log` collector saw refused since the last call (role,
    /// coordinator session id), for the incident record.
    pub fn take_log_refusals(&self) -> Vec<(String, String)> {
        self.log
            .as_ref()
            .map(collect::log::take_recent)
            .unwrap_or_default()
    }

    /// True while a collection from an earlier round is still running.
    pub fn is_pending(&self) -> bool {
        self.job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// Closes the pool and cancels a running collection.
    pub fn close(&mut self) {
        // Another server (failover) or connection: its log starts anew.
        self.log = None;
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
        for kind in ErrorKind::ALL {
            let n = s.errors.get(&kind).copied().unwrap_or(0);
            w.sample(&ERRORS, l, &[("kind", kind.label())], n as f64);
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
