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

/// Routes everything to a receiver that notifies nobody: the test reads the API.
const ALERTMANAGER_CONFIG: &str = "route:\n  receiver: none\n  group_wait: 1s\n  \
     group_interval: 1s\nreceivers:\n  - name: none\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_segment_pages_alertmanager_and_every_dashboard_query_has_data() -> Result<()> {
    let started = Instant::now();
    let exporter_bin = release_exporter();
    let dir = tempfile::tempdir()?;
    let cluster = ClusterSpec::new(Family::Gp6, 2).mirrors(true).start()?;

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
        ..Dispatch::new(77, 1)
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
