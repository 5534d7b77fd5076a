//! The peer: Debian's `prometheus-postgres-exporter` (0.11.1) scraping every
//! real server in utility mode, with a queries file that gives the figures
//! our collectors give, scraped by an HTTP GET once per interval as
//! Prometheus would. Its figures are per instance scraped.

use crate::httpget;
use crate::lab::{DbDelta, Lab};
use crate::procs::{self, check_stop, free_port, memory_mb, Cpu, Guard};
use crate::stats::Summary;
use anyhow::{bail, Context, Result};
use gpemu_harness::{Family, SUPERUSER, SUPERUSER_PASSWORD};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PROGRAM: &str = "prometheus-postgres-exporter";

#[derive(Clone, Debug, Serialize)]
pub struct PeerRun {
    pub variant: String,
    pub flags: Vec<String>,
    /// Servers scraped (segments and coordinator), one DSN each.
    pub instances: usize,
    pub interval_s: f64,
    pub scrapes: usize,
    /// Wall time of one scrape (HTTP GET of /metrics, all instances).
    pub scrape_ms: Summary,
    pub cpu_us_per_instance_scrape: f64,
    pub cpu_us_per_instance_scrape_sched: f64,
    pub cpu_resolution_us: f64,
    pub rss_peak_mb: f64,
    pub rss_mb: f64,
    pub db: DbDelta,
    pub statements_per_instance_scrape: f64,
    pub xacts_per_instance_scrape: f64,
    pub new_connections_per_instance_scrape: f64,
    pub body_bytes: usize,
    /// Instances whose custom-query figures were in the last scrape
    /// (distinct `server` labels of `gp_connection_limits_max_connections`).
    pub up_instances: usize,
    pub failed_scrapes: usize,
    pub log_problems: Vec<String>,
}

pub struct Variant {
    pub name: &'static str,
    pub flags: &'static [&'static str],
}

pub const VARIANTS: [Variant; 2] = [
    Variant {
        name: "default+queries",
        flags: &[],
    },
    Variant {
        name: "queries-only",
        flags: &["--disable-default-metrics", "--disable-settings-metrics"],
    },
];

pub async fn run(
    lab: &Lab,
    variant: &Variant,
    interval: Duration,
    scrapes: usize,
) -> Result<PeerRun> {
    let dir = std::env::temp_dir().join(format!("gpse_bench-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let queries = dir.join("queries.yaml");
    std::fs::write(&queries, queries_yaml(lab.family()))?;
    let options = lab.utility_url_options();
    let dsns: Vec<String> = lab
        .cluster
        .instances()
        .iter()
        .map(|i| {
            format!(
                "postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable&options={options}",
                i.port
            )
        })
        .collect();
    let instances = dsns.len();
    let port = free_port()?;
    let mut flags = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--no-collector.database".into(),
        "--no-collector.bgwriter".into(),
        format!("--extend.query-path={}", queries.display()),
        "--log.level=warn".into(),
    ];
    flags.extend(variant.flags.iter().map(|f| f.to_string()));
    let mut cmd = Command::new(PROGRAM);
    cmd.args(&flags)
        .env("DATA_SOURCE_NAME", dsns.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn(&mut cmd, &format!("{PROGRAM} (apt-get install {PROGRAM})"))?;
    let problems = Arc::new(Mutex::new(Vec::new()));
    let stderr = guard.child_mut().stderr.take().expect("piped stderr");
    let sink = problems.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            let mut p = sink.lock().expect("log lock");
            if p.len() < 20 {
                p.push(line);
            }
        }
    });
    let result = measure(lab, port, &mut guard, instances, interval, scrapes).await;
    guard.stop(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
    let mut run = result?;
    lab.wait_quiet(Duration::from_secs(60)).await?;
    run.variant = variant.name.into();
    run.flags = flags
        .into_iter()
        .filter(|f| !f.starts_with("--web.") && !f.starts_with("--extend."))
        .collect();
    run.log_problems = problems.lock().expect("log lock").clone();
    Ok(run)
}

