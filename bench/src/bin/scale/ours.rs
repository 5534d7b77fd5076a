//! One run of the release exporter against N virtual segments: rounds timed
//! from its own `greenplum_exporter_round_duration_seconds` (scraped once per
//! round, late in the interval, as Prometheus would scrape), CPU and memory
//! from /proc, statements and connections from the servers' counters.

use crate::floor::{self, CollectorCost, Floor, Kind};
use crate::httpget::{self, count_samples, sample};
use crate::lab::{DbDelta, Lab};
use crate::procs::{self, check_stop, free_port, memory_mb, Cpu, Guard};
use crate::profile::{self, Profile};
use crate::stats::Summary;
use crate::wrk::{self, Load};
use crate::Args;
use anyhow::{bail, Context, Result};
use gpse_bench::exporter_statement;
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const APP: &str = "greenplum_segment_exporter";
const METRICS: &str = "/metrics";

#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Virtual primary segments; the exporter collects n + 1 instances.
    pub n: usize,
    /// Real servers holding them (coordinator included).
    pub servers: usize,
    pub interval_s: f64,
    pub instance_timeout_s: f64,
    pub concurrency: usize,
    /// Rounds in the measured window (from `greenplum_exporter_rounds_total`).
    pub rounds: u64,
    /// Round wall time, one sample per round (rounds whose sample was missed
    /// because two ended between two scrapes are counted in `missed_samples`).
    pub round_ms: Summary,
    pub missed_samples: u64,
    /// Instances with `greenplum_up 1` at the start of the window.
    pub up_instances: usize,
    /// Exporter CPU per instance per round (one /metrics scrape per round included).
    pub cpu_us_per_instance_round: f64,
    /// The same from the scheduler's nanosecond counters (finer at small N).
    pub cpu_us_per_instance_round_sched: f64,
    /// Resolution of `cpu_us_per_instance_round` (one clock tick over the window).
    pub cpu_resolution_us: f64,
    pub rss_peak_mb: f64,
    pub rss_mb: f64,
    /// RSS when the window began (connections open, statements prepared).
    pub rss_after_warmup_mb: f64,
    pub db: DbDelta,
    pub statements_per_instance_round: f64,
    pub xacts_per_instance_round: f64,
    pub new_connections_per_instance_round: f64,
    pub body_bytes: usize,
    /// Samples in the body (lines that are not comments).
    pub body_samples: usize,
    /// What pre-compressing the body once per round would give (flate2,
    /// levels 1 and 6): bytes and milliseconds of one compression here.
    pub gzip1_bytes: usize,
    pub gzip1_ms: f64,
    pub gzip6_bytes: usize,
    pub gzip6_ms: f64,
    /// Bytes sent for `Accept-Encoding: gzip`, and whether they were compressed.
    pub gzip_body_bytes: usize,
    pub gzip_encoded: bool,
    pub metrics_get_ms: f64,
    pub loads: Vec<Load>,
    pub floors: Vec<Floor>,
    /// Server time per execution of each collector's SQL on one server.
    pub collector_costs: Vec<CollectorCost>,
    /// Length of the exporter's statement (from the source this benchmark was built with).
    pub statement_bytes: usize,
    /// Whether the statement seen on a segment starts like that source's
    /// (false: the release binary is older than the source).
    pub statement_matches_binary: Option<bool>,
    /// Warnings and errors the exporter logged.
    pub log_problems: Vec<String>,
    pub profile: Option<Profile>,
}

impl Run {
    pub fn floor(&self, name: &str) -> Option<&Floor> {
        self.floors.iter().find(|f| f.statement == name)
    }
}

/// Each collector's part of the statement alone, and the whole statement.
fn collector_parts(family: gpemu_harness::Family) -> Vec<(String, String)> {
    let mut parts = gpse_bench::collector_parts(family);
    parts.push(("(whole statement)".to_owned(), exporter_statement(family)));
    parts
}

/// The collection interval unless given: a round must end well before the
/// scrape point (80% into the interval), and a round takes at most about as
/// long as the statement floor (its median: a few samples, noisy maximum).
/// Whole seconds, at least 2.
fn interval_for(args: &Args, statement_floor_p50_ms: f64) -> Duration {
    args.interval.unwrap_or_else(|| {
        let s = (1.5 * statement_floor_p50_ms / 1e3 + 1.0).ceil() as u64;
        Duration::from_secs(s.max(2))
    })
}

