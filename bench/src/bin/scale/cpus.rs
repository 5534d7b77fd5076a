//! Servers on some CPUs, everything else (the floor client, the exporter,
//! wrk, the peer) on the others. On a real cluster the segments' statements
//! run on the segment hosts, not on the CPUs of the host that runs the
//! exporter; sharing them here, a round's statements (32 at a time on 16
//! servers) would be measured as the exporter's latency.

use anyhow::{bail, Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

pub struct Split {
    servers: Vec<usize>,
    clients: Vec<usize>,
}

impl Split {
    /// The CPUs this process may use, the first half (rounded down, at
    /// least one) for the servers, the rest for the clients; `None` with
    /// fewer than two.
    pub fn halves() -> Result<Option<Split>> {
        let mine = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| mine.is_set(c).unwrap_or(false))
            .collect();
        if cpus.len() < 2 {
            return Ok(None);
        }
        let (servers, clients) = cpus.split_at(cpus.len() / 2);
        Ok(Some(Split {
            servers: servers.to_vec(),
            clients: clients.to_vec(),
        }))
    }

    /// This process (call before it starts threads: they inherit it) and
    /// so everything it starts, until [`Split::pin_servers`] moves them.
    pub fn pin_self(&self) -> Result<()> {
        pin(0, &self.clients)
    }

    /// Every process of the servers; backends they start later inherit it.
    pub fn pin_servers(&self, pids: &[i32]) -> Result<()> {
        if pids.is_empty() {
            bail!("no server processes to pin");
        }
        for &pid in pids {
            // A process that just ended (a backend) is no error.
            if let Err(e) = pin(pid, &self.servers) {
                if gpemu_harness::is_alive(pid) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        format!(
            "servers on CPU {}, floor client, exporter, wrk and peer on CPU {}",
            list(&self.servers),
            list(&self.clients)
        )
    }
}

fn pin(pid: i32, cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    sched_setaffinity(Pid::from_raw(pid), &set)
        .with_context(|| format!("sched_setaffinity({pid}, {})", list(cpus)))
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
