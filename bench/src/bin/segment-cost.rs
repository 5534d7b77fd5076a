//! What the exporter costs a real segment: on real Greenplum 6 and 7 (the
//! harness's real backend, `../shared/greenplum/` or the GPSE_GP6_* /
//! GPSE_GP7_* variables), the time of the exporter's statement on one
//! primary, idle and then holding its `max_connections` of backends
//! (dispatched sessions in the ordinary slots, superuser utility sessions in
//! the reserved ones), next to the cheapest count a DBA would run instead,
//! `select count(*) from pg_stat_activity`.
//!
//! Two figures per statement, both on one superuser utility session of the
//! segment, as the exporter holds: the round trip of the prepared statement
//! over loopback (what a round waits for) and the executor's own time from
//! `EXPLAIN (ANALYZE) EXECUTE` (the segment's CPU for it, planning aside).
//! Medians and 90th percentiles of `--runs` runs.

use anyhow::{Context, Result};
use clap::Parser;
use gpemu_harness::{Backend, Cluster, ClusterSpec, Family, Held, InstanceSettings, Login, Mode};
use gpse_bench::{collector_parts, exporter_statement};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

#[derive(Parser)]
struct Args {
    /// The segment's `max_connections` (the coordinator gets 40% of it, as
    /// `gpconfig` wants it below the segments').
    #[arg(long, default_value_t = 250)]
    max_connections: u32,
    /// Runs of each statement in each state.
    #[arg(long, default_value_t = 50)]
    runs: usize,
}

/// `$1 float8` (stale prepared-transaction age), `$2 int4` (query text
/// characters): the exporter's parameters, with its defaults.
const TYPES: [Type; 2] = [Type::FLOAT8, Type::INT4];
const AGE: f64 = 300.0;
const QUERY_CHARS: i32 = 0;
const COUNT: &str = "SELECT count(*) FROM pg_stat_activity";

struct Figure {
    statement: String,
    round_trip_ms: (f64, f64),
    execution_ms: (f64, f64),
    rows: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "family  state  backends  statement           rows  round_trip_ms p50 / p90  execution_ms p50 / p90"
    );
    for family in Family::ALL {
        let Some(backend) = Backend::real_or_skip(family) else {
            continue;
        };
        // Ctrl-C ends the measurement, and dropping the cluster stops its servers.
        tokio::select! {
            done = measure_family(backend, &args) => done?,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        }
    }
    Ok(())
}

async fn measure_family(backend: Backend, args: &Args) -> Result<()> {
    let segment = InstanceSettings {
        max_connections: args.max_connections,
        superuser_reserved_connections: 5,
        max_prepared_transactions: 25,
    };
    let coordinator = InstanceSettings {
        max_connections: (args.max_connections * 2 / 5).max(20),
        ..segment
    };
    // Two primaries: with one, the planner needs no motion and a join
    // makes no reader gangs.
    let cluster = ClusterSpec::new(backend, 2)
        .segment_settings(segment)
        .coordinator_settings(coordinator)
        .start()?;
    let probe = cluster.connect(0, Login::Superuser, Mode::Utility).await?;
    let idle = backends(&probe, backend.family).await?;
    for figure in measure(&probe, backend.family, args.runs).await? {
        print_line(backend.family, "idle", idle, &figure);
    }
    // Ordinary roles run in the default resource queue, 20 active
    // statements: raised so that its sessions, not the queue, fill the segment.
    cluster
        .connect(-1, Login::Superuser, Mode::Plain)
        .await?
        .batch_execute("ALTER RESOURCE QUEUE pg_default WITH (ACTIVE_STATEMENTS=1000)")
        .await?;
    let _held = fill(&cluster).await?;
    let full = backends(&probe, backend.family).await?;
    for figure in measure(&probe, backend.family, args.runs).await? {
        print_line(backend.family, "full", full, &figure);
    }
    Ok(())
}

