//! Starting, controlling and tearing down an emulated cluster.

use crate::catalog::{quote, CatalogRow};
use crate::family::Family;
use crate::process::{bin_dir, postmaster_pid, process_tree, run, signal_all, ServerUser};
use crate::{
    APPLICATION_NAME, DATABASE, ORDINARY_PASSWORD, ORDINARY_USER, SCRATCH_TABLE, SUPERUSER,
    SUPERUSER_PASSWORD,
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
    family: Family,
    segments: usize,
    segments_per_host: usize,
    mirrors: bool,
    coordinator: InstanceSettings,
    segment: InstanceSettings,
    per_content: BTreeMap<i16, InstanceSettings>,
    /// `name = value` lines for every primary's configuration.
    segment_conf: String,
    /// PEM certificate and key every server presents with `ssl = on`.
    tls: Option<(String, String)>,
}

impl ClusterSpec {
    /// A coordinator and `segments` primaries (content 0..segments-1).
    pub fn new(family: Family, segments: usize) -> Self {
        ClusterSpec {
            family,
            segments,
            segments_per_host: 2,
            mirrors: false,
            coordinator: InstanceSettings::COORDINATOR,
            segment: InstanceSettings::SEGMENT,
            per_content: BTreeMap::new(),
            segment_conf: String::new(),
            tls: None,
        }
    }

