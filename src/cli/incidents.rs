//! `top --incidents`: the recorded episodes, newest first, each with who
//! held the slots when it started.

use super::table::{client_or_local, cut, session_who};
use crate::model::incident::Incident;
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
        let lasted = match i.ended_at {
            Some(end) => format!("ended after {}", duration(end - i.started_at)),
            None => "still going".to_owned(),
        };
        let head = format!(
            "{}  {} content {} (dbid {}, {}:{})  {}/{} used, headroom {} (lowest {}, peak {} used, {} rounds), {lasted}",
            timestamp(i.started_at),
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

/// UTC, to the second, as the log shows times.
fn timestamp(unix: f64) -> String {
    let secs = unix.max(0.0) as u64;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
    fn times_and_durations_read_like_the_log() {
        assert_eq!(timestamp(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_796_169_600.0), "2026-12-02T00:00:00Z");
        assert_eq!(timestamp(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7_500.0), "2h05m");
    }
}
