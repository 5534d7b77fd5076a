//! Real Greenplum servers for the real backend: found from an installed build
//! or a tarball (checked by its sha256, unpacked once into `target/greenplum/`,
//! never into the repository), and one `initdb` per build kept beside it as
//! the template every instance of a cluster starts as a copy of.

use crate::family::Family;
use crate::process::{run, Programs, ServerUser};
use crate::{SUPERUSER, SUPERUSER_PASSWORD};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The tarballs `../shared/greenplum/` holds, and their sha256.
const KNOWN_TARBALLS: [(Family, &str, &str); 2] = [
    (
        Family::Gp6,
        "greenplum-db-6.24.3-debian12-x86_64.tar.xz",
        "7b2c040523e84dacb1b435f167dbeadc98989079bf3e1e5b8d483a0c1f974a5d",
    ),
    (
        Family::Gp7,
        "greenplum-db-7.0.0-dev-matrixdb5-debian12-x86_64.tar.xz",
        "5c96f908831e773e4b386158329362fef05b69844eb5cfab38c2c2ff30b3e3af",
    ),
];

/// Bumped when what [`make_template`] writes changes, so stale copies are not used.
const TEMPLATE_VERSION: u32 = 1;

/// A Greenplum build ready to run clusters from.
#[derive(Debug)]
pub(crate) struct Install {
    pub programs: Programs,
    /// `initdb` output with the settings every instance shares.
    pub template: PathBuf,
}

/// The environment variables that point at a family's server.
pub(crate) fn variables(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Gp6 => ("GPSE_GP6_HOME", "GPSE_GP6_TARBALL"),
        Family::Gp7 => ("GPSE_GP7_HOME", "GPSE_GP7_TARBALL"),
    }
}

/// The tarball `../shared/greenplum/` holds for the family.
pub(crate) fn shared_tarball(family: Family) -> PathBuf {
    let (_, name, _) = known(family);
    workspace_root().join("../shared/greenplum").join(name)
}

fn known(family: Family) -> (Family, &'static str, &'static str) {
    *KNOWN_TARBALLS
        .iter()
        .find(|(f, _, _)| *f == family)
        .expect("a known tarball per family")
}

/// Where the family's server comes from.
enum Source {
    /// An installed Greenplum (`$GPSE_GP6_HOME`, e.g. `/usr/local/greenplum-db`).
    Home(PathBuf),
    Tarball(PathBuf),
}

/// The family's source from the environment or `../shared`; `None` when there
/// is none (the real tests are then skipped). A variable that is set but names
/// nothing usable is an error, not a skip.
fn source(family: Family) -> Result<Option<Source>> {
    let (home_var, tarball_var) = variables(family);
    if let Some(home) = std::env::var_os(home_var) {
        let home = PathBuf::from(home);
        if !home.join("bin/postgres").is_file() {
            bail!("{home_var}={} has no bin/postgres", home.display());
        }
        return Ok(Some(Source::Home(home)));
    }
    if let Some(tarball) = std::env::var_os(tarball_var) {
        let tarball = PathBuf::from(tarball);
        if !tarball.is_file() {
            bail!("{tarball_var}={} is not a file", tarball.display());
        }
        return Ok(Some(Source::Tarball(tarball)));
    }
    let shared = shared_tarball(family);
    Ok(shared.is_file().then_some(Source::Tarball(shared)))
}

/// The family's build, unpacked and with its template, once per process;
/// `None` when no server was found.
pub(crate) fn install(family: Family, user: &ServerUser) -> Result<Option<&'static Install>> {
    static GP6: OnceLock<Result<Option<Install>, String>> = OnceLock::new();
    static GP7: OnceLock<Result<Option<Install>, String>> = OnceLock::new();
    let cell = match family {
        Family::Gp6 => &GP6,
        Family::Gp7 => &GP7,
    };
    let found = cell.get_or_init(|| prepare(family, user).map_err(|e| format!("{e:#}")));
    match found {
        Ok(install) => Ok(install.as_ref()),
        Err(e) => bail!("real Greenplum {}: {e}", family.name()),
    }
}

/// Whether the family's server can be found, without unpacking anything.
pub(crate) fn available(family: Family) -> Result<bool> {
    Ok(source(family)?.is_some())
}

fn prepare(family: Family, user: &ServerUser) -> Result<Option<Install>> {
    let Some(source) = source(family)? else {
        return Ok(None);
    };
    let (home, cache) = match source {
        Source::Home(home) => {
            let cache = target_dir()
                .join("greenplum")
                .join(format!("home-{}", sanitize(&home.display().to_string())));
            (home, cache)
        }
        Source::Tarball(tarball) => {
            let dir = unpack(family, &tarball)?;
            (find_home(&dir)?, dir)
        }
    };
    if user.switches() {
        check_runnable(user, &home)?;
    }
    let programs = Programs::greenplum(&home);
    let template = make_template(family, user, &programs, &cache)?;
    Ok(Some(Install { programs, template }))
}

