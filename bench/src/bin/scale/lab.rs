//! The emulated cluster under test: M real PostgreSQL servers from the
//! harness, with `pg_stat_statements` loaded, a coordinator catalog listing N
//! virtual primaries spread over them, and one monitoring connection per
//! server that reads the database-side counters.

use crate::procs::check_stop;
use anyhow::{bail, Context, Result};
use gpemu_harness::{
    Cluster, ClusterSpec, Family, InstanceSettings, SUPERUSER, SUPERUSER_PASSWORD,
};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// Marks the benchmark's own monitoring statements so they are not counted.
const MARK: &str = "/* gpse_bench */";

/// `application_name` of the floor client's sessions.
pub const FLOOR_APP: &str = "gpse_bench_floor";

pub struct Lab {
    pub cluster: Cluster,
    /// One superuser utility-mode session per real server, coordinator first.
    monitors: Vec<Client>,
}

/// Database-side counters of every real server at one moment.
#[derive(Clone, Debug, Default)]
pub struct DbCounters {
    /// `pg_stat_database.sessions` summed over databases, per server.
    sessions: Vec<i64>,
    /// `xact_commit + xact_rollback` summed over databases, per server.
    xacts: Vec<i64>,
    /// `pg_stat_statements`: (server, queryid) -> (calls, query text).
    calls: HashMap<(usize, i64), (i64, String)>,
}

/// What happened on the database side between two [`DbCounters`].
#[derive(Clone, Debug, Serialize)]
pub struct DbDelta {
    pub sessions: i64,
    /// Transactions, less the benchmark's own monitoring ones.
    pub xacts: i64,
    /// Statement executions (`pg_stat_statements.calls`), the benchmark's own excluded.
    pub statements: i64,
    /// Distinct statements executed, with their execution counts (text shortened).
    pub distinct: Vec<(String, i64)>,
}

impl Lab {
    /// Starts `servers` segment servers sized for `per_server` virtual
    /// segments each (blocking: the harness starts them in threads).
    pub fn start(family: Family, servers: usize, per_server: usize) -> Result<Cluster> {
        let segment = InstanceSettings {
            // The exporter's or the floor's sessions, never both at once, plus
            // the monitoring session and the harness's own short ones.
            max_connections: per_server as u32 + 20,
            superuser_reserved_connections: 5,
            max_prepared_transactions: 25,
        };
        let coordinator = InstanceSettings {
            max_connections: 40,
            ..segment
        };
        ClusterSpec::new(family, servers)
            .segment_settings(segment)
            .coordinator_settings(coordinator)
            .start()
    }