    /// Every server gets `ssl = on` with this certificate (PEM, chain
    /// allowed) and key. Clients may still connect without TLS.
    pub fn tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = Some((cert_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// Sets a server setting on every primary segment, e.g. a gpemu setting
    /// behind an emulated Greenplum one (see docs/emulation.md).
    pub fn segment_setting(mut self, name: &str, value: &str) -> Self {
        self.segment_conf.push_str(&format!("{name} = {value}\n"));
        self
    }

    /// Adds a mirror row per primary to the catalog (no server runs for it).
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
    /// The family's utility-mode option.
    Utility,
    /// The family's utility-mode option followed by these startup options,
    /// e.g. [`ALLOW_UTILITY_PREPARE`].
    UtilityWith(&'static str),
    /// The other family's utility option (which this family refuses).
    WrongFamilyUtility,
    /// A coordinator backend (QD) of distributed session `session_id`,
    /// opened by a client calling itself `application_name`.
    Dispatcher {
        session_id: i32,
        application_name: &'static str,
    },
    /// A query executor (QE) of coordinator session `session_id`.
    Executor { session_id: i32, writer: bool },
}

impl Mode {
    fn options(self, family: Family) -> Option<String> {
        match self {
            Mode::Plain => None,
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

/// A running emulated cluster. Dropping it stops every server and deletes its files.
pub struct Cluster {
    family: Family,
    user: ServerUser,
    /// Coordinator first, then primaries in content order.
    instances: Vec<Instance>,
    catalog: Vec<CatalogRow>,
    /// Data directories of the standbys started, stopped on drop if still running.
    standbys: Mutex<Vec<PathBuf>>,
    root: tempfile::TempDir,
}

/// A streaming standby of one primary segment or the coordinator, replicating
/// it as a mirror does (see [`Cluster::start_standby`]). Dropping it stops the
/// server and deletes its data directory.
pub struct Standby {
    user: ServerUser,
    /// Content id of the instance it follows.
    pub content: i16,
    pub port: u16,
    pub datadir: PathBuf,
}

impl Standby {
    /// Promotes the standby to a primary (`pg_ctl promote`, waiting until it
    /// accepts writes), as FTS does with a mirror when its primary fails.
    pub fn promote(&self) -> Result<()> {
        pg_ctl(&self.user, &self.datadir, &["promote"])
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = pg_ctl(&self.user, &self.datadir, &["stop", "-m", "immediate"]);
        let _ = std::fs::remove_dir_all(&self.datadir);
    }
}

/// `application_name` of a standby's walreceiver, as a Greenplum mirror's.
pub const STANDBY_APPLICATION_NAME: &str = "gp_walreceiver";

/// Settings every instance shares; per-instance ones live in `instance.conf`.
const COMMON_CONF: &str = "
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
full_page_writes = off
shared_buffers = 16MB
max_wal_size = 256MB
autovacuum = off
log_line_prefix = '%m [%p] %u@%d '
# Backends of killed test clients that are running a query notice and exit.
client_connection_check_interval = '1s'
";

const START_ATTEMPTS: usize = 5;

/// The lists of what each family knows, which the module loads at start-up
/// from `gpemu.catalog_dir`.
const CATALOG_LISTS: [(&str, &str); 4] = [
    (
        "gp6_functions.tsv",
        include_str!("../../gpemu/catalog/gp6_functions.tsv"),
    ),
    (
        "gp6_settings.txt",
        include_str!("../../gpemu/catalog/gp6_settings.txt"),
    ),
    (
        "gp7_functions.tsv",
        include_str!("../../gpemu/catalog/gp7_functions.tsv"),
    ),
    (
        "gp7_settings.txt",
        include_str!("../../gpemu/catalog/gp7_settings.txt"),
    ),
];

/// Creates the (empty) `gp_segment_configuration` table.
const COORDINATOR_SQL: &str = include_str!("../../gpemu/sql/coordinator.sql");

impl Cluster {
    fn start(spec: ClusterSpec) -> Result<Cluster> {
        let user = ServerUser::detect()?;
        let root = tempfile::Builder::new().prefix("gpemu-").tempdir()?;
        user.own(root.path())?;
        let mut cluster = Cluster {
            family: spec.family,
            user,
            instances: plan_instances(&spec, root.path()),
            catalog: Vec::new(),
            standbys: Mutex::new(Vec::new()),
            root,
        };
        // From here on a failure drops `cluster`, which stops whatever started.
        cluster.boot(&spec)?;
        Ok(cluster)
    }

    fn boot(&mut self, spec: &ClusterSpec) -> Result<()> {
        let lib = self.install_library()?;
        let template = self.make_template(&lib)?;
        if let Some((cert, key)) = &spec.tls {
            // Copied with the template (`cp -a` keeps owner and mode).
            self.install_tls(&template, cert, key)?;
        }
        let ports = free_ports(self.instances.len())?;
        for (inst, port) in self.instances.iter_mut().zip(ports) {
            inst.port = port;
            copy_dir(&template, &inst.datadir)?;
        }
        let user = self.user;
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .instances
                .iter_mut()
                .map(|inst| s.spawn(move || start_new_instance(&user, inst)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("start thread"))
                .collect()
        });
        results.into_iter().collect::<Result<()>>()?;
        // Only now are the ports final: a start may have moved to another one.
        self.catalog = catalog_rows(spec, &self.instances);
        self.create_catalog()
    }

    /// Copies the extension and its catalog lists (into `catalog/` beside it)
    /// into the cluster so the server account can read them whatever the
    /// permissions of the build directory.
    fn install_library(&self) -> Result<PathBuf> {
        let dir = self.root.path().join("lib");
        std::fs::create_dir_all(dir.join("catalog"))?;
        let lib = dir.join("gpemu.so");
        std::fs::copy(env!("GPEMU_LIBRARY"), &lib).context("copying gpemu.so")?;
        for (name, text) in CATALOG_LISTS {
            std::fs::write(dir.join("catalog").join(name), text)
                .with_context(|| format!("writing catalog list {name}"))?;
        }
        Ok(lib)
    }

    /// One `initdb` plus per-database setup, later copied for every instance.
    fn make_template(&self, lib: &Path) -> Result<PathBuf> {
        let root = self.root.path();
        let dir = root.join("template");
        let pwfile = root.join("superuser.pass");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD)?;
        self.user.own(&pwfile)?;
        run(
            self.user
                .command("initdb", root)
                .arg("-D")
                .arg(&dir)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .args(["-N", "-E", "UTF8", "--locale=C"]),
            "initdb",
        )?;
        let lib_dir = lib
            .parent()
            .expect("library directory")
            .display()
            .to_string();
        let conf = format!(
            "{COMMON_CONF}shared_preload_libraries = {}\ndynamic_library_path = {}\n\
             gpemu.family = '{}'\ngpemu.catalog_dir = {}\ninclude 'instance.conf'\n",
            quote(&lib.display().to_string()),
            quote(&format!("{lib_dir}:$libdir")),
            self.family.name(),
            quote(&format!("{lib_dir}/catalog")),
        );
        append(&dir.join("postgresql.conf"), &conf)?;

        let mut template = Instance {
            dbid: 0,
            content: -1,
            port: 0,
            hostname: "template".into(),
            datadir: dir.clone(),
            settings: InstanceSettings::COORDINATOR,
            extra_conf: String::new(),
        };
        start_new_instance(&self.user, &mut template)?;
        let setup = self.setup_template(template.port);
        let stopped = self.pg_ctl(&dir, &["stop", "-m", "fast"]);
        setup.and(stopped)?;
        Ok(dir)
    }

    /// `server.crt` / `server.key` (the default file names) and `ssl = on`.
    /// The server refuses a key that others can read or that it does not own.
    fn install_tls(&self, datadir: &Path, cert_pem: &str, key_pem: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let cert = datadir.join("server.crt");
        let key = datadir.join("server.key");
        std::fs::write(&cert, cert_pem).context("writing server.crt")?;
        std::fs::write(&key, key_pem).context("writing server.key")?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        self.user.own(&cert)?;
        self.user.own(&key)?;
        append(&datadir.join("postgresql.conf"), "ssl = on\n")
    }

    fn setup_template(&self, port: u16) -> Result<()> {
        psql(
            port,
            DATABASE,
            &format!(
                "CREATE ROLE {ORDINARY_USER} LOGIN PASSWORD {};",
                quote(ORDINARY_PASSWORD)
            ),
        )?;
        let scratch = format!(
            "CREATE TABLE public.{SCRATCH_TABLE} (id integer);\n\
             GRANT ALL ON public.{SCRATCH_TABLE} TO PUBLIC;\n"
        );
        for db in ["template1", DATABASE] {
            psql(port, db, self.family.setup_sql())?;
            psql(port, db, &scratch)?;
        }
        Ok(())
    }

    /// Creates and fills `gp_segment_configuration` on the coordinator.
    fn create_catalog(&self) -> Result<()> {
        let mut sql = String::from(COORDINATOR_SQL);
        for row in &self.catalog {
            sql.push_str(&row.insert_sql());
            sql.push('\n');
        }
        let port = self.coordinator().port;
        psql(port, "template1", COORDINATOR_SQL)?;
        psql(port, DATABASE, &sql).map(drop)
    }

    fn pg_ctl(&self, datadir: &Path, args: &[&str]) -> Result<()> {
        pg_ctl(&self.user, datadir, args)
    }

    pub fn family(&self) -> Family {
        self.family
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
        let options = match (mode.options(self.family), extra_options) {
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
            } => {
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
        let log = inst.datadir.join("server.log");
        self.pg_ctl(
            &inst.datadir,
            &["start", "-t", "60", "-l", &log.display().to_string()],
        )
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
        write_instance_conf(inst)?;
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
                .command("pg_basebackup", self.root.path())
                .args(["-d", &conninfo, "-D"])
                .arg(&standby.datadir)
                .args(["-R", "-c", "fast", "-X", "stream"])
                .env("PGPASSWORD", SUPERUSER_PASSWORD),
            "pg_basebackup",
        )?;
        // The copy has the primary's instance.conf; this writes its own.
        start_new_instance(&self.user, &mut standby)?;
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
            if pg_ctl(&self.user, &datadir, &["stop", "-m", "immediate"]).is_err() {
                signal_all(&tree, Signal::SIGKILL);
            }
        }
    }
}

fn plan_instances(spec: &ClusterSpec, root: &Path) -> Vec<Instance> {
    let coordinator = Instance {
        dbid: 1,
        content: -1,
        port: 0,
        hostname: "mdw".into(),
        datadir: root.join("coordinator"),
        settings: spec.coordinator,
        extra_conf: String::new(),
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
            extra_conf: spec.segment_conf.clone(),
        }
    });
    std::iter::once(coordinator).chain(segments).collect()
}

fn catalog_rows(spec: &ClusterSpec, instances: &[Instance]) -> Vec<CatalogRow> {
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

fn write_instance_conf(inst: &Instance) -> Result<()> {
    let s = inst.settings;
    std::fs::write(
        inst.datadir.join("instance.conf"),
        format!(
            "port = {}\ngpemu.contentid = {}\ngpemu.dbid = {}\nmax_connections = {}\n\
             superuser_reserved_connections = {}\nmax_prepared_transactions = {}\n{}",
            inst.port,
            inst.content,
            inst.dbid,
            s.max_connections,
            s.superuser_reserved_connections,
            s.max_prepared_transactions,
            inst.extra_conf,
        ),
    )
    .context("writing instance.conf")
}

/// Starts a freshly copied instance, moving to another port if its port was
/// taken in the meantime (ports are chosen at run time and others may race us).
fn start_new_instance(user: &ServerUser, inst: &mut Instance) -> Result<()> {
    let log = inst.datadir.join("server.log");
    for _ in 0..START_ATTEMPTS {
        if inst.port == 0 {
            inst.port = free_ports(1)?[0];
        }
        write_instance_conf(inst)?;
        let _ = std::fs::remove_file(&log);
        let started = pg_ctl(
            user,
            &inst.datadir,
            &["start", "-t", "60", "-l", &log.display().to_string()],
        );
        let Err(err) = started else { return Ok(()) };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if !text.contains("could not bind") && !text.contains("could not create any TCP/IP") {
            bail!("starting {}: {err:#}\n{text}", inst.datadir.display());
        }
        inst.port = 0;
    }
    bail!(
        "no free port for {} after {START_ATTEMPTS} attempts",
        inst.datadir.display()
    )
}

fn pg_ctl(user: &ServerUser, datadir: &Path, args: &[&str]) -> Result<()> {
    let dir = datadir.parent().unwrap_or(datadir);
    run(
        user.command("pg_ctl", dir)
            .arg("-D")
            .arg(datadir)
            .args(["-w", "-s"])
            .args(args),
        &format!("pg_ctl {} {}", args[0], datadir.display()),
    )
    .map(drop)
}

/// Ports free right now on loopback, all distinct.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    // `cp -a` keeps the server account as owner and the 0700 data directory mode.
    run(
        Command::new("cp").arg("-a").arg(from).arg(to),
        "copying the template data directory",
    )
    .map(drop)
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Runs SQL with psql as the superuser on a server that accepts plain connections.
fn psql(port: u16, db: &str, sql: &str) -> Result<String> {
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
