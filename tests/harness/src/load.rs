//! Load helpers: put real sessions, transactions and lock waits on an
//! instance, the same vocabulary on both backends; where the emulation has to
//! play what a real coordinator does (dispatch, two-phase commit, resource
//! queues), the real backend does the real thing (`real_load`).

use crate::backend::Server;
use crate::cluster::{Cluster, Login, Mode};
use crate::family::Family;
use crate::{DATABASE, LOCKED_TABLE, SCRATCH_TABLE};
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
    /// Server pids of every held session, in opening order (on the real
    /// backend a dispatched session's coordinator backend only: the
    /// coordinator makes its executors).
    pub pids: Vec<i32>,
    /// Coordinator session ids of the distributed sessions held, in
    /// dispatch order (see [`Cluster::dispatch`]).
    pub sessions: Vec<i32>,
    /// Those of [`Held::sessions`] not in a transaction.
    pub(crate) idle_sessions: Vec<i32>,
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
        self.sessions.append(&mut other.sessions);
        self.idle_sessions.append(&mut other.idle_sessions);
    }

    pub(crate) async fn hold(&mut self, client: Client) -> Result<()> {
        self.pids.push(backend_pid(&client).await?);
        self.clients.push(client);
        Ok(())
    }

    /// Keeps `client` running `sql` in the background until dropped.
    pub(crate) async fn hold_busy(&mut self, client: Client, sql: String) -> Result<i32> {
        let pid = backend_pid(&client).await?;
        self.run_busy(client, pid, sql);
        Ok(pid)
    }

    /// Like [`Held::hold_busy`] for a client whose backend pid is known
    /// (asking for it would be a statement a resource queue may hold up).
    pub(crate) fn run_busy(&mut self, client: Client, pid: i32, sql: String) {
        self.pids.push(pid);
        self.busy.push(tokio::spawn(async move {
            let _ = client.simple_query(&sql).await;
            // Keep the session (and its state) until the helper is dropped.
            std::future::pending::<()>().await;
        }));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for task in &self.busy {
            task.abort();
        }
    }
}

/// One distributed session to play with [`Cluster::dispatch`]; the
/// coordinator gives it its id.
#[derive(Clone, Copy, Debug)]
pub struct Dispatch {
    /// Cached reader QEs per segment, besides the writer (at most
    /// [`crate::ClusterSpec::cached_readers`]).
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
    /// A session of the ordinary role, in a transaction, with `readers`
    /// cached readers per segment.
    pub fn new(readers: usize) -> Dispatch {
        Dispatch {
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
    /// The server's message refusing one more session (on the real backend
    /// the coordinator's 58M01 and its detail, which names the segment).
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

pub(crate) async fn backend_pid(client: &Client) -> Result<i32> {
    Ok(client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0))
}

/// The id a coordinator gave a session (`gp_session_id`).
pub(crate) async fn session_id(client: &Client) -> Result<i32> {
    Ok(client
        .query_one("SELECT current_setting('gp_session_id')::int4", &[])
        .await?
        .get(0))
}

/// A global transaction id of this process, unique among its clusters.
fn next_gid(content: i16) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "gpemu-{}-{content}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// How long helpers wait for the server to show what they caused.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLSTATE of a coordinator that could not make a gang (Greenplum's own).
const GANG_FAILED: &str = "58M01";

/// Distributed transactions held prepared on every segment (see
/// [`Cluster::hold_prepared`]); give them back with
/// [`Cluster::release_prepared`].
pub struct Prepared {
    /// How many.
    pub count: usize,
    /// Emulation: the gid each has on every segment.
    pub(crate) gids: Vec<String>,
    /// Real backend: the sessions blocked in their commit.
    pub(crate) commits: Vec<JoinHandle<Result<(), tokio_postgres::Error>>>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for task in &self.commits {
            task.abort();
        }
    }
}

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

