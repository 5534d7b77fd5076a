//! `top`'s table: one cluster's instances, lowest headroom first, cut to the
//! terminal's width, and the coordinator sessions holding most slots.

use crate::model::attribution::SessionIdentity;
use crate::model::figures::Slots;
use crate::model::view::{ClusterView, InstanceView};
use std::fmt::Write as _;

/// Coordinator sessions listed under each cluster's table.
const SESSIONS_SHOWN: usize = 5;

/// One column of the table: header, width, whether it gives way on a narrow
/// terminal, and the cell of an instance that was collected.
struct Column {
    header: &'static str,
    width: usize,
    /// Dropped first on narrow terminals, in this order (higher first).
    drop_rank: u8,
    cell: fn(&InstanceView) -> String,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "CONTENT",
        width: 7,
        drop_rank: 0,
        cell: |i| i.catalog.content.to_string(),
    },
    Column {
        header: "ROLE",
        width: 4,
        drop_rank: 0,
        cell: role,
    },
    Column {
        header: "HOST:PORT",
        width: 18,
        drop_rank: 1,
        cell: |i| format!("{}:{}", i.catalog.hostname, i.catalog.port),
    },
    Column {
        header: "USED/MAX",
        width: 9,
        drop_rank: 0,
        cell: |i| slots(i, |s| format!("{}/{}", s.used, s.max_connections)),
    },
    Column {
        header: "HEADROOM",
        width: 8,
        drop_rank: 0,
        cell: |i| slots(i, |s| s.headroom_ordinary.to_string()),
    },
    Column {
        header: "IN-TX",
        width: 5,
        drop_rank: 3,
        cell: |i| slots(i, |s| s.idle_in_transaction.to_string()),
    },
    Column {
        header: "PREP",
        width: 4,
        drop_rank: 2,
        cell: |i| {
            i.prepared
                .as_ref()
                .map_or(String::new(), |p| p.count.to_string())
        },
    },
    Column {
        header: "LOCKW",
        width: 5,
        drop_rank: 2,
        cell: |i| {
            i.locks
                .as_ref()
                .map_or(String::new(), |l| l.waiting.to_string())
        },
    },
    Column {
        header: "REPL",
        width: 5,
        drop_rank: 2,
        cell: |i| {
            i.replication.as_ref().map_or(String::new(), |r| {
                // A disagreement with the catalog is marked, like a switched role.
                let mark = if r.disagrees { "!" } else { "" };
                format!("{}{mark}", r.cell())
            })
        },
    },
    Column {
        header: "WAIT",
        width: 5,
        drop_rank: 3,
        cell: |i| {
            i.locks
                .as_ref()
                .map_or(String::new(), |l| seconds(l.longest_wait_seconds))
        },
    },
];

/// The last column takes what is left, or a line of its own below each
/// instance: who holds the slots.
const HOLDERS: &str = "TOP USERS / APPLICATIONS";
/// Narrower than this, the holders column is left out.
const HOLDERS_MIN: usize = 12;

fn role(i: &InstanceView) -> String {
    let c = &i.catalog;
    // A role other than the preferred one: a failover not rebalanced.
    let switched = if c.role == c.preferred_role { "" } else { "!" };
    format!("{}{switched}", c.role)
}

fn slots(i: &InstanceView, f: fn(&Slots) -> String) -> String {
    i.connections.as_ref().map_or(String::new(), f)
}

fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

