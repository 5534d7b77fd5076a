//! A cluster of either backend (emulated or real Greenplum): its plan, its
//! connections, and controlling and tearing down its servers.

use crate::backend::{Backend, Server};
use crate::catalog::{quote, CatalogRow};
use crate::family::Family;
use crate::process::{
    bin_dir, postmaster_pid, process_tree, run, signal_all, Programs, ServerUser,
};
use crate::{
    APPLICATION_NAME, DATABASE, ORDINARY_PASSWORD, ORDINARY_USER, SUPERUSER, SUPERUSER_PASSWORD,
};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// Connection limits of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceSettings {
    pub max_connections: u32,
    pub superuser_reserved_connections: u32,
    /// Non-zero so that `PREPARE TRANSACTION` works.
    pub max_prepared_transactions: u32,
}

impl InstanceSettings {
    /// Small segment limits so a test fills a segment in a moment; above the
    /// coordinator's, as `gpconfig` insists on real clusters.
    pub const SEGMENT: Self = Self {
        max_connections: 30,
        superuser_reserved_connections: 5,
        max_prepared_transactions: 25,
    };
    pub const COORDINATOR: Self = Self {
        max_connections: 20,
        superuser_reserved_connections: 5,
        max_prepared_transactions: 25,
    };

    /// Slots an ordinary role may use before it is refused.
    pub fn ordinary_slots(&self) -> u32 {
        self.max_connections - self.superuser_reserved_connections
    }
}

/// What to start: family, number of primaries, limits, optional mirror rows.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub(crate) backend: Backend,
    segments: usize,
    segments_per_host: usize,
    pub(crate) mirrors: bool,
    coordinator: InstanceSettings,
    segment: InstanceSettings,
    per_content: BTreeMap<i16, InstanceSettings>,
    /// `name = value` lines for every primary's configuration.
    segment_conf: String,
    /// PEM certificate and key every server presents with `ssl = on`.
    pub(crate) tls: Option<(String, String)>,
    /// Idle reader gangs a coordinator session keeps per segment.
    pub(crate) cached_readers: Option<usize>,
    /// Real backend: `gp_vmem_idle_resource_timeout` (see [`ClusterSpec::idle_gang_timeout`]).
    pub(crate) idle_gang_timeout: Duration,
}

impl ClusterSpec {
    /// A coordinator and `segments` primaries (content 0..segments-1), of
    /// the emulation (a [`Family`]) or of real servers ([`Backend::real`]).
    pub fn new(backend: impl Into<Backend>, segments: usize) -> Self {
        ClusterSpec {
            backend: backend.into(),
            segments,
            segments_per_host: 2,
            mirrors: false,
            coordinator: InstanceSettings::COORDINATOR,
            segment: InstanceSettings::SEGMENT,
            per_content: BTreeMap::new(),
            segment_conf: String::new(),
            tls: None,
            cached_readers: None,
            idle_gang_timeout: REAL_IDLE_GANG_TIMEOUT,
        }
    }

    /// How many idle reader gangs a coordinator session keeps cached per
    /// segment after a query (Greenplum's `gp_cached_segworkers_threshold`,
    /// default 5): on the emulation the figure the exporter reads, on real
    /// servers what the coordinator does.
    pub fn cached_readers(mut self, n: usize) -> Self {
        self.cached_readers = Some(n);
        self
    }

    /// Real backend: how long a coordinator session keeps idle gangs
    /// (`gp_vmem_idle_resource_timeout`; Greenplum's default is 18 s, the
    /// harness's an hour so that a test's sessions keep what they made).
    /// The emulation has no such timer: see [`Cluster::release_idle_gangs`].
    pub fn idle_gang_timeout(mut self, timeout: Duration) -> Self {
        self.idle_gang_timeout = timeout;
        self
    }

