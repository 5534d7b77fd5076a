//! One instance's tile: its level by the share of ordinary slots left, where
//! it is, its figures or why it was not collected, who holds its slots, why
//! its backends wait, and its headroom line.

use super::html::{Esc, Name};
use super::line::headroom_line;
use crate::model::incident::Incident;
use crate::model::view::InstanceView;
use std::fmt::Write as _;

/// ok | low | alert | down, from what `/metrics` calls headroom_ordinary.
fn level(i: &InstanceView) -> &'static str {
    let Some(s) = i.connections.as_ref().filter(|_| i.up == Some(true)) else {
        return "down";
    };
    let slots = s.max_connections - s.superuser_reserved;
    let share = if slots > 0.0 {
        s.headroom_ordinary / slots
    } else {
        0.0
    };
    match share {
        s if s < 0.10 => "alert",
        s if s < 0.25 => "low",
        _ => "ok",
    }
}

fn label(level: &str) -> &'static str {
    match level {
        "ok" => "OK",
        "low" => "LOW",
        "alert" => "FULL",
        _ => "DOWN",
    }
}

/// What a segment's backends without an application_name are.
const EXECUTORS: &str = "<abbr title=\"Query executors: backends of coordinator sessions on this \
     segment. They carry no application_name of their own; the sessions table below names the \
     sessions and their applications.\">query executors</abbr>";

pub fn tile(i: &InstanceView, episodes: &[&Incident]) -> String {
    let c = &i.catalog;
    let lv = level(i);
    let name = match c.content {
        n if n < 0 => "coordinator".to_owned(),
        n => format!("seg {n}"),
    };
    let mut t = format!(
        "<div class=\"tile {lv}\" data-content=\"{}\" data-dbid=\"{}\" data-level=\"{lv}\" \
         role=\"group\" aria-label=\"content {} {}\"><div class=\"head\"><span>{name}</span>\
         <span>{}</span></div><small>dbid {} · {}:{}</small>",
        c.content,
        c.dbid,
        c.content,
        label(lv),
        label(lv),
        c.dbid,
        Esc(&c.hostname),
        c.port
    );
    if c.role != c.preferred_role {
        let _ = write!(
            t,
            "<span class=\"badge\">role {}, preferred {}</span>",
            c.role, c.preferred_role
        );
    }
    match (lv, &i.error) {
        ("down", Some(e)) => {
            // What `top` prints for it: kind, SQLSTATE, the message.
            let code = e
                .sqlstate
                .as_deref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            let _ = write!(
                t,
                "<small class=\"wrap why\" title=\"{0}\">not collected: {1}{2}: {0}</small>",
                Esc(&e.message),
                Esc(&e.kind),
                Esc(&code)
            );
        }
        ("down", None) => t.push_str("<small>not collected yet</small>"),
        _ => {
            if let Some(s) = &i.connections {
                let _ = write!(
                    t,
                    "<small>{}/{} used · {} free</small>",
                    s.used, s.max_connections, s.headroom_ordinary
                );
            }
            replication(&mut t, i);
            let segment = c.content >= 0;
            holders(&mut t, "users", &i.top_users, segment);
            holders(&mut t, "applications", &i.top_applications, segment);
        }
    }
    waits(&mut t, i);
    t.push_str(&headroom_line(i, episodes));
    t.push_str("</div>");
    t
}

/// A line of the roles or applications holding most slots, each name cut with
/// a tooltip; the whole line as the line's tooltip.
fn holders(t: &mut String, what: &str, list: &[(String, f64)], segment: bool) {
    if list.is_empty() {
        return;
    }
    let plain: Vec<String> = list
        .iter()
        .map(|(name, n)| format!("{} {n}", unnamed(name, segment).0))
        .collect();
    let shown: Vec<String> = list
        .iter()
        .map(|(name, n)| match unnamed(name, segment) {
            (_, Some(html)) => format!("{html} {n}"),
            (name, None) => format!("{} {n}", Name(&name)),
        })
        .collect();
    let _ = write!(
        t,
        "<small class=\"holders\" title=\"{what}: {}\">{what}: {}</small>",
        Esc(&plain.join(", ")),
        shown.join(", ")
    );
}

/// A name as text, and as HTML when it is none: a segment's backends without
/// an application_name are query executors.
fn unnamed(name: &str, segment: bool) -> (String, Option<&'static str>) {
    match (name.is_empty(), segment) {
        (false, _) => (name.to_owned(), None),
        (true, true) => ("query executors".to_owned(), Some(EXECUTORS)),
        (true, false) => ("no application_name".to_owned(), None),
    }
}

/// Backends waiting, by reason, when any. Coordinator sessions queued for a
/// resource group get a sentence of their own: they hold coordinator slots
/// while holding no segment gang, so segment headroom does not show them.
fn waits(t: &mut String, i: &InstanceView) {
    let coordinator = i.catalog.content < 0;
    let queued = |r: &str| coordinator && r == "resource_group";
    let n_queued: f64 = i
        .waiting
        .iter()
        .filter(|(r, _)| queued(r))
        .map(|(_, n)| *n)
        .sum();
    if n_queued > 0.0 {
        let s = if n_queued == 1.0 { "" } else { "s" };
        let _ = write!(
            t,
            "<small class=\"wrap\">{n_queued} session{s} queued for a resource group: each holds \
             a coordinator slot, no segment gangs</small>"
        );
    }
    let others: Vec<String> = i
        .waiting
        .iter()
        .filter(|(r, n)| *n > 0.0 && !queued(r))
        .map(|(r, n)| format!("{} {n}", r.replace('_', " ")))
        .collect();
    if !others.is_empty() {
        let text = format!("waiting: {}", others.join(", "));
        let _ = write!(t, "<small title=\"{0}\">{0}</small>", Esc(&text));
    }
}

/// The walsender to the mirror, where the catalog lists one or a walsender
/// runs: `mirror: streaming sync, replay 12.0 MiB behind (catalog u/s)`,
/// marked when the two disagree.
fn replication(t: &mut String, i: &InstanceView) {
    let Some(r) = i.replication.as_ref() else {
        return;
    };
    if r.catalog_mirror.is_none() && r.state == "none" {
        return;
    }
    let what = if i.catalog.content < 0 {
        "standby"
    } else {
        "mirror"
    };
    let text = format!("{what}: {}", r.summary());
    let class = if r.disagrees { " class=\"why\"" } else { "" };
    let note = if r.disagrees {
        " · catalog and primary disagree"
    } else {
        ""
    };
    let _ = write!(
        t,
        "<small{class} title=\"{0}\">{0}{note}</small>",
        Esc(&text)
    );
}
