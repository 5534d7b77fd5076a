//! `top --incidents`: the recorded episodes, newest first, each with who
//! held the slots when it started.

use super::table::{client_or_local, cut, session_who};
use crate::model::incident::Incident;
use crate::model::time::rfc3339;
use std::fmt::Write as _;

/// Sessions listed under each episode.
const SESSIONS_SHOWN: usize = 5;

/// The episodes as text, lines cut to `width`.
pub fn render(incidents: &[Incident], width: usize) -> String {
    let mut out = String::new();
    if incidents.is_empty() {
        out.push_str("no incidents recorded\n");
        return out;
    }
    for i in incidents {
        let c = &i.instance;
        // The rounds at or below the threshold, not the rounds above it that ended it.
        let lasted = match i.ended_at {
            Some(end) => format!("lasted {}, over at {}", duration(i.seconds()), rfc3339(end)),
            None => format!("still going, {} so far", duration(i.seconds())),
        };
        let head = format!(
            "{}  {} content {} (dbid {}, {}:{})  {}/{} used, headroom {} (lowest {}, peak {} used, {} rounds), {lasted}",
            rfc3339(i.started_at),
            i.cluster,
            c.content,
            c.dbid,
            c.hostname,
            c.port,
            i.figures.used,
            i.figures.max_connections,
            i.figures.headroom_ordinary,
            i.lowest_headroom,
            i.peak_used,
            i.rounds,
        );
        let _ = writeln!(out, "{}", cut(&head, width));
        if i.sessions.is_empty() {
            let _ = writeln!(
                out,
                "{}",
                cut("  (coordinator not read: sessions unknown)", width)
            );
        }
        for s in i.sessions.iter().take(SESSIONS_SHOWN) {
            let line = format!(
                "  {} {} here, {} in total, {} old, from {}{}",
                session_who(&s.session),
                s.backends_here,
                s.backends_total,
                duration(s.session.age_seconds),
                client_or_local(&s.session.client_addr),
                s.query
                    .as_deref()
                    .map(|q| format!(": {q}"))
                    .unwrap_or_default(),
            );
            let _ = writeln!(out, "{}", cut(&line.replace('\n', " "), width));
        }
    }
    out
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_log() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7_500.0), "2h05m");
    }
}
