//! `[incidents]`: when a segment's ordinary headroom falls to a threshold the
//! exporter records the episode (who held the slots) in memory and,
//! optionally, in a JSON-lines file; query text only when asked for.

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// What the file may say under `[incidents]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentKeys {
    threshold: Option<f64>,
    end_after_rounds: Option<u32>,
    keep: Option<usize>,
    sessions: Option<usize>,
    file: Option<PathBuf>,
    file_max_bytes: Option<u64>,
    query_text: Option<bool>,
    query_text_max_chars: Option<u32>,
}

/// How episodes are detected, what they record and where they are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentSettings {
    /// An episode starts when ordinary headroom is at or below this.
    pub threshold: f64,
    /// Consecutive rounds above the threshold that end an episode.
    pub end_after_rounds: u32,
    /// Episodes kept in memory (and read back from the file at start).
    pub keep: usize,
    /// Coordinator sessions recorded per episode, those holding most first.
    pub sessions: usize,
    /// JSON-lines file the episodes are appended to, if any.
    pub file: Option<PathBuf>,
    /// Size at which the file is rotated (to `<file>.1`).
    pub file_max_bytes: u64,
    /// Characters of each recorded session's query text; 0 (the default):
    /// no query text is read at all, since it can carry secrets.
    pub query_text_chars: u32,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        IncidentSettings {
            threshold: 0.0,
            end_after_rounds: 3,
            keep: 100,
            sessions: 5,
            file: None,
            file_max_bytes: 10 * 1024 * 1024,
            query_text_chars: 0,
        }
    }
}

/// Query text cut to this many characters when none is configured.
const DEFAULT_QUERY_TEXT_CHARS: u32 = 200;
/// The longest query text recorded: track_activity_query_size's default is 1024.
const MAX_QUERY_TEXT_CHARS: u32 = 10_000;

pub(super) fn build(k: IncidentKeys) -> Result<IncidentSettings, ConfigError> {
    let d = IncidentSettings::default();
    let key = |name: &str| format!("incidents.{name}");
    let threshold = k.threshold.unwrap_or(d.threshold);
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(invalid(
            key("threshold"),
            "must be 0 or more (ordinary slots left)",
        ));
    }
    let end_after_rounds = k.end_after_rounds.unwrap_or(d.end_after_rounds);
    if end_after_rounds == 0 {
        return Err(invalid(key("end_after_rounds"), "must be at least 1"));
    }
    let keep = k.keep.unwrap_or(d.keep);
    if keep == 0 || keep > 10_000 {
        return Err(invalid(key("keep"), "must be between 1 and 10000"));
    }
    let sessions = k.sessions.unwrap_or(d.sessions);
    if sessions == 0 || sessions > 100 {
        return Err(invalid(key("sessions"), "must be between 1 and 100"));
    }
    let file_max_bytes = k.file_max_bytes.unwrap_or(d.file_max_bytes);
    if file_max_bytes < 4096 {
        return Err(invalid(key("file_max_bytes"), "must be at least 4096"));
    }
    let query_text_chars = match (k.query_text.unwrap_or(false), k.query_text_max_chars) {
        (false, Some(_)) => {
            return Err(invalid(
                key("query_text_max_chars"),
                "set query_text = true to record query text",
            ))
        }
        (false, None) => 0,
        (true, n) => n.unwrap_or(DEFAULT_QUERY_TEXT_CHARS),
    };
    if query_text_chars > MAX_QUERY_TEXT_CHARS || k.query_text_max_chars == Some(0) {
        return Err(invalid(
            key("query_text_max_chars"),
            format!("must be between 1 and {MAX_QUERY_TEXT_CHARS}"),
        ));
    }
    Ok(IncidentSettings {
        threshold,
        end_after_rounds,
        keep,
        sessions,
        file: k.file,
        file_max_bytes,
        query_text_chars,
    })
}