    /// Every server gets `ssl = on` with this certificate (PEM, chain
    /// allowed) and key. Clients may still connect without TLS.
    pub fn tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = Some((cert_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// Sets a server setting on every primary segment (a real one on real
    /// servers, e.g. a gpemu one on the emulation: docs/emulation.md).
    pub fn segment_setting(mut self, name: &str, value: &str) -> Self {
        self.segment_conf.push_str(&format!("{name} = {value}\n"));
        self
    }

    /// Emulation: adds a mirror row per primary to the catalog (no server
    /// runs for it). Real servers: not yet (refused at start).
    pub fn mirrors(mut self, on: bool) -> Self {
        self.mirrors = on;
        self
    }

    /// How many primaries share one `hostname` (`sdw1`, `sdw2`, ...).
    pub fn segments_per_host(mut self, n: usize) -> Self {
        self.segments_per_host = n.max(1);
        self
    }

    /// Limits of every primary segment without its own settings.
    pub fn segment_settings(mut self, s: InstanceSettings) -> Self {
        self.segment = s;
        self
    }

    pub fn coordinator_settings(mut self, s: InstanceSettings) -> Self {
        self.coordinator = s;
        self
    }

    /// Limits of the primary with this content id.
    pub fn settings_for(mut self, content: i16, s: InstanceSettings) -> Self {
        self.per_content.insert(content, s);
        self
    }

    /// Starts every server; blocks until all accept connections.
    pub fn start(self) -> Result<Cluster> {
        Cluster::start(self)
    }
}

/// One running server: the coordinator (content -1) or a primary segment.
#[derive(Clone, Debug)]
pub struct Instance {
    pub dbid: i16,
    pub content: i16,
    pub port: u16,
    pub hostname: String,
    pub datadir: PathBuf,
    pub settings: InstanceSettings,
    /// Further `name = value` lines of its configuration.
    pub extra_conf: String,
    /// Options `pg_ctl start -o` gives its postmaster (a real GP7 instance
    /// takes its `gp_role` only there).
    pub start_options: String,
}

/// Startup options of a test shortcut: they let a GP6 utility-mode session run
/// `PREPARE TRANSACTION`, which real Greenplum 6 refuses there (its prepared
/// transactions come from the coordinator's two-phase commit, not emulated).
pub const ALLOW_UTILITY_PREPARE: &str = "-c gpemu.allow_utility_prepare=on";

/// Who logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    Superuser,
    Ordinary,
    /// A role made with [`Cluster::create_role`], password [`crate::ROLE_PASSWORD`].
    Named(&'static str),
}

impl Login {
    pub fn user(self) -> &'static str {
        match self {
            Login::Superuser => SUPERUSER,
            Login::Ordinary => ORDINARY_USER,
            Login::Named(name) => name,
        }
    }

    pub fn password(self) -> &'static str {
        match self {
            Login::Superuser => SUPERUSER_PASSWORD,
            Login::Ordinary => ORDINARY_PASSWORD,
            Login::Named(_) => crate::ROLE_PASSWORD,
        }
    }
}

