//! Database access: utility-mode connection pools, the family probe's
//! login, the coordinator's topology catalog, and what driver errors mean. Uses `config` (what to
//! connect with), `model` and `tls`.

pub mod error;
pub mod pool;
pub mod probe;
pub mod topology;
