//! Durations as the configuration writes them, `"15s"`, `"500ms"`, `"1m"`:
//! a bare number is refused saying it is a number (not a string, as a
//! string-only parser would), since its unit is what the user left out.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// `#[serde(default, deserialize_with = "duration::optional")]`.
pub(super) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_option(OptionalDuration)
}

struct OptionalDuration;

impl<'de> Visitor<'de> for OptionalDuration {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"15s\"")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(DurationText).map(Some)
    }
}

struct DurationText;

fn bare_number<E: de::Error>(n: impl fmt::Display) -> E {
    E::custom(format!(
        "{n} is a number without a unit; write a duration such as \"{n}s\" or \"{n}ms\""
    ))
}

impl Visitor<'_> for DurationText {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"15s\"")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        humantime::parse_duration(s.trim()).map_err(|e| {
            E::custom(format!(
                "{s:?} is not a duration ({e}); write e.g. \"15s\", \"500ms\" or \"1m\""
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        Err(bare_number(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Err(bare_number(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
        Err(bare_number(n))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Duration, E> {
        Err(E::custom(format!(
            "{b} is not a duration; write e.g. \"15s\""
        )))
    }
}
