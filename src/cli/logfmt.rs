//! `--log.format=logfmt`: one line of `key=value` pairs per event, as
//! Prometheus and its exporters log: `ts`, `level`, `target`, `msg`, then
//! the event's fields. A value is quoted when it holds a space, `=`, `"` or
//! a control character (escaped as in Go's `%q`), or is empty.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event format.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = String::with_capacity(128);
        pair(&mut line, "ts", &ts);
        pair(
            &mut line,
            "level",
            &meta.level().as_str().to_ascii_lowercase(),
        );
        pair(&mut line, "target", meta.target());
        pair(&mut line, "msg", &fields.message);
        line.push_str(&fields.rest);
        writeln!(w, "{line}")
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    /// ` key=value` for every other field.
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            name => {
                self.rest.push(' ');
                pair(&mut self.rest, name, value);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Appends `key=value`, after a space unless first or after one.
fn pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        let mut line = String::new();
        pair(&mut line, "key", "clusters[0].port");
        pair(&mut line, "msg", "cannot listen on 127.0.0.1:9297: in use");
        pair(&mut line, "error", "say \"no\"\nthen=stop");
        pair(&mut line, "empty", "");
        line.push(' ');
        pair(&mut line, "after", "a space");
        assert_eq!(
            line,
            "key=clusters[0].port msg=\"cannot listen on 127.0.0.1:9297: in use\" \
             error=\"say \\\"no\\\"\\nthen=stop\" empty=\"\" after=\"a space\""
        );
    }
}
