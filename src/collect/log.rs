//! The `log` collector: what each instance's own server log says about
//! refused connections, failed dispatches, gang resets and crashes, read
//! incrementally through the utility connection the exporter already holds
//! (`log.sql`: `pg_ls_dir`, `pg_stat_file`, `pg_read_binary_file`; one more
//! small statement per instance per round, after the combined one). Parsing
//! is `log_csv`, following files between rounds `log_follow`. The statement
//! text of a line is never read into any output.

use super::log_csv::{Kind, Reason};
use super::log_follow::{Answer, Follower, Off, Tally};
use super::{items, Collector, Ctx, Row};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::error::ScrapeError;
use crate::model::family::Family;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use tokio_postgres::types::Type;

pub struct Log;

static READING: Desc = Desc::gauge(
    "greenplum_log_reading",
    "1 while the log collector reads the instance's server log, 0 when it cannot \
     (greenplum_log_off_info says why).",
);
static OFF: Desc = Desc::gauge(
    "greenplum_log_off_info",
    "Present while the log collector cannot read the instance's log: insufficient_privilege \
     (needs a superuser, or on GP7 pg_read_server_files and the file functions), no_csv_log \
     (no gpdb-*.csv in log_directory), read_error.",
);
static REFUSED: Desc = Desc::counter(
    "greenplum_log_refused_connections_total",
    "Connections the instance refused with SQLSTATE 53300 since the exporter started, by \
     reason: too_many_clients, reserved_for_superusers, fts_reserved, other.",
);
static REFUSED_BY_ROLE: Desc = Desc::counter(
    "greenplum_log_refused_connections_by_role_total",
    "Refused connections (53300) by the role refused: the first top_n.usename roles seen, \
     the rest as other.",
);
static LAST_REFUSAL: Desc = Desc::gauge(
    "greenplum_log_last_refusal_timestamp_seconds",
    "Unix time of the last refused connection's log line (UTC logs only).",
);
static DISPATCH: Desc = Desc::counter(
    "greenplum_log_dispatch_failures_total",
    "Dispatches the coordinator could not start (58M01 failed to acquire resources), by the \
     segment content its detail names (-1: none named).",
);
static EVENTS: Desc = Desc::counter(
    "greenplum_log_events_total",
    "Other log events by kind: gang_reset, crash_recovery, panic, out_of_memory, vmem_protect.",
);
static RECORDS: Desc = Desc::counter(
    "greenplum_log_records_total",
    "Log records read and parsed.",
);
static MALFORMED: Desc = Desc::counter(
    "greenplum_log_malformed_records_total",
    "Log records that do not have Greenplum's 30 CSV columns.",
);
static READ_BYTES: Desc = Desc::counter(
    "greenplum_log_read_bytes_total",
    "Bytes of server log read.",
);
static SKIPPED_BYTES: Desc = Desc::counter(
    "greenplum_log_skipped_bytes_total",
    "Bytes of server log not parsed: beyond a round's log_max_bytes_per_round, or of a \
     record cut off by rotation or skipping.",
);

impl Collector for Log {
    fn name(&self) -> CollectorName {
        CollectorName::Log
    }

    /// Not part of the combined statement: see [`read`].
    fn sql(&self, _family: Family) -> &'static str {
        ""
    }

    fn write(&self, rows: &[&Row], ctx: &Ctx, out: &mut Writer) {
        let l = ctx.labels;
        let Some(reading) = super::item(rows, "reading") else {
            return;
        };
        out.sample(&READING, l, &[], reading);
        for r in items(rows, "off") {
            out.sample(&OFF, l, &[("reason", r.label(0))], 1.0);
        }
        if reading == 0.0 && super::item(rows, "records").is_none() {
            return;
        }
        for r in items(rows, "refused") {
            out.sample(&REFUSED, l, &[("reason", r.label(0))], r.value);
        }
        for r in items(rows, "refused_by_role") {
            out.sample(&REFUSED_BY_ROLE, l, &[("usename", r.label(0))], r.value);
        }
        if let Some(t) = super::item(rows, "last_refusal") {
            out.sample(&LAST_REFUSAL, l, &[], t);
        }
        if ctx.content == -1 {
            for r in items(rows, "dispatch_failed") {
                out.sample(&DISPATCH, l, &[("failed_content", r.label(0))], r.value);
            }
        }
        for r in items(rows, "event") {
            out.sample(&EVENTS, l, &[("event", r.label(0))], r.value);
        }
        for (desc, item) in [
            (&RECORDS, "records"),
            (&MALFORMED, "malformed"),
            (&READ_BYTES, "read_bytes"),
            (&SKIPPED_BYTES, "skipped_bytes"),
        ] {
            out.sample(desc, l, &[], super::item(rows, item).unwrap_or(0.0));
        }
    }
}

/// The privilege test of a family (the read is the same on both: `log.sql`).
pub fn sql(family: Family) -> &'static str {
    match family {
        Family::Gp6 => include_str!("log_gp6.sql"),
        Family::Gp7 => include_str!("log_gp7.sql"),
    }
}

