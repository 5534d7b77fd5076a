//! The line in each tile: the ordinary headroom of the last rounds against
//! time, 0 at the bottom and all ordinary slots at the top, with the recorded
//! episodes of the instance's content that overlap those rounds shaded from
//! start to end (or the last round).

use super::html::Esc;
use crate::model::incident::Incident;
use crate::model::time;
use crate::model::view::InstanceView;
use std::fmt::Write as _;

/// Drawing units; stretched to the tile's width (the stroke keeps its width).
/// `PAD` keeps a line at none or all slots off the frame.
const W: f64 = 200.0;
const H: f64 = 40.0;
const PAD: f64 = 2.0;

/// The SVG of the line and the caption under it.
pub fn headroom_line(i: &InstanceView, episodes: &[&Incident]) -> String {
    let h = &i.headroom_history;
    let n = h.len();
    let values: Vec<f64> = h.iter().map(|p| p[1]).collect();
    let slots = i
        .connections
        .as_ref()
        .map_or(0.0, |s| s.max_connections - s.superuser_reserved);
    let top = values.iter().copied().fold(slots.max(1.0), f64::max);
    let (t0, t1) = match (h.first(), h.last()) {
        (Some(a), Some(b)) => (a[0], b[0]),
        _ => (0.0, 0.0),
    };
    let x = |t: f64| if t1 > t0 { (t - t0) / (t1 - t0) * W } else { W };
    let y = |v: f64| H - PAD - v / top * (H - 2.0 * PAD);
    // An episode is shaded over its rounds at or below the threshold (to the
    // last round while it lasts), not the rounds above it that ended it.
    let below = |e: &Incident| match e.ended_at {
        Some(_) => e.last_below_at,
        None => t1,
    };
    let marked: Vec<&&Incident> = episodes
        .iter()
        .filter(|e| n > 0 && e.started_at <= t1 && below(e) >= t0)
        .collect();
    let k = marked.len();
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    let (label, caption) = match (values.first(), values.last()) {
        (Some(first), Some(last)) => {
            let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
            let rounds = format!("{n} round{}", plural(n));
            let incidents = format!("incident{}", plural(k));
            let mut label = format!(
                "Ordinary headroom went from {first} to {last} over the last {rounds} (lowest {lowest} of {top})"
            );
            let mut caption = format!("{rounds}: {first} → {last}, lowest {lowest}");
            if k > 0 {
                let _ = write!(label, "; {k} recorded {incidents} marked");
                let _ = write!(caption, " · {k} {incidents}");
            }
            (label, caption)
        }
        _ => {
            let none = "no headroom recorded yet".to_owned();
            (none.clone(), none)
        }
    };
    let mut svg = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" \
         data-points=\"{n}\" data-episodes=\"{k}\" aria-label=\"{0}\"><title>{0}</title>",
        Esc(&label)
    );
    for e in marked {
        let from = x(e.started_at.max(t0));
        let to = x(below(e).min(t1));
        // At least a sliver, so an episode of one round stays visible.
        let _ = write!(
            svg,
            "<rect class=\"episode\" data-incident=\"{}\" x=\"{:.1}\" y=\"0\" width=\"{:.1}\" \
             height=\"{H}\"><title>{}</title></rect>",
            Esc(&e.id),
            from.min(W - 2.0),
            (to - from).max(2.0),
            Esc(&episode_text(e))
        );
    }
    let points: Vec<String> = h
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p[0]), y(p[1])))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\"></polyline></svg><small class=\"wrap\">{}</small>",
        points.join(" "),
        Esc(&caption)
    );
    svg
}

/// An episode in one sentence (a tooltip: plain text, so times in UTC).
pub fn episode_text(e: &Incident) -> String {
    let c = &e.instance;
    let until = match e.ended_at {
        Some(_) => format!("to {}", time::readable(e.last_below_at)),
        None => "ongoing".to_owned(),
    };
    format!(
        "Incident on content {} (dbid {}) from {} {until}, lowest ordinary headroom {}",
        c.content,
        c.dbid,
        time::readable(e.started_at),
        e.lowest_headroom
    )
}
