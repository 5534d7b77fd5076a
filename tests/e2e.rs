//! End to end: the release exporter against an emulated cluster, a real Prometheus
//! scraping it every second with deploy/prometheus/greenplum-segments.rules.yml
//! loaded, and a real Alertmanager. A full segment must page for exactly that
//! segment and resolve when its clients leave; every dashboard query must answer
//! with data once the situations it shows exist.

mod monitoring;
mod support;

use anyhow::{bail, ensure, Context, Result};
use gpemu_harness::{ClusterSpec, Dispatch, Family, SessionState};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::{config_for, free_port, http_get};

const EXHAUSTED: &str = "GreenplumConnectionHeadroomExhausted";
/// The alert's `for:` in the rules file.
const EXHAUSTED_FOR: Duration = Duration::from_secs(30);
/// Generous deadlines: the machine may be busy with other test binaries.
const START_DEADLINE: Duration = Duration::from_secs(60);
const ALERT_DEADLINE: Duration = Duration::from_secs(120);

/// A server this test started; killed and reaped on drop, also after a failed assertion.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Daemon {
    fn start(name: &'static str, program: &Path, args: &[String], dir: &Path) -> Result<Daemon> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let port = args
            .iter()
            .find_map(|a| a.strip_prefix("--web.listen-address=127.0.0.1:"))
            .context("no --web.listen-address")?
            .parse()?;
        Ok(Daemon {
            name,
            child,
            log,
            port,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `path` answers 200, failing early if the process exited.
    async fn wait_ready(&mut self, path: &str) -> Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}):\n{}", self.name, self.log());
            }
            if matches!(http_get(self.port, path).await, Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} not ready on {path}:\n{}", self.name, self.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn get_json(&self, path: &str) -> Result<(u16, Value)> {
        let (status, body) = http_get(self.port, path).await?;
        let json = serde_json::from_str(&body)
            .with_context(|| format!("{} {path} answered {status}: {body}", self.name))?;
        Ok((status, json))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release binary `scripts/test` builds; refuses one older than the sources.