/// Rounds between privilege tests while the role may not read the log.
const RECHECK_ROUNDS: u32 = 100;

/// One instance's follower, shared by the collections of its rounds.
pub type Shared = Arc<Mutex<Follower>>;

/// Reads what the instance's log gained since the last round and returns
/// the collector's rows. A failed read costs this collector only: it is
/// recorded in the follower (off, `read_error`) and the error returned
/// beside the rows, for the caller to log once.
pub async fn read(
    client: &tokio_postgres::Client,
    privilege_sql: &str,
    follower: &Shared,
) -> (Vec<Row>, Option<ScrapeError>) {
    let check = lock(follower).privilege_check_due(RECHECK_ROUNDS);
    if check {
        let ok = match client.query_typed(privilege_sql, &[]).await {
            Ok(rows) => rows
                .first()
                .and_then(|r| r.try_get::<_, Option<bool>>(0).ok()),
            Err(e) => return failed(follower, ScrapeError::from(e)),
        };
        lock(follower).privileged = Some(ok.flatten().unwrap_or(false));
    }
    if lock(follower).privileged != Some(true) {
        let mut f = lock(follower);
        let off = f.absorb(Answer::default());
        f.announce = off.or(f.announce);
        return (as_rows(&f), None);
    }
    let sql = include_str!("log.sql");
    let (file, offset, max) = lock(follower).request();
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 3] = [
        (&file, Type::TEXT),
        (&offset, Type::INT8),
        (&max, Type::INT8),
    ];
    let error = match client.query_typed(sql, &params).await {
        Ok(rows) => match rows.first().map(decode).transpose() {
            Ok(answer) => {
                let mut f = lock(follower);
                let off = f.absorb(answer.unwrap_or_default());
                f.announce = off;
                None
            }
            Err(e) => Some(ScrapeError::from(e)),
        },
        Err(e) => Some(ScrapeError::from(e)),
    };
    match error {
        Some(e) => failed(follower, e),
        None => (as_rows(&lock(follower)), None),
    }
}

/// A statement of the collector failed: off (`read_error`) this round, the
/// privilege tested again next round.
fn failed(follower: &Shared, e: ScrapeError) -> (Vec<Row>, Option<ScrapeError>) {
    let mut f = lock(follower);
    if f.failed() {
        f.announce = Some(Off::ReadError);
    }
    f.privileged = None;
    (as_rows(&f), Some(e))
}

fn lock(f: &Shared) -> std::sync::MutexGuard<'_, Follower> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode(r: &tokio_postgres::Row) -> Result<Answer, tokio_postgres::Error> {
    Ok(Answer {
        ok: r.try_get::<_, Option<bool>>(0)?.unwrap_or(false),
        newest: r.try_get(1)?,
        newest_size: r.try_get(2)?,
        size: r.try_get(3)?,
        start: r.try_get(4)?,
        data: r.try_get(5)?,
        next: r.try_get(6)?,
    })
}

fn row(item: &'static str, labels: Vec<String>, value: f64) -> Row {
    Row {
        collector: super::tag(CollectorName::Log),
        item: Cow::Borrowed(item),
        labels,
        value,
    }
}

/// The follower's state and counts as rows of this collector. Counts are
/// served from the first round that read the log, every reason and event
/// kind from 0.
pub fn as_rows(f: &Follower) -> Vec<Row> {
    let t: &Tally = &f.tally;
    let mut out = vec![row("reading", vec![], f64::from(u8::from(f.off.is_none())))];
    if let Some(off) = f.off {
        out.push(row("off", vec![off.label().to_owned()], 1.0));
    }
    if f.off.is_some() && *t == Tally::default() {
        return out;
    }
    for reason in Reason::ALL {
        let n = t.refused.get(&reason).copied().unwrap_or(0);
        out.push(row("refused", vec![reason.label().to_owned()], n as f64));
    }
    for (role, n) in &t.refused_by_role {
        out.push(row("refused_by_role", vec![role.clone()], *n as f64));
    }
    if let Some(ts) = t.last_refusal {
        out.push(row("last_refusal", vec![], (ts * 1e3).round() / 1e3));
    }
    for (content, n) in &t.dispatch_failed {
        out.push(row("dispatch_failed", vec![content.to_string()], *n as f64));
    }
    for kind in Kind::ALL {
        let n = t.events.get(&kind).copied().unwrap_or(0);
        out.push(row("event", vec![kind.label().to_owned()], n as f64));
    }
    out.push(row("records", vec![], t.records as f64));
    out.push(row("malformed", vec![], t.malformed as f64));
    out.push(row("read_bytes", vec![], t.read_bytes as f64));
    out.push(row("skipped_bytes", vec![], t.skipped_bytes as f64));
    out
}

/// Refusals and failed dispatches since the last call, by role and
/// coordinator session id.
pub fn take_recent(f: &Shared) -> Vec<(String, String)> {
    std::mem::take(&mut lock(f).tally.recent)
}
