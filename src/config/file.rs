//! Reading the configuration file and the `GPSE_<SECTION>__<KEY>`
//! environment overrides into raw keys. A key that cannot be read is named
//! as written (`clusters[0].port`, `GPSE_DEFAULTS__SCRAPE_INTERVAL`); a file
//! that cannot be parsed is `--config.file`, its path in the message.

use super::keys::FileKeys;
use super::origin::env_or;
use super::{invalid, permissions, ConfigError, ENV_PREFIX};
use std::path::Path;

pub(super) fn read_file(path: &Path) -> Result<FileKeys, ConfigError> {
    if !path.is_file() {
        return Err(invalid(
            "--config.file",
            format!("{}: no such file", path.display()),
        ));
    }
    permissions::warn_if_exposed("--config.file", path);
    config::Config::builder()
        .add_source(config::File::from(path))
        .add_source(env_source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| named(e, "--config.file", &path.display().to_string()))
}

pub(super) fn read_env_only() -> Result<FileKeys, ConfigError> {
    config::Config::builder()
        .add_source(env_source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| named(e, &format!("{ENV_PREFIX}_*"), "the environment"))
}

/// The error of the key the configuration crate names (`clusters[0]port`
/// in its spelling), else of `whole` (the file, or the environment).
fn named(e: config::ConfigError, whole: &str, source: &str) -> ConfigError {
    use config::ConfigError as E;
    match e {
        E::FileParse { cause, .. } => invalid(whole, format!("{source}: {}", one_line(&cause))),
        E::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => invalid(
            written(&key),
            format!("{unexpected} given, expected {expected}"),
        ),
        E::At {
            key: Some(key),
            error,
            ..
        } => at_key(&key, *error),
        E::NotFound(key) => invalid(written(&key), "required"),
        other => invalid(whole, format!("{source}: {other}")),
    }
}

/// An error the configuration crate found at `key`: an unknown key is
/// named itself, with the keys allowed there.
fn at_key(key: &str, error: config::ConfigError) -> ConfigError {
    let message = match error {
        config::ConfigError::Message(m) => m,
        other => other.to_string(),
    };
    match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((field, allowed)) => invalid(
            written(&format!("{key}.{field}")),
            match allowed
                .trim_start_matches(',')
                .trim()
                .strip_prefix("expected one of ")
            {
                Some(keys) => format!("unknown key; the keys here are {keys}"),
                None => "unknown key".to_owned(),
            },
        ),
        None => invalid(written(key), message),
    }
}

/// A key in the configuration crate's spelling (`clusters[0]port`) as the
/// user wrote it: `clusters[0].port`, or the environment variable that set it.
fn written(key: &str) -> String {
    env_or(
        &key.replace("]", "].")
            .replace("].[", "][")
            .trim_end_matches('.')
            .replace("..", "."),
    )
}

/// A parser's message on one line (TOML's draws a caret under the error).
fn one_line(cause: &dyn std::fmt::Display) -> String {
    let text = cause.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect();
    lines.join(": ")
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
