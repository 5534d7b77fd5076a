//! Caps on label values per instance: beyond them the rest is summed as `other`.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// Caps on label values per instance; the rest is summed into `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopN {
    #[serde(default = "default_top_n")]
    pub usename: usize,
    #[serde(default = "default_top_n")]
    pub datname: usize,
    #[serde(default = "default_top_n")]
    pub application_name: usize,
    /// Coordinator sessions listed by the segment backends they hold.
    #[serde(default = "default_top_n")]
    pub sessions: usize,
}

fn default_top_n() -> usize {
    10
}

impl Default for TopN {
    fn default() -> Self {
        TopN {
            usename: default_top_n(),
            datname: default_top_n(),
            application_name: default_top_n(),
            sessions: default_top_n(),
        }
    }
}

/// The largest cap: beyond it a label's series stop being a summary.
const MAX: usize = 1000;

impl TopN {
    /// Each cap is between 1 and [`MAX`]; `key` names a cap's key.
    pub(super) fn check(&self, key: impl Fn(&str) -> String) -> Result<(), ConfigError> {
        for (name, n) in [
            ("usename", self.usename),
            ("datname", self.datname),
            ("application_name", self.application_name),
            ("sessions", self.sessions),
        ] {
            if n == 0 || n > MAX {
                return Err(invalid(key(name), format!("must be between 1 and {MAX}")));
            }
        }
        Ok(())
    }
}
