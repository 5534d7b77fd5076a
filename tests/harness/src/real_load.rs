//! The real backend's side of the load helpers: what a real coordinator does
//! when asked the real way (dispatch, two-phase commit held by a fault,
//! resource queues), and counting the backends a real server runs.

use crate::cluster::{Cluster, Login, Mode};
use crate::family::Family;
use crate::load::{backend_pid, Dispatch, Held, SETTLE_TIMEOUT};
use crate::process::postmaster_pid;
use crate::{SCRATCH_TABLE, SUPERUSER};
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::task::JoinHandle;

/// The coordinator's fault point between the two phases of a commit.
const COMMIT_FAULT: &str = "dtm_broadcast_commit_prepared";

/// A join of `readers + 1` slices on every segment: each join redistributes
/// its left side on a column that is not the distribution key (one slice,
/// so one reader gang, per join), and the gather at the top is the writer's.
/// Checked on both families: 0..5 joins give 1..6 backends per segment.
fn join_query(readers: usize) -> String {
    let mut sql = format!("SELECT count(*) FROM {SCRATCH_TABLE} x0");
    for i in 1..=readers {
        sql.push_str(&format!(
            " JOIN {SCRATCH_TABLE} x{i} ON x{}.b = x{i}.id",
            i - 1
        ));
    }
    sql
}

impl Cluster {
    /// [`Cluster::dispatch`] on real servers: the coordinator runs a join of
    /// `readers + 1` slices and makes the gangs itself.
    pub(crate) async fn dispatch_real(&self, d: &Dispatch) -> Result<Held> {
        let held = self.open_dispatcher(d, &join_query(d.readers)).await?;
        let id = held.sessions[0];
        for seg in self.segments() {
            self.wait_until(
                seg.content,
                &format!(
                    "SELECT count(*) = {} FROM pg_stat_activity WHERE sess_id = {id}",
                    d.readers + 1
                ),
            )
            .await?;
        }
        Ok(held)
    }

    /// `k` sessions of `login` queued on the coordinator behind one holding
    /// the only slot of a resource queue of their own.
    pub(crate) async fn resource_queue_wait(&self, k: usize, login: Login) -> Result<Held> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if login.user() == SUPERUSER {
            bail!("a superuser bypasses resource queues: queue an ordinary role");
        }
        let queue = format!("gpemu_queue_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = self.connect(-1, Login::Superuser, Mode::Plain).await?;
        // One statement each: Greenplum refuses these in a multi-statement string.
        admin
            .batch_execute(&format!(
                "CREATE RESOURCE QUEUE {queue} WITH (ACTIVE_STATEMENTS=1)"
            ))
            .await?;
        admin
            .batch_execute(&format!(
                "ALTER ROLE {} RESOURCE QUEUE {queue}",
                crate::catalog::quote_ident(login.user())
            ))
            .await?;
        // Every session's pid is asked before the queue is full: on GP6 even
        // `SELECT pg_backend_pid()` queues behind the holder.
        let mut clients = Vec::with_capacity(k + 1);
        for _ in 0..=k {
            let client = self.connect(-1, login, Mode::Plain).await?;
            let pid = backend_pid(&client).await?;
            clients.push((client, pid));
        }
        let mut held = Held::default();
        let (holder, holder_pid) = clients.remove(0);
        held.run_busy(holder, holder_pid, "SELECT pg_sleep(3600)".into());
        self.wait_until(
            -1,
            &format!(
                "SELECT count(*) = 1 FROM pg_locks \
                 WHERE locktype = 'resource queue' AND granted AND pid = {holder_pid}"
            ),
        )
        .await?;
        let mut queued = Held::default();
        for (client, pid) in clients {
            queued.run_busy(client, pid, "SELECT pg_sleep(3600)".into());
        }
        self.wait_shown_waiting(-1, crate::WaitReason::ResourceQueue, &queued.pids)
            .await?;
        held.absorb(queued);
        Ok(held)
    }

