//! Incident memory on the incident that real clusters showed: distributed
//! sessions fill a segment for less than one scrape interval and let go
//! again. The next scrape still shows the peak and the exhausted rounds, and
//! the incident list holds exactly one episode naming the sessions that held
//! the slots, with their backends there and in total. Query text is read only
//! when asked for, and then cut; the incidents file survives a restart and a
//! torn last line.

mod support;

use anyhow::{Context, Result};
use gpemu_harness::{Cluster, ClusterSpec, Dispatch, Family, Held, InstanceSettings};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{config_for, Exporter, Metrics};

const SEG: InstanceSettings = InstanceSettings::SEGMENT;
/// Sessions of the burst and the backends each keeps per segment.
const SESSIONS: [i32; 4] = [301, 302, 303, 304];
const READERS: usize = 5;
/// What the harness's dispatched sessions run (`Cluster::dispatch`), first
/// their query, then this, last.
const QUERY_MARKER: &str = "gpemu_scratch";
const LAST_STATEMENT: &str = "SELECT pg_backend_pid()";

/// The segment the burst fills: it has the small limits, the other one room
/// to spare. It is the last one `Cluster::dispatch` reaches, so when it is
/// full every session holds all its executors on the other one too.
const FULL: i16 = 1;
const ROOMY: i16 = 0;

fn cluster(family: Family) -> Result<Cluster> {
    let roomy = InstanceSettings {
        max_connections: 80,
        ..SEG
    };
    ClusterSpec::new(family, 2)
        .settings_for(ROOMY, roomy)
        .start()
}

fn config(cluster: &Cluster, file: &Path, query_text: &str) -> String {
    config_for(cluster, "")
        + &format!(
            "\n[incidents]\nfile = \"{}\"\nend_after_rounds = 2\nkeep = 5\n{query_text}",
            file.display()
        )
}

