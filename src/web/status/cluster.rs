//! One cluster's part of the status page: what it is and how old its figures
//! are, a banner when they are old, the grid of tiles, the recorded
//! incidents, and who holds the segment slots.

use super::html::{Esc, Name, Time};
use super::{incidents, tile};
use crate::model::attribution::Attribution;
use crate::model::incident::Incident;
use crate::model::view::ClusterView;
use std::fmt::Write as _;

/// Figures older than this many collection intervals (and a second) are old:
/// a round ends about every interval, so twice that means rounds stopped.
pub const STALE_INTERVALS: f64 = 2.0;

/// Seconds after which a cluster's figures are old.
pub fn stale_after(v: &ClusterView) -> f64 {
    STALE_INTERVALS * v.interval_seconds + 1.0
}

/// The section of a cluster whose first round has not ended yet.
pub fn waiting(name: &str) -> String {
    format!(
        "<section data-cluster=\"{0}\"><h2>Cluster {0}</h2><p class=\"meta\">No collection round \
         has ended yet: the figures appear after the first one.</p></section>",
        Esc(name)
    )
}

/// The section of a collected cluster; `now` is when the page is made (unix
/// seconds), `incidents` the cluster's, newest first.
pub fn section(v: &ClusterView, incidents: &[&Incident], now: f64) -> String {
    let mut out = String::new();
    let round = v.round_finished_at.map_or(String::new(), |t| {
        format!(" data-round-finished-at=\"{t}\"")
    });
    let _ = write!(
        out,
        "<section data-cluster=\"{0}\"{round} data-interval=\"{1}\" data-stale-after=\"{2}\">\
         <h2>Cluster {0}</h2>",
        Esc(&v.cluster),
        v.interval_seconds,
        stale_after(v)
    );
    meta(&mut out, v, now);
    out.push_str("<div class=\"grid\">");
    for i in &v.instances {
        let own: Vec<&Incident> = incidents
            .iter()
            .copied()
            .filter(|e| e.instance.content == i.catalog.content)
            .collect();
        out.push_str(&tile::tile(i, &own));
    }
    out.push_str("</div>");
    out.push_str(&incidents::list(incidents));
    if let Some(a) = &v.attribution {
        attribution(&mut out, a);
    }
    let others: Vec<String> = v
        .not_collected
        .iter()
        .filter(|r| r.status != 'u' || r.role != r.preferred_role)
        .map(|r| {
            let status = if r.status == 'u' { "up" } else { "DOWN" };
            format!(
                "dbid {} (content {}) {status}, role {}",
                r.dbid, r.content, r.role
            )
        })
        .collect();
    if !others.is_empty() {
        let _ = write!(
            out,
            "<p class=\"note\">Mirrors needing attention: {}</p>",
            others.join("; ")
        );
    }
    out.push_str("</section>");
    out
}

/// The family and version as detected, when the round the figures are of
/// ended and how long before the page was made, how often rounds run; and
/// the banner, hidden unless the figures are old (the script keeps both up
/// to date between refreshes).
fn meta(out: &mut String, v: &ClusterView, now: f64) {
    let mut parts = vec![match &v.family {
        Some(f) => Esc(f).to_string(),
        None => "family not detected yet (the coordinator was not reached)".to_owned(),
    }];
    if let Some(version) = v.version.as_deref().filter(|s| !s.is_empty()) {
        parts.push(format!("<span class=\"version\">{}</span>", Esc(version)));
    }
    let age = v.round_finished_at.map(|t| (now - t).max(0.0));
    if let (Some(t), Some(age)) = (v.round_finished_at, age) {
        parts.push(format!(
            "figures of the round ended {} <span class=\"age\">({} s ago)</span>",
            Time(t),
            age.round()
        ));
    }
    parts.push(format!("collected every {} s", v.interval_seconds));
    let _ = write!(out, "<p class=\"meta\">{}</p>", parts.join(" · "));
    let old = age.is_some_and(|a| a > stale_after(v));
    let _ = write!(
        out,
        "<p class=\"banner round-stale\" role=\"alert\"{}>{}</p>",
        if old { "" } else { " hidden" },
        age.filter(|_| old)
            .map_or(String::new(), |a| old_figures(v, a))
    );
}

/// The banner's sentence for figures `age` seconds old.
fn old_figures(v: &ClusterView, age: f64) -> String {
    format!(
        "Stale: no collection round has ended for {} s (one is due every {} s). These figures \
         are old; see the exporter's log.",
        age.round(),
        v.interval_seconds
    )
}

/// Configuration risk and the coordinator sessions holding most segment backends.
fn attribution(out: &mut String, a: &Attribution) {
    if let Some(ratio) = a.overcommit.as_ref().and_then(|o| o.ratio) {
        if ratio > 1.0 {
            let _ = write!(
                out,
                "<p class=\"note\">Coordinator slots / segment session capacity = {ratio:.2}: a \
                 full coordinator can exhaust the segments.</p>"
            );
        }
    }
    if a.sessions.is_empty() {
        return;
    }
    out.push_str("<h2>Coordinator sessions holding most segment backends</h2><table><tr>");
    for h in [
        "sess_id",
        "user",
        "application",
        "client",
        "state",
        "segment backends",
    ] {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr>");
    for s in &a.sessions {
        let who = &s.session;
        let application = match who.application_name.as_str() {
            "" => "<i>no application_name</i>".to_owned(),
            name => Name(name).to_string(),
        };
        let client = match who.client_addr.as_str() {
            "" => "local",
            addr => addr,
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{application}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&who.sess_id),
            Name(&who.usename),
            Esc(client),
            Esc(&who.state),
            s.segment_backends
        );
    }
    out.push_str("</table>");
}
