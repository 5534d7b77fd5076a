//! Incident memory on the incident that real clusters showed: distributed
//! sessions fill a segment for less than one scrape interval and let go
//! again. The next scrape still shows the peak and the exhausted rounds, and
//! the incident list holds exactly one episode naming the sessions that held
//! the slots, with their backends there and in total. Query text is read only
//! when asked for, and then cut; the incidents file survives a restart and a
//! torn last line.

mod support;

use anyhow::{Context, Result};
use gpemu_harness::{Backend, Cluster, ClusterSpec, Dispatch, Held, InstanceSettings};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{config_for, Exporter, Metrics};

const SEG: InstanceSettings = InstanceSettings::SEGMENT;
/// Sessions of the burst and the backends each keeps per segment.
const SESSIONS: usize = 4;
const READERS: usize = 5;
/// What the harness's dispatched sessions run (`Cluster::dispatch`), first
/// their query, then this, last.
const QUERY_MARKER: &str = "gpemu_scratch";
const LAST_STATEMENT: &str = "SELECT pg_backend_pid()";
/// How the query of every dispatched session begins (in a transaction).
const DISPATCHED_STATEMENT: &str = "BEGIN; SELECT count(*) FROM";

/// The segment the burst fills: it has the small limits, the other one room
/// to spare. It is the last one `Cluster::dispatch` reaches, so when it is
/// full every session holds all its executors on the other one too.
const FULL: i16 = 1;
const ROOMY: i16 = 0;

fn cluster(backend: Backend) -> Result<Cluster> {
    let roomy = InstanceSettings {
        max_connections: 80,
        ..SEG
    };
    ClusterSpec::new(backend, 2)
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
    for _ in 0..SESSIONS {
        held.absorb(cluster.dispatch(&Dispatch::new(READERS)).await?);
    }
    Ok(held)
}

/// One round as the API showed it: when it ended, and the full segment's
/// `used` and ordinary headroom in it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Round {
    at: f64,
    used: f64,
    headroom: f64,
}

/// Polls `/api/v1/instances` (which, unlike `/metrics`, resets no peak),
/// adding every new round to `seen`, until `done(seen)`. Rounds are a second
/// apart and the API is read every 50 ms: none is missed.
async fn watch(
    exporter: &Exporter,
    seen: &mut Vec<Round>,
    what: &str,
    done: impl Fn(&[Round]) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = api(exporter, "/api/v1/instances").await?;
        let full = doc["clusters"][0]["instances"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["catalog"]["content"] == FULL));
        let at = doc["clusters"][0]["round_finished_at"].as_f64();
        let slots = full.map(|i| &i["connections"]);
        if let (Some(at), Some(used), Some(headroom)) = (
            at,
            slots.and_then(|c| c["used"].as_f64()),
            slots.and_then(|c| c["headroom_ordinary"].as_f64()),
        ) {
            if seen.last().is_none_or(|r| r.at != at) {
                seen.push(Round { at, used, headroom });
            }
        }
        if done(seen) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn latest_headroom(seen: &[Round]) -> Option<f64> {
    seen.last().map(|r| r.headroom)
}

/// One burst under a running exporter: filled, seen, released, ended. Returns
/// the ids of its sessions and the rounds it watched, from the first with the
/// segment full.
async fn burst_and_release(
    cluster: &Cluster,
    exporter: &Exporter,
) -> Result<(Vec<i32>, Vec<Round>)> {
    let mut seen = Vec::new();
    // Watched from before the burst: the first full round is among them.
    let (held, watched) = tokio::join!(
        burst(cluster),
        watch(exporter, &mut seen, "the segment full", |s| {
            latest_headroom(s) == Some(0.0)
        })
    );
    let held = held?;
    watched?;
    let ids = held.sessions.clone();
    drop(held);
    let free = f64::from(SEG.ordinary_slots() - 1);
    // The episode ends after two rounds above the threshold.
    watch(
        exporter,
        &mut seen,
        "the segment free again, the episode over",
        |s| {
            latest_headroom(s) == Some(free)
                && s.iter().rev().take_while(|r| r.headroom > 0.0).count() >= 2
        },
    )
    .await?;
    Ok((ids, seen))
}

