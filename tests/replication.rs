//! Replication as each primary sees it, against emulated clusters whose
//! mirrors are real PostgreSQL streaming standbys (`Cluster::start_mirror`):
//! the walsender's state and sync state, WAL bytes behind, and the series
//! that says when the catalog and the primary disagree. Real Greenplum
//! mirrors are not built by the harness yet (the real backend refuses
//! `mirrors(true)` and `start_standby`), so these run on the emulation only.

mod support;

use anyhow::Result;
use gpemu_harness::{ClusterSpec, Family, MB};
use support::{config_for, Exporter, Metrics};

fn state(m: &Metrics, content: i16) -> Vec<String> {
    let content = content.to_string();
    m.all("greenplum_replication_state", &[("content", &content)])
        .iter()
        .map(|s| format!("{}={}", s.1["state"], s.2))
        .collect()
}

fn sync_state(m: &Metrics, content: i16) -> Vec<String> {
    let content = content.to_string();
    m.all("greenplum_replication_sync_state", &[("content", &content)])
        .iter()
        .map(|s| format!("{}={}", s.1["sync_state"], s.2))
        .collect()
}

fn lag(m: &Metrics, content: i16, position: &str) -> Option<f64> {
    m.seg(
        "greenplum_replication_lag_bytes",
        content,
        &[("position", position)],
    )
}

fn disagreement(m: &Metrics, content: i16) -> Option<f64> {
    m.seg("greenplum_replication_catalog_disagreement", content, &[])
}

/// The catalog row of content `content`'s mirror: (status, mode).
fn catalog_mirror(cluster: &gpemu_harness::Cluster, content: i16) -> (char, char) {
    let row = cluster
        .initial_catalog()
        .iter()
        .find(|r| r.content == content && r.role == 'm')
        .expect("a mirror row");
    (row.status, row.mode)
}

/// A mirror streaming synchronously: `streaming`, `sync`, every lag 0 once
/// a checkpoint has been replayed; the catalog (u/s) agrees. Content 1 has
/// a mirror row but no standby: `none`, no lag series, and the disagreement
/// is 1. The coordinator has no standby and no standby row: `none`, and no
/// disagreement series.
async fn a_streaming_mirror_is_in_sync_with_lag_zero(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).mirrors(true).start()?;
    let _mirror = cluster.start_mirror(0).await?;
    let threshold = "replication_lag_threshold_bytes = 4096\n";
    let exporter = Exporter::start(&config_for(&cluster, threshold))?;
    cluster.admin(0).await?.batch_execute("CHECKPOINT").await?;
    let m = exporter
        .wait_for("content 0 streaming with lag 0", |m| {
            state(m, 0) == ["streaming=1"]
                && ["sent", "flush", "replay"]
                    .iter()
                    .all(|p| lag(m, 0, p) == Some(0.0))
        })
        .await?;
    assert_eq!(sync_state(&m, 0), ["sync=1"], "{}", m.text);
    assert_eq!(catalog_mirror(&cluster, 0), ('u', 's'));
    assert_eq!(disagreement(&m, 0), Some(0.0), "{}", m.text);
    let content0 = [("content", "0")];
    match family {
        // 9.4 measures no lag times.
        Family::Gp6 => assert!(m.all("greenplum_replication_lag_seconds", &[]).is_empty()),
        // Caught up: each position is the current one, 0.
        Family::Gp7 => {
            let seconds = m.all("greenplum_replication_lag_seconds", &content0);
            assert_eq!(seconds.len(), 3, "{}", m.text);
            assert!(seconds.iter().all(|s| s.2 == 0.0), "{seconds:?}");
        }
    }

    // The unmirrored-in-fact content 1 and the coordinator.
    for c in [-1, 1] {
        assert_eq!(state(&m, c), ["none=1"], "content {c}");
        assert_eq!(sync_state(&m, c), ["none=1"], "content {c}");
        let content = c.to_string();
        let labels = [("content", content.as_str())];
        assert!(m.all("greenplum_replication_lag_bytes", &labels).is_empty());
        assert!(m
            .all("greenplum_replication_lag_seconds", &labels)
            .is_empty());
    }
    assert_eq!(disagreement(&m, 1), Some(1.0), "catalog u/s, no walsender");
    assert_eq!(disagreement(&m, -1), None, "no standby row");
    assert_eq!(
        m.get("greenplum_replication_lag_threshold_bytes", &[]),
        Some(4096.0)
    );
    // A later round: the idle primary may have logged a record since (a
    // standby snapshot), so the page's lag is not asserted.
    let (_, page) = exporter.get("/").await?;
    let line = regex::Regex::new(
        r"mirror: streaming sync, replay [0-9.]+ [KMG]?i?B behind \(catalog u/s\)",
    )?;
    assert!(line.is_match(&page), "{page}");
    let report = support::promtool_check_metrics(&m.text)?;
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
    Ok(())
}

