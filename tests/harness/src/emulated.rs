//! Starting an emulated cluster: PostgreSQL 15 servers with the `gpemu`
//! module and the family's catalog shape (docs/emulation.md).

use crate::catalog::quote;
use crate::cluster::{
    append, catalog_rows, copy_dir, free_ports, psql, start_new_instance, Cluster, ClusterSpec,
    Instance, InstanceSettings,
};
use crate::process::{run, ServerUser};
use crate::{
    DATABASE, LOCKED_TABLE, ORDINARY_PASSWORD, ORDINARY_USER, SCRATCH_TABLE, SUPERUSER,
    SUPERUSER_PASSWORD,
};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

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
    /// Starts the emulated servers of `self`, whose instances are planned.
    pub(crate) fn boot_emulated(&mut self, spec: &ClusterSpec) -> Result<()> {
        let lib = self.install_library()?;
        let template = self.make_template(&lib)?;
        if let Some((cert, key)) = &spec.tls {
            // Copied with the template (`cp -a` keeps owner and mode).
            install_tls(&self.user, &template, cert, key)?;
        }
        let ports = free_ports(self.instances.len())?;
        for (inst, port) in self.instances.iter_mut().zip(ports) {
            inst.port = port;
            copy_dir(&template, &inst.datadir)?;
        }
        let (user, programs) = (self.user, &self.programs);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .instances
                .iter_mut()
                .map(|inst| s.spawn(move || start_new_instance(&user, programs, inst)))
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
                .command(&self.programs, "initdb", root)
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
            self.family().name(),
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
            start_options: String::new(),
        };
        start_new_instance(&self.user, &self.programs, &mut template)?;
        let setup = self.setup_template(template.port);
        let stopped = self.pg_ctl(&dir, &["stop", "-m", "fast"]);
        setup.and(stopped)?;
        Ok(dir)
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
             GRANT ALL ON public.{SCRATCH_TABLE} TO PUBLIC;\n\
             CREATE TABLE public.{LOCKED_TABLE} (id integer);\n\
             GRANT ALL ON public.{LOCKED_TABLE} TO PUBLIC;\n"
        );
        for db in ["template1", DATABASE] {
            psql(port, db, self.family().setup_sql())?;
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
}

/// `server.crt` / `server.key` (the default file names) and `ssl = on`.
/// The server refuses a key that others can read or that it does not own.
pub(crate) fn install_tls(
    user: &ServerUser,
    datadir: &Path,
    cert_pem: &str,
    key_pem: &str,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let cert = datadir.join("server.crt");
    let key = datadir.join("server.key");
    std::fs::write(&cert, cert_pem).context("writing server.crt")?;
    std::fs::write(&key, key_pem).context("writing server.key")?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    user.own(&cert)?;
    user.own(&key)?;
    append(&datadir.join("postgresql.conf"), "ssl = on\n")
}