async fn measure(
    lab: &Lab,
    port: u16,
    guard: &mut Guard,
    instances: usize,
    interval: Duration,
    scrapes: usize,
) -> Result<PeerRun> {
    let pid = guard.pid();
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    loop {
        guard.check_running()?;
        if httpget::get(port, "/", false, Duration::from_secs(5))
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("{PROGRAM} did not listen within {limit:?}");
        }
        procs::sleep(Duration::from_millis(200)).await?;
    }
    let scrape = || httpget::get(port, "/metrics", false, Duration::from_secs(60));
    // Warm-up: the first scrapes connect and read the server versions.
    for _ in 0..2 {
        scrape().await?;
        procs::sleep(interval).await?;
    }
    let cpu0 = Cpu::read(pid)?;
    let db0 = lab.counters().await?;
    let mut times = Vec::new();
    let mut failed = 0;
    let mut last = None;
    let started = Instant::now();
    for k in 0..scrapes {
        check_stop()?;
        guard.check_running()?;
        let r = scrape().await?;
        if r.status != 200 {
            failed += 1;
        }
        times.push(r.elapsed);
        last = Some(r);
        let next = started + interval * (k as u32 + 1);
        procs::sleep(next.saturating_duration_since(Instant::now())).await?;
    }
    let cpu1 = Cpu::read(pid)?;
    let db1 = lab.counters().await?;
    let (rss_peak_mb, rss_mb) = memory_mb(pid)?;
    let last = last.context("no scrape")?;
    let text = last.text();
    let per = (scrapes * instances) as f64;
    let db = lab.delta(&db0, &db1);
    Ok(PeerRun {
        variant: String::new(),
        flags: Vec::new(),
        instances,
        interval_s: interval.as_secs_f64(),
        scrapes,
        scrape_ms: Summary::of_durations(&times),
        cpu_us_per_instance_scrape: cpu1.ticks_seconds_since(&cpu0) * 1e6 / per,
        cpu_us_per_instance_scrape_sched: cpu1.sched_seconds_since(&cpu0) * 1e6 / per,
        cpu_resolution_us: 1e6 / procs::clock_ticks() / per,
        rss_peak_mb,
        rss_mb,
        statements_per_instance_scrape: db.statements as f64 / per,
        xacts_per_instance_scrape: db.xacts as f64 / per,
        new_connections_per_instance_scrape: db.sessions as f64 / per,
        db,
        body_bytes: last.body.len(),
        up_instances: servers_reporting(&text),
        failed_scrapes: failed,
        log_problems: Vec::new(),
    })
}

fn servers_reporting(text: &str) -> usize {
    let mut servers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("gp_connection_limits_max_connections{"))
        .filter_map(|l| l.split("server=\"").nth(1)?.split('"').next())
        .collect();
    servers.sort_unstable();
    servers.dedup();
    servers.len()
}