/// The mirror's host goes away: the primary has no walsender any more
/// (`none`, no lag series) while the emulated catalog still says u/s, and
/// the disagreement is 1 until the mirror streams again.
async fn a_stopped_mirror_disagrees_with_the_catalog(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).mirrors(true).start()?;
    let mirror = cluster.start_mirror(0).await?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let m = exporter
        .wait_for("content 0 streaming", |m| state(m, 0) == ["streaming=1"])
        .await?;
    assert_eq!(disagreement(&m, 0), Some(0.0), "{}", m.text);

    mirror.stop()?;
    let m = exporter
        .wait_for("content 0 without a walsender", |m| {
            state(m, 0) == ["none=1"]
        })
        .await?;
    assert_eq!(sync_state(&m, 0), ["none=1"], "{}", m.text);
    assert!(
        m.all("greenplum_replication_lag_bytes", &[("content", "0")])
            .is_empty(),
        "{}",
        m.text
    );
    assert_eq!(m.up(0), Some(1.0));
    assert_eq!(catalog_mirror(&cluster, 0), ('u', 's'));
    let dbid = cluster
        .initial_catalog()
        .iter()
        .find(|r| r.content == 0 && r.role == 'm')
        .map(|r| r.dbid.to_string())
        .unwrap();
    assert_eq!(
        m.get("greenplum_catalog_instance_up", &[("dbid", &dbid)]),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "greenplum_catalog_instance_synchronized",
            &[("dbid", &dbid)]
        ),
        Some(1.0)
    );
    assert_eq!(disagreement(&m, 0), Some(1.0), "{}", m.text);

    // The same round in the API, on the status page and in `top`'s view.
    let (status, api) = exporter.get("/api/v1/instances").await?;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&api)?;
    let instances = doc["clusters"][0]["instances"].as_array().unwrap();
    let seg0 = instances
        .iter()
        .find(|i| i["catalog"]["content"] == 0)
        .expect("content 0 in the API");
    let r = &seg0["replication"];
    assert_eq!(r["state"], "none", "{r}");
    assert_eq!(r["catalog_mirror"], "u/s", "{r}");
    assert_eq!(r["disagrees"], true, "{r}");
    let (_, page) = exporter.get("/").await?;
    assert!(
        page.contains("mirror: none (catalog u/s) · catalog and primary disagree"),
        "{page}"
    );
    Ok(())
}

/// With the mirror's replay paused, N MB written on the primary: the mirror
/// still receives and flushes them (sent and flush lag back to 0), but its
/// replay lag is at least the WAL those writes took, itself at least N MB.
/// Resumed, the replay lag goes back to 0.
async fn a_paused_replay_lags_by_what_was_written(family: Family) -> Result<()> {
    const N: u64 = 8;
    let cluster = ClusterSpec::new(family, 1).mirrors(true).start()?;
    let mirror = cluster.start_mirror(0).await?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    exporter
        .wait_for("content 0 streaming", |m| state(m, 0) == ["streaming=1"])
        .await?;
    cluster.pause_replay(&mirror).await?;
    let written = cluster.write_wal(0, N).await?;
    assert!(written >= N * MB, "{written}");
    let m = exporter
        .wait_for("the writes received but not replayed", |m| {
            lag(m, 0, "flush") == Some(0.0)
                && lag(m, 0, "replay").is_some_and(|l| l >= written as f64)
        })
        .await?;
    let replay = lag(&m, 0, "replay").unwrap();
    eprintln!("{family}: {N} MB written, {written} bytes of WAL, replay lag {replay} bytes");
    assert!(replay >= (N * MB) as f64, "{replay}");
    assert_eq!(lag(&m, 0, "sent"), Some(0.0), "{}", m.text);
    assert_eq!(state(&m, 0), ["streaming=1"]);
    assert_eq!(disagreement(&m, 0), Some(0.0));

    cluster.resume_replay(&mirror).await?;
    exporter
        .wait_for("replayed again", |m| lag(m, 0, "replay") == Some(0.0))
        .await?;
    Ok(())
}

