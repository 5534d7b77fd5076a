//! The recorded incidents under a cluster's grid: when, how long, where, how
//! low, and the coordinator sessions that held most backends there.

use super::html::{Esc, Name, Time};
use crate::model::incident::Incident;
use std::fmt::Write as _;

/// Recorded incidents shown per cluster; the rest are in `/api/v1/incidents`.
const SHOWN: usize = 20;

pub fn list(incidents: &[&Incident]) -> String {
    let mut out = String::from("<div><h2>Recorded incidents</h2>");
    if incidents.is_empty() {
        out.push_str(
            "<p class=\"note\">None recorded: no instance has had its ordinary headroom at or \
             below the incident threshold.</p></div>",
        );
        return out;
    }
    out.push_str("<table><tr>");
    for h in [
        "started",
        "lasted",
        "instance",
        "lowest headroom",
        "rounds",
        "peak used",
        "sessions holding most backends there",
    ] {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr>");
    for e in incidents.iter().take(SHOWN) {
        row(&mut out, e);
    }
    out.push_str("</table>");
    if incidents.len() > SHOWN {
        let _ = write!(
            out,
            "<p class=\"note\">{} older incidents: see incidents (JSON).</p>",
            incidents.len() - SHOWN
        );
    }
    out.push_str("</div>");
    out
}

fn row(out: &mut String, e: &Incident) {
    let c = &e.instance;
    // The rounds at or below the threshold; those above it that ended it do not count.
    let lasted = match e.ended_at {
        Some(_) => format!("{} s", e.seconds().round()),
        None => "ongoing".to_owned(),
    };
    let place = match c.content {
        n if n < 0 => "coordinator".to_owned(),
        n => format!("seg {n}"),
    };
    let _ = write!(
        out,
        "<tr data-incident=\"{}\"><td>{}</td><td>{lasted}</td><td>{place} · dbid {} · {}:{}</td>\
         <td>{} (threshold {})</td><td>{}</td><td>{}/{}</td><td>",
        Esc(&e.id),
        Time(e.started_at),
        c.dbid,
        Esc(&c.hostname),
        c.port,
        e.lowest_headroom,
        e.threshold,
        e.rounds,
        e.peak_used,
        e.figures.max_connections
    );
    if e.sessions.is_empty() {
        out.push_str("not recorded");
    }
    for s in &e.sessions {
        let who = &s.session;
        let application = match who.application_name.as_str() {
            "" => "no application_name".to_owned(),
            name => Name(name).to_string(),
        };
        let query = s
            .query
            .as_deref()
            .map(|q| format!(" · {}", Esc(q)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<div>sess {} {} ({application}) {}: {} backends here, {} in all{query}</div>",
            Esc(&who.sess_id),
            Name(&who.usename),
            Esc(&who.state),
            s.backends_here,
            s.backends_total
        );
    }
    out.push_str("</td></tr>");
}
