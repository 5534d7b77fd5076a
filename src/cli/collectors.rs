//! `--collector.<name>` and `--no-collector.<name>` for every collector of
//! the registry, and `--collector.disable-defaults`: node_exporter's flags
//! and semantics (of a collector's two flags the last one given counts).
//! Added to the command at run time, so a new collector needs no change here.

use crate::config::{CollectorFlags, REGISTRY};
use clap::{Arg, ArgAction, ArgMatches, Command};

const DISABLE_DEFAULTS: &str = "collector.disable-defaults";

fn on(name: &str) -> String {
    format!("collector.{name}")
}

fn off(name: &str) -> String {
    format!("no-collector.{name}")
}

/// `cmd` with the collector flags, under a heading of their own in `--help`.
pub(super) fn add_flags(cmd: Command) -> Command {
    let mut cmd = cmd.next_help_heading("Collectors").arg(
        Arg::new(DISABLE_DEFAULTS)
            .long(DISABLE_DEFAULTS)
            .action(ArgAction::SetTrue)
            .help(
                "Set all collectors to disabled by default (the file's `collectors` lists \
                 too); enable some with --collector.<name>",
            ),
    );
    for r in REGISTRY {
        let name = r.name.name();
        let default = match r.enabled_by_default {
            true => "enabled",
            false => "disabled",
        };
        cmd = cmd
            .arg(
                Arg::new(on(name))
                    .long(on(name))
                    .action(ArgAction::SetTrue)
                    .overrides_with(off(name))
                    .help(format!(
                        "Enable the {name} collector: {} (default: {default})",
                        r.help
                    )),
            )
            .arg(
                Arg::new(off(name))
                    .long(off(name))
                    .action(ArgAction::SetTrue)
                    .overrides_with(on(name))
                    .help(format!("Disable the {name} collector")),
            );
    }
    cmd
}

/// The collector flags given.
pub(super) fn from_matches(m: &ArgMatches) -> CollectorFlags {
    let given = |id: &str| m.get_flag(id);
    CollectorFlags {
        disable_defaults: given(DISABLE_DEFAULTS),
        enable: REGISTRY
            .iter()
            .map(|r| r.name)
            .filter(|c| given(&on(c.name())))
            .collect(),
        disable: REGISTRY
            .iter()
            .map(|r| r.name)
            .filter(|c| given(&off(c.name())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectorName::*;

    fn flags(args: &[&str]) -> CollectorFlags {
        let cmd = add_flags(Command::new("t"));
        from_matches(&cmd.try_get_matches_from([&["t"], args].concat()).unwrap())
    }

    #[test]
    fn each_collector_has_both_flags_and_the_last_one_counts() {
        assert!(flags(&[]).is_empty());
        let f = flags(&["--no-collector.locks", "--collector.sessions"]);
        assert_eq!((f.enable, f.disable), (vec![Sessions], vec![Locks]));
        let f = flags(&["--collector.locks", "--no-collector.locks"]);
        assert_eq!((f.enable, f.disable), (vec![], vec![Locks]));
        let f = flags(&["--no-collector.locks", "--collector.locks"]);
        assert_eq!((f.enable, f.disable), (vec![Locks], vec![]));
        let f = flags(&["--collector.disable-defaults", "--collector.topology"]);
        assert!(f.disable_defaults);
        assert_eq!(f.enable, [Topology]);
        for r in REGISTRY {
            let f = flags(&[&format!("--no-collector.{}", r.name.name())]);
            assert_eq!(f.disable, [r.name]);
        }
        let unknown =
            add_flags(Command::new("t")).try_get_matches_from(["t", "--collector.gossip"]);
        assert!(unknown.is_err());
    }
}
