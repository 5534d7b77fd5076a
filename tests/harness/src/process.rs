//! Running the server programs (PostgreSQL's for the emulation, a Greenplum
//! build's for the real backend): as an unprivileged OS user when we are root
//! (both refuse to run as root), and finding a server's processes.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{chown, geteuid, Pid, User};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The OS account the servers run as.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerUser {
    /// `Some((uid, gid))` when we must switch to another account.
    switch_to: Option<(u32, u32)>,
}

impl ServerUser {
    /// The `postgres` account when running as root, else the current user.
    pub(crate) fn detect() -> Result<Self> {
        if !geteuid().is_root() {
            return Ok(ServerUser { switch_to: None });
        }
        let user = User::from_name("postgres")
            .context("looking up the `postgres` OS user")?
            .context(
                "running as root needs the unprivileged `postgres` OS user to start servers \
                 (Debian package postgresql creates it; `bash scripts/test` installs it)",
            )?;
        Ok(ServerUser {
            switch_to: Some((user.uid.as_raw(), user.gid.as_raw())),
        })
    }

    /// Gives `path` to the server account so the servers can write there.
    pub(crate) fn own(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.switch_to {
            chown(path, Some(uid.into()), Some(gid.into()))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    /// True when the servers run as another account than ours.
    pub(crate) fn switches(&self) -> bool {
        self.switch_to.is_some()
    }

    /// A command for one of `programs`, run as the server account.
    pub(crate) fn command(&self, programs: &Programs, program: &str, cwd: &Path) -> Command {
        let mut cmd = Command::new(programs.bin.join(program));
        cmd.current_dir(cwd)
            .env("LC_ALL", "C")
            .env_remove("PGOPTIONS");
        if let Some(lib) = &programs.lib {
            // A Greenplum build finds its own libpq (and the rest) only this way.
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        if let Some((uid, gid)) = self.switch_to {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

/// Where a backend's server programs are: PostgreSQL's own for the
/// emulation, a Greenplum build's `bin/` (with its `lib/`) for the real one.
#[derive(Clone, Debug)]
pub(crate) struct Programs {
    bin: PathBuf,
    lib: Option<PathBuf>,
}

impl Programs {
    /// The Debian PostgreSQL server the emulation runs on.
    pub(crate) fn postgresql() -> Programs {
        Programs {
            bin: bin_dir().to_owned(),
            lib: None,
        }
    }

    /// A Greenplum build unpacked at `home` (`bin/`, `lib/`, `share/`).
    pub(crate) fn greenplum(home: &Path) -> Programs {
        Programs {
            bin: home.join("bin"),
            lib: Some(home.join("lib")),
        }
    }
}

/// Directory of the server programs, from `pg_config --bindir` (or `$PG_CONFIG`).
pub(crate) fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".into());
        Command::new(&pg_config)
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
    })
}

/// Runs `cmd` and turns a non-zero exit into an error carrying its output.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("spawning {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The postmaster's pid from `postmaster.pid`, if the server is running.
pub(crate) fn postmaster_pid(datadir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(datadir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// `pid` and all its live descendants (a postmaster's backends and workers).
pub(crate) fn process_tree(pid: i32) -> Vec<i32> {
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(children(parent));
        i += 1;
    }
    tree.retain(|&p| is_alive(p));
    tree
}

/// The live or zombie children of `parent`.
pub(crate) fn children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_field(pid, 1).and_then(|f| f.parse().ok()) == Some(parent))
        .collect()
}

/// Field `n` after the command name in `/proc/PID/stat` (0 = state, 1 = ppid).
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n).map(str::to_owned)
}

/// True while `pid` exists and is not a zombie waiting to be reaped.
pub fn is_alive(pid: i32) -> bool {
    matches!(stat_field(pid, 0).as_deref(), Some(s) if s != "Z" && s != "X")
}

/// Sends `signal` to every process in `pids`, ignoring ones already gone.
pub(crate) fn signal_all(pids: &[i32], signal: Signal) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
