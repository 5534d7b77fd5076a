//! A segment's mirror as Greenplum runs it, on the emulation: a streaming
//! standby the primary replicates to synchronously, its replay paused and
//! resumed, and WAL written on the primary by the megabyte.

use crate::cluster::{Cluster, Login, Mode, Standby, STANDBY_APPLICATION_NAME};
use crate::family::Family;
use crate::DATABASE;
use anyhow::{Context, Result};
use tokio_postgres::Client;

/// One megabyte, in bytes of WAL.
pub const MB: u64 = 1024 * 1024;

impl Cluster {
    /// [`Cluster::start_standby`], then the primary made to replicate to it
    /// synchronously (`synchronous_standby_names = 'gp_walreceiver'`, as a
    /// Greenplum primary with a mirror does): returns once the primary's
    /// `pg_stat_replication` shows it `streaming` and `sync`. Like a real
    /// primary before FTS turns synchronous replication off, the primary's
    /// commits wait while the standby is stopped.
    pub async fn start_mirror(&self, content: i16) -> Result<Standby> {
        let standby = self.start_standby(content).await?;
        let primary = self.admin(content).await?;
        primary
            .batch_execute(&format!(
                "ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_APPLICATION_NAME}'"
            ))
            .await?;
        primary.batch_execute("SELECT pg_reload_conf()").await?;
        self.wait_until(
            content,
            &format!(
                "SELECT count(*) > 0 FROM pg_stat_replication \
                 WHERE application_name = '{STANDBY_APPLICATION_NAME}' \
                 AND state = 'streaming' AND sync_state = 'sync'"
            ),
        )
        .await?;
        Ok(standby)
    }

    async fn standby_admin(&self, standby: &Standby) -> Result<Client> {
        self.connect_at(standby.port, DATABASE, Login::Superuser, Mode::Utility)
            .await
            .with_context(|| format!("admin connection to the standby of {}", standby.content))
    }

    /// Pauses the standby's replay (GP6 `pg_xlog_replay_pause()`, GP7
    /// `pg_wal_replay_pause()`): it still receives and flushes WAL, and
    /// applies nothing more until [`Cluster::resume_replay`].
    pub async fn pause_replay(&self, standby: &Standby) -> Result<()> {
        let sql = match self.family() {
            Family::Gp6 => "SELECT pg_xlog_replay_pause()",
            Family::Gp7 => "SELECT pg_wal_replay_pause()",
        };
        self.standby_admin(standby)
            .await?
            .batch_execute(sql)
            .await?;
        Ok(())
    }

    /// Undoes [`Cluster::pause_replay`].
    pub async fn resume_replay(&self, standby: &Standby) -> Result<()> {
        let sql = match self.family() {
            Family::Gp6 => "SELECT pg_xlog_replay_resume()",
            Family::Gp7 => "SELECT pg_wal_replay_resume()",
        };
        self.standby_admin(standby)
            .await?
            .batch_execute(sql)
            .await?;
        Ok(())
    }

    /// The instance's current WAL position, in bytes from `0/0` (GP6
    /// `pg_current_xlog_location()`, GP7 `pg_current_wal_lsn()`).
    pub async fn wal_position(&self, content: i16) -> Result<u64> {
        let sql = match self.family() {
            Family::Gp6 => "SELECT pg_xlog_location_diff(pg_current_xlog_location(), '0/0')::int8",
            Family::Gp7 => "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8",
        };
        let n = self.query_i64(content, sql).await?;
        Ok(u64::try_from(n)?)
    }

    /// Writes at least `megabytes` MB of WAL on an instance (a table of
    /// 1 kB rows, created in utility mode as the superuser, a new one each
    /// call) and returns the bytes its WAL position moved.
    pub async fn write_wal(&self, content: i16, megabytes: u64) -> Result<u64> {
        let before = self.wal_position(content).await?;
        let client = self.admin(content).await?;
        let table = format!("wal_fill_{}", before);
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} AS \
                 SELECT repeat('x', 1024) AS t FROM generate_series(1, {})",
                megabytes * 1024
            ))
            .await
            .with_context(|| format!("writing {megabytes} MB on content {content}"))?;
        let written = self.wal_position(content).await? - before;
        anyhow::ensure!(
            written >= megabytes * MB,
            "{written} bytes of WAL for {megabytes} MB"
        );
        Ok(written)
    }
}
