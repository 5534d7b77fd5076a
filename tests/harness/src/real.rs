//! Starting a real Greenplum cluster by hand, as `../shared/greenplum/assemble-gp*.sh`
//! do (no `gpinitsystem`, no ssh): copies of one `initdb`, the catalog rows
//! written while the coordinator runs alone in utility mode, then the segments
//! and the coordinator; and what is kept of it when it stops.

use crate::backend::Backend;
use crate::catalog::quote;
use crate::cluster::{
    catalog_rows, copy_dir, free_ports, lost_port_race, psql, psql_with, start,
    write_instance_conf, Cluster, ClusterSpec, START_ATTEMPTS,
};
use crate::emulated::install_tls;
use crate::family::Family;
use crate::greenplum::{target_dir, Install};
use crate::{
    DATABASE, LOCKED_TABLE, ORDINARY_PASSWORD, ORDINARY_USER, SCRATCH_TABLE, SUPERUSER_PASSWORD,
};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Options of an instance's postmaster in the running cluster.
pub(crate) fn start_options(family: Family, content: i16) -> String {
    match (family, content < 0) {
        // -E: the coordinator dispatches to the segments of its catalog.
        (Family::Gp6, true) => "-E".into(),
        (Family::Gp6, false) => String::new(),
        // GP7 takes gp_role only on the command line.
        (Family::Gp7, true) => "-c gp_role=dispatch".into(),
        (Family::Gp7, false) => "-c gp_role=execute".into(),
    }
}

/// Options of the coordinator running alone to have its catalog written.
fn maintenance_options(family: Family) -> &'static str {
    match family {
        Family::Gp6 => "-c gp_role=utility -m",
        Family::Gp7 => "-c gp_role=utility",
    }
}

/// What every real cluster has once it runs: the ordinary role, the scratch
/// table the load helpers lock, write and join (a thousand rows, so plans
/// have the shape `Cluster::dispatch` counts on), and fault injection.
fn setup_sql() -> String {
    format!(
        "CREATE ROLE {ORDINARY_USER} LOGIN PASSWORD {};
CREATE TABLE public.{SCRATCH_TABLE} (id integer, b integer) DISTRIBUTED BY (id);
INSERT INTO public.{SCRATCH_TABLE} SELECT i, i FROM generate_series(1, 1000) i;
ANALYZE public.{SCRATCH_TABLE};
GRANT ALL ON public.{SCRATCH_TABLE} TO PUBLIC;
CREATE TABLE public.{LOCKED_TABLE} (id integer) DISTRIBUTED BY (id);
GRANT ALL ON public.{LOCKED_TABLE} TO PUBLIC;
CREATE EXTENSION IF NOT EXISTS gp_inject_fault;
",
        quote(ORDINARY_PASSWORD)
    )
}