/// The configuration naming the coordinator at `first` and its standby at
/// `second` (both on this host).
fn config_with_standby(cluster: &gpemu_harness::Cluster, first: u16, second: u16) -> String {
    let coordinator = cluster.coordinator().port;
    config_for(
        cluster,
        &format!("standby_host = \"127.0.0.1\"\nstandby_port = {second}\n"),
    )
    .replace(
        &format!("\nport = {coordinator}\n"),
        &format!("\nport = {first}\n"),
    )
}

/// The port of the coordinator the exporter found active.
fn active_port(m: &Metrics) -> Option<String> {
    let info = m.all("greenplum_cluster_info", &[]);
    info.first().map(|s| s.1["coordinator_port"].clone())
}

/// `gpactivatestandby`: the coordinator stops, its streaming standby is
/// promoted. The exporter, configured with both addresses, collects the
/// coordinator at the standby's port within a few rounds, without a restart,
/// and both segments are up in every scrape meanwhile.
async fn the_exporter_follows_the_coordinator_to_its_activated_standby(
    family: Family,
) -> Result<()> {
    const SEGMENTS: usize = 2;
    let cluster = ClusterSpec::new(family, SEGMENTS).start()?;
    let standby = cluster.start_standby(-1).await?;
    let coordinator = cluster.coordinator().port;
    let exporter = Exporter::start(&config_with_standby(&cluster, coordinator, standby.port))?;
    let pid = exporter.pid();
    let m = exporter
        .wait_for("the coordinator up", |m| m.up(-1) == Some(1.0))
        .await?;
    assert_eq!(active_port(&m), Some(coordinator.to_string()), "{}", m.text);

    cluster.stop(-1)?;
    standby.promote()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut scrapes = 0;
    let m = loop {
        let m = exporter.scrape().await?;
        scrapes += 1;
        for c in 0..SEGMENTS as i16 {
            assert_eq!(
                m.up(c),
                Some(1.0),
                "content {c} in scrape {scrapes}:\n{}",
                m.text
            );
        }
        assert_eq!(
            m.get("greenplum_exporter_instances", &[]),
            Some(SEGMENTS as f64 + 1.0),
            "{}",
            m.text
        );
        if m.up(-1) == Some(1.0) && active_port(&m) == Some(standby.port.to_string()) {
            break m;
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the standby never collected:\n{}\n{}",
                m.text,
                exporter.log()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(exporter.pid(), pid, "no restart");
    // Collected from the promoted standby: its connection is the exporter's.
    assert_eq!(exporter.connections_to(standby.port)?, 1);
    let m2 = exporter.wait_rounds(2.0).await?;
    assert_eq!(m2.up(-1), Some(1.0), "{}", m2.text);
    assert_eq!(active_port(&m2), active_port(&m));
    Ok(())
}

/// The standby listed first while still in recovery: it is passed over and
/// the real coordinator collected.
async fn a_standby_in_recovery_listed_first_is_passed_over(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    let standby = cluster.start_standby(-1).await?;
    let coordinator = cluster.coordinator().port;
    let exporter = Exporter::start(&config_with_standby(&cluster, standby.port, coordinator))?;
    let m = exporter
        .wait_for("the coordinator up", |m| {
            m.up(-1) == Some(1.0) && m.up(0) == Some(1.0)
        })
        .await?;
    assert_eq!(active_port(&m), Some(coordinator.to_string()), "{}", m.text);
    let m = exporter.wait_rounds(2.0).await?;
    assert_eq!(active_port(&m), Some(coordinator.to_string()), "{}", m.text);
    assert_eq!(m.up(-1), Some(1.0));
    assert_eq!(
        exporter.connections_to(standby.port)?,
        0,
        "no connection kept to the standby"
    );
    Ok(())
}

gpemu_harness::for_each_family!(
    a_streaming_mirror_is_in_sync_with_lag_zero,
    a_stopped_mirror_disagrees_with_the_catalog,
    a_paused_replay_lags_by_what_was_written,
    the_exporter_follows_the_coordinator_to_its_activated_standby,
    a_standby_in_recovery_listed_first_is_passed_over,
);
