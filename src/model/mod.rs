//! What the exporter knows about a cluster and what a round produced: the
//! Greenplum families and versions, catalog rows, why an instance failed,
//! each instance's figures, who holds the segment slots, and the views that
//! `/metrics`' neighbours (status page, API, `top`) serialise. Plain data:
//! uses no other folder of the crate, and every other folder may use it.

pub mod attribution;
pub mod catalog;
pub mod error;
pub mod family;
pub mod figures;
pub mod incident;
pub mod time;
pub mod view;
