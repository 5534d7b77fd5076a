//! The floor: the same fan-out as an exporter round over the same number of
//! held connections (one per virtual segment plus the coordinator), run
//! concurrently under the same concurrency bound, with a trivial statement
//! (`SELECT 1`) and with the exporter's own statement. Nothing is decoded or
//! rendered: this is what the connections and the servers cost by themselves.

use crate::lab::{self, Lab, FLOOR_APP};
use crate::procs::{check_stop, memory_mb, self_cpu_seconds, sleep};
use crate::stats::Summary;
use anyhow::{Context, Result};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub statement: String,
    pub round_ms: Summary,
    /// The floor client's own CPU (user+system) per instance per round.
    pub client_cpu_us_per_instance_round: f64,
    /// The floor client's RSS growth per connection held (prepared
    /// statements and last results included), in KB.
    pub client_rss_kb_per_connection: f64,
}

/// Server time of each collector's SQL alone (and of the whole statement)
/// on one server, with the floor's sessions open there: median of 10 runs.
#[derive(Clone, Debug, Serialize)]
pub struct CollectorCost {
    pub collector: String,
    pub ms: Summary,
    /// Rows it returned.
    pub rows: usize,
}

/// Parameter types of the exporter's statement.
const EXPORTER_TYPES: [Type; 2] = [Type::FLOAT8, Type::INT4];

pub struct Kind {
    pub name: String,
    pub sql: String,
    /// The exporter's statement takes `$1 float8` (stale prepared-transaction
    /// age) and `$2 int4` (query text characters, 0 as the exporter's default).
    pub exporter_params: bool,
    /// Measured rounds (after two unmeasured ones).
    pub rounds: usize,
}

/// Opens `n + 1` sessions and measures each kind of statement for `rounds` rounds.
pub async fn measure(
    lab: &Lab,
    n: usize,
    concurrency: usize,
    pause: Duration,
    kinds: &[Kind],
    parts: &[(String, String)],
) -> Result<(Vec<Floor>, Vec<CollectorCost>)> {
    let family = lab.family();
    let ports: Vec<u16> = std::iter::once(lab.coordinator_port())
        .chain((0..n).map(|i| lab.virtual_port(i)))
        .collect();
    let sem = Arc::new(Semaphore::new(concurrency));
    let rss0 = memory_mb(std::process::id() as i32)?.1;
    let mut set = JoinSet::new();
    for (i, port) in ports.into_iter().enumerate() {
        let sem = sem.clone();
        set.spawn(async move {
            let _slot = sem.acquire_owned().await.expect("semaphore never closed");
            (i, lab::connect(family, port, FLOOR_APP).await)
        });
    }
    let mut clients: Vec<Option<Arc<Client>>> = vec![None; n + 1];
    while let Some(joined) = set.join_next().await {
        let (i, client) = joined?;
        clients[i] = Some(Arc::new(client.context("floor connection")?));
    }
    let clients: Vec<Arc<Client>> = clients.into_iter().flatten().collect();
    let mut out = Vec::new();
    for kind in kinds {
        check_stop()?;
        let types: &[Type] = if kind.exporter_params {
            &EXPORTER_TYPES
        } else {
            &[]
        };
        let mut statements = Vec::with_capacity(clients.len());
        for c in &clients {
            statements.push(c.prepare_typed(&kind.sql, types).await?);
        }
        let param = kind.exporter_params.then_some(300.0);
        for _ in 0..if rounds_warm(kind) { 2 } else { 1 } {
            one_round(&clients, &statements, param, &sem).await?;
            sleep(pause).await?;
        }
        let rounds = kind.rounds.max(1);
        let mut samples = Vec::with_capacity(rounds);
        let mut cpu = 0.0;
        for _ in 0..rounds {
            let c0 = self_cpu_seconds();
            samples.push(one_round(&clients, &statements, param, &sem).await?);
            cpu += self_cpu_seconds() - c0;
            sleep(pause).await?;
        }
        out.push(Floor {
            statement: kind.name.clone(),
            round_ms: Summary::of_durations(&samples),
            client_cpu_us_per_instance_round: cpu * 1e6 / (rounds * (n + 1)) as f64,
            client_rss_kb_per_connection: 0.0,
        });
    }
    let rss = memory_mb(std::process::id() as i32)?.1;
    let rss_kb_per_connection = (rss - rss0) * 1024.0 / clients.len() as f64;
    for f in &mut out {
        f.client_rss_kb_per_connection = rss_kb_per_connection;
    }
    // Virtual segment 0: the first segment server, as loaded as any.
    let mut costs = Vec::new();
    if let Some(c) = clients.get(1) {
        for (name, sql) in parts {
            check_stop()?;
            let st = c.prepare_typed(sql, &EXPORTER_TYPES).await?;
            let rows = c.query(&st, &[&300.0f64, &0i32]).await?.len();
            let mut times = Vec::new();
            for _ in 0..10 {
                let t = Instant::now();
                c.query(&st, &[&300.0f64, &0i32]).await?;
                times.push(t.elapsed());
            }
            costs.push(CollectorCost {
                collector: name.clone(),
                ms: Summary::of_durations(&times),
                rows,
            });
        }
    }
    drop(clients);
    lab.wait_sessions_gone(FLOOR_APP, Duration::from_secs(60))
        .await?;
    Ok((out, costs))
}

/// Two warm-up rounds, one for expensive statements measured few times.
fn rounds_warm(kind: &Kind) -> bool {
    kind.rounds >= 10
}

async fn one_round(
    clients: &[Arc<Client>],
    statements: &[Statement],
    param: Option<f64>,
    sem: &Arc<Semaphore>,
) -> Result<Duration> {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for (c, s) in clients.iter().zip(statements) {
        let (c, s, sem) = (c.clone(), s.clone(), sem.clone());
        set.spawn(async move {
            let _slot = sem.acquire_owned().await.expect("semaphore never closed");
            match param {
                Some(p) => c.query(&s, &[&p, &0i32]).await,
                None => c.query(&s, &[]).await,
            }
            .map(|rows| rows.len())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined?.context("floor statement")?;
    }
    Ok(started.elapsed())
}