    /// Opens `k` sessions of `login` that wait for `reason` and leaves them
    /// running `SELECT pg_sleep(3600)`; returns once the instance shows them
    /// waiting for it. On a segment they are utility-mode sessions, on the
    /// coordinator client sessions, each with a session id of its own.
    ///
    /// Emulation: the sessions declare the wait (see [`WaitReason`]); on the
    /// coordinator a resource-queue wait also has, as on a real one, a
    /// session of `login` running `pg_sleep(3600)` first, holding the queue's
    /// only slot. Real backend: a resource queue with `ACTIVE_STATEMENTS=1`
    /// that `login` (not a superuser, who bypasses queues) is moved to, that
    /// holder, then the `k` sessions queue behind it: real waits of the
    /// coordinator. The other waits the real backend cannot make on demand.
    pub async fn waiting_sessions(
        &self,
        content: i16,
        k: usize,
        reason: WaitReason,
        login: Login,
    ) -> Result<Held> {
        let queue_on_coordinator = content < 0 && reason == WaitReason::ResourceQueue;
        if self.backend().is_real() {
            if !queue_on_coordinator {
                bail!(
                    "{reason:?} waits on content {content}: a real server makes only \
                     resource-queue waits on the coordinator on demand"
                );
            }
            return self.resource_queue_wait(k, login).await;
        }
        let mode = if content < 0 {
            Mode::Plain
        } else {
            Mode::Utility
        };
        let mut held = Held::default();
        if queue_on_coordinator {
            let holder = self.connect(-1, login, Mode::Plain).await?;
            held.hold_busy(holder, "SELECT pg_sleep(3600)".into())
                .await?;
        }
        held.absorb(
            self.waiting_sessions_as(content, k, mode, reason, login)
                .await?,
        );
        Ok(held)
    }

    /// Emulation: like [`Cluster::waiting_sessions`] without a queue holder,
    /// presenting themselves as `mode`: e.g. [`Mode::Dispatcher`] for a
    /// coordinator session with a known id, queued before it dispatched
    /// anything (it holds no executors).
    pub async fn waiting_sessions_as(
        &self,
        content: i16,
        k: usize,
        mode: Mode,
        reason: WaitReason,
        login: Login,
    ) -> Result<Held> {
        self.emulation_only("declared waits (gpemu.wait_reason)")?;
        let option = reason.startup_option();
        let mut held = Held::default();
        for _ in 0..k {
            let client = self
                .connect_with(content, DATABASE, login, mode, Some(&option))
                .await?;
            held.hold_busy(client, "SELECT pg_sleep(3600)".into())
                .await?;
        }
        self.wait_shown_waiting(content, reason, &held.pids).await?;
        Ok(held)
    }