fn holders(i: &InstanceView) -> String {
    let list = |v: &[(String, f64)]| {
        v.iter()
            .map(|(name, n)| format!("{} {n}", if name.is_empty() { "-" } else { name }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{} / {}", list(&i.top_users), list(&i.top_applications))
}

/// One cluster: a header line, the instances lowest headroom first (those
/// not collected on top), then the coordinator sessions holding most.
pub fn render(v: &ClusterView, width: usize) -> String {
    let mut out = String::new();
    let collected = v.instances.iter().filter(|i| i.up == Some(true)).count();
    let _ = writeln!(
        out,
        "{}",
        cut(
            &format!(
                "cluster {}  {}  {}/{} instances collected",
                v.cluster,
                v.family.as_deref().unwrap_or("family unknown"),
                collected,
                v.instances.len()
            ),
            width
        )
    );
    let columns = fitting(width);
    let used: usize = columns.iter().map(|c| c.width + 1).sum();
    let holders_width = width.saturating_sub(used).min(200);
    let show_holders = holders_width >= HOLDERS_MIN;
    let mut header: Vec<String> = columns.iter().map(|c| pad(c.header, c.width)).collect();
    if show_holders {
        header.push(cut(HOLDERS, holders_width));
    }
    let _ = writeln!(out, "{}", header.join(" ").trim_end());

    let mut instances: Vec<&InstanceView> = v.instances.iter().collect();
    instances.sort_by(|a, b| urgency(a).total_cmp(&urgency(b)));
    for i in instances {
        let line = if i.up == Some(true) {
            let mut cells: Vec<String> = columns
                .iter()
                .map(|c| pad(&cut(&(c.cell)(i), c.width), c.width))
                .collect();
            if show_holders {
                cells.push(cut(&holders(i), holders_width));
            } else {
                // No room beside the figures: who holds the slots goes below them.
                cells.push(format!("\n{:8}{}", "", holders(i)));
            }
            cells.join(" ")
        } else {
            let first: Vec<String> = columns
                .iter()
                .take_while(|c| c.header != "USED/MAX")
                .map(|c| pad(&cut(&(c.cell)(i), c.width), c.width))
                .collect();
            let why = i
                .error
                .as_ref()
                .map_or("not collected yet".to_owned(), |e| {
                    let code = e
                        .sqlstate
                        .as_deref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default();
                    format!("NOT COLLECTED: {}{code} {}", e.kind, e.message)
                });
            format!("{} {why}", first.join(" "))
        };
        for part in line.split('\n') {
            let _ = writeln!(out, "{}", cut(part.trim_end(), width));
        }
    }
    if let Some(queued) = queued_for_resource_group(v).filter(|n| *n > 0.0) {
        let line = format!(
            "{queued} coordinator sessions queued for a resource group: each holds a coordinator slot, no segment gangs"
        );
        let _ = writeln!(out, "{}", cut(&line, width));
    }
    if let Some(a) = &v.attribution {
        if !a.sessions.is_empty() {
            let _ = writeln!(
                out,
                "{}",
                cut("coordinator sessions holding most segment backends:", width)
            );
            for s in a.sessions.iter().take(SESSIONS_SHOWN) {
                let line = format!(
                    "  {} {} backends, {} old, from {}",
                    session_who(&s.session),
                    s.segment_backends,
                    seconds(s.session.age_seconds),
                    client_or_local(&s.session.client_addr),
                );
                let _ = writeln!(out, "{}", cut(&line, width));
            }
        }
        if let Some(ratio) = a.overcommit.as_ref().and_then(|o| o.ratio) {
            if ratio > 1.0 {
                let line = format!(
                    "coordinator slots / segment session capacity = {ratio:.2}: a full coordinator can exhaust the segments"
                );
                let _ = writeln!(out, "{}", cut(&line, width));
            }
        }
    }
    out.push('\n');
    out
}

/// Coordinator backends waiting for a resource group slot, when collected.
fn queued_for_resource_group(v: &ClusterView) -> Option<f64> {
    let coordinator = v.instances.iter().find(|i| i.catalog.content < 0)?;
    coordinator
        .waiting
        .iter()
        .find(|(reason, _)| reason == "resource_group")
        .map(|(_, n)| *n)
}

/// Sort key: instances not collected first, then by ordinary headroom.
fn urgency(i: &InstanceView) -> f64 {
    match (&i.up, &i.connections) {
        (Some(true), Some(s)) => s.headroom_ordinary,
        (Some(true), None) => f64::MAX,
        _ => f64::MIN,
    }
}

/// The columns that fit `width`, dropping the least needed first.
fn fitting(width: usize) -> Vec<&'static Column> {
    let mut columns: Vec<&Column> = COLUMNS.iter().collect();
    while columns.iter().map(|c| c.width + 1).sum::<usize>() > width {
        let Some(rank) = columns.iter().map(|c| c.drop_rank).max().filter(|r| *r > 0) else {
            break;
        };
        let at = columns
            .iter()
            .rposition(|c| c.drop_rank == rank)
            .expect("a column of that rank");
        columns.remove(at);
    }
    columns
}

fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

/// How `top` names a coordinator session: id, role, application (`-` when
/// none) and state.
pub(super) fn session_who(s: &SessionIdentity) -> String {
    let application = match s.application_name.as_str() {
        "" => "-",
        name => name,
    };
    format!("sess {} {} {application} {}", s.sess_id, s.usename, s.state)
}

/// A client address, or `local` for a Unix-socket session.
pub(super) fn client_or_local(client_addr: &str) -> &str {
    match client_addr {
        "" => "local",
        addr => addr,
    }
}

/// `s` cut to `width` characters, marking the cut.
pub(super) fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
    cut.push('~');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::top::UNLIMITED;

    #[test]
    fn a_session_reads_the_same_in_top_and_the_incidents() {
        let mut s = SessionIdentity {
            sess_id: "8812".into(),
            usename: "etl".into(),
            application_name: "loader".into(),
            client_addr: String::new(),
            state: "idle in transaction".into(),
            age_seconds: 1.0,
        };
        assert_eq!(session_who(&s), "sess 8812 etl loader idle in transaction");
        s.application_name.clear();
        assert_eq!(session_who(&s), "sess 8812 etl - idle in transaction");
        assert_eq!(client_or_local(""), "local");
        assert_eq!(client_or_local("10.1.2.3"), "10.1.2.3");
    }

    #[test]
    fn narrow_terminals_lose_columns_in_order_and_lines_fit() {
        let all: usize = COLUMNS.iter().map(|c| c.width + 1).sum();
        assert_eq!(fitting(200).len(), COLUMNS.len());
        assert!(all <= 80, "the full table must fit 80 columns: {all}");
        let narrow: Vec<&str> = fitting(50).iter().map(|c| c.header).collect();
        assert_eq!(narrow, ["CONTENT", "ROLE", "USED/MAX", "HEADROOM"]);
        assert_eq!(cut("abcdef", 4), "abc~");
        assert_eq!(cut("abc", 4), "abc");
    }

    fn view() -> ClusterView {
        use crate::model::view::{CatalogView, ErrorView};
        let catalog = |content: i16| CatalogView {
            content,
            dbid: content + 2,
            role: 'p',
            preferred_role: 'p',
            status: 'u',
            mode: 's',
            hostname: format!("sdw-with-a-rather-long-name-{content}"),
            address: "10.0.0.1".into(),
            port: 40000,
        };
        let up = InstanceView {
            catalog: catalog(0),
            up: Some(true),
            error: None,
            connections: Some(Slots {
                used: 745.0,
                max_connections: 750.0,
                superuser_reserved: 10.0,
                ..Slots::default()
            }),
            prepared: None,
            locks: None,
            replication: None,
            top_users: vec![("etl_loader_with_long_name".into(), 600.0)],
            top_applications: vec![("".into(), 600.0), ("psql".into(), 3.0)],
            backends: Vec::new(),
            waiting: Vec::new(),
            headroom_history: Vec::new(),
        };
        let down = InstanceView {
            catalog: catalog(1),
            up: Some(false),
            error: Some(ErrorView {
                kind: "timeout".into(),
                sqlstate: None,
                message: "no answer within 5s".into(),
            }),
            connections: None,
            top_users: Vec::new(),
            top_applications: Vec::new(),
            ..up.clone()
        };
        ClusterView {
            cluster: "edw".into(),
            family: Some("gp6".into()),
            version: None,
            round_finished_at: None,
            interval_seconds: 1.0,
            instances: vec![up, down],
            not_collected: Vec::new(),
            attribution: None,
        }
    }

    #[test]
    fn tables_fit_their_width_and_put_failures_first() {
        for width in [40, 80, 120] {
            let text = render(&view(), width);
            for line in text.lines() {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
            let first = text.lines().nth(2).unwrap();
            assert!(first.starts_with("1 "), "{width}: {text}");
        }
        let wide = render(&view(), UNLIMITED);
        assert!(
            wide.contains("NOT COLLECTED: timeout no answer within 5s"),
            "{wide}"
        );
        assert!(
            wide.contains("etl_loader_with_long_name 600 / - 600, psql 3"),
            "{wide}"
        );
        // 80 columns: the figures on one line, who holds them on the next.
        let narrow = render(&view(), 80);
        assert!(
            narrow.contains("\n        etl_loader_with_long_name 600"),
            "{narrow}"
        );
    }
}