/// Every slot of content 0 taken: dispatched sessions (a writer and five
/// readers each on the segment) until the coordinator refuses one, then
/// superuser utility sessions until the segment refuses one with 53300.
async fn fill(cluster: &Cluster) -> Result<(Held, Vec<Client>)> {
    let burst = cluster.fill_with_sessions(0, 5).await?;
    let mut superusers = Vec::new();
    loop {
        match cluster.connect(0, Login::Superuser, Mode::Utility).await {
            Ok(client) => superusers.push(client),
            Err(e) if e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS) => {
                return Ok((burst.held, superusers))
            }
            Err(e) => return Err(e).context("filling the reserved slots"),
        }
    }
}

/// The segment's client backends, the figure `max_connections` limits (GP7
/// lists its background processes in `pg_stat_activity` too). Printed as
/// counted: GP6 keeps a slot for the coordinator's FTS probe, which no
/// session can take.
async fn backends(client: &Client, family: Family) -> Result<i64> {
    let sql = match family {
        Family::Gp6 => COUNT,
        Family::Gp7 => {
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        }
    };
    Ok(client.query_one(sql, &[]).await?.get(0))
}

/// The exporter's statement, each collector's part of it alone (which part
/// costs what), and the cheapest count.
async fn measure(client: &Client, family: Family, runs: usize) -> Result<Vec<Figure>> {
    let mut figures = vec![
        measure_one(
            client,
            "exporter".into(),
            &exporter_statement(family),
            &TYPES,
            runs,
        )
        .await?,
    ];
    for (name, sql) in collector_parts(family) {
        figures.push(measure_one(client, format!("  {name}"), &sql, &TYPES, runs).await?);
    }
    figures.push(measure_one(client, "count(*) activity".into(), COUNT, &[], runs).await?);
    Ok(figures)
}

async fn measure_one(
    client: &Client,
    statement: String,
    sql: &str,
    types: &[Type],
    runs: usize,
) -> Result<Figure> {
    let prepared = client.prepare_typed(sql, types).await?;
    let run = || async {
        if types.is_empty() {
            client.query(&prepared, &[]).await
        } else {
            client.query(&prepared, &[&AGE, &QUERY_CHARS]).await
        }
    };
    let rows = run().await?.len();
    let mut round_trips = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        run().await?;
        round_trips.push(t.elapsed());
    }
    let executions = executions(client, sql, types, runs).await?;
    Ok(Figure {
        statement,
        round_trip_ms: p50_p90(round_trips),
        execution_ms: p50_p90(executions),
        rows,
    })
}

/// The executor's time of each run, from `EXPLAIN (ANALYZE) EXECUTE` of the
/// statement prepared on the server (so parameters are bound as the
/// exporter's are).
async fn executions(
    client: &Client,
    sql: &str,
    types: &[Type],
    runs: usize,
) -> Result<Vec<Duration>> {
    let (declared, bound) = if types.is_empty() {
        (String::new(), String::new())
    } else {
        (
            "(float8, int4)".to_owned(),
            format!("({AGE}, {QUERY_CHARS})"),
        )
    };
    client
        .batch_execute(&format!("PREPARE cost_probe {declared} AS {sql}"))
        .await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let lines = client
            .simple_query(&format!("EXPLAIN (ANALYZE) EXECUTE cost_probe {bound}"))
            .await?;
        let ms = lines
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0),
                _ => None,
            })
            // 9.4 prints `Execution time:`, 12 `Execution Time:`.
            .find_map(|line| {
                let line = line.trim();
                line.to_ascii_lowercase()
                    .starts_with("execution time: ")
                    .then(|| line["execution time: ".len()..].to_owned())
            })
            .and_then(|rest| rest.trim_end_matches(" ms").parse::<f64>().ok())
            .context("EXPLAIN ANALYZE printed no execution time")?;
        times.push(Duration::from_secs_f64(ms / 1000.0));
    }
    client.batch_execute("DEALLOCATE cost_probe").await?;
    Ok(times)
}

fn p50_p90(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() - 1) as f64 * q).round() as usize;
        times[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.9))
}

fn print_line(family: Family, state: &str, backends: i64, f: &Figure) {
    println!(
        "{:<6}  {state:<5}  {backends:>8}  {:<18}  {:>4}  {:>12.2} / {:<8.2}  {:>11.3} / {:.3}",
        family.name(),
        f.statement,
        f.rows,
        f.round_trip_ms.0,
        f.round_trip_ms.1,
        f.execution_ms.0,
        f.execution_ms.1,
    );
}
