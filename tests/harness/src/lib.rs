//! Greenplum clusters for tests, of two backends with one vocabulary
//! ([`ClusterSpec`], [`Cluster`] and its load helpers):
//!
//! - **emulated**: one coordinator and N primary segments run from the Debian
//!   PostgreSQL binaries with the test-only `gpemu` extension (see `tests/gpemu`
//!   and `docs/emulation.md`), which gives each server the Greenplum GUCs, the
//!   utility-mode admission rules and the family's catalog shape;
//! - **real**: a real Greenplum 6 or 7 build (`../shared/greenplum/`, or what
//!   `GPSE_GP6_TARBALL` / `GPSE_GP6_HOME` and their GP7 twins name), put together
//!   by hand: real dispatch, gangs, two-phase commit, resource queues.
//!
//! What one backend cannot be made to do the call says, instead of pretending.
//! Everything a [`Cluster`] starts is stopped and deleted when it is dropped,
//! including after a failed assertion.

mod backend;
mod catalog;
mod cluster;
mod emulated;
mod family;
mod greenplum;
mod load;
mod mirror;
mod process;
mod real;
mod real_load;

pub use backend::{Backend, Server, TestArgument};
pub use catalog::CatalogRow;
pub use cluster::{
    Cluster, ClusterSpec, Instance, InstanceSettings, Login, Mode, Standby, ALLOW_UTILITY_PREPARE,
    STANDBY_APPLICATION_NAME,
};
pub use family::Family;
pub use load::{Dispatch, Held, Prepared, SessionBurst, SessionState, WaitReason};
pub use mirror::MB;
pub use process::{is_alive, KillOnDrop};

/// Name of the cluster's superuser (Greenplum's conventional administrator).
pub const SUPERUSER: &str = "gpadmin";
/// Password of [`SUPERUSER`]; the servers require password authentication on
/// TCP (SCRAM on the emulation, md5 on real servers).
pub const SUPERUSER_PASSWORD: &str = "gpemu-admin-secret";
/// An ordinary (non-superuser) login role, used to fill connection slots.
pub const ORDINARY_USER: &str = "app_user";
/// Password of [`ORDINARY_USER`].
pub const ORDINARY_PASSWORD: &str = "gpemu-app-secret";
/// Password of every role made with `Cluster::create_role`.
pub const ROLE_PASSWORD: &str = "gpemu-role-secret";
/// Database every instance has, and the one the helpers connect to.
pub const DATABASE: &str = "postgres";
/// `application_name` of the harness's own sessions (query executors have none).
pub const APPLICATION_NAME: &str = "gpemu_harness";
/// A table in every database that load helpers lock and write to.
pub const SCRATCH_TABLE: &str = "gpemu_scratch";
/// A table in every database that only the lock waits lock, so a held lock
/// never stands in the way of the writes of other load helpers (a prepared
/// transaction holds its row lock on [`SCRATCH_TABLE`] until it commits).
pub const LOCKED_TABLE: &str = "gpemu_locked";

/// Runs each listed `async fn name(family: Family) -> anyhow::Result<()>` of
/// the calling test file as two tests, `name::gp6` and `name::gp7`, on a
/// two-thread tokio runtime: scenarios only the emulation can make.
#[macro_export]
macro_rules! for_each_family {
    ($($name:ident),* $(,)?) => {
        $( $crate::backend_tests!($name: gp6, gp7); )*
    };
}

/// Runs each listed `async fn name(backend: Backend) -> anyhow::Result<()>`
/// on both families of both backends: `name::gp6`, `name::gp7`,
/// `name::real_gp6` and `name::real_gp7`.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        $( $crate::backend_tests!($name: gp6, gp7, real_gp6, real_gp7); )*
    };
}

/// Runs the test function `name` on the named backends (`gp6`, `gp7`,
/// `real_gp6`, `real_gp7`), each a test `name::<backend>` on a two-thread
/// tokio runtime. The function takes the [`Backend`], or the [`Family`]
/// for emulated backends only. A real test without its server prints why it
/// is skipped (once per suite) and passes.
#[macro_export]
macro_rules! backend_tests {
    ($name:ident: $($backend:ident),+ $(,)?) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $backend() -> anyhow::Result<()> {
                    match $crate::backend_of!($backend) {
                        Some(backend) => {
                            $crate::within_deadline(super::$name(
                                $crate::TestArgument::from_backend(backend),
                            ))
                            .await
                        }
                        None => Ok(()),
                    }
                }
            )+
        }
    };
}
/// How long one scenario may run. A scenario that waits on something that
/// never comes (a lock behind another lock, a figure that never shows) fails
/// with this instead of holding up the whole suite; dropping it stops its
/// servers.
pub const TEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs a scenario of [`backend_tests!`], failing it at [`TEST_DEADLINE`].
#[doc(hidden)]
pub async fn within_deadline(
    scenario: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(TEST_DEADLINE, scenario).await {
        Ok(outcome) => outcome,
        Err(_) => anyhow::bail!(
            "the scenario did not finish within {} s: something it waits for never came",
            TEST_DEADLINE.as_secs()
        ),
    }
}

/// The backend a module name of [`backend_tests!`] stands for (`None`: skip).
#[doc(hidden)]
#[macro_export]
macro_rules! backend_of {
    (gp6) => {
        Some($crate::Backend::emulated($crate::Family::Gp6))
    };
    (gp7) => {
        Some($crate::Backend::emulated($crate::Family::Gp7))
    };
    (real_gp6) => {
        $crate::Backend::real_or_skip($crate::Family::Gp6)
    };
    (real_gp7) => {
        $crate::Backend::real_or_skip($crate::Family::Gp7)
    };
}