    /// Suspends the coordinator between the phases of every commit and has
    /// `k` sessions of the ordinary role commit a write to every segment:
    /// they are left prepared there.
    pub(crate) async fn suspend_commits(
        &self,
        k: usize,
    ) -> Result<Vec<JoinHandle<Result<(), tokio_postgres::Error>>>> {
        let dbid = self.coordinator().dbid;
        let admin = self.connect(-1, Login::Superuser, Mode::Plain).await?;
        admin
            .batch_execute(&format!(
                "SELECT gp_inject_fault_infinite('{COMMIT_FAULT}', 'suspend', {dbid})"
            ))
            .await?;
        let mut commits = Vec::with_capacity(k);
        for _ in 0..k {
            let client = self.connect(-1, Login::Ordinary, Mode::Plain).await?;
            commits.push(tokio::spawn(async move {
                // A hundred rows reach every segment: a two-phase commit.
                client
                    .batch_execute(&format!(
                        "INSERT INTO {SCRATCH_TABLE} SELECT i, i FROM generate_series(1, 100) i"
                    ))
                    .await
            }));
        }
        Ok(commits)
    }

    /// Resets the fault of [`Cluster::suspend_commits`]; returns once the
    /// sessions' commits finished.
    pub(crate) async fn resume_commits(
        &self,
        commits: Vec<JoinHandle<Result<(), tokio_postgres::Error>>>,
    ) -> Result<()> {
        let dbid = self.coordinator().dbid;
        let admin = self.connect(-1, Login::Superuser, Mode::Plain).await?;
        admin
            .batch_execute(&format!(
                "SELECT gp_inject_fault('{COMMIT_FAULT}', 'reset', {dbid})"
            ))
            .await?;
        for commit in commits {
            commit.await??;
        }
        Ok(())
    }

    /// Real backend: client backends running on the instance that
    /// `pg_stat_activity` does not show (starting, or leaving after their
    /// session closed): its postmaster's children whose title names a
    /// client, walsenders aside, less the client backends shown.
    pub(crate) async fn backends_not_shown(
        &self,
        content: i16,
        client: &tokio_postgres::Client,
    ) -> Result<i64> {
        let shown_sql = match self.family() {
            Family::Gp6 => "SELECT count(*) FROM pg_stat_activity",
            Family::Gp7 => {
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            }
        };
        let running = client_processes(content, self);
        let shown: i64 = client.query_one(shown_sql, &[]).await?.get(0);
        Ok(running - shown)
    }

    /// Waits until the dispatched sessions of `held` have let their idle
    /// gangs go, as a coordinator does after
    /// [`crate::ClusterSpec::idle_gang_timeout`]: the reader gangs on every
    /// segment, and on GP7 also the writer of a session not in a transaction
    /// (GP6 keeps it). The emulation has no such timer: the harness ends
    /// those executors itself.
    pub async fn release_idle_gangs(&self, held: &[&Held]) -> Result<()> {
        let all: Vec<i32> = held.iter().flat_map(|h| h.sessions.clone()).collect();
        let idle: Vec<i32> = held.iter().flat_map(|h| h.idle_sessions.clone()).collect();
        let writers_go = self.family() == Family::Gp7;
        let list = |ids: &[i32]| {
            let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
            if ids.is_empty() {
                "NULL".to_owned()
            } else {
                ids.join(",")
            }
        };
        let (all_ids, idle_ids) = (list(&all), list(&idle));
        if !self.backend().is_real() {
            let writers = if writers_go {
                format!(" OR sess_id IN ({idle_ids})")
            } else {
                String::new()
            };
            for seg in self.segments() {
                self.admin(seg.content)
                    .await?
                    .execute(
                        &format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE sess_id IN ({all_ids}) AND (NOT gpemu_is_writer(pid){writers})"
                        ),
                        &[],
                    )
                    .await?;
            }
        }
        let kept = all.len() - if writers_go { idle.len() } else { 0 };
        let sql =
            format!("SELECT count(*) = {kept} FROM pg_stat_activity WHERE sess_id IN ({all_ids})");
        let deadline = Instant::now() + self.idle_gang_timeout + SETTLE_TIMEOUT;
        for seg in self.segments() {
            let client = self.admin(seg.content).await?;
            loop {
                let done: bool = client.query_one(&sql, &[]).await?.get(0);
                if done {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "content {}: idle gangs of {all_ids} still there",
                        seg.content
                    );
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

/// Children of the instance's postmaster whose process title names a client
/// address (`127.0.0.1(port)` or `[local]`), walsenders aside.
fn client_processes(content: i16, cluster: &Cluster) -> i64 {
    let Some(postmaster) = postmaster_pid(&cluster.instance(content).datadir) else {
        return 0;
    };
    crate::process::children(postmaster)
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|title| String::from_utf8_lossy(&title).into_owned())
        .filter(|title| {
            let client = title.contains(")") || title.contains("[local]");
            let walsender = title.contains("wal sender") || title.contains("walsender");
            client && !walsender
        })
        .count() as i64
}