impl Cluster {
    /// Starts the real servers of `self`, whose instances are planned.
    pub(crate) fn boot_real(&mut self, spec: &ClusterSpec, install: &Install) -> Result<()> {
        if spec.mirrors {
            bail!("mirrors on the real backend: not built (the emulation lists mirror rows)");
        }
        // For programs under test (Cluster::superuser_password_file).
        std::fs::write(self.superuser_password_file(), SUPERUSER_PASSWORD)?;
        for attempt in 1..=START_ATTEMPTS {
            match self.try_boot_real(spec, install) {
                Ok(()) => return Ok(()),
                // Ports are chosen before the catalog names them: start over.
                Err(e) if lost_port_race(&e) && attempt < START_ATTEMPTS => self.tear_down_real(),
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn try_boot_real(&mut self, spec: &ClusterSpec, install: &Install) -> Result<()> {
        let backend = Backend::real(self.family());
        let root = self.root.path().to_owned();
        let ports = free_ports(self.instances.len())?;
        for (inst, port) in self.instances.iter_mut().zip(ports) {
            inst.port = port;
            copy_dir(&install.template, &inst.datadir)?;
            write_instance_conf(backend, inst, &root)?;
            if let Some((cert, key)) = &spec.tls {
                install_tls(&self.user, &inst.datadir, cert, key)?;
            }
        }
        self.catalog = catalog_rows(spec, &self.instances);
        self.write_catalog()?;
        let (user, programs) = (self.user, &self.programs);
        let segments = &self.instances[1..];
        let started: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = segments
                .iter()
                .map(|inst| s.spawn(move || start(&user, programs, inst)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("start thread"))
                .collect()
        });
        started.into_iter().collect::<Result<()>>()?;
        start(&self.user, &self.programs, &self.instances[0])?;
        psql(self.coordinator().port, DATABASE, &setup_sql())?;
        self.wait_quiet()
    }

    /// Waits until no segment shows an executor: those of the setup session
    /// and of the coordinator's start-up (its recovery process dispatches)
    /// leave a moment after their sessions end, and a test counts from here.
    fn wait_quiet(&self) -> Result<()> {
        let options = self.family().utility_options();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for seg in self.segments() {
            loop {
                let sql = "SELECT count(*) FROM pg_stat_activity WHERE sess_id > 0";
                let n = psql_with(seg.port, DATABASE, sql, Some(&options))?;
                if n.trim() == "0" {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!(
                        "content {}: {} executors left after start-up",
                        seg.content,
                        n.trim()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// `gp_add_segment` for every row, by the coordinator alone in utility mode.
    fn write_catalog(&self) -> Result<()> {
        let mut alone = self.instances[0].clone();
        alone.start_options = maintenance_options(self.family()).into();
        start(&self.user, &self.programs, &alone)?;
        let sql: String = self
            .catalog
            .iter()
            .map(|r| {
                format!(
                    "SELECT pg_catalog.gp_add_segment({}::int2, ({})::int2, '{}', '{}', '{}', '{}', {}, {}, {}, {});\n",
                    r.dbid,
                    r.content,
                    r.role,
                    r.preferred_role,
                    r.mode,
                    r.status,
                    r.port,
                    quote(&r.hostname),
                    quote(&r.address),
                    quote(&r.datadir)
                )
            })
            .collect();
        let options = self.family().utility_options();
        let wrote = psql_with(alone.port, DATABASE, &sql, Some(&options));
        let stopped = self.pg_ctl(&alone.datadir, &["stop", "-m", "fast"]);
        wrote?;
        stopped
    }

    /// Undoes a failed start: every server stopped, every data directory gone.
    fn tear_down_real(&mut self) {
        for inst in &self.instances {
            let _ = self.pg_ctl(&inst.datadir, &["stop", "-m", "immediate"]);
            let _ = std::fs::remove_dir_all(&inst.datadir);
        }
    }
}

/// Copies the server logs of a stopped real cluster (Greenplum's CSV logs,
/// `pg_log/` on GP6, `log/` on GP7, and each postmaster's startup log) to
/// `target/greenplum-logs/<suite>/<test>/`, replacing the last run's: what is
/// left to read when a test failed.
pub(crate) fn keep_logs(datadirs: &[PathBuf]) {
    let test = std::thread::current()
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("process-{}", std::process::id()));
    let dest = target_dir()
        .join("greenplum-logs")
        .join(crate::backend::suite_name())
        .join(test.replace("::", "."));
    let _ = std::fs::remove_dir_all(&dest);
    for datadir in datadirs {
        let Some(name) = datadir.file_name() else {
            continue;
        };
        let to = dest.join(name);
        for dir in ["pg_log", "log"] {
            copy_files(&datadir.join(dir), &to);
        }
        let startup = datadir.join("server.log");
        if startup.is_file() && std::fs::create_dir_all(&to).is_ok() {
            let _ = std::fs::copy(&startup, to.join("server.log"));
        }
    }
}

fn copy_files(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    if std::fs::create_dir_all(to).is_err() {
        return;
    }
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(name) = path.file_name().filter(|_| path.is_file()) {
            let _ = std::fs::copy(&path, to.join(name));
        }
    }
}
