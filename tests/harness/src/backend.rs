//! What a cluster is made of: the emulation (PostgreSQL 15 servers with the
//! `gpemu` extension) or real Greenplum servers of the family.

use crate::family::Family;
use crate::greenplum;
use std::io::Write;
use std::sync::Mutex;

/// The kind of servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// PostgreSQL 15 dressed as the family (docs/emulation.md).
    Emulated,
    /// A real Greenplum build of the family (`../shared/greenplum/`).
    Real,
}

/// A family and the kind of servers that play it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    pub family: Family,
    pub server: Server,
}

impl Backend {
    pub fn emulated(family: Family) -> Backend {
        Backend {
            family,
            server: Server::Emulated,
        }
    }

    pub fn real(family: Family) -> Backend {
        Backend {
            family,
            server: Server::Real,
        }
    }

    pub fn is_real(self) -> bool {
        self.server == Server::Real
    }

    /// The real backend of `family` if its servers can be found; otherwise
    /// prints, once per suite (test binary and family), that its real tests
    /// are skipped and how to run them, and returns `None`. A variable that
    /// names no usable server fails the test instead.
    pub fn real_or_skip(family: Family) -> Option<Backend> {
        match greenplum::available(family) {
            Ok(true) => Some(Backend::real(family)),
            Ok(false) => {
                announce_skip(family);
                None
            }
            Err(e) => panic!("real Greenplum {}: {e:#}", family.name()),
        }
    }

    /// `gp6`, `real gp6`, ...
    pub fn name(self) -> String {
        match self.server {
            Server::Emulated => self.family.name().to_owned(),
            Server::Real => format!("real {}", self.family.name()),
        }
    }
}

impl From<Family> for Backend {
    fn from(family: Family) -> Backend {
        Backend::emulated(family)
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// What a test function of [`crate::backend_tests!`] takes: the [`Backend`],
/// or the [`Family`] for scenarios only the emulation can make.
pub trait TestArgument {
    fn from_backend(backend: Backend) -> Self;
}

impl TestArgument for Backend {
    fn from_backend(backend: Backend) -> Self {
        backend
    }
}

impl TestArgument for Family {
    fn from_backend(backend: Backend) -> Self {
        assert!(
            !backend.is_real(),
            "a test that takes a Family runs on the emulation only: take a Backend to run on {backend}"
        );
        backend.family
    }
}

/// One line per suite, written past the test harness's output capture (which
/// would hide it for a test that passes).
fn announce_skip(family: Family) {
    static ANNOUNCED: Mutex<Vec<Family>> = Mutex::new(Vec::new());
    let mut done = ANNOUNCED.lock().unwrap_or_else(|p| p.into_inner());
    if done.contains(&family) {
        return;
    }
    done.push(family);
    let suite = suite_name();
    let (home, tarball) = greenplum::variables(family);
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the real_{} tests of {suite}: no real Greenplum {} server. To run them set \
         {tarball}=<a greenplum-db-*.tar.xz> or {home}=<an installed Greenplum, e.g. \
         /usr/local/greenplum-db> (the default, {}, is missing)",
        family.name(),
        &family.name()[2..],
        greenplum::shared_tarball(family).display()
    );
}

/// The running test binary's name without Cargo's hash (`exporter`, ...).
pub(crate) fn suite_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            let name = std::path::Path::new(&a).file_name()?.to_str()?.to_owned();
            // Cargo names test binaries `<file>-<hash>`.
            Some(match name.rsplit_once('-') {
                Some((stem, _)) => stem.to_owned(),
                None => name,
            })
        })
        .unwrap_or_else(|| "tests".into())
}