    /// Loads `pg_stat_statements` on every server (appended to the harness's
    /// `shared_preload_libraries` with `ALTER SYSTEM`, then a restart) and
    /// opens the monitors. (`track_activity_query_size` stays at its default:
    /// every `pg_stat_activity` read copies that many bytes per backend slot.)
    pub async fn prepare(cluster: Cluster) -> Result<Lab> {
        for inst in cluster.instances() {
            let c = cluster.admin(inst.content).await?;
            let current: String = c
                .query_one("SHOW shared_preload_libraries", &[])
                .await?
                .get(0);
            if !current.contains("pg_stat_statements") {
                let libs: Vec<String> = current
                    .split(',')
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .chain(["pg_stat_statements"])
                    .map(|l| format!("'{}'", l.trim_matches('"').replace('\'', "''")))
                    .collect();
                c.batch_execute(&format!(
                    "ALTER SYSTEM SET shared_preload_libraries = {}",
                    libs.join(", ")
                ))
                .await?;
            }
        }
        let contents: Vec<i16> = cluster.instances().iter().map(|i| i.content).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = contents
                .iter()
                .map(|&c| {
                    let cluster = &cluster;
                    s.spawn(move || cluster.restart(c))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("restart thread"))
                .collect::<Result<Vec<()>>>()
        })
        .context("restarting the servers with pg_stat_statements")?;
        let mut monitors = Vec::new();
        for inst in cluster.instances() {
            let c = connect_admin(&cluster, inst.content).await?;
            c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .await
                .context("CREATE EXTENSION pg_stat_statements (Debian: postgresql-contrib)")?;
            monitors.push(c);
        }
        Ok(Lab { cluster, monitors })
    }

    pub fn family(&self) -> Family {
        self.cluster.family()
    }

    /// Port of virtual segment `i` (segments are dealt round-robin over the servers).
    pub fn virtual_port(&self, i: usize) -> u16 {
        let segs = self.cluster.segments();
        segs[i % segs.len()].port
    }

    pub fn coordinator_port(&self) -> u16 {
        self.cluster.coordinator().port
    }

    /// Servers that hold at least one of `n` virtual segments, plus the coordinator.
    pub fn servers_used(&self, n: usize) -> usize {
        n.min(self.cluster.segments().len()) + 1
    }

    /// Rewrites `gp_segment_configuration` to list `n` virtual primaries
    /// (dbid 2.., content 0..n-1) on the real servers, plus the coordinator.
    pub async fn set_virtual_segments(&self, n: usize) -> Result<()> {
        let coord = self.cluster.coordinator();
        let mut sql = format!(
            "BEGIN;\nDELETE FROM gp_segment_configuration;\n\
             INSERT INTO gp_segment_configuration \
             (dbid, content, role, preferred_role, mode, status, port, hostname, address, datadir) \
             VALUES\n(1, -1, 'p', 'p', 'n', 'u', {}, 'mdw', '127.0.0.1', '{}')",
            coord.port,
            coord.datadir.display()
        );
        let servers = self.cluster.segments().len();
        for i in 0..n {
            sql.push_str(&format!(
                ",\n({}, {}, 'p', 'p', 'n', 'u', {}, 'sdw{}', '127.0.0.1', '/virtual/primary{}')",
                i + 2,
                i,
                self.virtual_port(i),
                i % servers + 1,
                i
            ));
        }
        sql.push_str(";\nCOMMIT;");
        self.monitors[0]
            .batch_execute(&sql)
            .await
            .context("rewriting gp_segment_configuration")?;
        Ok(())
    }

    /// Reads every server's counters (one statement per server, all at once).
    pub async fn counters(&self) -> Result<DbCounters> {
        let sql = format!(
            "SELECT {MARK} 's', 0::bigint, (SELECT sum(sessions) FROM pg_stat_database)::bigint, '' \
             UNION ALL SELECT 'x', 0, (SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database)::bigint, '' \
             UNION ALL SELECT 'q', queryid, calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) \
             FROM pg_stat_statements WHERE query NOT LIKE '%gpse_bench%'"
        );
        let mut out = DbCounters::default();
        for (server, c) in self.monitors.iter().enumerate() {
            let rows = c.query(sql.as_str(), &[]).await;
            let (mut sessions, mut xacts) = (0, 0);
            for r in rows.context("reading database counters")? {
                let kind: &str = r.get(0);
                let value: i64 = r.get::<_, Option<i64>>(2).unwrap_or(0);
                match kind {
                    "s" => sessions = value,
                    "x" => xacts = value,
                    _ => {
                        out.calls
                            .insert((server, r.get(1)), (value, r.get::<_, String>(3)));
                    }
                }
            }
            out.sessions.push(sessions);
            out.xacts.push(xacts);
        }
        Ok(out)
    }

    /// Database-side activity from `before` to `after`.
    pub fn delta(&self, before: &DbCounters, after: &DbCounters) -> DbDelta {
        let sessions = sum_delta(&before.sessions, &after.sessions);
        // The `before` reading itself is one transaction per server,
        // counted once its session reports (within the window).
        let xacts = sum_delta(&before.xacts, &after.xacts) - before.xacts.len() as i64;
        let mut by_text: HashMap<String, i64> = HashMap::new();
        let mut statements = 0;
        for (key, (calls, text)) in &after.calls {
            let d = calls - before.calls.get(key).map_or(0, |(c, _)| *c);
            if d > 0 {
                statements += d;
                *by_text.entry(text.clone()).or_default() += d;
            }
        }
        let mut distinct: Vec<(String, i64)> = by_text.into_iter().collect();
        distinct.sort_by_key(|d| std::cmp::Reverse(d.1));
        DbDelta {
            sessions,
            xacts,
            statements,
            distinct,
        }
    }

    /// Waits until no session named `app` is left on any server.
    pub async fn wait_sessions_gone(&self, app: &str, limit: Duration) -> Result<()> {
        let sql =
            "SELECT /* gpse_bench */ count(*) FROM pg_stat_activity WHERE application_name = $1";
        self.wait_for_none(sql, &[&app], &format!("sessions of {app}"), limit)
            .await
    }

    /// Waits until no client session but the benchmark's monitors is left on
    /// any server (for clients without an `application_name` of their own).
    pub async fn wait_quiet(&self, limit: Duration) -> Result<()> {
        let sql = "SELECT /* gpse_bench */ count(*) FROM pg_stat_get_activity(NULL) a \
                   WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() \
                   AND coalesce(a.application_name, '') NOT LIKE 'gpse_bench%'";
        self.wait_for_none(sql, &[], "client sessions", limit).await
    }

    /// Polls a `count(*)` on every server until the sum is 0.
    async fn wait_for_none(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        what: &str,
        limit: Duration,
    ) -> Result<()> {
        let until = Instant::now() + limit;
        loop {
            check_stop()?;
            let mut left = 0i64;
            for c in &self.monitors {
                left += c.query_one(sql, params).await?.get::<_, i64>(0);
            }
            if left == 0 {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("{left} {what} still open after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The beginning (`track_activity_query_size`) of the statement the
    /// exporter last ran on a segment, as the server received it.
    pub async fn exporter_statement(&self) -> Result<Option<String>> {
        let Some(c) = self.monitors.get(1) else {
            return Ok(None);
        };
        let row = c
            .query_opt(
                "SELECT /* gpse_bench */ query FROM pg_stat_activity \
                 WHERE application_name = 'greenplum_segment_exporter' AND query LIKE '%UNION ALL%' \
                 LIMIT 1",
                &[],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// DSN options of the family's utility mode, URL-encoded.
    pub fn utility_url_options(&self) -> String {
        self.family()
            .utility_options()
            .replace(' ', "%20")
            .replace('=', "%3D")
    }
}

fn sum_delta(before: &[i64], after: &[i64]) -> i64 {
    after.iter().zip(before).map(|(a, b)| a - b).sum()
}

/// The monitoring session of one server.
async fn connect_admin(cluster: &Cluster, content: i16) -> Result<Client> {
    let inst = cluster.instance(content);
    connect(cluster.family(), inst.port, "gpse_bench_monitor").await
}

/// A superuser utility-mode session to a server.
pub async fn connect(family: Family, port: u16, app: &str) -> Result<Client> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user(SUPERUSER)
        .password(SUPERUSER_PASSWORD)
        .dbname(gpemu_harness::DATABASE)
        .application_name(app)
        .options(family.utility_options())
        .connect_timeout(Duration::from_secs(30));
    let (client, conn) = cfg
        .connect(NoTls)
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