pub async fn run(lab: &Lab, args: &Args, n: usize) -> Result<Run> {
    lab.set_virtual_segments(n).await?;
    // The floor first, with the exporter's own statement too: it also tells
    // how long a round takes here, hence the interval.
    let sql = exporter_statement(lab.family());
    let statement_bytes = sql.len();
    let kinds = [
        Kind {
            name: "select1".into(),
            sql: "SELECT 1".into(),
            exporter_params: false,
            rounds: args.rounds,
        },
        Kind {
            name: "exporter_statement".into(),
            sql: sql.clone(),
            exporter_params: true,
            rounds: args.statement_floor_rounds,
        },
    ];
    let pause = Duration::from_millis(200);
    let parts = collector_parts(lab.family());
    let (floors, collector_costs) = if args.floor_current_thread {
        // Everything of the floor on one thread: no cross-thread wakeups.
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(floor::measure(
                        lab,
                        n,
                        args.concurrency,
                        pause,
                        &kinds,
                        &parts,
                    ))
            })
            .join()
            .expect("floor thread")
        })?
    } else {
        floor::measure(lab, n, args.concurrency, pause, &kinds, &parts).await?
    };
    let statement_p50 = floors
        .iter()
        .find(|f| f.statement == "exporter_statement")
        .map_or(0.0, |f| f.round_ms.p50);
    let interval = interval_for(args, statement_p50);
    eprintln!(
        "N={n}: floor done; exporter at {:?} interval, {} rounds",
        interval, args.rounds
    );
    let timeout = interval * 3 / 4;
    let dir = tempfile_dir()?;
    let port = free_port()?;
    let config = dir.join("exporter.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten_address = \"127.0.0.1:{port}\"\n\n[defaults]\nuser = \"{user}\"\n\
             database = \"postgres\"\nfamily = \"auto\"\nscrape_interval = \"{interval}ms\"\n\
             instance_timeout = \"{timeout}ms\"\n\
             # No catalog re-read inside the window: steady state is collection only.\n\
             topology_refresh = \"1h\"\nconcurrency = {conc}\npool_size = 1\n\
             # collectors: not set, so all of them (the default).\n\n\
             [[clusters]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nport = {cport}\npassword_file = \"{pw}\"\n",
            user = gpemu_harness::SUPERUSER,
            interval = interval.as_millis(),
            timeout = timeout.as_millis(),
            conc = args.concurrency,
            cport = lab.coordinator_port(),
            pw = lab.cluster.superuser_password_file().display(),
        ),
    )?;
    // The exporter warns about configuration files others can read.
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut cmd = Command::new(&args.exporter);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg("--log.level=info")
        .envs(args.exporter_env.iter().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn(&mut cmd, "the exporter")?;
    let problems = Arc::new(Mutex::new(Vec::new()));
    let stderr = guard.child_mut().stderr.take().expect("piped stderr");
    let sink = problems.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                let mut p = sink.lock().expect("log lock");
                if p.len() < 20 {
                    p.push(line);
                }
            }
        }
    });
    let result = measure(lab, args, n, interval, port, &mut guard).await;
    guard.stop(Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut run, seen) = result?;
    lab.wait_sessions_gone(APP, Duration::from_secs(60)).await?;
    run.instance_timeout_s = timeout.as_secs_f64();
    run.log_problems = problems.lock().expect("log lock").clone();
    run.floors = floors;
    run.collector_costs = collector_costs;
    run.statement_bytes = statement_bytes;
    // pg_stat_activity keeps the first track_activity_query_size - 1 bytes.
    run.statement_matches_binary = seen.map(|s| !s.is_empty() && sql.starts_with(s.as_str()));
    Ok(run)
}

struct Scrape {
    rounds: u64,
    duration_s: f64,
    end_unix: f64,
    up: usize,
}