fn episodes(doc: &Value) -> Vec<&Value> {
    doc["incidents"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

async fn a_burst_between_scrapes_is_remembered(backend: Backend) -> Result<()> {
    let cluster = cluster(backend)?;
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
    let (ids, rounds) = burst_and_release(&cluster, &exporter).await?;
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
    // It lasted from the first to the last round with the segment full, and
    // ended with the second round above the threshold (end_after_rounds 2),
    // which does not count in its length.
    let first = rounds.iter().position(|r| r.headroom == 0.0);
    let last = rounds.iter().rposition(|r| r.headroom == 0.0);
    let (first, last) = first.zip(last).context("no full round")?;
    assert!(
        rounds[first..=last].iter().all(|r| r.headroom == 0.0),
        "full, then free: {rounds:?}"
    );
    assert_eq!(e["started_at"], rounds[first].at, "{e}\n{rounds:?}");
    assert_eq!(e["last_below_at"], rounds[last].at, "{e}\n{rounds:?}");
    assert_eq!(e["rounds"], (last - first + 1) as f64, "{e}\n{rounds:?}");
    assert_eq!(e["ended_at"], rounds[last + 2].at, "{e}\n{rounds:?}");
    let sessions = e["sessions"].as_array().context("sessions")?;
    assert_eq!(sessions.len(), SESSIONS, "{e}");
    for s in sessions {
        let id: i32 = s["sess_id"].as_str().context("sess_id")?.parse()?;
        assert!(ids.contains(&id), "{s}");
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
        // The session's statement on the coordinator, cut to 10 characters:
        // its last one (the harness asks for its backend's pid last), or,
        // if the round that saw the segment full caught the last session
        // still running its query (a real coordinator makes the gangs as the
        // query starts), the query it was dispatching.
        let expected = match s["state"].as_str() {
            Some("active") => &DISPATCHED_STATEMENT[..10],
            _ => &LAST_STATEMENT[..10],
        };
        assert_eq!(s["query"], expected, "{s}");
    }
    Ok(())
}

/// A scrape that served a burst starts the next interval with the next
/// round: when no round since was exhausted, the next scrape serves the
/// rounds since as the peak (here the segment free again), not the burst a
/// second time.
async fn a_burst_is_served_once(backend: Backend) -> Result<()> {
    let cluster = cluster(backend)?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let at_rest = |m: &Metrics| m.seg("greenplum_connections_used", FULL, &[]) == Some(1.0);
    exporter.wait_for("a round at rest", at_rest).await?;
    let exhausted = |m: &Metrics| m.seg("greenplum_connections_exhausted_rounds_total", FULL, &[]);
    let ordinary = f64::from(SEG.ordinary_slots());
    // Scraped while the latest round is the full one; a round coming in
    // between (the scrape then proves nothing) or an exhausted round after
    // the scrape (it belongs to the next interval) means another try.
    for _ in 0..5 {
        let held = burst(&cluster).await?;
        wait_headroom(&exporter, "the segment full", |h| h == 0.0).await?;
        drop(held);
        let served = exporter.scrape().await?;
        let mut since = Vec::new();
        watch(&exporter, &mut since, "the segment free again", |s| {
            latest_headroom(s) == Some(ordinary - 1.0)
        })
        .await?;
        let next = exporter.scrape().await?;
        if served.seg("greenplum_connections_headroom_ordinary", FULL, &[]) != Some(0.0)
            || exhausted(&next) != exhausted(&served)
        {
            continue;
        }
        assert_eq!(
            served.seg("greenplum_connections_headroom_ordinary_min", FULL, &[]),
            Some(0.0)
        );
        assert_eq!(
            served.seg("greenplum_connections_used_peak", FULL, &[]),
            Some(ordinary)
        );
        // The rounds since the first scrape: the last full round, if still
        // the latest one then, is the first scrape's.
        let after: Vec<&Round> = since.iter().filter(|r| r.headroom > 0.0).collect();
        let peak = after.iter().map(|r| r.used).fold(f64::MIN, f64::max);
        let min = after.iter().map(|r| r.headroom).fold(f64::MAX, f64::min);
        assert!(min > 0.0, "{since:?}");
        assert_eq!(
            next.seg("greenplum_connections_used_peak", FULL, &[]),
            Some(peak),
            "{since:?}\n{}",
            next.text
        );
        assert_eq!(
            next.seg("greenplum_connections_headroom_ordinary_min", FULL, &[]),
            Some(min),
            "{since:?}\n{}",
            next.text
        );
        return Ok(());
    }
    anyhow::bail!("five bursts, and no scrape caught a full round as the latest one")
}

gpemu_harness::for_each_backend!(
    a_burst_between_scrapes_is_remembered,
    a_burst_is_served_once,
);