async fn api(exporter: &Exporter, path: &str) -> Result<Value> {
    let (status, body) = exporter.get(path).await?;
    anyhow::ensure!(status == 200, "{path}: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

fn headroom(instances: &Value, content: i64) -> Option<f64> {
    instances["clusters"][0]["instances"]
        .as_array()?
        .iter()
        .find(|i| i["catalog"]["content"] == content)?["connections"]["headroom_ordinary"]
        .as_f64()
}

/// Polls `/api/v1/instances` (which, unlike `/metrics`, resets no peak)
/// until the full segment's headroom satisfies `pred`.
async fn wait_headroom(exporter: &Exporter, what: &str, pred: impl Fn(f64) -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = api(exporter, "/api/v1/instances").await?;
        if headroom(&doc, FULL.into()).is_some_and(&pred) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills the full segment's ordinary slots with four distributed sessions (a writer
/// and five readers each per segment; the exporter holds the 25th slot).
async fn burst(cluster: &Cluster) -> Result<Held> {
    let mut held = Held::default();
    for id in SESSIONS {
        held.absorb(cluster.dispatch(&Dispatch::new(id, READERS)).await?);
    }
    Ok(held)
}

/// One burst under a running exporter: filled, seen, released, ended.
async fn burst_and_release(cluster: &Cluster, exporter: &Exporter) -> Result<()> {
    let held = burst(cluster).await?;
    wait_headroom(exporter, "the segment full", |h| h == 0.0).await?;
    drop(held);
    wait_headroom(exporter, "the segment free again", |h| {
        h == f64::from(SEG.ordinary_slots() - 1)
    })
    .await?;
    // The episode ends after two rounds above the threshold.
    api_rounds(exporter, 3).await
}

/// Waits for `n` more rounds by the API's round time (scraping `/metrics`
/// would start a new peak interval).
async fn api_rounds(exporter: &Exporter, n: usize) -> Result<()> {
    let finished = |doc: &Value| doc["clusters"][0]["round_finished_at"].as_f64();
    let mut last = finished(&api(exporter, "/api/v1/instances").await?);
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for {n} rounds"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = finished(&api(exporter, "/api/v1/instances").await?);
        if now != last {
            seen += 1;
            last = now;
        }
    }
    Ok(())
}

fn episodes(doc: &Value) -> Vec<&Value> {
    doc["incidents"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

async fn a_burst_between_scrapes_is_remembered(family: Family) -> Result<()> {
    let cluster = cluster(family)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("incidents.jsonl");
    let exporter = Exporter::start(&config(&cluster, &file, ""))?;
    let at_rest = |m: &Metrics| m.seg("greenplum_connections_used", FULL, &[]) == Some(1.0);
    exporter.wait_for("a round at rest", at_rest).await?;
    let quiet = exporter.scrape().await?;
    assert_eq!(
        quiet.seg("greenplum_connections_used_peak", FULL, &[]),
        Some(1.0)
    );
    assert_eq!(
        quiet.seg("greenplum_connections_exhausted_rounds_total", FULL, &[]),
        Some(0.0)
    );

    // Between two scrapes: full, then released.
    burst_and_release(&cluster, &exporter).await?;
    let m = exporter.scrape().await?;
    let ordinary = f64::from(SEG.ordinary_slots());
    assert_eq!(
        m.seg("greenplum_connections_used", FULL, &[]),
        Some(1.0),
        "cleared by now"
    );
    assert_eq!(
        m.seg("greenplum_connections_used_peak", FULL, &[]),
        Some(ordinary)
    );
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary_min", FULL, &[]),
        Some(0.0)
    );
    let exhausted = m
        .seg("greenplum_connections_exhausted_rounds_total", FULL, &[])
        .context("exhausted rounds")?;
    assert!(exhausted >= 1.0, "{exhausted}");
    assert_eq!(
        m.seg("greenplum_connections_exhausted_rounds_total", ROOMY, &[]),
        Some(0.0)
    );
    // The next scrape starts a new interval.
    let next = exporter.scrape().await?;
    assert_eq!(
        next.seg("greenplum_connections_used_peak", FULL, &[]),
        Some(1.0)
    );

    // Exactly one episode, on the full segment, ended, naming the four sessions.
    let doc = api(&exporter, "/api/v1/incidents").await?;
    let list = episodes(&doc);
    assert_eq!(list.len(), 1, "{doc}");
    let e = list[0];
    assert_eq!(e["instance"]["content"], FULL);
    assert_eq!(e["figures"]["headroom_ordinary"], 0.0);
    assert_eq!(e["lowest_headroom"], 0.0);
    assert!(e["ended_at"].as_f64().is_some(), "{e}");
    let sessions = e["sessions"].as_array().context("sessions")?;
    assert_eq!(sessions.len(), SESSIONS.len(), "{e}");
    for s in sessions {
        let id: i32 = s["sess_id"].as_str().context("sess_id")?.parse()?;
        assert!(SESSIONS.contains(&id), "{s}");
        assert_eq!(s["usename"], "app_user");
        assert_eq!(s["backends_here"], (1 + READERS) as f64);
        assert_eq!(s["backends_total"], (2 * (1 + READERS)) as f64);
        assert!(
            s.get("query").is_none(),
            "query text read although disabled: {s}"
        );
    }

    // Query text disabled: nowhere to be seen.
    let instances = exporter.get("/api/v1/instances").await?.1;
    let incidents = exporter.get("/api/v1/incidents").await?.1;
    let written = std::fs::read_to_string(&file)?;
    for (what, text) in [
        ("/metrics", &exporter.scrape().await?.text),
        ("/api/v1/instances", &instances),
        ("/api/v1/incidents", &incidents),
        ("the incidents file", &written),
        ("the log", &exporter.log()),
    ] {
        for marker in [QUERY_MARKER, LAST_STATEMENT] {
            assert!(!text.contains(marker), "query text in {what}:\n{text}");
        }
    }
    // One line when it started, one when it ended.
    assert_eq!(written.lines().count(), 2, "{written}");
    let log = exporter.log();
    assert_eq!(log.matches("incident started").count(), 1, "{log}");
    assert_eq!(log.matches("incident ended").count(), 1, "{log}");
    drop(exporter);

    // Restarted on the same file, whose last line a crash tore, and with
    // query text on: the episode is back, the torn line skipped.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)?
        .write_all(br#"{"id":"test/0/1","cluster":"te"#)?;
    let limited = "query_text = true\nquery_text_max_chars = 10\n";
    let exporter = Exporter::start(&config(&cluster, &file, limited))?;
    exporter.wait_for("a round", at_rest).await?;
    let back = api(&exporter, "/api/v1/incidents").await?;
    assert_eq!(episodes(&back), list, "read back after the restart");
    assert!(
        exporter
            .log()
            .contains("skipping an incident line that cannot be read"),
        "{}",
        exporter.log()
    );

    burst_and_release(&cluster, &exporter).await?;
    let doc = api(&exporter, "/api/v1/incidents").await?;
    let list = episodes(&doc);
    assert_eq!(list.len(), 2, "{doc}");
    for s in list[0]["sessions"].as_array().context("sessions")? {
        // The session's last statement on the coordinator (the harness asks
        // for its backend's pid last), cut to 10 characters.
        assert_eq!(s["query"], &LAST_STATEMENT[..10], "{s}");
    }
    Ok(())
}

gpemu_harness::for_each_family!(a_burst_between_scrapes_is_remembered);