/// The figures of our collectors as postgres_exporter custom queries: one
/// query per metric family, as that format needs.
pub fn queries_yaml(family: Family) -> String {
    let (backends, waiting, wait_since) = match family {
        Family::Gp6 => (
            "pg_stat_activity",
            "waiting AND waiting_reason = 'lock'",
            "query_start",
        ),
        Family::Gp7 => (
            "(SELECT * FROM pg_stat_activity WHERE backend_type = 'client backend') a",
            "wait_event_type = 'Lock'",
            "state_change",
        ),
    };
    let blockers = match family {
        Family::Gp6 => "SELECT count(DISTINCT h.virtualtransaction)::float8 AS count FROM pg_locks w JOIN pg_locks h ON h.granted AND h.virtualtransaction <> w.virtualtransaction AND h.locktype = w.locktype AND h.database IS NOT DISTINCT FROM w.database AND h.relation IS NOT DISTINCT FROM w.relation AND h.page IS NOT DISTINCT FROM w.page AND h.tuple IS NOT DISTINCT FROM w.tuple AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid AND h.transactionid IS NOT DISTINCT FROM w.transactionid AND h.classid IS NOT DISTINCT FROM w.classid AND h.objid IS NOT DISTINCT FROM w.objid AND h.objsubid IS NOT DISTINCT FROM w.objsubid WHERE NOT w.granted AND w.pid IS NOT NULL",
        Family::Gp7 => "SELECT count(DISTINCT b)::float8 AS count FROM pg_locks l, LATERAL unnest(pg_blocking_pids(l.pid)) b WHERE NOT l.granted AND l.pid IS NOT NULL",
    };
    let gauge = |name: &str, help: &str| {
        format!("    - {name}:\n        usage: \"GAUGE\"\n        description: \"{help}\"\n")
    };
    let label = |name: &str| {
        format!("    - {name}:\n        usage: \"LABEL\"\n        description: \"{name}\"\n")
    };
    let query = |name: &str, sql: &str, metrics: String| {
        format!(
            "{name}:\n  query: \"{}\"\n  metrics:\n{metrics}\n",
            sql.replace('"', "\\\"")
        )
    };
    let mut y = String::from("# Same figures as greenplum_segment_exporter's collectors.\n");
    y += &query(
        "gp_connections",
        &format!("SELECT coalesce(state, 'unknown') AS state, count(*)::float8 AS count FROM {backends} GROUP BY 1"),
        label("state") + &gauge("count", "Client backends by state"),
    );
    y += &query(
        "gp_connection_limits",
        "SELECT current_setting('max_connections')::float8 AS max_connections, current_setting('superuser_reserved_connections')::float8 AS superuser_reserved_connections",
        gauge("max_connections", "max_connections") + &gauge("superuser_reserved_connections", "superuser_reserved_connections"),
    );
    y += &query(
        "gp_sessions",
        &format!("SELECT count(DISTINCT sess_id) FILTER (WHERE sess_id > 0)::float8 AS distributed, count(*) FILTER (WHERE sess_id <= 0)::float8 AS local, coalesce(max(extract(epoch FROM now() - state_change)) FILTER (WHERE state = 'idle in transaction'), 0)::float8 AS oldest_idle_in_transaction_seconds, coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()), 0)::float8 AS oldest_active_seconds FROM {backends}"),
        gauge("distributed", "Distributed sessions") + &gauge("local", "Local sessions") + &gauge("oldest_idle_in_transaction_seconds", "Oldest idle in transaction") + &gauge("oldest_active_seconds", "Oldest active query"),
    );
    for (name, col) in [
        ("user", "usename"),
        ("database", "datname"),
        ("application", "application_name"),
    ] {
        y += &query(
            &format!("gp_connections_by_{name}"),
            &format!("SELECT coalesce({col}::text, '') AS {col}, count(*)::float8 AS count FROM {backends} GROUP BY 1"),
            label(col) + &gauge("count", &format!("Client backends by {col}")),
        );
    }
    y += &query(
        "gp_prepared_transactions",
        "SELECT count(*)::float8 AS count, current_setting('max_prepared_transactions')::float8 AS max, coalesce(max(extract(epoch FROM now() - prepared)), 0)::float8 AS oldest_age_seconds, count(*) FILTER (WHERE prepared < now() - interval '300 seconds')::float8 AS stale FROM pg_prepared_xacts",
        gauge("count", "Prepared transactions") + &gauge("max", "max_prepared_transactions") + &gauge("oldest_age_seconds", "Oldest prepared transaction") + &gauge("stale", "Stale prepared transactions"),
    );
    y += &query(
        "gp_lock_waiters",
        "SELECT locktype, mode, count(*)::float8 AS count FROM pg_locks WHERE NOT granted AND pid IS NOT NULL GROUP BY locktype, mode",
        label("locktype") + &label("mode") + &gauge("count", "Lock waiters"),
    );
    y += &query(
        "gp_lock_blockers",
        blockers,
        gauge("count", "Sessions blocking a lock waiter"),
    );
    y += &query(
        "gp_lock_longest_wait",
        &format!("SELECT coalesce(max(extract(epoch FROM now() - {wait_since})), 0)::float8 AS seconds FROM pg_stat_activity WHERE {waiting}"),
        gauge("seconds", "Longest lock wait"),
    );
    y += &query(
        "gp_settings",
        "SELECT name, CASE WHEN vartype = 'bool' THEN CASE WHEN setting = 'on' THEN 1 ELSE 0 END ELSE setting::float8 END::float8 AS value FROM pg_settings WHERE vartype IN ('bool', 'integer', 'real') AND name IN ('gp_vmem_protect_limit', 'gp_enable_global_deadlock_detector', 'gp_vmem_idle_resource_timeout', 'gp_cached_segworkers_threshold', 'max_wal_senders', 'autovacuum_max_workers', 'max_worker_processes')",
        label("name") + &gauge("value", "Setting value"),
    );
    y
}
