//! Load helpers: put real sessions, transactions and lock waits on an instance.

use crate::cluster::{Cluster, Login, Mode};
use crate::family::Family;
use crate::{DATABASE, SCRATCH_TABLE};
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// Sessions a helper opened; dropping it closes them (their backends exit).
#[derive(Default)]
pub struct Held {
    clients: Vec<Client>,
    /// Tasks that own a client busy in a query (active or waiting).
    busy: Vec<JoinHandle<()>>,
    /// Server pids of every held session, in opening order.
    pub pids: Vec<i32>,
}

impl Held {
    /// Number of backends held.
    pub fn len(&self) -> usize {
        self.pids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    /// Takes over another helper's sessions.
    pub fn absorb(&mut self, mut other: Held) {
        self.clients.append(&mut other.clients);
        self.busy.append(&mut other.busy);
        self.pids.append(&mut other.pids);
    }

    async fn hold(&mut self, client: Client) -> Result<()> {
        self.pids.push(backend_pid(&client).await?);
        self.clients.push(client);
        Ok(())
    }

    /// Keeps `client` running `sql` in the background until dropped.
    async fn hold_busy(&mut self, client: Client, sql: String) -> Result<i32> {
        let pid = backend_pid(&client).await?;
        self.pids.push(pid);
        self.busy.push(tokio::spawn(async move {
            let _ = client.simple_query(&sql).await;
            // Keep the session (and its state) until the helper is dropped.
            std::future::pending::<()>().await;
        }));
        Ok(pid)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for task in &self.busy {
            task.abort();
        }
    }
}

/// One distributed session to play with [`Cluster::dispatch`].
#[derive(Clone, Copy, Debug)]
pub struct Dispatch {
    pub session_id: i32,
    /// Cached reader QEs per segment, besides the writer.
    pub readers: usize,
    pub login: Login,
    /// Of the coordinator session (QEs have none).
    pub application_name: &'static str,
    /// Of the coordinator session: `Idle` leaves a cached gang of an idle
    /// session, `IdleInTransaction` an open transaction, `Active` a running
    /// query.
    pub state: SessionState,
}

impl Dispatch {
    /// Session `session_id` of the ordinary role, in a transaction, with
    /// `readers` cached readers per segment.
    pub fn new(session_id: i32, readers: usize) -> Dispatch {
        Dispatch {
            session_id,
            readers,
            login: Login::Ordinary,
            application_name: crate::APPLICATION_NAME,
            state: SessionState::IdleInTransaction,
        }
    }
}

/// Distributed sessions that fill an instance (see [`Cluster::fill_with_sessions`]).
pub struct SessionBurst {
    /// Every backend of the sessions; dropping it releases them.
    pub held: Held,
    /// Executors (writer and readers) each session holds on every primary.
    pub executors: Vec<usize>,
    /// The server's message refusing one more session.
    pub refused: String,
}

/// What an opened ordinary session is left doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Idle,
    IdleInTransaction,
    /// Running a long `pg_sleep`.
    Active,
}

/// Why a session waits, declared at connection start with `gpemu.wait_reason`:
/// a test device standing in for the waits only a real cluster produces (see
/// docs/emulation.md). The session shows the wait while it runs a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// Queued for a slot of its resource group.
    ResourceGroup,
    /// Queued in a resource queue: an ungranted `resource queue` lock.
    ResourceQueue,
    /// Waiting for synchronous replication to the mirror or standby.
    Replication,
}

impl WaitReason {
    pub const ALL: [WaitReason; 3] = [
        WaitReason::ResourceGroup,
        WaitReason::ResourceQueue,
        WaitReason::Replication,
    ];

    /// Value of `gpemu.wait_reason`.
    pub fn name(self) -> &'static str {
        match self {
            WaitReason::ResourceGroup => "resource_group",
            WaitReason::ResourceQueue => "resource_queue",
            WaitReason::Replication => "replication",
        }
    }

    /// The startup option that declares it.
    pub fn startup_option(self) -> String {
        format!("-c gpemu.wait_reason={}", self.name())
    }

    /// `waiting_reason` on Greenplum 6: a resource queue wait is a lock wait.
    pub fn gp6_waiting_reason(self) -> &'static str {
        match self {
            WaitReason::ResourceGroup => "resgroup",
            WaitReason::ResourceQueue => "lock",
            WaitReason::Replication => "replication",
        }
    }

    /// `wait_event_type`, and `wait_event` too, on Greenplum 7.
    pub fn gp7_wait_event(self) -> &'static str {
        match self {
            WaitReason::ResourceGroup => "ResourceGroup",
            WaitReason::ResourceQueue => "ResourceQueue",
            WaitReason::Replication => "Replication",
        }
    }
}

async fn backend_pid(client: &Client) -> Result<i32> {
    Ok(client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0))
}

