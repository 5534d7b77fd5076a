//! Checks of a cluster's settings that its keys alone cannot express: ranges
//! and how the timeouts nest.

use super::{invalid, ClusterConfig, ConfigError, MAX_POOL_SIZE};
use std::time::Duration;

pub(super) fn validate(at: &str, c: &ClusterConfig) -> Result<(), ConfigError> {
    let key = |name: &str| format!("{at}.{name}");
    let label_ok = |s: &str| !s.is_empty() && !s.chars().any(|ch| ch.is_control());
    if !label_ok(&c.name) {
        return Err(invalid(key("name"), "must be a non-empty label value"));
    }
    if c.port == 0 {
        return Err(invalid(key("port"), "must be between 1 and 65535"));
    }
    if c.scrape_interval < Duration::from_secs(1) {
        return Err(invalid(key("scrape_interval"), "must be at least 1s"));
    }
    if c.instance_timeout.is_zero() || c.instance_timeout >= c.scrape_interval {
        return Err(invalid(
            key("instance_timeout"),
            "must be above 0 and below scrape_interval, so a round ends before the next starts",
        ));
    }
    if c.topology_refresh < c.scrape_interval {
        return Err(invalid(
            key("topology_refresh"),
            "must be at least scrape_interval",
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
            "must be above 0 and at most instance_timeout",
        ));
    }
    if c.lock_timeout.is_zero() || c.lock_timeout > c.statement_timeout {
        return Err(invalid(
            key("lock_timeout"),
            "must be above 0 and at most statement_timeout",
        ));
    }
    if c.connect_timeout.is_zero() || c.connect_timeout > c.instance_timeout {
        return Err(invalid(
            key("connect_timeout"),
            "must be above 0 and at most instance_timeout",
        ));
    }
    if c.collectors.is_empty() {
        return Err(invalid(key("collectors"), "enable at least one collector"));
    }
    if let Some(w) = c.peak_window {
        if w < c.scrape_interval {
            return Err(invalid(
                key("peak_window"),
                "must be at least scrape_interval (or unset: since the previous scrape)",
            ));
        }
    }
    c.top_n.check(|name| key(&format!("top_n.{name}")))?;
    Ok(())
}
