//! Child processes that are always stopped, and what /proc says about them.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM: every wait in the benchmark gives up and unwinds,
/// so the guards below and the cluster stop what they started.
pub static STOP: AtomicBool = AtomicBool::new(false);

pub fn check_stop() -> Result<()> {
    if STOP.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps in small steps, giving up when interrupted.
pub async fn sleep(d: Duration) -> Result<()> {
    let until = Instant::now() + d;
    loop {
        check_stop()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}

/// A child process stopped when dropped: SIGTERM, a grace period, then SIGKILL,
/// and always reaped.
pub struct Guard {
    child: Option<Child>,
    name: String,
}

impl Guard {
    pub fn spawn(cmd: &mut Command, name: &str) -> Result<Guard> {
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Guard {
            child: Some(child),
            name: name.to_owned(),
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until stopped")
    }

    /// Fails if the process already exited.
    pub fn check_running(&mut self) -> Result<()> {
        let name = self.name.clone();
        if let Some(status) = self.child_mut().try_wait()? {
            bail!("{name} exited early: {status}");
        }
        Ok(())
    }

    /// Waits for the process to exit by itself (polling, interruptible).
    pub async fn wait(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child_mut().try_wait()? {
                return Ok(status);
            }
            if Instant::now() > until {
                bail!("{} still running after {limit:?}", self.name);
            }
            sleep(Duration::from_millis(50)).await?;
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and reaps it.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// CPU time of a process: utime+stime from `/proc/PID/stat` (clock ticks, as
/// `ps` shows) and the scheduler's run time of its threads (nanoseconds).
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    pub ticks: u64,
    /// Per thread: `/proc/PID/task/TID/schedstat`, first field.
    pub threads_ns: HashMap<i32, u64>,
}

impl Cpu {
    pub fn read(pid: i32) -> Result<Cpu> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 and 15 of stat(5); `rest` starts at field 3.
        let utime: u64 = fields[11].parse()?;
        let stime: u64 = fields[12].parse()?;
        let mut threads_ns = HashMap::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for e in dir.flatten() {
                let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
                    if let Some(ns) = s.split_whitespace().next().and_then(|f| f.parse().ok()) {
                        threads_ns.insert(tid, ns);
                    }
                }
            }
        }
        Ok(Cpu {
            ticks: utime + stime,
            threads_ns,
        })
    }

    /// CPU seconds between two readings, from the tick counters.
    pub fn ticks_seconds_since(&self, before: &Cpu) -> f64 {
        self.ticks.saturating_sub(before.ticks) as f64 / clock_ticks()
    }

    /// CPU seconds between two readings from the scheduler's per-thread run
    /// time (threads that ended in between are missed: none do in steady state).
    pub fn sched_seconds_since(&self, before: &Cpu) -> f64 {
        let ns: u64 = self
            .threads_ns
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(*before.threads_ns.get(tid).unwrap_or(&0)))
            .sum();
        ns as f64 / 1e9
    }
}

pub fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// Peak and current resident set size in MB (`VmHWM`, `VmRSS`).
pub fn memory_mb(pid: i32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

/// This process's CPU seconds (user + system), for the floor client.
pub fn self_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// A TCP port free on loopback right now.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Runs a program to completion and returns its standard output.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
