//! Checks of a cluster's settings that its keys alone cannot express: ranges
//! and how the timeouts nest.

use super::{invalid, ClusterConfig, ConfigError, MAX_LOG_BYTES, MAX_POOL_SIZE, MIN_LOG_BYTES};
use std::time::Duration;

/// `key` names a key as the user wrote it (see `origin`).
pub(super) fn validate(key: &dyn Fn(&str) -> String, c: &ClusterConfig) -> Result<(), ConfigError> {
    let d = |d: Duration| humantime::format_duration(d).to_string();
    let label_ok = |s: &str| !s.is_empty() && !s.chars().any(|ch| ch.is_control());
    if !label_ok(&c.name) {
        return Err(invalid(key("name"), "must be a non-empty label value"));
    }
    if c.port == 0 {
        return Err(invalid(key("port"), "must be between 1 and 65535"));
    }
    if c.scrape_interval < Duration::from_secs(1) {
        return Err(invalid(
            key("scrape_interval"),
            format!("{} is too short: must be at least 1s", d(c.scrape_interval)),
        ));
    }
    if c.instance_timeout.is_zero() || c.instance_timeout >= c.scrape_interval {
        return Err(invalid(
            key("instance_timeout"),
            format!(
                "{} must be above 0 and below scrape_interval ({}), so a round ends before the \
                 next starts",
                d(c.instance_timeout),
                d(c.scrape_interval)
            ),
        ));
    }
    if c.topology_refresh < c.scrape_interval {
        return Err(invalid(
            key("topology_refresh"),
            format!(
                "{} must be at least scrape_interval ({})",
                d(c.topology_refresh),
                d(c.scrape_interval)
            ),
        ));
    }
    if c.concurrency == 0 {
        return Err(invalid(key("concurrency"), "must be at least 1"));
    }
    if c.pool_size == 0 || c.pool_size > MAX_POOL_SIZE {
        return Err(invalid(
            key("pool_size"),
            format!(
                "must be 1 or {MAX_POOL_SIZE}: every connection is a slot taken on each segment"
            ),
        ));
    }
    if c.statement_timeout.is_zero() || c.statement_timeout > c.instance_timeout {
        return Err(invalid(
            key("statement_timeout"),
            format!(
                "{} must be above 0 and at most instance_timeout ({})",
                d(c.statement_timeout),
                d(c.instance_timeout)
            ),
        ));
    }
    if c.lock_timeout.is_zero() || c.lock_timeout > c.statement_timeout {
        return Err(invalid(
            key("lock_timeout"),
            format!(
                "{} must be above 0 and at most statement_timeout ({})",
                d(c.lock_timeout),
                d(c.statement_timeout)
            ),
        ));
    }
    if c.connect_timeout.is_zero() || c.connect_timeout > c.instance_timeout {
        return Err(invalid(
            key("connect_timeout"),
            format!(
                "{} must be above 0 and at most instance_timeout ({})",
                d(c.connect_timeout),
                d(c.instance_timeout)
            ),
        ));
    }
    if c.collectors.is_empty() {
        return Err(invalid(key("collectors"), "enable at least one collector"));
    }
    if let Some(w) = c.peak_window {
        if w < c.scrape_interval {
            return Err(invalid(
                key("peak_window"),
                format!(
                    "{} must be at least scrape_interval ({}), or unset: since the previous \
                     scrape",
                    d(w),
                    d(c.scrape_interval)
                ),
            ));
        }
    }
    if !(MIN_LOG_BYTES..=MAX_LOG_BYTES).contains(&c.log_max_bytes_per_round) {
        return Err(invalid(
            key("log_max_bytes_per_round"),
            format!(
                "{} must be between {MIN_LOG_BYTES} and {MAX_LOG_BYTES} bytes",
                c.log_max_bytes_per_round
            ),
        ));
    }
    c.top_n.check(|name| key(&format!("top_n.{name}")))?;
    Ok(())
}