fn release_exporter() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/greenplum_segment_exporter");
    let build = "cargo build --release --locked --bin greenplum_segment_exporter";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `{build}` first (scripts/test does)",
                bin.display()
            )
        });
    let mut sources = vec![root.join("Cargo.lock"), root.join("Cargo.toml")];
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                sources.push(path);
            }
        }
    }
    for src in sources {
        let changed = std::fs::metadata(&src).and_then(|m| m.modified());
        if changed.is_ok_and(|t: SystemTime| t > built) {
            panic!(
                "{} is older than {}: run `{build}` (scripts/test does)",
                bin.display(),
                src.display()
            );
        }
    }
    bin
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query; `Err` when Prometheus refuses the expression.
async fn query(prom: &Daemon, expr: &str) -> Result<Vec<Value>> {
    let (status, json) = prom
        .get_json(&format!("/api/v1/query?query={}", encode(expr)))
        .await?;
    ensure!(
        status == 200 && json["status"] == "success",
        "query {expr} failed ({status}): {json}"
    );
    Ok(json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Polls `probe` every 500 ms until it yields a value.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Active alerts named `name` in Alertmanager.
async fn alertmanager_alerts(am: &Daemon, name: &str) -> Result<Vec<Value>> {
    let (status, json) = am.get_json("/api/v2/alerts").await?;
    ensure!(status == 200, "alertmanager answered {status}: {json}");
    Ok(json
        .as_array()
        .context("alert list")?
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .cloned()
        .collect())
}

/// Alerts named `name` in Prometheus (pending or firing).
async fn prometheus_alerts(prom: &Daemon, name: &str) -> Result<Vec<Value>> {
    let (_, json) = prom.get_json("/api/v1/alerts").await?;
    Ok(json["data"]["alerts"]
        .as_array()
        .context("alerts")?
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .cloned()
        .collect())
}

fn prometheus_config(exporter_port: u16, am_port: u16) -> String {
    let rules = monitoring::repo_path(monitoring::RULES_FILE);
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
         scrape_configs:\n  - job_name: greenplum_segment_exporter\n    static_configs:\n\
         \x20       - targets: ['127.0.0.1:{exporter_port}']\n",
        rules.display()
    )
}

/// The application of the idle distributed session: its executors on a
/// segment have none, the dashboard names it through the coordinator session.
const IDLE_SESSION_APPLICATION: &str = "bi_dashboard";

/// Values of the series of `series` whose labels include `labels`.
fn values_of(series: &[Value], labels: &[(&str, &str)]) -> Vec<f64> {
    series
        .iter()
        .filter(|s| labels.iter().all(|(k, v)| s["metric"][*k] == *v))
        .filter_map(|s| s["value"][1].as_str()?.parse().ok())
        .collect()
}

/// During the fill of content 0 by `filled` utility sessions of the ordinary
/// role (application gpemu_harness), beside the idle distributed session's
/// `executors` there: the dashboard's first screen names content 0 as the
/// instance with the least headroom, and the role and the applications
/// holding its slots with their counts on that segment.
async fn first_row_names_the_segment_and_who_fills_it(
    prom: &Daemon,
    filled: usize,
    executors: usize,
) -> Result<()> {
    let mut answers = Vec::new();
    for (title, expr) in monitoring::first_row_queries(&monitoring::dashboard()) {
        let series = query(prom, &monitoring::expand(&expr)).await?;
        answers.push((title, expr, series));
    }
    let answered = |labels: &[(&str, &str)], value: f64| {
        answers
            .iter()
            .any(|(_, _, series)| values_of(series, labels) == [value])
    };
    let seg0 = ("content", "0");
    // The overview stat: the least headroom of the cluster is content 0's.
    let stat = answers
        .iter()
        .find(|(title, _, _)| title.starts_with("Lowest ordinary connection headroom"))
        .context("the overview stat")?;
    assert_eq!(stat.2.len(), 1, "{:?}", stat.2);
    assert_eq!(
        values_of(&stat.2, &[seg0, ("cluster", "test")]),
        [0.0],
        "{:?}",
        stat.2
    );
    // Who: the ordinary role holds all of it but the exporter's own slot.
    let role = [seg0, ("usename", gpemu_harness::ORDINARY_USER)];
    let count = (filled + executors) as f64;
    assert!(
        answered(&role, count),
        "no first-row query says {role:?} {count}: {answers:#?}"
    );
    assert!(
        answered(&[seg0, ("usename", gpemu_harness::SUPERUSER)], 1.0),
        "{answers:#?}"
    );
    // By application: the utility sessions under their own, the executors
    // under their coordinator session's.
    let own = [seg0, ("application_name", gpemu_harness::APPLICATION_NAME)];
    assert!(answered(&own, filled as f64), "{answers:#?}");
    let via_session = [seg0, ("application_name", IDLE_SESSION_APPLICATION)];
    assert!(answered(&via_session, executors as f64), "{answers:#?}");
    // With the slots left beside them.
    let left = [seg0, ("usename", gpemu_harness::ORDINARY_USER)];
    assert!(answered(&left, 0.0), "no slots-left column: {answers:#?}");

    // Connections by user: the most on one segment (content 0's), and the
    // coordinator's own (the idle session's dispatcher, the lock holder and
    // its waiter), never the instances added together.
    let by_user: Vec<String> = monitoring::dashboard_queries(&monitoring::dashboard())
        .into_iter()
        .filter(|(title, _)| title.starts_with("Connections by user"))
        .map(|(_, expr)| expr)
        .collect();
    assert_eq!(by_user.len(), 2, "{by_user:?}");
    let user = [("usename", gpemu_harness::ORDINARY_USER)];
    let mut figures = Vec::new();
    for expr in &by_user {
        let series = query(prom, &monitoring::expand(expr)).await?;
        figures.push(values_of(&series, &user));
    }
    assert_eq!(figures, [vec![count], vec![3.0]], "{by_user:?}");
    Ok(())
}

/// Routes everything to a receiver that notifies nobody: the test reads the API.
const ALERTMANAGER_CONFIG: &str = "route:\n  receiver: none\n  group_wait: 1s\n  \
     group_interval: 1s\nreceivers:\n  - name: none\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_segment_pages_alertmanager_and_every_dashboard_query_has_data() -> Result<()> {
    let started = Instant::now();
    let exporter_bin = release_exporter();
    let dir = tempfile::tempdir()?;
    let cluster = ClusterSpec::new(Family::Gp6, 2).mirrors(true).start()?;
    // Content 1's mirror streams, for the replication panels (content 0 is
    // filled and stopped below).
    let _mirror = cluster.start_mirror(1).await?;

    let exporter_config = dir.path().join("exporter.toml");
    std::fs::write(&exporter_config, config_for(&cluster, ""))?;
    let mut exporter = Daemon::start(
        "exporter",
        &exporter_bin,
        &[
            format!("--config.file={}", exporter_config.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()?),
        ],
        dir.path(),
    )?;
    std::fs::write(dir.path().join("alertmanager.yml"), ALERTMANAGER_CONFIG)?;
    let mut am = Daemon::start(
        "alertmanager",
        Path::new("/usr/bin/prometheus-alertmanager"),
        &[
            format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ),
            format!("--storage.path={}", dir.path().join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()?),
            // Empty: no gossip port, no peers.
            "--cluster.listen-address=".into(),
        ],
        dir.path(),
    )?;
    std::fs::write(
        dir.path().join("prometheus.yml"),
        prometheus_config(exporter.port, am.port),
    )?;
    let mut prom = Daemon::start(
        "prometheus",
        Path::new("/usr/bin/prometheus"),
        &[
            format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()?),
        ],
        dir.path(),
    )?;
    exporter.wait_ready("/-/ready").await?;
    am.wait_ready("/-/ready").await?;
    prom.wait_ready("/-/ready").await?;
    // Scraped and the rules evaluated, for the coordinator and both segments.
    eventually(
        "the headroom ratio of 3 instances",
        START_DEADLINE,
        || async {
            let r = query(
                &prom,
                "greenplum_instance:connections_ordinary_headroom:ratio",
            )
            .await?;
            Ok((r.len() == 3).then_some(()))
        },
    )
    .await?;

    // What the other panels show, on content 1 and the coordinator: content 1 stays
    // far from full, so it must not page.
    let _in_tx = cluster
        .open_sessions(1, 2, SessionState::IdleInTransaction)
        .await?;
    let _active = cluster.open_sessions(1, 1, SessionState::Active).await?;
    let _prepared = cluster.prepare_transactions(1, 1).await?;
    // An idle distributed session with its cached gang on every segment, for the
    // attribution panels; idle, it holds no lock the lock wait below would meet.
    let idle_session = Dispatch {
        state: SessionState::Idle,
        application_name: IDLE_SESSION_APPLICATION,
        ..Dispatch::new(1)
    };
    let _session = cluster.dispatch(&idle_session).await?;
    let _lock = cluster.lock_wait(-1).await?;

    let seg = cluster.instance(0).clone();
    let filled_at = Instant::now();
    let full = cluster.fill(0).await?;
    let alert = eventually(
        "the exhausted alert in Alertmanager",
        ALERT_DEADLINE,
        || async {
            Ok(alertmanager_alerts(&am, EXHAUSTED)
                .await?
                .into_iter()
                .next())
        },
    )
    .await
    .with_context(|| format!("prometheus log:\n{}", prom.log()))?;
    assert!(
        filled_at.elapsed() >= EXHAUSTED_FOR,
        "fired {:?} after the fill began, before its `for:` elapsed",
        filled_at.elapsed()
    );
    // The samples name the segment by cluster and content only; the alert
    // gets its dbid, host and port through the join with greenplum_instance_info.
    let headroom = query(
        &prom,
        "greenplum_connections_headroom_ordinary{content=\"0\"}",
    )
    .await?;
    let mut names: Vec<&str> = headroom[0]["metric"]
        .as_object()
        .context("metric")?
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(names, ["__name__", "cluster", "content", "instance", "job"]);
    let labels = &alert["labels"];
    assert_eq!(labels["content"], "0", "{alert}");
    assert_eq!(labels["dbid"], seg.dbid.to_string(), "{alert}");
    assert_eq!(labels["cluster"], "test", "{alert}");
    assert_eq!(labels["hostname"], seg.hostname, "{alert}");
    assert_eq!(labels["port"], seg.port.to_string(), "{alert}");
    assert_eq!(labels["severity"], "critical", "{alert}");
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    let description = alert["annotations"]["description"].as_str().unwrap_or("");
    assert!(
        description.contains(&format!(
            "test content 0 (dbid {}, {}:{})",
            seg.dbid, seg.hostname, seg.port
        )),
        "{description}"
    );
    // The fill's sessions, the exporter's own, and the idle session's writer and reader.
    let used = full.len() + 1 + (1 + idle_session.readers);
    assert!(
        description.contains(&format!("({used} client backends in use)")),
        "{description}"
    );
    // Exactly that segment: nothing for content 1 or the coordinator.
    let in_am = alertmanager_alerts(&am, EXHAUSTED).await?;
    assert_eq!(in_am.len(), 1, "{in_am:?}");
    let in_prom = prometheus_alerts(&prom, EXHAUSTED).await?;
    assert_eq!(in_prom.len(), 1, "{in_prom:?}");
    assert_eq!(in_prom[0]["labels"]["content"], "0", "{in_prom:?}");

    first_row_names_the_segment_and_who_fills_it(&prom, full.len(), 1 + idle_session.readers)
        .await?;

    drop(full);
    eventually("the exhausted alert to resolve", ALERT_DEADLINE, || async {
        let gone = alertmanager_alerts(&am, EXHAUSTED).await?.is_empty()
            && prometheus_alerts(&prom, EXHAUSTED).await?.is_empty();
        Ok(gone.then_some(()))
    })
    .await?;

    // A dead segment, so the error panels have something to show.
    cluster.stop(0)?;
    eventually("content 0 reported failing", ALERT_DEADLINE, || async {
        let r = query(&prom, "greenplum_last_error_info{content=\"0\"}").await?;
        Ok((!r.is_empty()).then_some(()))
    })
    .await?;

    let dashboard = monitoring::dashboard();
    let mut pending: Vec<(String, String)> = monitoring::dashboard_queries(&dashboard)
        .into_iter()
        .map(|(title, expr)| (title, monitoring::expand(&expr)))
        .collect();
    for name in ["cluster", "hostname", "content"] {
        let v = monitoring::variable(&dashboard, name);
        let q = v["query"].as_str().context("variable query")?;
        pending.push((
            format!("variable {name}"),
            monitoring::label_values_query(q),
        ));
    }
    // The log collector's panels read Greenplum's CSV server log, which the
    // emulation's PostgreSQL does not write (its collector is off there, by
    // design): Prometheus must accept their queries, but they have no data
    // here. Their series are checked on real Greenplum in tests/log_collector.rs.
    let (log_panels, rest): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|(_, expr)| expr.contains("greenplum_log_"));
    assert_eq!(log_panels.len(), 2, "{log_panels:#?}");
    for (title, expr) in &log_panels {
        query(&prom, expr)
            .await
            .with_context(|| format!("panel {title:?}"))?;
    }
    let mut pending = rest;
    let total = pending.len();
    // rate() and increase() need two samples in their window: poll, do not sleep.
    let end = Instant::now() + ALERT_DEADLINE;
    while !pending.is_empty() {
        let mut empty = Vec::new();
        for (title, expr) in pending {
            let series = query(&prom, &expr)
                .await
                .with_context(|| format!("panel {title:?}"))?;
            if series.is_empty() {
                empty.push((title, expr));
            }
        }
        pending = empty;
        if !pending.is_empty() && Instant::now() > end {
            bail!("dashboard queries without data: {pending:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "{total} dashboard queries answered; e2e took {:?}",
        started.elapsed()
    );
    Ok(())
}