/// How long helpers wait for the server to show what they caused.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    /// Opens `k` utility-mode sessions as the ordinary role, left in `state`;
    /// returns once the instance shows them in that state.
    pub async fn open_sessions(&self, content: i16, k: usize, state: SessionState) -> Result<Held> {
        let mut held = Held::default();
        for _ in 0..k {
            let client = self
                .connect(content, Login::Ordinary, Mode::Utility)
                .await?;
            match state {
                SessionState::Idle => held.hold(client).await?,
                SessionState::IdleInTransaction => {
                    client.batch_execute("BEGIN; SELECT 1").await?;
                    held.hold(client).await?;
                }
                SessionState::Active => {
                    held.hold_busy(client, "SELECT pg_sleep(3600)".into())
                        .await?;
                }
            }
        }
        let wanted = match state {
            SessionState::Idle => "idle",
            SessionState::IdleInTransaction => "idle in transaction",
            SessionState::Active => "active",
        };
        self.wait_until(
            content,
            &format!(
                "SELECT count(*) = {k} FROM pg_stat_activity WHERE state = '{wanted}' AND pid IN ({})",
                pid_list(&held.pids)
            ),
        )
        .await?;
        Ok(held)
    }

    /// Opens `k` sessions of `login` that declare they wait for `reason` (see
    /// [`WaitReason`]) and leaves them running `SELECT pg_sleep(3600)`; returns
    /// once the instance shows them waiting for it. On a segment they are
    /// utility-mode sessions, on the coordinator client sessions, each with a
    /// session id of its own.
    pub async fn waiting_sessions(
        &self,
        content: i16,
        k: usize,
        reason: WaitReason,
        login: Login,
    ) -> Result<Held> {
        let mode = if content < 0 {
            Mode::Plain
        } else {
            Mode::Utility
        };
        self.waiting_sessions_as(content, k, mode, reason, login)
            .await
    }

    /// Like [`Cluster::waiting_sessions`], presenting themselves as `mode`:
    /// e.g. [`Mode::Dispatcher`] for a coordinator session with a known id,
    /// queued before it dispatched anything (it holds no executors).
    pub async fn waiting_sessions_as(
        &self,
        content: i16,
        k: usize,
        mode: Mode,
        reason: WaitReason,
        login: Login,
    ) -> Result<Held> {
        let option = reason.startup_option();
        let mut held = Held::default();
        for _ in 0..k {
            let client = self
                .connect_with(content, DATABASE, login, mode, Some(&option))
                .await?;
            held.hold_busy(client, "SELECT pg_sleep(3600)".into())
                .await?;
        }
        let shown = match self.family() {
            Family::Gp6 => format!(
                "waiting AND waiting_reason = '{}'",
                reason.gp6_waiting_reason()
            ),
            Family::Gp7 => format!(
                "wait_event_type = '{0}' AND wait_event = '{0}'",
                reason.gp7_wait_event()
            ),
        };
        self.wait_until(
            content,
            &format!(
                "SELECT count(*) = {k} FROM pg_stat_activity \
                 WHERE state = 'active' AND {shown} AND pid IN ({})",
                pid_list(&held.pids)
            ),
        )
        .await?;
        Ok(held)
    }

    /// Plays one distributed session the way a coordinator dispatches it: a
    /// backend on the coordinator and, on every primary, one writer QE plus
    /// `readers` cached reader QEs left `idle`, all with the session's id and
    /// user (see [`Dispatch`]).
    pub async fn dispatch(&self, d: &Dispatch) -> Result<Held> {
        let query = format!("SELECT count(*) FROM {SCRATCH_TABLE}");
        // A session inside a transaction keeps its writer in it on every segment.
        let in_transaction = d.state != SessionState::Idle;
        let begin = if in_transaction { "BEGIN; " } else { "" };
        let mut held = Held::default();
        let qd_mode = Mode::Dispatcher {
            session_id: d.session_id,
            application_name: d.application_name,
        };
        let qd = self.connect(-1, d.login, qd_mode).await?;
        qd.batch_execute(&format!("{begin}{query}")).await?;
        if d.state == SessionState::Active {
            held.hold_busy(qd, "SELECT pg_sleep(3600)".into()).await?;
        } else {
            held.hold(qd).await?;
        }
        for seg in self.segments() {
            let executor = |writer| Mode::Executor {
                session_id: d.session_id,
                writer,
            };
            let qe = self.connect(seg.content, d.login, executor(true)).await?;
            qe.batch_execute(&format!("{begin}{query}")).await?;
            held.hold(qe).await?;
            for _ in 0..d.readers {
                let qe = self.connect(seg.content, d.login, executor(false)).await?;
                qe.batch_execute(&query).await?;
                held.hold(qe).await?;
            }
        }
        let qd_state = match d.state {
            SessionState::Idle => "idle",
            SessionState::IdleInTransaction => "idle in transaction",
            SessionState::Active => "active",
        };
        self.wait_until(
            -1,
            &format!(
                "SELECT count(*) = 1 FROM pg_stat_activity \
                 WHERE sess_id = {} AND state = '{qd_state}'",
                d.session_id
            ),
        )
        .await?;
        Ok(held)
    }

    /// Replays the incident of distributed sessions filling a segment: dispatches
    /// sessions `first_session_id`, `first_session_id + 1`, ..., each with a writer
    /// and up to `readers` readers on every primary (the last with fewer), until
    /// `content` has no ordinary slot left; then one more session is refused
    /// there with 53300, as the next query of an application would be. Every
    /// primary gets the same executors: to fill one only, give it less room
    /// than the others.
    pub async fn fill_with_sessions(
        &self,
        content: i16,
        first_session_id: i32,
        readers: usize,
    ) -> Result<SessionBurst> {
        let free = self.ordinary_slots_left(content).await?;
        let mut burst = SessionBurst {
            held: Held::default(),
            executors: Vec::new(),
            refused: String::new(),
        };
        let mut left = free;
        let mut id = first_session_id;
        while left > 0 {
            let n = left.min(readers + 1);
            let d = Dispatch::new(id, n - 1);
            burst.held.absorb(self.dispatch(&d).await?);
            burst.executors.push(n);
            left -= n;
            id += 1;
        }
        match self.dispatch(&Dispatch::new(id, readers)).await {
            Ok(_) => bail!("content {content} took one more session after {free} executors"),
            Err(e) => {
                let db = e.downcast_ref::<tokio_postgres::Error>();
                match db.filter(|db| db.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)) {
                    Some(db) => {
                        burst.refused = db
                            .as_db_error()
                            .map_or(db.to_string(), |d| d.message().to_owned());
                        Ok(burst)
                    }
                    None => Err(e.context(format!("session {id} on a full content {content}"))),
                }
            }
        }
    }

    /// Ordinary slots an instance has left: its limit less its client
    /// backends (auxiliary processes have no database), the asking one aside.
    async fn ordinary_slots_left(&self, content: i16) -> Result<usize> {
        let used = self
            .query_i64(
                content,
                "SELECT count(*) FROM pg_stat_activity WHERE datid IS NOT NULL AND pid <> pg_backend_pid()",
            )
            .await?;
        let slots = i64::from(self.instance(content).settings.ordinary_slots());
        Ok(usize::try_from(slots - used).unwrap_or(0))
    }

    /// Creates a login role (password [`crate::ROLE_PASSWORD`]) on every
    /// instance, as roles of a real cluster exist on all of them; use it with
    /// [`Login::Named`].
    pub async fn create_role(&self, name: &str) -> Result<()> {
        let sql = format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            crate::catalog::quote_ident(name),
            crate::catalog::quote(crate::ROLE_PASSWORD)
        );
        for inst in self.instances() {
            self.admin(inst.content).await?.batch_execute(&sql).await?;
        }
        Ok(())
    }

    /// `PREPARE TRANSACTION` `k` times on an instance as the ordinary role;
    /// returns the global transaction ids. The transactions outlive the sessions.
    /// A test shortcut on GP6, which refuses `PREPARE TRANSACTION` in utility
    /// mode: see [`crate::ALLOW_UTILITY_PREPARE`].
    pub async fn prepare_transactions(&self, content: i16, k: usize) -> Result<Vec<String>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut gids = Vec::with_capacity(k);
        for _ in 0..k {
            let gid = format!(
                "gpemu-{}-{content}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let client = self
                .connect(
                    content,
                    Login::Ordinary,
                    Mode::UtilityWith(crate::ALLOW_UTILITY_PREPARE),
                )
                .await?;
            client
                .batch_execute(&format!(
                    "BEGIN; INSERT INTO {SCRATCH_TABLE} VALUES (1); PREPARE TRANSACTION '{gid}'"
                ))
                .await
                .with_context(|| format!("PREPARE TRANSACTION on content {content}"))?;
            gids.push(gid);
        }
        Ok(gids)
    }

    /// Commits a prepared transaction (as the superuser).
    pub async fn commit_prepared(&self, content: i16, gid: &str) -> Result<()> {
        let client = self.admin(content).await?;
        client
            .batch_execute(&format!("COMMIT PREPARED '{gid}'"))
            .await?;
        Ok(())
    }

    /// Makes one session wait on another's lock: the holder takes `ACCESS
    /// EXCLUSIVE` on the scratch table in an open transaction, the waiter reads
    /// the table. Returns once the waiter shows an ungranted lock. `pids[0]` is
    /// the holder, `pids[1]` the waiter.
    pub async fn lock_wait(&self, content: i16) -> Result<Held> {
        let mut held = Held::default();
        let holder = self
            .connect(content, Login::Ordinary, Mode::Utility)
            .await?;
        holder
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {SCRATCH_TABLE} IN ACCESS EXCLUSIVE MODE"
            ))
            .await?;
        held.hold(holder).await?;
        let waiter = self
            .connect(content, Login::Ordinary, Mode::Utility)
            .await?;
        let waiter_pid = held
            .hold_busy(waiter, format!("SELECT count(*) FROM {SCRATCH_TABLE}"))
            .await?;
        self.wait_until(
            content,
            &format!("SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND pid = {waiter_pid}"),
        )
        .await?;
        Ok(held)
    }

    /// Opens idle ordinary-role sessions until the instance refuses one with
    /// SQLSTATE 53300, i.e. until `max_connections - superuser_reserved_connections`
    /// slots are in use. Superusers can still connect afterwards. Sessions
    /// closed just before still hold their slots while their backends exit, so
    /// it first waits for them ([`Cluster::settle_slots`]).
    pub async fn fill(&self, content: i16) -> Result<Held> {
        let limit = self.instance(content).settings.max_connections as usize;
        self.settle_slots(content).await?;
        let mut held = Held::default();
        loop {
            match self.connect(content, Login::Ordinary, Mode::Utility).await {
                Ok(client) => held.hold(client).await?,
                Err(e) if e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS) => return Ok(held),
                Err(e) => return Err(e).context("filling a segment"),
            }
            if held.len() > limit {
                bail!("content {content} accepted more than max_connections sessions");
            }
        }
    }

    /// Starts `psql` as a session of role `user` (raw bytes: libpq sends the
    /// name as is, so it need not be UTF-8) in utility mode on an instance,
    /// sleeping in a query until the returned process is killed. Returns once
    /// the instance shows the session.
    pub async fn raw_user_session(
        &self,
        content: i16,
        user: &[u8],
        password: &str,
    ) -> Result<crate::process::KillOnDrop> {
        use std::os::unix::ffi::OsStrExt;
        let inst = self.instance(content);
        let child = std::process::Command::new(crate::process::bin_dir().join("psql"))
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &inst.port.to_string()])
            .args(["-d", crate::DATABASE, "-c", "SELECT pg_sleep(3600)"])
            .env("PGUSER", std::ffi::OsStr::from_bytes(user))
            .env("PGPASSWORD", password)
            .env("PGOPTIONS", self.family().utility_options())
            .env("PGAPPNAME", crate::APPLICATION_NAME)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("spawning psql")?;
        let guard = crate::process::KillOnDrop(child);
        let hex: String = user.iter().map(|b| format!("{b:02x}")).collect();
        self.wait_until(
            content,
            &format!(
                "SELECT count(*) > 0 FROM pg_stat_activity \
                 WHERE textsend(usename::text) = '\\x{hex}'::bytea AND state = 'active'"
            ),
        )
        .await?;
        Ok(guard)
    }

    /// Waits until every connection slot in use on an instance belongs to a
    /// session `pg_stat_activity` shows, i.e. until no backend still starting
    /// or already leaving holds one: a closed or terminated session leaves the
    /// view before its backend gives the slot back. The backend of its own
    /// check session is gone too when it returns.
    pub async fn settle_slots(&self, content: i16) -> Result<()> {
        let client = self.admin(content).await?;
        let own = backend_pid(&client).await?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            // Free slots first, then the sessions shown: a backend leaving in
            // between is then missing from the second count, never counted
            // as shown while its slot is taken.
            let row = client
                .query_one(
                    "SELECT gpemu_free_slots(), current_setting('max_connections')::integer",
                    &[],
                )
                .await?;
            let (free, max): (i32, i32) = (row.get(0), row.get(1));
            let shown: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_get_activity(NULL) \
                     WHERE backend_type = 'client backend'",
                    &[],
                )
                .await?
                .get(0);
            if i64::from(free) + shown == i64::from(max) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "content {content}: {} slots still held by backends not shown after {SETTLE_TIMEOUT:?}",
                    i64::from(max - free) - shown
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(client);
        while crate::process::is_alive(own) {
            if Instant::now() > deadline {
                bail!("content {content}: the backend {own} of a closed session still runs after {SETTLE_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Polls a boolean query on an instance (superuser, utility mode) until it is true.
    pub async fn wait_until(&self, content: i16, sql: &str) -> Result<()> {
        let client = self.admin(content).await?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let done: bool = client.query_one(sql, &[]).await?.get(0);
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("content {content}: still false after {SETTLE_TIMEOUT:?}: {sql}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn pid_list(pids: &[i32]) -> String {
    if pids.is_empty() {
        return "NULL".into();
    }
    pids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
