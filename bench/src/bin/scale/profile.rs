//! Where the exporter's CPU goes: `perf record` (cpu-clock sampling with DWARF
//! call graphs) on the running exporter for a few rounds, then the flat
//! profile grouped into categories and the inclusive time of its hot paths.

use crate::procs::{output, Guard};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub seconds: u64,
    pub samples: u64,
    /// Share of samples by category (flat, self time), largest first.
    pub categories: Vec<(String, f64)>,
    /// Self time, top symbols.
    pub top_self: Vec<(f64, String)>,
    /// Inclusive time of the exporter's hot paths (from call graphs).
    pub hot_paths: Vec<(String, f64)>,
    /// Where the full reports were written.
    pub report_file: String,
}

pub async fn record(pid: i32, seconds: u64, out: &Path) -> Result<Profile> {
    let data = std::env::temp_dir().join(format!("gpse_bench-{}-perf.data", std::process::id()));
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-q", "-e", "cpu-clock", "-F", "999"])
        .args(["--call-graph", "dwarf,16384"])
        .arg("-p")
        .arg(pid.to_string())
        .arg("-o")
        .arg(&data)
        .arg("--")
        .arg("sleep")
        .arg(seconds.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn(&mut cmd, "perf record (Debian: linux-perf)")?;
    let recorded = guard.wait(Duration::from_secs(seconds + 60)).await;
    drop(guard);
    if !matches!(&recorded, Ok(s) if s.success()) {
        let _ = std::fs::remove_file(&data);
        bail!(
            "perf record failed ({:?})",
            recorded.map_err(|e| e.to_string())
        );
    }
    let report = |children: bool| -> Result<String> {
        let mut c = Command::new("perf");
        c.args(["report", "--stdio", "-g", "none", "--sort", "symbol"])
            .arg(if children {
                "--children"
            } else {
                "--no-children"
            })
            .args(["--percent-limit", "0.2", "-i"])
            .arg(&data);
        output(&mut c)
    };
    let flat = tidy(&report(false).context("perf report")?);
    let inclusive = tidy(&report(true).context("perf report --children")?);
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(data.with_extension("data.old"));
    std::fs::write(
        out,
        format!(
            "# perf record -e cpu-clock -F 999 --call-graph dwarf -p <exporter> -- sleep {seconds}\n\n\
             ## Self time by symbol\n\n{flat}\n\n## Inclusive time (children) by symbol\n\n{inclusive}\n"
        ),
    )
    .with_context(|| format!("writing {}", out.display()))?;
    let samples = flat
        .lines()
        .find_map(|l| {
            let l = l.strip_prefix("# Samples: ")?;
            let n = l.split_whitespace().next()?;
            parse_count(n)
        })
        .unwrap_or(0);
    let mut self_rows = rows(&flat, false);
    self_rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut categories: Vec<(String, f64)> = Vec::new();
    let mut listed = 0.0;
    for (pct, sym) in &self_rows {
        listed += pct;
        let cat = category(sym).to_owned();
        match categories.iter_mut().find(|(c, _)| *c == cat) {
            Some((_, v)) => *v += pct,
            None => categories.push((cat, *pct)),
        }
    }
    categories.push((
        "(symbols under 0.2% each)".into(),
        (100.0 - listed).max(0.0),
    ));
    categories.sort_by(|a, b| b.1.total_cmp(&a.1));
    let inclusive_rows = rows(&inclusive, true);
    let hot_paths = HOT_PATHS
        .iter()
        .map(|(label, pattern)| {
            let pct = inclusive_rows
                .iter()
                .filter(|(_, s)| s.contains(pattern))
                .map(|(p, _)| *p)
                .fold(0.0, f64::max);
            ((*label).to_owned(), pct)
        })
        .collect();
    Ok(Profile {
        seconds,
        samples,
        categories,
        top_self: self_rows.into_iter().take(25).collect(),
        hot_paths,
        report_file: out.display().to_string(),
    })
}

/// Hot paths by inclusive time: a label and a piece of the function's symbol.
const HOT_PATHS: &[(&str, &str)] = &[
    (
        "collection tasks: checkout, query, receive and decode rows (`collect::statement::run`)",
        "collect::statement::run",
    ),
    (
        "- receive rows (`tokio_postgres` `RowStream::poll_next`)",
        "RowStream as futures_core::stream::Stream>::poll_next",
    ),
    (
        "- decode rows (`statement::decode_row`)",
        "statement::decode_row",
    ),
    (
        "connection tasks: socket I/O, protocol parsing (`tokio_postgres` `Connection::poll`)",
        "tokio_postgres::connection::Connection<S,T> as core::future::future::Future>::poll",
    ),
    (
        "render samples after the round (`Runner::render`)",
        "round::Runner>::render",
    ),
    (
        "- label and value formatting (`metrics::Writer::sample`)",
        "metrics::Writer::sample",
    ),
    (
        "encode and gzip the body (`snapshot::Snapshot::publish`)",
        "snapshot::Snapshot::publish",
    ),
    (
        "- `metrics::Writer::encode_shared`",
        "metrics::Writer::encode_shared",
    ),
    ("serve /metrics (`web::metrics`)", "web::metrics"),
    (
        "tokio parking and waking (`Context::park`, either runtime)",
        "Context::park",
    ),
];

/// perf pads every line to its longest symbol: trim, and cut very long
/// (generic) symbol names.
fn tidy(report: &str) -> String {
    report
        .lines()
        .map(|l| {
            let l = l.trim_end();
            let l = l.strip_suffix("-      -").map_or(l, str::trim_end);
            match l.char_indices().nth(240) {
                Some((i, _)) => format!("{}...", &l[..i]),
                None => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_count(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    Some((num.parse::<f64>().ok()? * mult) as u64)
}

/// `(percent, "[k] symbol")` rows of a `perf report --stdio` listing; with
/// `--children` the first column (inclusive) is taken.
fn rows(text: &str, children: bool) -> Vec<(f64, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let first: f64 = words.next()?.strip_suffix('%')?.parse().ok()?;
            if children {
                words.next()?.strip_suffix('%')?;
            }
            let mut rest: Vec<&str> = words.collect();
            // Trailing IPC columns ("-  -") of newer perf versions.
            while rest.last() == Some(&"-") {
                rest.pop();
            }
            Some((first, rest.join(" ")))
        })
        .collect()
}

/// The category of a symbol of the flat profile.
fn category(sym: &str) -> &'static str {
    let has = |needles: &[&str]| needles.iter().any(|n| sym.contains(n));
    if sym.starts_with("[k]") && has(&["clear_page", "page_fault", "do_anonymous", "alloc_pages"]) {
        "kernel: page faults on fresh memory (large per-round buffers)"
    } else if sym.starts_with("[k]")
        && has(&[
            "tcp", "sock", "skb", "copy_", "ip_", "net_", "loopback", "__dev", "inet",
        ])
    {
        "kernel: socket I/O"
    } else if sym.starts_with("[k]") {
        "kernel: scheduling, futex, epoll, other syscalls"
    } else if has(&[
        "decode_row",
        "LossyText",
        "tokio_postgres::row",
        "postgres_types",
        "message::backend",
        "FromSql",
        "from_utf8",
        "DataRow",
    ]) {
        "decode rows"
    } else if has(&["Snapshot::encode", "Writer::encode", "Writer::merge"]) {
        "encode/merge the exposition"
    } else if has(&[
        "Writer::sample",
        "escape_label_value",
        "render_labels",
        "write_instance",
        "::render",
        "collect::",
        "write_value",
        "core::fmt",
        "float_to_decimal",
        "flt2dec",
        "fmt::num",
        "labels_of",
    ]) {
        "render samples (label strings, number formatting)"
    } else if has(&["hyper", "axum", "tower", "http::", "prometheus::", "procfs"]) {
        "HTTP serving (hyper/axum, process metrics)"
    } else if has(&["tokio_postgres", "postgres_protocol", "deadpool"]) {
        "postgres client (protocol, statement cache, pool)"
    } else if has(&[
        "tokio::",
        "mio::",
        "futures",
        "parking_lot",
        "std::sys",
        "std::thread",
        "syscall",
        "epoll",
        "pthread",
        "__lll_",
        "futex",
    ]) {
        "tokio runtime and threads (scheduling, wakers, timers, locks)"
    } else if has(&[
        "malloc",
        "free",
        "realloc",
        "_int_",
        "calloc",
        "__rust_alloc",
        "__rust_dealloc",
        "alloc::",
        "tcache",
    ]) {
        "allocator (malloc/free)"
    } else if has(&["memcpy", "memmove", "memset", "memchr", "memcmp", "strlen"]) {
        "libc memcpy/memcmp"
    } else if has(&["tracing"]) {
        "logging"
    } else if has(&["greenplum_segment_exporter"]) {
        "exporter logic (rounds, targets, jobs)"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_perf_rows() {
        let flat = "# Samples: 12K of event 'cpu-clock'\n#\n    12.50%  [k] finish_task_switch  -  -\n     3.25%  [.] greenplum_segment_exporter::collect::statement::decode_row\n";
        let r = rows(flat, false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0, 3.25);
        assert_eq!(r[0].1, "[k] finish_task_switch");
        assert_eq!(category(&r[0].1), category("[k] x"));
        assert_eq!(category(&r[1].1), "decode rows");
        let inc = "    45.00%     0.10%  [.] tokio::runtime::task::raw::poll\n";
        assert_eq!(rows(inc, true)[0].0, 45.0);
        assert_eq!(parse_count("12K"), Some(12000));
    }
}
