//! Where a key was written, so an error names it as the user wrote it: a
//! cluster's own key (`clusters[0].pool_size`), one it took from
//! `[defaults]` (`defaults.instance_timeout`), an environment variable
//! (`GPSE_DEFAULTS__SCRAPE_INTERVAL`) or a flag (`--collect.interval`).

use super::keys::ClusterKeys;
use super::{Overrides, ENV_PREFIX};

/// The environment variable that overrides `key` (`defaults.scrape_interval`
/// -> `GPSE_DEFAULTS__SCRAPE_INTERVAL`), if it is set; else `key`.
pub(super) fn env_or(key: &str) -> String {
    let var = format!("{ENV_PREFIX}_{}", key.replace('.', "__").to_uppercase());
    match std::env::var_os(&var) {
        Some(_) => var,
        None => key.to_owned(),
    }
}

/// Where each key of one cluster came from.
pub(super) struct ClusterOrigin<'a> {
    /// `clusters[<i>]`.
    pub(super) at: String,
    /// The cluster's own keys, before `[defaults]` filled the rest.
    pub(super) own: &'a ClusterKeys,
    pub(super) defaults: &'a ClusterKeys,
    pub(super) overrides: &'a Overrides,
}

impl ClusterOrigin<'_> {
    /// The key `name` (a field of the cluster, or `top_n.<cap>`) as written.
    /// A key nobody wrote (a default) is named where the cluster would set it.
    pub(super) fn key(&self, name: &str) -> String {
        let o = self.overrides;
        match name {
            "scrape_interval" if o.collect_interval.is_some() => "--collect.interval".into(),
            "name" if o.cluster_name.is_some() => "--cluster.name".into(),
            _ if self.own.has(name) && o.coordinator_dsn.is_some() => "--coordinator.dsn".into(),
            _ if self.own.has(name) => format!("{}.{name}", self.at),
            _ if self.defaults.has(name) => env_or(&format!("defaults.{name}")),
            _ => format!("{}.{name}", self.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_key_is_named_where_it_was_written() {
        let own = ClusterKeys {
            host: Some("mdw".into()),
            pool_size: Some(3),
            ..ClusterKeys::default()
        };
        let defaults = ClusterKeys {
            instance_timeout: Some(Duration::from_secs(20)),
            pool_size: Some(2),
            top_n: Some(Default::default()),
            ..ClusterKeys::default()
        };
        let file = Overrides::default();
        let origin = |overrides| ClusterOrigin {
            at: "clusters[1]".into(),
            own: &own,
            defaults: &defaults,
            overrides,
        };
        let o = origin(&file);
        assert_eq!(o.key("pool_size"), "clusters[1].pool_size");
        assert_eq!(o.key("instance_timeout"), "defaults.instance_timeout");
        assert_eq!(o.key("top_n.usename"), "defaults.top_n.usename");
        assert_eq!(o.key("lock_timeout"), "clusters[1].lock_timeout");
        assert_eq!(o.key("scrape_interval"), "clusters[1].scrape_interval");
        let flags = Overrides {
            collect_interval: Some(Duration::ZERO),
            coordinator_dsn: Some("host=mdw".into()),
            cluster_name: Some(String::new()),
            ..Overrides::default()
        };
        let o = origin(&flags);
        assert_eq!(o.key("scrape_interval"), "--collect.interval");
        assert_eq!(o.key("name"), "--cluster.name");
        assert_eq!(o.key("host"), "--coordinator.dsn");
        assert_eq!(o.key("instance_timeout"), "defaults.instance_timeout");
    }
}