async fn scrape(port: u16) -> Result<Scrape> {
    let r = httpget::get(port, METRICS, false, Duration::from_secs(30)).await?;
    if r.status != 200 {
        bail!("/metrics answered {}", r.status);
    }
    let text = r.text();
    Ok(Scrape {
        rounds: sample(&text, "greenplum_exporter_rounds_total").unwrap_or(0.0) as u64,
        duration_s: sample(&text, "greenplum_exporter_round_duration_seconds").unwrap_or(0.0),
        end_unix: sample(&text, "greenplum_exporter_last_round_timestamp_seconds").unwrap_or(0.0),
        up: count_samples(&text, "greenplum_up", 1.0),
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Sleeps until the next scrape point: 80% into the interval after the
/// start of the last round seen, so the round after it has ended by then.
async fn until_next_point(last: &Scrape, interval: f64) -> Result<()> {
    let start = last.end_unix - last.duration_s;
    let now = unix_now();
    let mut target = start + 1.8 * interval;
    while target < now + 0.3 * interval {
        target += interval;
    }
    procs::sleep(Duration::from_secs_f64(target - now)).await
}

async fn measure(
    lab: &Lab,
    args: &Args,
    n: usize,
    interval: Duration,
    port: u16,
    guard: &mut Guard,
) -> Result<(Run, Option<String>)> {
    let pid = guard.pid();
    let want_up = n + 1;
    let secs = interval.as_secs_f64();
    // Warm-up: connections opened and statements prepared, every instance up.
    let deadline = std::time::Instant::now()
        + Duration::from_secs(120).max(interval * (args.warmup as u32 + 20));
    let mut last = loop {
        check_stop()?;
        guard.check_running()?;
        if std::time::Instant::now() > deadline {
            bail!("the exporter did not reach {want_up} instances up in time");
        }
        match scrape(port).await {
            Ok(s) if s.rounds >= args.warmup as u64 && s.up == want_up => break s,
            _ => procs::sleep(Duration::from_millis(500)).await?,
        }
    };
    until_next_point(&last, secs).await?;
    last = scrape(port).await?;
    let up_instances = last.up;
    let rss_after_warmup_mb = memory_mb(pid)?.1;
    let cpu0 = Cpu::read(pid)?;
    let db0 = lab.counters().await?;
    let first_round = last.rounds;
    let mut samples = Vec::new();
    let mut missed = 0;
    while last.rounds < first_round + args.rounds as u64 {
        guard.check_running()?;
        until_next_point(&last, secs).await?;
        let s = scrape(port).await?;
        match s.rounds.saturating_sub(last.rounds) {
            0 => {}
            d => {
                samples.push(s.duration_s * 1e3);
                missed += d - 1;
            }
        }
        last = s;
    }
    // Give the servers a moment to publish the last round's counters.
    procs::sleep(Duration::from_millis(150)).await?;
    let cpu1 = Cpu::read(pid)?;
    let db1 = lab.counters().await?;
    let rounds = last.rounds - first_round;
    let (rss_peak_mb, rss_mb) = memory_mb(pid)?;
    let statement = lab.exporter_statement().await?;
    let per = (rounds as f64) * (want_up as f64);
    let db = lab.delta(&db0, &db1);

    let plain = httpget::get(port, METRICS, false, Duration::from_secs(30)).await?;
    let gz = httpget::get(port, METRICS, true, Duration::from_secs(30)).await?;
    let body_samples = plain
        .text()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let (gzip1_bytes, gzip1_ms) = gzip(&plain.body, 1)?;
    let (gzip6_bytes, gzip6_ms) = gzip(&plain.body, 6)?;
    let gzip_encoded = gz
        .header("content-encoding")
        .is_some_and(|v| v.contains("gzip"));

    let profile = if args.profile_size == n {
        let seconds = (secs * args.profile_rounds as f64).ceil() as u64;
        match profile::record(pid, seconds, &args.profile_out).await {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("profile skipped: {e:#}");
                None
            }
        }
    } else {
        None
    };

    let url = format!("http://127.0.0.1:{port}{METRICS}");
    // At least one interval, so that every load meets a round (the servers
    // busy, the exporter rendering and publishing) whatever the phase: a
    // shorter one meets a round or not by chance, and its p99 with it.
    let wrk_seconds = args.wrk_seconds.max(secs.ceil() as u64);
    let mut loads = Vec::new();
    for gzip in [false, true] {
        check_stop()?;
        loads.push(
            wrk::run(
                &url,
                gzip,
                args.wrk_connections,
                args.wrk_threads,
                wrk_seconds,
                pid,
            )
            .await?,
        );
    }
    let run = Run {
        n,
        servers: lab.servers_used(n),
        interval_s: secs,
        instance_timeout_s: 0.0,
        concurrency: args.concurrency,
        rounds,
        round_ms: Summary::of(&samples),
        missed_samples: missed,
        up_instances,
        cpu_us_per_instance_round: cpu1.ticks_seconds_since(&cpu0) * 1e6 / per,
        cpu_us_per_instance_round_sched: cpu1.sched_seconds_since(&cpu0) * 1e6 / per,
        cpu_resolution_us: 1e6 / procs::clock_ticks() / per,
        rss_peak_mb,
        rss_mb,
        rss_after_warmup_mb,
        statements_per_instance_round: db.statements as f64 / per,
        xacts_per_instance_round: db.xacts as f64 / per,
        new_connections_per_instance_round: db.sessions as f64 / per,
        db,
        body_bytes: plain.body.len(),
        body_samples,
        gzip1_bytes,
        gzip1_ms,
        gzip6_bytes,
        gzip6_ms,
        gzip_body_bytes: gz.body.len(),
        gzip_encoded,
        metrics_get_ms: plain.elapsed.as_secs_f64() * 1e3,
        loads,
        floors: Vec::new(),
        collector_costs: Vec::new(),
        statement_bytes: 0,
        statement_matches_binary: None,
        log_problems: Vec::new(),
        profile,
    };
    Ok((run, statement))
}

/// Compressed size and time of `body` at `level`.
fn gzip(body: &[u8], level: u32) -> Result<(usize, f64)> {
    use std::io::Write;
    let t = std::time::Instant::now();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(body)?;
    let out = e.finish()?;
    Ok((out.len(), t.elapsed().as_secs_f64() * 1e3))
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("gpse_bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating a temporary directory")?;
    Ok(dir)
}
