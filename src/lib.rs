//! greenplum_segment_exporter: per-segment connection, prepared-transaction
//! and lock figures of Greenplum-family clusters, read over utility-mode
//! connections straight to every segment, served to Prometheus.

pub mod backoff;
pub mod basic_auth;
pub mod cli;
pub mod collect;
pub mod config;
pub mod conninfo;
pub mod db_tls;
pub mod error;
pub mod family;
pub mod http;
pub mod job;
pub mod listener;
pub mod metrics;
pub mod permissions;
pub mod pool;
pub mod round;
pub mod service;
pub mod target;
pub mod tls;
pub mod top;
pub mod topology;
pub mod view;
pub mod web_config;