    /// Waits until the instance shows every one of `pids` active and waiting
    /// for `reason`, as its family shows it.
    pub(crate) async fn wait_shown_waiting(
        &self,
        content: i16,
        reason: WaitReason,
        pids: &[i32],
    ) -> Result<()> {
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
                "SELECT count(*) = {} FROM pg_stat_activity \
                 WHERE state = 'active' AND {shown} AND pid IN ({})",
                pids.len(),
                pid_list(pids)
            ),
        )
        .await
    }

    /// One distributed session, dispatched the way a coordinator does it: a
    /// backend on the coordinator and, on every primary, one writer QE plus
    /// `readers` cached reader QEs left `idle`, all with the session's id and
    /// user (see [`Dispatch`]). Returns once every instance shows them; the
    /// id the coordinator gave is in [`Held::sessions`].
    ///
    /// Real backend: the coordinator session runs a join of `readers + 1`
    /// slices (one redistribution per reader) and the coordinator makes the
    /// gangs. Emulation: the harness opens the executors itself with the id
    /// the emulated coordinator gave the session.
    pub async fn dispatch(&self, d: &Dispatch) -> Result<Held> {
        if d.readers > self.cached_readers {
            bail!(
                "{} readers: a coordinator keeps at most {} cached per segment \
                 (ClusterSpec::cached_readers)",
                d.readers,
                self.cached_readers
            );
        }
        let held = match self.backend().server {
            Server::Emulated => self.dispatch_emulated(d).await?,
            Server::Real => self.dispatch_real(d).await?,
        };
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
                held.sessions[0]
            ),
        )
        .await?;
        Ok(held)
    }

    /// The coordinator session of `d`, with the id its coordinator gave it;
    /// it has run `query` (in a transaction unless `d` is idle) and is left
    /// in `d`'s state, its last statement `SELECT pg_backend_pid()`.
    pub(crate) async fn open_dispatcher(&self, d: &Dispatch, query: &str) -> Result<Held> {
        let begin = if d.state == SessionState::Idle {
            ""
        } else {
            "BEGIN; "
        };
        let mode = Mode::Client {
            application_name: d.application_name,
        };
        let qd = self.connect(-1, d.login, mode).await?;
        let id = session_id(&qd).await?;
        qd.batch_execute(&format!("{begin}{query}")).await?;
        let mut held = Held::default();
        if d.state == SessionState::Active {
            held.hold_busy(qd, "SELECT pg_sleep(3600)".into()).await?;
        } else {
            held.hold(qd).await?;
        }
        held.sessions.push(id);
        if d.state == SessionState::Idle {
            held.idle_sessions.push(id);
        }
        Ok(held)
    }

    async fn dispatch_emulated(&self, d: &Dispatch) -> Result<Held> {
        let query = format!("SELECT count(*) FROM {SCRATCH_TABLE}");
        // A session inside a transaction keeps its writer in it on every segment.
        let begin = if d.state == SessionState::Idle {
            ""
        } else {
            "BEGIN; "
        };
        let mut held = self.open_dispatcher(d, &query).await?;
        let session_id = held.sessions[0];
        for seg in self.segments() {
            let executor = |writer| Mode::Executor { session_id, writer };
            let qe = self.connect(seg.content, d.login, executor(true)).await?;
            qe.batch_execute(&format!("{begin}{query}")).await?;
            held.hold(qe).await?;
            for _ in 0..d.readers {
                let qe = self.connect(seg.content, d.login, executor(false)).await?;
                qe.batch_execute(&query).await?;
                held.hold(qe).await?;
            }
        }
        Ok(held)
    }

    /// Replays the incident of distributed sessions filling a segment:
    /// dispatches sessions, each with a writer and up to `readers` readers on
    /// every primary (the last with fewer), until `content` has no ordinary
    /// slot left; then one more session is refused, as the next query of an
    /// application would be: with 53300 by the segment on the emulation,
    /// with 58M01 by the coordinator on real servers. Every primary gets the
    /// same executors: to fill one only, give it less room than the others.
    pub async fn fill_with_sessions(&self, content: i16, readers: usize) -> Result<SessionBurst> {
        let free = self.ordinary_slots_left(content).await?;
        let mut burst = SessionBurst {
            held: Held::default(),
            executors: Vec::new(),
            refused: String::new(),
        };
        let mut left = free;
        while left > 0 {
            let n = left.min(readers + 1);
            burst
                .held
                .absorb(self.dispatch(&Dispatch::new(n - 1)).await?);
            burst.executors.push(n);
            left -= n;
        }
        match self.dispatch(&Dispatch::new(readers)).await {
            Ok(_) => bail!("content {content} took one more session after {free} executors"),
            Err(e) => {
                let db = e
                    .downcast_ref::<tokio_postgres::Error>()
                    .and_then(|e| e.as_db_error());
                let refusal = [SqlState::TOO_MANY_CONNECTIONS.code(), GANG_FAILED];
                match db.filter(|db| refusal.contains(&db.code().code())) {
                    Some(db) => {
                        burst.refused = match db.detail() {
                            Some(detail) => format!("{}: {detail}", db.message()),
                            None => db.message().to_owned(),
                        };
                        Ok(burst)
                    }
                    None => Err(e.context(format!("one more session on a full content {content}"))),
                }
            }
        }
    }

    /// Ordinary slots an instance has left: its limit less its client
    /// backends and (GP6, where they take `max_connections` slots) its
    /// walsenders, the asking one aside.
    pub(crate) async fn ordinary_slots_left(&self, content: i16) -> Result<usize> {
        let clients = match self.family() {
            Family::Gp6 => "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
            Family::Gp7 => {
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            }
        };
        let mut used = self.query_i64(content, clients).await?;
        if self.family() == Family::Gp6 {
            used += self
                .query_i64(content, "SELECT count(*) FROM pg_stat_replication")
                .await?;
        }
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
        match self.backend().server {
            Server::Emulated => {
                for inst in self.instances() {
                    self.admin(inst.content).await?.batch_execute(&sql).await?;
                }
            }
            // A real coordinator dispatches the role to every segment.
            Server::Real => {
                let client = self.connect(-1, Login::Superuser, Mode::Plain).await?;
                client.batch_execute(&sql).await?;
            }
        }
        Ok(())
    }

    /// `PREPARE TRANSACTION` `k` times on one instance in utility mode as the
    /// ordinary role; returns the global transaction ids. The transactions
    /// outlive the sessions. Greenplum 7 allows it; real Greenplum 6 refuses
    /// it (use [`Cluster::hold_prepared`]), the emulated one lets a test
    /// shortcut through: see [`crate::ALLOW_UTILITY_PREPARE`].
    pub async fn prepare_transactions(&self, content: i16, k: usize) -> Result<Vec<String>> {
        let mode = match (self.backend().server, self.family()) {
            (Server::Real, Family::Gp6) => bail!(
                "PREPARE TRANSACTION in utility mode: real Greenplum 6 refuses it \
                 (Cluster::hold_prepared holds the coordinator's two-phase commit instead)"
            ),
            (Server::Real, Family::Gp7) => Mode::Utility,
            (Server::Emulated, _) => Mode::UtilityWith(crate::ALLOW_UTILITY_PREPARE),
        };
        let mut gids = Vec::with_capacity(k);
        for _ in 0..k {
            let gid = next_gid(content);
            let client = self.connect(content, Login::Ordinary, mode).await?;
            client
                .batch_execute(&format!(
                    "BEGIN; INSERT INTO {SCRATCH_TABLE} (id) VALUES (1); PREPARE TRANSACTION '{gid}'"
                ))
                .await
                .with_context(|| format!("PREPARE TRANSACTION on content {content}"))?;
            gids.push(gid);
        }
        Ok(gids)
    }

    /// `k` distributed transactions of the ordinary role held prepared on
    /// every primary, as when the coordinator's second phase does not come.
    /// Real backend: the coordinator's fault `dtm_broadcast_commit_prepared`
    /// suspends the commit of `k` sessions writing to every segment (every
    /// other distributed commit waits too until [`Cluster::release_prepared`]).
    /// Emulation, which has no two-phase commit: the same gid prepared in
    /// utility mode on every primary (the test shortcut).
    pub async fn hold_prepared(&self, k: usize) -> Result<Prepared> {
        let mut prepared = Prepared {
            count: k,
            gids: Vec::new(),
            commits: Vec::new(),
        };
        match self.backend().server {
            Server::Real => prepared.commits = self.suspend_commits(k).await?,
            Server::Emulated => {
                let mode = Mode::UtilityWith(crate::ALLOW_UTILITY_PREPARE);
                for _ in 0..k {
                    let gid = next_gid(-1);
                    for seg in self.segments() {
                        let client = self.connect(seg.content, Login::Ordinary, mode).await?;
                        client
                            .batch_execute(&format!(
                                "BEGIN; INSERT INTO {SCRATCH_TABLE} (id) VALUES (1); \
                                 PREPARE TRANSACTION '{gid}'"
                            ))
                            .await?;
                    }
                    prepared.gids.push(gid);
                }
            }
        }
        for seg in self.segments() {
            self.wait_until(
                seg.content,
                &format!("SELECT count(*) = {k} FROM pg_prepared_xacts"),
            )
            .await?;
        }
        Ok(prepared)
    }

    /// Lets the transactions of [`Cluster::hold_prepared`] commit; returns
    /// once no primary holds them.
    pub async fn release_prepared(&self, mut prepared: Prepared) -> Result<()> {
        match self.backend().server {
            Server::Real => {
                let commits = std::mem::take(&mut prepared.commits);
                self.resume_commits(commits).await?;
            }
            Server::Emulated => {
                for gid in &prepared.gids {
                    for seg in self.segments() {
                        self.commit_prepared(seg.content, gid).await?;
                    }
                }
            }
        }
        for seg in self.segments() {
            self.wait_until(seg.content, "SELECT count(*) = 0 FROM pg_prepared_xacts")
                .await?;
        }
        Ok(())
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
        self.lock_wait_as(content, Mode::Utility).await
    }

    /// The same lock wait between two client sessions of the coordinator,
    /// as an application makes it: on a real cluster the waiter waits on the
    /// coordinator only (the segments show nothing of it).
    pub async fn lock_wait_dispatched(&self) -> Result<Held> {
        self.lock_wait_as(-1, Mode::Plain).await
    }

    async fn lock_wait_as(&self, content: i16, mode: Mode) -> Result<Held> {
        let mut held = Held::default();
        let holder = self.connect(content, Login::Ordinary, mode).await?;
        holder
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {LOCKED_TABLE} IN ACCESS EXCLUSIVE MODE"
            ))
            .await?;
        held.hold(holder).await?;
        let waiter = self.connect(content, Login::Ordinary, mode).await?;
        let waiter_pid = held
            .hold_busy(waiter, format!("SELECT count(*) FROM {LOCKED_TABLE}"))
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
            let hidden = match self.backend().server {
                Server::Emulated => hidden_slots(&client).await?,
                Server::Real => self.backends_not_shown(content, &client).await?,
            };
            if hidden == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "content {content}: {hidden} slots still held by backends not shown after {SETTLE_TIMEOUT:?}"
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

/// Emulation: connection slots in use by backends the instance does not show.
async fn hidden_slots(client: &Client) -> Result<i64> {
    // Free slots first, then the sessions shown: a backend leaving in
    // between is then missing from the second count, never counted as shown
    // while its slot is taken.
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
    Ok(i64::from(max - free) - shown)
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
