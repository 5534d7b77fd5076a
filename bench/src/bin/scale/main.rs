//! Scale benchmark of the release exporter: M real PostgreSQL servers from
//! the harness, a coordinator catalog listing N virtual primaries over them,
//! and for each N the exporter's round time against the fan-out floor, its
//! CPU, memory, database-side statements and connections, and /metrics under
//! load; then Debian's postgres_exporter against the same servers, and a
//! profile of the exporter's hot paths. See bench/README.md.

mod cpus;
mod floor;
mod httpget;
mod lab;
mod ours;
mod peer;
mod procs;
mod profile;
mod report;
mod stats;
mod wrk;

use anyhow::{bail, Context, Result};
use clap::Parser;
use gpemu_harness::Family;
use lab::Lab;
use procs::STOP;
use report::{Machine, Report};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser, Clone, Debug)]
#[command(about = "Scale benchmark of greenplum_segment_exporter (see bench/README.md)")]
pub struct Args {
    /// Virtual primary segments, one run each (2048 needs some 16 GB free for
    /// the servers' backends: add it with --sizes on such a machine).
    #[arg(long, value_delimiter = ',', default_value = "16,256,1024")]
    pub sizes: Vec<usize>,
    /// Real PostgreSQL segment servers the virtual segments are spread over.
    #[arg(long, default_value_t = 16)]
    pub servers: usize,
    /// Measured rounds per N (also floor rounds and postgres_exporter scrapes).
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Rounds before measuring (connecting, preparing).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Measured rounds of the floor with the exporter's own statement (costly at large N).
    #[arg(long, default_value_t = 4)]
    pub statement_floor_rounds: usize,
    /// The exporter's `concurrency`, also the floor client's bound.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Collection interval in seconds for every N [default: from the statement
    /// floor: 1.5 x its round p50 + 1 s, whole seconds, at least 2].
    #[arg(long, value_parser = parse_seconds)]
    pub interval: Option<Duration>,
    #[arg(long, default_value = "gp6")]
    pub family: Family,
    /// The release exporter binary.
    #[arg(long, env = "GPSE_BENCH_EXPORTER", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/greenplum_segment_exporter"))]
    pub exporter: PathBuf,
    /// Run the floor client on a current-thread tokio runtime (default: multi-thread, as the exporter).
    #[arg(long)]
    pub floor_current_thread: bool,
    /// Extra environment of the exporter, KEY=VALUE (repeatable), e.g. MALLOC_ARENA_MAX=2.
    #[arg(long = "exporter-env", value_name = "KEY=VALUE")]
    pub exporter_env: Vec<String>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results.json"))]
    pub json: PathBuf,
    /// Where to write the tables as Markdown.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/last-run.md"))]
    pub markdown: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub wrk_connections: usize,
    #[arg(long, default_value_t = 2)]
    pub wrk_threads: usize,
    /// Seconds of each wrk load; at least one collection interval, so that each meets a round.
    #[arg(long, default_value_t = 5)]
    pub wrk_seconds: u64,
    /// Scrape interval of postgres_exporter in seconds.
    #[arg(long, default_value = "2", value_parser = parse_seconds)]
    pub peer_interval: Duration,
    /// Skip postgres_exporter.
    #[arg(long)]
    pub no_peer: bool,
    /// Let the servers share every CPU with the exporter and its clients
    /// (default: servers on the first half of the CPUs, the rest on the others).
    #[arg(long)]
    pub shared_cpus: bool,
    /// N at which to profile the exporter with perf (0: no profile).
    #[arg(long, default_value_t = 1024)]
    pub profile_size: usize,
    /// Rounds to profile.
    #[arg(long, default_value_t = 2)]
    pub profile_rounds: usize,
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/profile.txt"))]
    pub profile_out: PathBuf,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|e| format!("{s:?}: {e}"))?;
    if v.is_nan() || v < 1.0 {
        return Err("at least 1 second".into());
    }
    Ok(Duration::from_secs_f64(v))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() || sizes[0] == 0 || args.servers == 0 || args.rounds == 0 {
        bail!("--sizes, --servers and --rounds must be positive");
    }
    if !args.exporter.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release --bin greenplum_segment_exporter` \
             (or use `bash bench/run`)",
            args.exporter.display()
        );
    }
    for tool in ["wrk"]
        .into_iter()
        .chain((!args.no_peer).then_some(peer::PROGRAM))
    {
        if procs::output(
            std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]),
        )
        .is_err()
        {
            bail!("{tool} not found: apt-get install {tool} (bash bench/run installs it)");
        }
    }
    // The machine's CPUs, before this process is held to some of them.
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    // Before any thread starts: they inherit it.
    let split = match args.shared_cpus {
        true => None,
        false => cpus::Split::halves()?,
    };
    if let Some(split) = &split {
        split.pin_self()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Before anything starts: Ctrl-C and SIGTERM only ask the run to stop,
    // so every guard and the cluster stop what they started.
    runtime.block_on(async {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("interrupted: stopping");
            STOP.store(true, Ordering::Relaxed);
        });
        anyhow::Ok(())
    })?;

    let started = Instant::now();
    let date =
        procs::output(std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
            .unwrap_or_default()
            .trim()
            .to_owned();
    let mut machine = Machine::read();
    machine.nproc = nproc;
    machine.cpus = split.as_ref().map_or_else(
        || "servers, floor client, exporter, wrk and peer share every CPU".to_owned(),
        cpus::Split::describe,
    );
    let exporter = report::Exporter::read(&args.exporter);
    let max_n = *sizes.last().expect("non-empty");
    let per_server = max_n.div_ceil(args.servers);
    eprintln!(
        "starting {} servers + coordinator ({} family), up to {per_server} virtual segments each",
        args.servers, args.family
    );
    let cluster = Lab::start(args.family, args.servers, per_server)?;
    procs::check_stop()?;
    let result = runtime.block_on(async {
        let lab = Lab::prepare(cluster).await?;
        if let Some(split) = &split {
            split.pin_servers(&lab.cluster.server_pids())?;
        }
        let out = run_all(&lab, &args, &sizes).await;
        anyhow::Ok((lab, out))
    });
    let (lab, (ours, peer, errors)) = result?;

    machine.loadavg_end = report::loadavg();
    let report = Report {
        date,
        exporter,
        command: std::env::args().collect(),
        machine,
        family: args.family.to_string(),
        servers: args.servers,
        seconds: started.elapsed().as_secs_f64(),
        targets: report::targets(&ours, &peer),
        ours,
        peer,
        errors,
    };
    let tables = report::tables(&report);
    println!("{tables}");
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", args.json.display()))?;
    std::fs::write(&args.markdown, &tables)
        .with_context(|| format!("writing {}", args.markdown.display()))?;
    eprintln!(
        "wrote {} and {} in {:.0} s",
        args.json.display(),
        args.markdown.display(),
        report.seconds
    );
    // Stops and deletes every server.
    runtime.block_on(async { drop(lab) });
    if STOP.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// Every N, then the peer; a failed step is recorded and the others still run.
async fn run_all(
    lab: &Lab,
    args: &Args,
    sizes: &[usize],
) -> (Vec<ours::Run>, Vec<peer::PeerRun>, Vec<String>) {
    let mut runs = Vec::new();
    let mut peers = Vec::new();
    let mut errors = Vec::new();
    for &n in sizes {
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        let t = Instant::now();
        eprintln!("N={n}: floor");
        match ours::run(lab, args, n).await {
            Ok(r) => {
                eprintln!(
                    "N={n}: round p50 {:.1} ms p99 {:.1} ms, CPU {:.1} us/instance/round, {:.4} statements, {} new connections ({:.0} s)",
                    r.round_ms.p50,
                    r.round_ms.p99,
                    r.cpu_us_per_instance_round_sched,
                    r.statements_per_instance_round,
                    r.db.sessions,
                    t.elapsed().as_secs_f64()
                );
                runs.push(r);
            }
            Err(e) => {
                eprintln!("N={n} failed: {e:#}");
                errors.push(format!("N={n}: {e:#}"));
                // Whatever the failed run left connected must go first.
                let _ = lab.wait_quiet(Duration::from_secs(60)).await;
            }
        }
    }
    if !args.no_peer {
        // The catalog no longer matters; the servers are idle again.
        for v in &peer::VARIANTS {
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            eprintln!("postgres_exporter ({}): {} scrapes", v.name, args.rounds);
            match peer::run(lab, v, args.peer_interval, args.rounds).await {
                Ok(p) => {
                    eprintln!(
                        "postgres_exporter ({}): scrape p50 {:.1} ms, CPU {:.0} us/instance/scrape, {:.2} statements, {:.2} new connections per instance per scrape",
                        v.name,
                        p.scrape_ms.p50,
                        p.cpu_us_per_instance_scrape_sched,
                        p.statements_per_instance_scrape,
                        p.new_connections_per_instance_scrape
                    );
                    peers.push(p);
                }
                Err(e) => {
                    eprintln!("postgres_exporter ({}) failed: {e:#}", v.name);
                    errors.push(format!("postgres_exporter ({}): {e:#}", v.name));
                    let _ = lab.wait_quiet(Duration::from_secs(60)).await;
                }
            }
        }
    }
    (runs, peers, errors)
}
