//! The tables, the targets and the JSON file.

use crate::ours::Run;
use crate::peer::PeerRun;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mb: u64,
    pub mem_available_mb: u64,
    pub kernel: String,
    pub loadavg_start: String,
    pub loadavg_end: String,
    /// Where the servers and the clients ran (`--shared-cpus`).
    pub cpus: String,
}

impl Machine {
    pub fn read() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kb| kb / 1024)
        };
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                .unwrap_or_default(),
            mem_total_mb: mem("MemTotal:"),
            mem_available_mb: mem("MemAvailable:"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            loadavg_start: loadavg(),
            cpus: String::new(),
            loadavg_end: String::new(),
        }
    }
}

pub fn loadavg() -> String {
    read_trim("/proc/loadavg")
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[derive(Clone, Debug, Serialize)]
pub struct Exporter {
    pub path: String,
    pub version: String,
    pub modified: String,
    pub git: String,
}

impl Exporter {
    pub fn read(path: &std::path::Path) -> Exporter {
        let run = |cmd: &mut std::process::Command| {
            cmd.output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let dir = path.parent().unwrap_or(path);
        Exporter {
            path: path.display().to_string(),
            version: run(std::process::Command::new(path).arg("--version")),
            modified: run(std::process::Command::new("date")
                .arg("-u")
                .arg("+%Y-%m-%dT%H:%M:%SZ")
                .arg("-r")
                .arg(path)),
            git: run(std::process::Command::new("git")
                .args(["describe", "--always", "--dirty"])
                .current_dir(dir)),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub goal: String,
    pub measured: String,
    /// `None` when the runs needed were not made.
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    /// The exporter measured: `--version`, binary modification time, and the
    /// checkout's `git describe --always --dirty` when the run started.
    pub exporter: Exporter,
    pub command: Vec<String>,
    pub machine: Machine,
    pub family: String,
    pub servers: usize,
    pub seconds: f64,
    pub ours: Vec<Run>,
    pub peer: Vec<PeerRun>,
    pub targets: Vec<Target>,
    /// Steps that failed; the others ran.
    pub errors: Vec<String>,
}

pub fn targets(ours: &[Run], peer: &[PeerRun]) -> Vec<Target> {
    let mut t = Vec::new();
    let at = |n: usize| ours.iter().find(|r| r.n == n);
    let list = |f: &dyn Fn(&Run) -> String| {
        ours.iter()
            .map(|r| format!("N={}: {}", r.n, f(r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ratio = |r: &Run| {
        r.floor("select1")
            .map(|f| r.round_ms.p99 / f.round_ms.p99)
            .unwrap_or(f64::NAN)
    };
    t.push(match at(1024) {
        Some(r) => Target {
            goal: "N=1024: round p99 within 3x the SELECT 1 floor p99".into(),
            measured: format!(
                "{:.1} ms / {:.1} ms = {:.1}x (all: {})",
                r.round_ms.p99,
                r.floor("select1").map_or(f64::NAN, |f| f.round_ms.p99),
                ratio(r),
                list(&|r| format!("{:.1}x", ratio(r)))
            ),
            met: Some(ratio(r) <= 3.0),
        },
        None => missing("N=1024: round p99 within 3x the SELECT 1 floor p99"),
    });
    t.push(all(
        ours,
        "exporter CPU under 20 us per instance per round (scheduler ns counters; /proc ticks in the table)",
        &|r| format!("{:.1}", r.cpu_us_per_instance_round_sched),
        &|r| r.cpu_us_per_instance_round_sched < 20.0,
    ));
    t.push(all(
        ours,
        "peak RSS under 40 MB",
        &|r| format!("{:.1} MB", r.rss_peak_mb),
        &|r| r.rss_peak_mb < 40.0,
    ));
    t.push(all(
        ours,
        "/metrics p99 under 10 ms with 50 concurrent clients (no gzip | gzip asked)",
        &|r| {
            r.loads
                .iter()
                .map(|l| format!("{:.1}", l.p99_ms))
                .collect::<Vec<_>>()
                .join(" | ")
                + " ms"
        },
        &|r| !r.loads.is_empty() && r.loads.iter().all(|l| l.p99_ms < 10.0 && l.errors == 0),
    ));
    t.push(all(
        ours,
        "0 new connections per round (pg_stat_database.sessions)",
        &|r| format!("{}", r.db.sessions),
        &|r| r.db.sessions == 0,
    ));
    t.push(all(
        ours,
        "1 statement per instance per round (pg_stat_statements calls)",
        &|r| format!("{:.4}", r.statements_per_instance_round),
        &|r| (r.statements_per_instance_round - 1.0).abs() < 1e-9,
    ));
    let cheapest_peer = peer.iter().min_by(|a, b| {
        a.cpu_us_per_instance_scrape_sched
            .total_cmp(&b.cpu_us_per_instance_scrape_sched)
    });
    t.push(match cheapest_peer {
        Some(p) if !ours.is_empty() => {
            let x = |o: &Run| p.cpu_us_per_instance_scrape_sched / o.cpu_us_per_instance_round_sched;
            Target {
                goal: "at least 10x less exporter CPU per instance than postgres_exporter (its cheaper variant)".into(),
                measured: format!(
                    "postgres_exporter ({}) {:.0} us per instance per scrape; ours {}",
                    p.variant,
                    p.cpu_us_per_instance_scrape_sched,
                    list(&|o| format!("{:.1} us = {:.0}x less", o.cpu_us_per_instance_round_sched, x(o)))
                ),
                met: Some(ours.iter().all(|o| x(o) >= 10.0)),
            }
        }
        _ => missing("at least 10x less exporter CPU per instance than postgres_exporter"),
    });
    t.push(match peer.first() {
        Some(_) if !ours.is_empty() => {
            let theirs = peer
                .iter()
                .map(|p| format!("{} {:.2}", p.variant, p.new_connections_per_instance_scrape))
                .collect::<Vec<_>>()
                .join(", ");
            Target {
                goal: "no connection churn (new connections per instance per round/scrape), unlike postgres_exporter".into(),
                measured: format!("ours: {}; postgres_exporter: {theirs}", list(&|r| format!("{:.3}", r.new_connections_per_instance_round))),
                met: Some(ours.iter().all(|r| r.db.sessions == 0)),
            }
        }
        _ => missing("no connection churn, unlike postgres_exporter"),
    });
    t
}

fn missing(goal: &str) -> Target {
    Target {
        goal: goal.into(),
        measured: "not measured".into(),
        met: None,
    }
}

fn all(
    ours: &[Run],
    goal: &str,
    show: &dyn Fn(&Run) -> String,
    ok: &dyn Fn(&Run) -> bool,
) -> Target {
    if ours.is_empty() {
        return missing(goal);
    }
    let measured = ours
        .iter()
        .map(|r| format!("N={}: {}{}", r.n, show(r), if ok(r) { "" } else { " (no)" }))
        .collect::<Vec<_>>()
        .join(", ");
    Target {
        goal: goal.into(),
        measured,
        met: Some(ours.iter().all(ok)),
    }
}

/// The tables as Markdown (also printed).
pub fn tables(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Exporter: {} (binary of {}, checkout {}), run {}\n",
        r.exporter.version, r.exporter.modified, r.exporter.git, r.date
    );
    let _ = writeln!(
        s,
        "Machine: {} x {}, {} MB RAM ({} MB available at start), kernel {}; load average at start {}, at end {}; {}\n",
        r.machine.nproc,
        r.machine.cpu_model,
        r.machine.mem_total_mb,
        r.machine.mem_available_mb,
        r.machine.kernel,
        r.machine.loadavg_start,
        r.machine.loadavg_end,
        r.machine.cpus
    );
    let _ = writeln!(s, "### Rounds (ms)\n");
    let _ = writeln!(
        s,
        "| N | instances | servers | interval s | rounds | round p50 | round p99 | SELECT 1 floor p50 | SELECT 1 floor p99 | statement floor p50 | statement floor p99 | round p99 / SELECT 1 floor p99 | round p99 / statement floor p99 |"
    );
    let _ = writeln!(
        s,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for o in &r.ours {
        let f1 = o.floor("select1");
        let fs = o.floor("exporter_statement");
        let p = |f: Option<&crate::floor::Floor>, p99: bool| {
            f.map_or("-".into(), |f| {
                format!("{:.1}", if p99 { f.round_ms.p99 } else { f.round_ms.p50 })
            })
        };
        let ratio = |f: Option<&crate::floor::Floor>| {
            f.map_or("-".into(), |f| {
                format!("{:.1}x", o.round_ms.p99 / f.round_ms.p99)
            })
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {}{} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
            o.n,
            o.n + 1,
            o.servers,
            o.interval_s,
            o.rounds,
            if o.missed_samples > 0 {
                format!(" ({} unsampled)", o.missed_samples)
            } else {
                String::new()
            },
            o.round_ms.p50,
            o.round_ms.p99,
            p(f1, false),
            p(f1, true),
            p(fs, false),
            p(fs, true),
            ratio(f1),
            ratio(fs)
        );
    }
    if r.ours.iter().any(|o| !o.collector_costs.is_empty()) {
        let names: Vec<String> = r
            .ours
            .iter()
            .flat_map(|o| o.collector_costs.iter().map(|c| c.collector.clone()))
            .fold(Vec::new(), |mut v, n| {
                if !v.contains(&n) {
                    v.push(n);
                }
                v
            });
        let _ = writeln!(
            s,
            "\n### Server time per execution on one server (ms, median of 10; N/servers sessions open there)\n"
        );
        let _ = writeln!(s, "| N | sessions on the server | {} |", names.join(" | "));
        let _ = writeln!(s, "|---:|---:|{}", "---:|".repeat(names.len()));
        for o in &r.ours {
            let cols: Vec<String> = names
                .iter()
                .map(|n| {
                    o.collector_costs
                        .iter()
                        .find(|c| &c.collector == n)
                        .map_or("-".into(), |c| format!("{:.2} ({} rows)", c.ms.p50, c.rows))
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                o.n,
                o.n.div_ceil(r.servers),
                cols.join(" | ")
            );
        }
    }
    let _ = writeln!(s, "\n### Cost per instance per round\n");
    let _ = writeln!(
        s,
        "| N | exporter CPU us (/proc ticks) | exporter CPU us (sched ns) | tick resolution us | floor client CPU us (SELECT 1, statement) | peak RSS MB | RSS MB after warm-up | peak RSS KB per instance | floor client RSS KB per connection | statements | transactions | new connections | distinct statements |"
    );
    let _ = writeln!(
        s,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for o in &r.ours {
        let fc = o
            .floors
            .iter()
            .map(|f| format!("{:.1}", f.client_cpu_us_per_instance_round))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.4} | {:.4} | {:.4} | {} |",
            o.n,
            o.cpu_us_per_instance_round,
            o.cpu_us_per_instance_round_sched,
            o.cpu_resolution_us,
            fc,
            o.rss_peak_mb,
            o.rss_after_warmup_mb,
            o.rss_peak_mb * 1024.0 / (o.n + 1) as f64,
            o.floors.first().map_or(0.0, |f| f.client_rss_kb_per_connection),
            o.statements_per_instance_round,
            o.xacts_per_instance_round,
            o.new_connections_per_instance_round,
            o.db.distinct.len()
        );
    }
    let _ = writeln!(
        s,
        "\n### /metrics (wrk, {} connections)\n",
        r.ours
            .first()
            .and_then(|o| o.loads.first())
            .map_or(50, |l| l.connections)
    );
    let _ = writeln!(
        s,
        "| N | body KB | with Accept-Encoding: gzip KB | gzip? | one GET ms | p50 ms | p99 ms | req/s | errors | gzip asked: p50 ms | p99 ms | req/s | errors | exporter CPU us per request |"
    );
    let _ = writeln!(
        s,
        "|---:|---:|---:|:--:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for o in &r.ours {
        let l = |gz: bool| o.loads.iter().find(|l| l.gzip == gz);
        let cols = |x: Option<&crate::wrk::Load>| {
            x.map_or("- | - | - | -".into(), |l| {
                format!(
                    "{:.2} | {:.2} | {:.0} | {}",
                    l.p50_ms, l.p99_ms, l.requests_per_second, l.errors
                )
            })
        };
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {} | {:.1} | {} | {} | {} |",
            o.n,
            o.body_bytes as f64 / 1024.0,
            o.gzip_body_bytes as f64 / 1024.0,
            if o.gzip_encoded {
                "yes"
            } else {
                "no (identical)"
            },
            o.metrics_get_ms,
            cols(l(false)),
            cols(l(true)),
            o.loads
                .iter()
                .map(|l| format!("{:.0}", l.exporter_cpu_us_per_request))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    let _ = writeln!(
        s,
        "\n### Body composition, and what gzip once per round would give (flate2)\n"
    );
    let _ = writeln!(
        s,
        "| N | samples | samples per instance | bytes per sample | gzip -1 KB | ms | gzip -6 KB | ms |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in &r.ours {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            o.n,
            o.body_samples,
            o.body_samples as f64 / (o.n + 1) as f64,
            o.body_bytes as f64 / o.body_samples.max(1) as f64,
            o.gzip1_bytes as f64 / 1024.0,
            o.gzip1_ms,
            o.gzip6_bytes as f64 / 1024.0,
            o.gzip6_ms
        );
    }
    if !r.peer.is_empty() {
        let _ = writeln!(s, "\n### postgres_exporter 0.11.1 (per instance scraped)\n");
        let _ = writeln!(
            s,
            "| variant | instances | interval s | scrapes | scrape p50 ms | scrape p99 ms | CPU us per instance per scrape (/proc ticks) | (sched ns) | peak RSS MB | statements per instance per scrape | transactions | new connections per instance per scrape | body KB | instances in body |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for p in &r.peer {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
                p.variant,
                p.instances,
                p.interval_s,
                p.scrapes,
                p.scrape_ms.p50,
                p.scrape_ms.p99,
                p.cpu_us_per_instance_scrape,
                p.cpu_us_per_instance_scrape_sched,
                p.rss_peak_mb,
                p.statements_per_instance_scrape,
                p.xacts_per_instance_scrape,
                p.new_connections_per_instance_scrape,
                p.body_bytes as f64 / 1024.0,
                p.up_instances
            );
        }
    }
    if let Some((n, p)) = r
        .ours
        .iter()
        .find_map(|o| o.profile.as_ref().map(|p| (o.n, p)))
    {
        let _ = writeln!(
            s,
            "\n### Profile at N={n} ({} s, {} samples of the exporter; full report in {})\n",
            p.seconds, p.samples, p.report_file
        );
        let _ = writeln!(
            s,
            "| hot path (inclusive) | share of the exporter's CPU |\n|---|---:|"
        );
        for (label, v) in &p.hot_paths {
            let _ = writeln!(s, "| {label} | {v:.1}% |");
        }
        let _ = writeln!(s, "\n| category (self time) | share |\n|---|---:|");
        for (c, v) in &p.categories {
            let _ = writeln!(s, "| {c} | {v:.1}% |");
        }
        let _ = writeln!(s, "\n| top symbols (self) | share |\n|---|---:|");
        for (v, sym) in p.top_self.iter().take(15) {
            let _ = writeln!(s, "| `{}` | {v:.1}% |", shorten(sym));
        }
    }
    for o in &r.ours {
        if o.statement_matches_binary == Some(false) {
            let _ = writeln!(
                s,
                "\nWARNING: N={}: the statement seen on the segments differs from the source this benchmark was built with: rebuild the release exporter.",
                o.n
            );
        }
    }
    let _ = writeln!(s, "\n### Targets\n");
    let _ = writeln!(s, "| target | measured | met |\n|---|---|:--:|");
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "not measured",
        };
        let _ = writeln!(s, "| {} | {} | {met} |", t.goal, t.measured);
    }
    if !r.errors.is_empty() {
        let _ = writeln!(s, "\n### Errors\n");
        for e in &r.errors {
            let _ = writeln!(s, "- {e}");
        }
    }
    s
}

fn shorten(sym: &str) -> String {
    let s = sym.replace('|', "\\|");
    if s.len() > 110 {
        let mut cut = 110;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}
