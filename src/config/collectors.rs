//! The collector registry: every collector's name, what it collects and
//! whether it is on by default. The `collectors` key and the command line's
//! `--collector.<name>` / `--no-collector.<name>` flags (node_exporter's) are
//! derived from it, so a new collector needs no change to either.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// Collectors that can be switched on and off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub enum CollectorName {
    Connections,
    Prepared,
    Locks,
    Settings,
    Sessions,
    Replication,
    Topology,
    Log,
}

/// One entry of the registry.
pub struct Registered {
    pub name: CollectorName,
    /// What it collects, for `--help`.
    pub help: &'static str,
    pub enabled_by_default: bool,
}

/// Every collector, in exposition order.
pub const REGISTRY: &[Registered] = &[
    Registered {
        name: CollectorName::Connections,
        help: "connection slots by state, headroom, top roles, databases and applications",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Prepared,
        help: "prepared transactions, their limit and oldest age",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Locks,
        help: "lock waiters, blockers and the longest wait",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Settings,
        help: "settings that bound segment resources (gp_vmem_protect_limit, ...)",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Sessions,
        help: "coordinator sessions by the segment backends they hold",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Replication,
        help: "each primary's walsender to its mirror: state, sync state, WAL bytes behind",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Topology,
        help: "gp_segment_configuration: status, role and sync mode of every instance",
        enabled_by_default: true,
    },
    Registered {
        name: CollectorName::Log,
        help: "the servers' own CSV logs: refused connections, failed dispatches, gang resets, \
               crashes (needs a superuser)",
        enabled_by_default: false,
    },
];

impl CollectorName {
    pub const ALL: [CollectorName; 8] = [
        CollectorName::Connections,
        CollectorName::Prepared,
        CollectorName::Locks,
        CollectorName::Settings,
        CollectorName::Sessions,
        CollectorName::Replication,
        CollectorName::Topology,
        CollectorName::Log,
    ];

    /// The name as written in `collectors` and in the flags.
    pub fn name(self) -> &'static str {
        match self {
            CollectorName::Connections => "connections",
            CollectorName::Prepared => "prepared",
            CollectorName::Locks => "locks",
            CollectorName::Settings => "settings",
            CollectorName::Sessions => "sessions",
            CollectorName::Replication => "replication",
            CollectorName::Topology => "topology",
            CollectorName::Log => "log",
        }
    }

    /// The collectors on by default, in registry order.
    pub fn defaults() -> Vec<CollectorName> {
        REGISTRY
            .iter()
            .filter(|r| r.enabled_by_default)
            .map(|r| r.name)
            .collect()
    }
}

impl TryFrom<String> for CollectorName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        CollectorName::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = CollectorName::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown collector {s:?}; the collectors are {}",
                    known.join(", ")
                )
            })
    }
}

/// The command line's collector flags, node_exporter's semantics:
/// `--collector.disable-defaults` starts from no collector, then each
/// `--collector.<name>` switches one on and `--no-collector.<name>` off (of
/// the two flags of a collector, the last given counts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorFlags {
    pub disable_defaults: bool,
    pub enable: Vec<CollectorName>,
    pub disable: Vec<CollectorName>,
}

impl CollectorFlags {
    pub fn is_empty(&self) -> bool {
        !self.disable_defaults && self.enable.is_empty() && self.disable.is_empty()
    }

    /// A cluster's collectors: the flags win over the configuration. The
    /// file's `collectors` (else the registry's defaults) are the starting
    /// set, which `--collector.disable-defaults` empties; then the flags
    /// switch collectors on and off, for every cluster. In registry order.
    pub(super) fn apply(&self, configured: Option<Vec<CollectorName>>) -> Vec<CollectorName> {
        if self.is_empty() {
            return configured.unwrap_or_else(CollectorName::defaults);
        }
        let start = match self.disable_defaults {
            true => Vec::new(),
            false => configured.unwrap_or_else(CollectorName::defaults),
        };
        CollectorName::ALL
            .into_iter()
            .filter(|c| (start.contains(c) || self.enable.contains(c)) && !self.disable.contains(c))
            .collect()
    }

    /// The error when the flags leave a cluster without a collector, naming them.
    pub(super) fn none_left(&self) -> ConfigError {
        let mut written: Vec<String> = Vec::new();
        if self.disable_defaults {
            written.push("--collector.disable-defaults".into());
        }
        written.extend(
            self.disable
                .iter()
                .map(|c| format!("--no-collector.{}", c.name())),
        );
        invalid(
            written.join(" "),
            "no collector left: enable at least one with --collector.<name>",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CollectorName::*;

    #[test]
    fn the_registry_lists_every_collector_once() {
        let names: Vec<CollectorName> = REGISTRY.iter().map(|r| r.name).collect();
        assert_eq!(names, CollectorName::ALL);
        for c in CollectorName::ALL {
            assert_eq!(CollectorName::try_from(c.name().to_owned()), Ok(c));
        }
        let err = CollectorName::try_from("gossip".to_owned()).unwrap_err();
        assert!(
            err.contains("\"gossip\"") && err.contains("connections, prepared"),
            "{err}"
        );
    }

    #[test]
    fn flags_switch_collectors_on_and_off_over_the_configured_set() {
        let flags = |disable_defaults, enable: &[CollectorName], disable: &[CollectorName]| {
            CollectorFlags {
                disable_defaults,
                enable: enable.to_vec(),
                disable: disable.to_vec(),
            }
        };
        let none = CollectorFlags::default();
        assert_eq!(none.apply(None), CollectorName::defaults());
        assert!(
            !CollectorName::defaults().contains(&Log),
            "the log collector is opt-in"
        );
        // Without flags the file's list stays as written.
        assert_eq!(
            none.apply(Some(vec![Locks, Connections])),
            [Locks, Connections]
        );
        assert_eq!(
            flags(false, &[], &[Locks]).apply(None),
            [
                Connections,
                Prepared,
                Settings,
                Sessions,
                Replication,
                Topology
            ]
        );
        assert_eq!(
            flags(false, &[Locks], &[]).apply(Some(vec![Connections])),
            [Connections, Locks]
        );
        assert_eq!(
            flags(false, &[], &[Connections]).apply(Some(vec![Connections, Locks])),
            [Locks]
        );
        assert_eq!(
            flags(true, &[Prepared], &[]).apply(Some(vec![Connections])),
            [Prepared]
        );
        assert_eq!(flags(true, &[], &[]).apply(None), []);
        assert_eq!(
            flags(true, &[], &[Locks]).none_left().key,
            "--collector.disable-defaults --no-collector.locks"
        );
    }
}