/// The checkout's root (the workspace of the harness).
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Unpacks `tarball` into `target/greenplum/<name>-<sha>/` unless a complete
/// copy is there. Concurrent test processes may race: each unpacks into a
/// directory of its own and the first rename wins.
fn unpack(family: Family, tarball: &Path) -> Result<PathBuf> {
    let sha = sha256(tarball)?;
    let name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .context("tarball name")?;
    let (_, known_name, known_sha) = known(family);
    if name == known_name && sha != known_sha {
        bail!(
            "{} has sha256 {sha}, expected {known_sha}: not the tarball ../shared/greenplum/README.md describes",
            tarball.display()
        );
    }
    let stem = name.trim_end_matches(".tar.xz").trim_end_matches(".tar.gz");
    let dest = target_dir()
        .join("greenplum")
        .join(format!("{stem}-{}", &sha[..12]));
    if dest.join(".complete").exists() {
        return Ok(dest);
    }
    let tmp = dest.with_extension(format!("unpacking-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    run(
        Command::new("tar")
            .arg("-xf")
            .arg(tarball)
            .arg("-C")
            .arg(&tmp),
        &format!("unpacking {}", tarball.display()),
    )?;
    std::fs::write(tmp.join(".complete"), format!("{sha}\n"))?;
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another process got there first.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.join(".complete").exists() {
            bail!("could not move the unpacked build to {}", dest.display());
        }
    }
    Ok(dest)
}

fn sha256(path: &Path) -> Result<String> {
    let out = run(
        Command::new("sha256sum").arg(path),
        &format!("sha256sum {}", path.display()),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .context("sha256sum printed nothing")?
        .to_owned())
}

/// The directory under `dir` holding `bin/postgres` (the tarball's top folder).
fn find_home(dir: &Path) -> Result<PathBuf> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.join("bin/postgres").is_file() {
            return Ok(path);
        }
    }
    bail!("no bin/postgres under {}", dir.display())
}

/// The servers run as the unprivileged account: it must reach the build.
fn check_runnable(user: &ServerUser, home: &Path) -> Result<()> {
    let programs = Programs::greenplum(home);
    run(
        user.command(&programs, "postgres", Path::new("/"))
            .arg("--version"),
        "postgres --version as the server account",
    )
    .map(drop)
    .with_context(|| {
        format!(
            "the server account cannot run {}: every directory above it must be searchable by it",
            home.display()
        )
    })
}

/// Settings every instance of a real cluster shares; `instance.conf` holds
/// the instance's own (port, content id, limits).
fn common_conf(family: Family) -> String {
    let mut conf = String::from(
        "
listen_addresses = '127.0.0.1'
fsync = off
shared_buffers = 32MB
include 'instance.conf'
",
    );
    if family == Family::Gp7 {
        // The sample configuration preloads MatrixDB libraries this build lacks.
        conf.push_str("shared_preload_libraries = ''\n");
    }
    conf
}

/// Password authentication on TCP (md5: what both families have), trust on
/// the cluster's own socket; replication for mirrors.
const PG_HBA: &str = "local all all trust
host all all 127.0.0.1/32 md5
host replication all 127.0.0.1/32 md5
";

/// `initdb` once per build into `cache/template-N`, unless it is there.
fn make_template(
    family: Family,
    user: &ServerUser,
    programs: &Programs,
    cache: &Path,
) -> Result<PathBuf> {
    let dir = cache.join(format!("template-{TEMPLATE_VERSION}"));
    let data = dir.join("data");
    if dir.join(".complete").exists() {
        return Ok(data);
    }
    let tmp = dir.with_extension(format!("initdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    user.own(&tmp)?;
    let pwfile = tmp.join("superuser.pass");
    std::fs::write(&pwfile, SUPERUSER_PASSWORD)?;
    user.own(&pwfile)?;
    run(
        user.command(programs, "initdb", &tmp)
            .arg("-D")
            .arg(tmp.join("data"))
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
            .args(["--auth-local=trust", "--auth-host=md5"])
            .arg(format!("--pwfile={}", pwfile.display())),
        "initdb of the Greenplum template",
    )?;
    std::fs::remove_file(&pwfile)?;
    let conf = tmp.join("data/postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)?;
    text.push_str(&common_conf(family));
    std::fs::write(&conf, text)?;
    std::fs::write(tmp.join("data/pg_hba.conf"), PG_HBA)?;
    std::fs::write(tmp.join(".complete"), "")?;
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(".complete").exists() {
            bail!("could not move the template to {}", dir.display());
        }
    }
    Ok(data)
}
