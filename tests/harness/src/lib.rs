//! An emulated Greenplum cluster made of real PostgreSQL servers.
//!
//! One coordinator and N primary segments run from the Debian PostgreSQL binaries
//! with the test-only `gpemu` extension (see `tests/gpemu` and `docs/emulation.md`),
//! which gives each server the Greenplum GUCs, the utility-mode admission rules and
//! the family's catalog shape. The coordinator holds `gp_segment_configuration`.
//! Everything a [`Cluster`] starts is stopped and deleted when it is dropped,
//! including after a failed assertion.

mod catalog;
mod cluster;
mod family;
mod load;
mod process;

pub use catalog::CatalogRow;
pub use cluster::{
    Cluster, ClusterSpec, Instance, InstanceSettings, Login, Mode, Standby, ALLOW_UTILITY_PREPARE,
    STANDBY_APPLICATION_NAME,
};
pub use family::Family;
pub use load::{Dispatch, Held, SessionBurst, SessionState, WaitReason};
pub use process::{is_alive, KillOnDrop};

/// Name of the cluster's superuser (Greenplum's conventional administrator).
pub const SUPERUSER: &str = "gpadmin";
/// Password of [`SUPERUSER`]; the servers require SCRAM authentication on TCP.
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

/// Runs each listed `async fn name(family: Family) -> anyhow::Result<()>` of
/// the calling test file as two tests, `gp6::name` and `gp7::name`, on a
/// two-thread tokio runtime.
#[macro_export]
macro_rules! for_each_family {
    ($($name:ident),* $(,)?) => {
        mod gp6 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::Family::Gp6).await
                }
            )*
        }
        mod gp7 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::Family::Gp7).await
                }
            )*
        }
    };
}