/// How a connection presents itself to the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No Greenplum options: what a client of the coordinator sends.
    Plain,
    /// Like `Plain`, from a client calling itself `application_name`.
    Client { application_name: &'static str },
    /// The family's utility-mode option.
    Utility,
    /// The family's utility-mode option followed by these startup options,
    /// e.g. [`ALLOW_UTILITY_PREPARE`].
    UtilityWith(&'static str),
    /// The other family's utility option (which this family refuses).
    WrongFamilyUtility,
    /// Emulation only: a coordinator backend (QD) that declares it is
    /// distributed session `session_id`, opened by a client calling itself
    /// `application_name`. (A real coordinator gives each session its id.)
    Dispatcher {
        session_id: i32,
        application_name: &'static str,
    },
    /// Emulation only: a query executor (QE) of coordinator session
    /// `session_id`. (A real coordinator makes its own: [`Cluster::dispatch`].)
    Executor { session_id: i32, writer: bool },
}

impl Mode {
    fn options(self, family: Family) -> Option<String> {
        match self {
            Mode::Plain | Mode::Client { .. } => None,
            Mode::Utility => Some(family.utility_options()),
            Mode::UtilityWith(options) => Some(format!("{} {options}", family.utility_options())),
            Mode::WrongFamilyUtility => Some(family.wrong_family_utility_options()),
            Mode::Dispatcher { session_id, .. } => Some(format!("-c gp_session_id={session_id}")),
            Mode::Executor { session_id, writer } => {
                Some(family.executor_options(session_id, writer))
            }
        }
    }
}

/// A running cluster. Dropping it stops every server and deletes its files
/// (a real one keeps its server logs under `target/greenplum-logs/`).
pub struct Cluster {
    pub(crate) backend: Backend,
    pub(crate) user: ServerUser,
    /// The server programs: PostgreSQL's or the Greenplum build's.
    pub(crate) programs: Programs,
    /// Coordinator first, then primaries in content order.
    pub(crate) instances: Vec<Instance>,
    pub(crate) catalog: Vec<CatalogRow>,
    /// Data directories of the standbys started, stopped on drop if still running.
    standbys: Mutex<Vec<PathBuf>>,
    pub(crate) root: tempfile::TempDir,
    /// See [`ClusterSpec::cached_readers`].
    pub(crate) cached_readers: usize,
    /// See [`ClusterSpec::idle_gang_timeout`].
    pub(crate) idle_gang_timeout: Duration,
}

/// A streaming standby of one primary segment or the coordinator, replicating
/// it as a mirror does (see [`Cluster::start_standby`]). Dropping it stops the
/// server and deletes its data directory.
pub struct Standby {
    user: ServerUser,
    programs: Programs,
    /// Content id of the instance it follows.
    pub content: i16,
    pub port: u16,
    pub datadir: PathBuf,
}

impl Standby {
    /// Promotes the standby to a primary (`pg_ctl promote`, waiting until it
    /// accepts writes), as FTS does with a mirror when its primary fails.
    pub fn promote(&self) -> Result<()> {
        pg_ctl(&self.user, &self.programs, &self.datadir, &["promote"])
    }

    /// Stops the standby at once (`pg_ctl stop -m immediate`), as a mirror
    /// host that went away; its data directory stays until it is dropped.
    pub fn stop(&self) -> Result<()> {
        pg_ctl(
            &self.user,
            &self.programs,
            &self.datadir,
            &["stop", "-m", "immediate"],
        )
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = pg_ctl(
            &self.user,
            &self.programs,
            &self.datadir,
            &["stop", "-m", "immediate"],
        );
        let _ = std::fs::remove_dir_all(&self.datadir);
    }
}

/// `application_name` of a standby's walreceiver, as a Greenplum mirror's.
pub const STANDBY_APPLICATION_NAME: &str = "gp_walreceiver";

impl Cluster {
    fn start(spec: ClusterSpec) -> Result<Cluster> {
        let user = ServerUser::detect()?;
        let (programs, install) = match spec.backend.server {
            Server::Emulated => (Programs::postgresql(), None),
            Server::Real => {
                let install =
                    crate::greenplum::install(spec.backend.family, &user)?.with_context(|| {
                        format!(
                            "no real Greenplum {} server (run real tests through \
                             Backend::real_or_skip, which skips them)",
                            spec.backend.family
                        )
                    })?;
                (install.programs.clone(), Some(install))
            }
        };
        let prefix = match spec.backend.server {
            Server::Emulated => "gpemu-",
            Server::Real => "gpreal-",
        };
        let root = tempfile::Builder::new().prefix(prefix).tempdir()?;
        user.own(root.path())?;
        let mut cluster = Cluster {
            backend: spec.backend,
            user,
            programs,
            instances: plan_instances(&spec, root.path()),
            catalog: Vec::new(),
            standbys: Mutex::new(Vec::new()),
            root,
            cached_readers: spec.cached_readers.unwrap_or(DEFAULT_CACHED_READERS),
            idle_gang_timeout: spec.idle_gang_timeout,
        };
        // From here on a failure drops `cluster`, which stops whatever started.
        match install {
            None => cluster.boot_emulated(&spec)?,
            Some(install) => cluster.boot_real(&spec, install)?,
        }
        Ok(cluster)
    }

    pub(crate) fn pg_ctl(&self, datadir: &Path, args: &[&str]) -> Result<()> {
        pg_ctl(&self.user, &self.programs, datadir, args)
    }

    pub fn family(&self) -> Family {
        self.backend.family
    }

    /// The family and the kind of servers.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Refuses, naming the call, what the real servers cannot be made to do
    /// on demand (the emulation can: declared waits, a slow catalog, ...).
    pub(crate) fn emulation_only(&self, what: &str) -> Result<()> {
        if self.backend.is_real() {
            bail!("{what}: the emulation can do this, a real Greenplum server cannot be made to");
        }
        Ok(())
    }

    pub fn coordinator(&self) -> &Instance {
        &self.instances[0]
    }

    /// The primary segments, in content order.
    pub fn segments(&self) -> &[Instance] {
        &self.instances[1..]
    }

    /// The coordinator and the primaries.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// The instance with this content id (-1 = coordinator).
    pub fn instance(&self, content: i16) -> &Instance {
        self.instances
            .iter()
            .find(|i| i.content == content)
            .unwrap_or_else(|| panic!("no instance with content {content}"))
    }

    /// The catalog rows written at start-up (mirrors included).
    pub fn initial_catalog(&self) -> &[CatalogRow] {
        &self.catalog
    }

    /// The cluster's scratch directory (deleted on drop).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Everything an instance's server has logged: PostgreSQL's text log on
    /// the emulation (`server.log`), Greenplum's CSV files (`pg_log/` on GP6,
    /// `log/` on GP7, `gpdb-*.csv`, oldest first) on real servers.
    pub fn server_log(&self, content: i16) -> Result<String> {
        let datadir = &self.instance(content).datadir;
        if !self.backend.is_real() {
            return Ok(std::fs::read_to_string(datadir.join("server.log"))?);
        }
        let dir = match self.family() {
            Family::Gp6 => datadir.join("pg_log"),
            Family::Gp7 => datadir.join("log"),
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        let mut text = String::new();
        for file in files {
            text.push_str(&std::fs::read_to_string(file)?);
        }
        Ok(text)
    }

    /// A file holding the superuser's password, for programs under test.
    pub fn superuser_password_file(&self) -> PathBuf {
        self.root.path().join("superuser.pass")
    }

    /// libpq key=value connection string of an instance, without password.
    pub fn dsn(&self, content: i16, login: Login) -> String {
        format!(
            "host=127.0.0.1 port={} user={} dbname={DATABASE}",
            self.instance(content).port,
            login.user()
        )
    }

    /// Opens a connection; its driver task runs on the current tokio runtime.
    pub async fn connect(
        &self,
        content: i16,
        login: Login,
        mode: Mode,
    ) -> Result<Client, tokio_postgres::Error> {
        self.connect_to(content, DATABASE, login, mode).await
    }

    /// Like [`Cluster::connect`], to database `db`.
    pub async fn connect_to(
        &self,
        content: i16,
        db: &str,
        login: Login,
        mode: Mode,
    ) -> Result<Client, tokio_postgres::Error> {
        self.connect_with(content, db, login, mode, None).await
    }

    /// Like [`Cluster::connect_to`], with further startup options after the mode's.
    pub(crate) async fn connect_with(
        &self,
        content: i16,
        db: &str,
        login: Login,
        mode: Mode,
        extra_options: Option<&str>,
    ) -> Result<Client, tokio_postgres::Error> {
        self.connect_at_with(self.instance(content).port, db, login, mode, extra_options)
            .await
    }

    /// Like [`Cluster::connect`], to whatever server of this cluster listens
    /// on `port` (a standby, say).
    pub async fn connect_at(
        &self,
        port: u16,
        db: &str,
        login: Login,
        mode: Mode,
    ) -> Result<Client, tokio_postgres::Error> {
        self.connect_at_with(port, db, login, mode, None).await
    }

    async fn connect_at_with(
        &self,
        port: u16,
        db: &str,
        login: Login,
        mode: Mode,
        extra_options: Option<&str>,
    ) -> Result<Client, tokio_postgres::Error> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(port)
            .dbname(db)
            .user(login.user())
            .password(login.password())
            .connect_timeout(Duration::from_secs(10));
        if self.backend.is_real() && matches!(mode, Mode::Dispatcher { .. } | Mode::Executor { .. })
        {
            panic!(
                "{mode:?}: a real coordinator gives sessions their ids and makes its own \
                 executors; use Cluster::dispatch"
            );
        }
        let options = match (mode.options(self.family()), extra_options) {
            (Some(mode), Some(extra)) => Some(format!("{mode} {extra}")),
            (mode, extra) => mode.or(extra.map(str::to_owned)),
        };
        if let Some(options) = options {
            cfg.options(&options);
        }
        // Query executors log in with an empty application_name, as on Greenplum;
        // every other helper session names itself like a real client would.
        match mode {
            Mode::Executor { .. } => {}
            Mode::Dispatcher {
                application_name, ..
            }
            | Mode::Client { application_name } => {
                cfg.application_name(application_name);
            }
            _ => {
                cfg.application_name(APPLICATION_NAME);
            }
        }
        let (client, connection) = cfg.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A superuser utility-mode connection: what a DBA uses to inspect a segment.
    pub async fn admin(&self, content: i16) -> Result<Client> {
        self.connect(content, Login::Superuser, Mode::Utility)
            .await
            .with_context(|| format!("admin connection to content {content}"))
    }

    /// Runs a query returning one bigint on an instance, as superuser in utility mode.
    pub async fn query_i64(&self, content: i16, sql: &str) -> Result<i64> {
        let client = self.admin(content).await?;
        let row = client
            .query_one(sql, &[])
            .await
            .with_context(|| sql.to_owned())?;
        Ok(row.try_get(0)?)
    }

    /// Makes `pg_stat_activity` and `pg_locks` slow on an instance: every
    /// row costs `ms` milliseconds (`gpemu.catalog_delay`, 0 to stop).
    pub async fn set_catalog_delay(&self, content: i16, ms: u32) -> Result<()> {
        self.emulation_only("a slow catalog (gpemu.catalog_delay)")?;
        let client = self.admin(content).await?;
        // Two statements: ALTER SYSTEM refuses to run in the implicit
        // transaction of a multi-statement batch.
        client
            .batch_execute(&format!("ALTER SYSTEM SET gpemu.catalog_delay = {ms}"))
            .await?;
        client.batch_execute("SELECT pg_reload_conf()").await?;
        Ok(())
    }

    /// Stops one instance at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop(&self, content: i16) -> Result<()> {
        let inst = self.instance(content);
        self.resume(content);
        self.pg_ctl(&inst.datadir, &["stop", "-m", "immediate"])
    }

    /// Starts a stopped instance again on its port.
    pub fn start_instance(&self, content: i16) -> Result<()> {
        let inst = self.instance(content);
        start(&self.user, &self.programs, inst).map(drop)
    }

    pub fn restart(&self, content: i16) -> Result<()> {
        self.stop(content)?;
        self.start_instance(content)
    }

    /// Changes an instance's limits and restarts it so they take effect.
    pub fn reconfigure(&mut self, content: i16, settings: InstanceSettings) -> Result<()> {
        let inst = self
            .instances
            .iter_mut()
            .find(|i| i.content == content)
            .context("no such instance")?;
        inst.settings = settings;
        write_instance_conf(self.backend, inst, self.root.path())?;
        self.restart(content)
    }

    /// Freezes an instance (SIGSTOP to its postmaster and every backend): a hung segment.
    pub fn pause(&self, content: i16) -> Result<()> {
        let pid = postmaster_pid(&self.instance(content).datadir)
            .with_context(|| format!("content {content} is not running"))?;
        signal_all(&process_tree(pid), Signal::SIGSTOP);
        Ok(())
    }

    /// Undoes [`Cluster::pause`].
    pub fn resume(&self, content: i16) {
        if let Some(pid) = postmaster_pid(&self.instance(content).datadir) {
            signal_all(&process_tree(pid), Signal::SIGCONT);
        }
    }

    /// Starts a streaming standby of an instance, as its mirror would be:
    /// `pg_basebackup -R` over a replication connection of the superuser into a
    /// new data directory in the cluster's root, its own port, then `pg_ctl
    /// start`. Returns once the instance's `pg_stat_replication` shows it
    /// streaming (`application_name` [`STANDBY_APPLICATION_NAME`]). One standby
    /// per instance at a time.
    pub async fn start_standby(&self, content: i16) -> Result<Standby> {
        self.emulation_only("a standby started beside an instance (not yet a real mirror)")?;
        let primary = self.instance(content);
        let n = self.instances.len() as i16;
        let mut standby = Instance {
            // The dbid of a segment's mirror row in the catalog; the
            // coordinator's standby comes after the mirrors.
            dbid: if content < 0 { 2 * n } else { n + 1 + content },
            content,
            port: 0,
            hostname: primary.hostname.clone(),
            datadir: self.root.path().join(format!("standby{content}")),
            settings: primary.settings,
            extra_conf: primary.extra_conf.clone(),
            start_options: String::new(),
        };
        if standby.datadir.exists() {
            bail!("content {content} already has a standby");
        }
        let conninfo = format!(
            "host=127.0.0.1 port={} user={SUPERUSER} application_name={STANDBY_APPLICATION_NAME}",
            primary.port
        );
        let mut guard = Standby {
            user: self.user,
            programs: self.programs.clone(),
            content,
            port: 0,
            datadir: standby.datadir.clone(),
        };
        self.standbys
            .lock()
            .expect("standby list")
            .push(standby.datadir.clone());
        run(
            self.user
                .command(&self.programs, "pg_basebackup", self.root.path())
                .args(["-d", &conninfo, "-D"])
                .arg(&standby.datadir)
                .args(["-R", "-c", "fast", "-X", "stream"])
                .env("PGPASSWORD", SUPERUSER_PASSWORD),
            "pg_basebackup",
        )?;
        // The copy has the primary's instance.conf; this writes its own.
        start_new_instance(&self.user, &self.programs, &mut standby)?;
        guard.port = standby.port;
        self.wait_until(
            content,
            &format!(
                "SELECT count(*) > 0 FROM pg_stat_replication \
                 WHERE application_name = '{STANDBY_APPLICATION_NAME}' AND state = 'streaming'"
            ),
        )
        .await?;
        Ok(guard)
    }

    /// Data directories of every server: the instances, then the standbys.
    fn datadirs(&self) -> Vec<PathBuf> {
        let standbys = self
            .standbys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.instances
            .iter()
            .map(|i| i.datadir.clone())
            .chain(standbys.iter().cloned())
            .collect()
    }

    /// Every live process of every server of this cluster, standbys included.
    pub fn server_pids(&self) -> Vec<i32> {
        self.datadirs()
            .iter()
            .filter_map(|d| postmaster_pid(d))
            .flat_map(process_tree)
            .collect()
    }

    /// Runs SQL on the coordinator's catalog (superuser, utility mode).
    pub async fn coordinator_execute(&self, sql: &str) -> Result<u64> {
        self.emulation_only("writing gp_segment_configuration (FTS writes a real one)")?;
        let client = self.admin(-1).await?;
        client
            .execute(sql, &[])
            .await
            .with_context(|| sql.to_owned())
    }

    /// Sets `status` ('u' or 'd') of the catalog row with this dbid.
    pub async fn set_catalog_status(&self, dbid: i16, status: char) -> Result<()> {
        let n = self
            .coordinator_execute(&format!(
                "UPDATE gp_segment_configuration SET status = '{status}', \
                 mode = CASE WHEN '{status}' = 'd' THEN 'n' ELSE mode END WHERE dbid = {dbid}"
            ))
            .await?;
        if n != 1 {
            bail!("no catalog row with dbid {dbid}");
        }
        Ok(())
    }

    /// Swaps the primary and mirror rows of one content id, as a failover does.
    pub async fn swap_roles(&self, content: i16) -> Result<()> {
        let n = self
            .coordinator_execute(&format!(
                "UPDATE gp_segment_configuration \
                 SET role = CASE role WHEN 'p' THEN 'm' ELSE 'p' END WHERE content = {content}"
            ))
            .await?;
        if n != 2 {
            bail!("content {content} needs a primary and a mirror row to swap, found {n}");
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for datadir in self.datadirs() {
            let Some(pid) = postmaster_pid(&datadir) else {
                continue;
            };
            let tree = process_tree(pid);
            signal_all(&tree, Signal::SIGCONT);
            if self.pg_ctl(&datadir, &["stop", "-m", "immediate"]).is_err() {
                signal_all(&tree, Signal::SIGKILL);
            }
        }
        if self.backend.is_real() {
            crate::real::keep_logs(&self.datadirs());
        }
    }
}

fn plan_instances(spec: &ClusterSpec, root: &Path) -> Vec<Instance> {
    let options = |content: i16| match spec.backend.server {
        Server::Emulated => String::new(),
        Server::Real => crate::real::start_options(spec.backend.family, content),
    };
    let coordinator = Instance {
        dbid: 1,
        content: -1,
        port: 0,
        hostname: "mdw".into(),
        datadir: root.join("coordinator"),
        settings: spec.coordinator,
        extra_conf: coordinator_conf(spec),
        start_options: options(-1),
    };
    let segments = (0..spec.segments).map(|i| {
        let content = i as i16;
        Instance {
            dbid: content + 2,
            content,
            port: 0,
            hostname: format!("sdw{}", i / spec.segments_per_host + 1),
            datadir: root.join(format!("primary{content}")),
            settings: *spec.per_content.get(&content).unwrap_or(&spec.segment),
            extra_conf: segment_conf(spec),
            start_options: options(content),
        }
    });
    std::iter::once(coordinator).chain(segments).collect()
}

/// Further settings of every primary.
fn segment_conf(spec: &ClusterSpec) -> String {
    let mut conf = spec.segment_conf.clone();
    if let Some(n) = spec.cached_readers {
        let name = match spec.backend.server {
            Server::Emulated => "gpemu.cached_segworkers_threshold",
            Server::Real => "gp_cached_segworkers_threshold",
        };
        conf.push_str(&format!("{name} = {n}\n"));
    }
    conf
}

/// Further settings of the coordinator: on real servers, what its
/// dispatcher does with idle gangs.
fn coordinator_conf(spec: &ClusterSpec) -> String {
    if spec.backend.server == Server::Emulated {
        return String::new();
    }
    let mut conf = format!(
        "gp_vmem_idle_resource_timeout = {}\n",
        spec.idle_gang_timeout.as_millis()
    );
    if let Some(n) = spec.cached_readers {
        conf.push_str(&format!("gp_cached_segworkers_threshold = {n}\n"));
    }
    conf
}

pub(crate) fn catalog_rows(spec: &ClusterSpec, instances: &[Instance]) -> Vec<CatalogRow> {
    let mode = if spec.mirrors { 's' } else { 'n' };
    let row = |inst: &Instance, dbid: i16, role: char, port: u16, datadir: String| CatalogRow {
        dbid,
        content: inst.content,
        role,
        preferred_role: role,
        mode: if inst.content < 0 { 'n' } else { mode },
        status: 'u',
        port,
        hostname: inst.hostname.clone(),
        address: "127.0.0.1".into(),
        datadir,
    };
    let mut rows: Vec<CatalogRow> = instances
        .iter()
        .map(|i| row(i, i.dbid, 'p', i.port, i.datadir.display().to_string()))
        .collect();
    if spec.mirrors {
        let first_mirror_dbid = instances.len() as i16 + 1;
        for (k, seg) in instances.iter().filter(|i| i.content >= 0).enumerate() {
            // A mirror lives on the next host; nothing listens on its port.
            rows.push(row(
                seg,
                first_mirror_dbid + k as i16,
                'm',
                seg.port.wrapping_add(1000),
                format!("/mirror/primary{}", seg.content),
            ));
        }
    }
    rows
}

/// Writes the instance's own settings: `instance.conf`, which the shared
/// configuration includes, and on real servers also `internal.auto.conf`,
/// where Greenplum reads `gp_dbid`.
pub(crate) fn write_instance_conf(backend: Backend, inst: &Instance, root: &Path) -> Result<()> {
    let s = inst.settings;
    let own = match backend.server {
        Server::Emulated => format!(
            "port = {}\ngpemu.contentid = {}\ngpemu.dbid = {}\n",
            inst.port, inst.content, inst.dbid
        ),
        Server::Real => {
            std::fs::write(
                inst.datadir.join("internal.auto.conf"),
                format!("gp_dbid = {}\n", inst.dbid),
            )
            .context("writing internal.auto.conf")?;
            format!(
                "port = {}\nunix_socket_directories = {}\ngp_contentid = {}\n",
                inst.port,
                quote(&root.display().to_string()),
                inst.content
            )
        }
    };
    std::fs::write(
        inst.datadir.join("instance.conf"),
        format!(
            "{own}max_connections = {}\nsuperuser_reserved_connections = {}\n\
             max_prepared_transactions = {}\n{}",
            s.max_connections,
            s.superuser_reserved_connections,
            s.max_prepared_transactions,
            inst.extra_conf,
        ),
    )
    .context("writing instance.conf")
}

pub(crate) const START_ATTEMPTS: usize = 5;

/// Greenplum's default `gp_cached_segworkers_threshold`.
const DEFAULT_CACHED_READERS: usize = 5;

/// Real backend default of [`ClusterSpec::idle_gang_timeout`].
const REAL_IDLE_GANG_TIMEOUT: Duration = Duration::from_secs(3600);

/// Starts an instance with its own options; the server's startup log is
/// returned when it fails.
pub(crate) fn start(user: &ServerUser, programs: &Programs, inst: &Instance) -> Result<()> {
    let log = inst.datadir.join("server.log");
    let mut args = vec!["start", "-t", "60"];
    let log_path = log.display().to_string();
    args.extend(["-l", log_path.as_str()]);
    if !inst.start_options.is_empty() {
        args.extend(["-o", inst.start_options.as_str()]);
    }
    pg_ctl(user, programs, &inst.datadir, &args).map_err(|err| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        anyhow::anyhow!("starting {}: {err:#}\n{text}", inst.datadir.display())
    })
}

/// True when a start failed because another process took the port.
pub(crate) fn lost_port_race(err: &anyhow::Error) -> bool {
    let text = format!("{err:#}");
    text.contains("could not bind") || text.contains("could not create any TCP/IP")
}

/// Starts a freshly copied emulated instance, moving to another port if its
/// port was taken in the meantime (ports are chosen at run time and others
/// may race us).
pub(crate) fn start_new_instance(
    user: &ServerUser,
    programs: &Programs,
    inst: &mut Instance,
) -> Result<()> {
    let root = inst.datadir.parent().unwrap_or(&inst.datadir).to_owned();
    for _ in 0..START_ATTEMPTS {
        if inst.port == 0 {
            inst.port = free_ports(1)?[0];
        }
        write_instance_conf(Backend::emulated(Family::Gp6), inst, &root)?;
        let _ = std::fs::remove_file(inst.datadir.join("server.log"));
        match start(user, programs, inst) {
            Ok(()) => return Ok(()),
            Err(e) if lost_port_race(&e) => inst.port = 0,
            Err(e) => return Err(e),
        }
    }
    bail!(
        "no free port for {} after {START_ATTEMPTS} attempts",
        inst.datadir.display()
    )
}

pub(crate) fn pg_ctl(
    user: &ServerUser,
    programs: &Programs,
    datadir: &Path,
    args: &[&str],
) -> Result<()> {
    let dir = datadir.parent().unwrap_or(datadir);
    run(
        user.command(programs, "pg_ctl", dir)
            .arg("-D")
            .arg(datadir)
            .args(["-w", "-s"])
            .args(args),
        &format!("pg_ctl {} {}", args[0], datadir.display()),
    )
    .map(drop)
}

/// Ports free right now on loopback, all distinct.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    // `cp -a` keeps the server account as owner and the 0700 data directory mode.
    run(
        Command::new("cp").arg("-a").arg(from).arg(to),
        "copying the template data directory",
    )
    .map(drop)
}

pub(crate) fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Runs SQL with psql as the superuser on a server that accepts plain connections.
pub(crate) fn psql(port: u16, db: &str, sql: &str) -> Result<String> {
    psql_with(port, db, sql, None)
}

/// Like [`psql`], with these startup options (`PGOPTIONS`), e.g. utility mode.
pub(crate) fn psql_with(port: u16, db: &str, sql: &str, options: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(bin_dir().join("psql"));
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
    ])
    .args([
        "-p",
        &port.to_string(),
        "-U",
        SUPERUSER,
        "-d",
        db,
        "-f",
        "-",
    ])
    .env("PGPASSWORD", SUPERUSER_PASSWORD)
    .env("PGCONNECT_TIMEOUT", "10")
    .env_remove("PGOPTIONS")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(options) = options {
        cmd.env("PGOPTIONS", options);
    }
    let mut child = cmd.spawn().context("spawning psql")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "psql on port {port} db {db} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
