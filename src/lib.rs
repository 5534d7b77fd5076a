//! greenplum_segment_exporter: per-segment connection, prepared-transaction
//! and lock figures of Greenplum-family clusters, read over utility-mode
//! connections straight to every segment, served to Prometheus.
//!
//! One folder per layer; docs/architecture.md shows the data path through them.

pub mod cli;
pub mod collect;
pub mod config;
pub mod db;
pub mod incident;
pub mod metrics;
pub mod model;
pub mod round;
pub mod tls;
pub mod web;
