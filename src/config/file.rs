//! Reading the configuration file and the `GPSE_<SECTION>__<KEY>`
//! environment overrides into raw keys.

use super::keys::FileKeys;
use super::{invalid, permissions, ConfigError, ENV_PREFIX};
use std::path::Path;

pub(super) fn read_file(path: &Path) -> Result<FileKeys, ConfigError> {
    if !path.is_file() {
        return Err(invalid(
            "--config.file",
            format!("{}: no such file", path.display()),
        ));
    }
    // No secret in clear (inline passwords are refused): its group may read it.
    permissions::warn_if_exposed("--config.file", path, permissions::Holds::Settings);
    config::Config::builder()
        .add_source(config::File::from(path))
        .add_source(env_source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| invalid(path.display().to_string(), e.to_string()))
}

pub(super) fn read_env_only() -> Result<FileKeys, ConfigError> {
    config::Config::builder()
        .add_source(env_source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| invalid(format!("{ENV_PREFIX}_*"), e.to_string()))
}

fn env_source() -> config::Environment {
    // Only `GPSE_<SECTION>__<KEY>`: other GPSE_ variables (GPSE_LOG,
    // GPSE_COORDINATOR_DSN) belong to the command line, not the file's keys.
    let prefix = format!("{ENV_PREFIX}_");
    let vars = std::env::vars()
        .filter(|(name, _)| name.strip_prefix(&prefix).is_some_and(|k| k.contains("__")))
        .collect();
    config::Environment::with_prefix(ENV_PREFIX)
        .source(Some(vars))
        .prefix_separator("_")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("defaults.collectors")
        .try_parsing(true)
}
