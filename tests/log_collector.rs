//! The `log` collector against real Greenplum 6 and 7: segments filled until
//! the coordinator refuses sessions, and the counters compared with the
//! lines the servers themselves wrote for what the test did. On the
//! emulation (PostgreSQL's own log, not Greenplum's CSV) it says so and
//! nothing else changes; as an ordinary role it says why it is off.

mod support;

use anyhow::{ensure, Result};
use gpemu_harness::{Backend, Cluster, ClusterSpec, Dispatch, InstanceSettings, ORDINARY_USER};
use support::{config_for, Exporter, Metrics};

/// Lines of an instance's server log (Greenplum's CSV, fields quoted or
/// not) that refused a connection: `FATAL` with SQLSTATE 53300.
fn refusal_lines(cluster: &Cluster, content: i16) -> Result<usize> {
    let fatal = regex::Regex::new(r#","?FATAL"?,"?53300"?,"#)?;
    Ok(fatal.find_iter(&cluster.server_log(content)?).count())
}

/// The coordinator session ids (`con14`) of an instance's refusal lines, in order.
fn refused_sessions(cluster: &Cluster, content: i16) -> Result<Vec<String>> {
    let line = regex::Regex::new(r#"(?m)^[^\n]*?,(con\d+),[^\n]*,"?FATAL"?,"?53300"?,"#)?;
    Ok(line
        .captures_iter(&cluster.server_log(content)?)
        .map(|c| c[1].to_owned())
        .collect())
}

/// The coordinator's lines of dispatches it could not start, naming `seg`.
fn dispatch_failures(cluster: &Cluster, seg: i16) -> Result<usize> {
    let log = cluster.server_log(-1)?;
    let error = regex::Regex::new(r#","?ERROR"?,"?58M01"?,"?failed to acquire resources"#)?;
    let lines: Vec<&str> = error.split(&log).collect();
    let named = format!("(seg{seg} ");
    // Each such record's detail (its next two lines) names the segment.
    Ok(lines
        .iter()
        .skip(1)
        .filter(|rest| rest.lines().take(2).any(|l| l.contains(&named)))
        .count())
}

/// What `count` finds in the servers' logs once it is `want` (within 10 s;
/// the last count otherwise, for the assertion to show).
async fn logged<T: PartialEq + std::fmt::Debug>(
    count: impl Fn() -> Result<T>,
    want: T,
) -> Result<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = count()?;
        if found == want || std::time::Instant::now() > deadline {
            assert_eq!(found, want, "lines the servers logged");
            return Ok(found);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn refused(m: &Metrics, content: i16, reason: &str) -> Option<f64> {
    m.seg(
        "greenplum_log_refused_connections_total",
        content,
        &[("reason", reason)],
    )
}

/// Waits until the exporter reads every instance's log.
async fn reading(exporter: &Exporter, instances: usize) -> Result<Metrics> {
    let m = exporter
        .wait_for("the log read on every instance", |m| {
            m.all("greenplum_log_reading", &[])
                .iter()
                .filter(|s| s.2 == 1.0)
                .count()
                == instances
        })
        .await?;
    // Two more rounds: the first read of each has placed it at the end.
    exporter.wait_rounds(2.0).await?;
    Ok(m)
}

/// Content 1 has 15 ordinary slots; dispatched sessions fill them, and the
/// session after them and `K` more are refused. Every refusal content 1
/// logged is counted on content 1 (reason and role), none on content 0, and
/// the coordinator counts the failed dispatches naming content 1. A new
/// exporter starts at the end of the files: nothing is counted twice.
async fn refusals_counted_from_the_servers_logs(backend: Backend) -> Result<()> {
    const K: usize = 3;
    let small = InstanceSettings {
        max_connections: 20,
        superuser_reserved_connections: 5,
        max_prepared_transactions: 25,
    };
    let cluster = ClusterSpec::new(backend, 2)
        .settings_for(1, small)
        .start()?;
    let config = config_for(&cluster, "collectors = [\"connections\", \"log\"]\n");
    let exporter = Exporter::start(&config)?;
    let m = reading(&exporter, 3).await?;
    for content in [-1, 0, 1] {
        assert_eq!(
            refused(&m, content, "reserved_for_superusers"),
            Some(0.0),
            "content {content}:\n{}",
            m.text
        );
    }
    let (before, failed_before) = (refusal_lines(&cluster, 1)?, dispatch_failures(&cluster, 1)?);
    let burst = cluster.fill_with_sessions(1, 3).await?;
    // The episode of content 1 out of ordinary slots is open before the K
    // refusals: it lists every one of them.
    let episode = || async {
        let (_, body) = exporter.get("/api/v1/incidents").await?;
        let doc: serde_json::Value = serde_json::from_str(&body)?;
        let found = doc["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["instance"]["content"] == 1)
            .cloned();
        anyhow::Ok(found)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while episode().await?.is_none() {
        ensure!(
            std::time::Instant::now() < deadline,
            "no episode on content 1"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for _ in 0..K {
        ensure!(
            cluster.dispatch(&Dispatch::new(3)).await.is_err(),
            "a full content 1 took one more session"
        );
    }
    // One refused executor, and one failed dispatch, per refused session
    // (the server's logging process writes them a moment later).
    let written = || -> Result<(usize, usize)> {
        Ok((
            refusal_lines(&cluster, 1)? - before,
            dispatch_failures(&cluster, 1)? - failed_before,
        ))
    };
    let (lines, failed) = logged(written, (1 + K, 1 + K)).await?;
    let n = lines as f64;
    let m = exporter
        .wait_for("the refusals counted", |m| {
            refused(m, 1, "reserved_for_superusers") == Some(n)
        })
        .await?;
    let role = [("usename", ORDINARY_USER)];
    assert_eq!(
        m.seg("greenplum_log_refused_connections_by_role_total", 1, &role),
        Some(n),
        "{}",
        m.text
    );
    for reason in ["too_many_clients", "fts_reserved", "other"] {
        assert_eq!(refused(&m, 1, reason), Some(0.0), "{reason}");
    }
    for content in [-1, 0] {
        let total: f64 = m
            .all(
                "greenplum_log_refused_connections_total",
                &[("content", &content.to_string())],
            )
            .iter()
            .map(|s| s.2)
            .sum();
        assert_eq!(total, 0.0, "content {content}");
    }
    let m = exporter
        .wait_for("the failed dispatches counted", |m| {
            m.seg(
                "greenplum_log_dispatch_failures_total",
                -1,
                &[("failed_content", "1")],
            ) == Some(failed as f64)
        })
        .await?;
    assert_eq!(
        m.all("greenplum_log_dispatch_failures_total", &[]).len(),
        1,
        "only content 1 named:\n{}",
        m.text
    );
    support::promtool_check_metrics(&m.text)?;
    // The episode lists the K refused executors by role and coordinator
    // session id (and the first refusal's too, when the round that opened
    // the episode had not read it yet).
    let sessions = refused_sessions(&cluster, 1)?;
    let later = &sessions[sessions.len() - K..];
    let listed = episode().await?.expect("the episode");
    let refusals: Vec<(String, String, u64)> = listed["refusals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["usename"].as_str().unwrap_or("").to_owned(),
                r["sess_id"].as_str().unwrap_or("").to_owned(),
                r["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for id in later {
        let entry = (ORDINARY_USER.to_owned(), id.clone(), 1);
        assert!(refusals.contains(&entry), "{id} not in {refusals:?}");
    }
    let first = (
        ORDINARY_USER.to_owned(),
        sessions[sessions.len() - K - 1].clone(),
        1,
    );
    let rest: Vec<_> = refusals.iter().filter(|r| !later.contains(&r.1)).collect();
    assert!(rest.is_empty() || rest == [&first], "{refusals:?}");
    assert!(m
        .seg("greenplum_log_last_refusal_timestamp_seconds", 1, &[])
        .is_some());
    assert_eq!(
        m.seg("greenplum_log_skipped_bytes_total", 1, &[]),
        Some(0.0)
    );
    drop(exporter);

    // A new exporter: the refusals above are history, then one more counts.
    let exporter = Exporter::start(&config)?;
    let m = reading(&exporter, 3).await?;
    assert_eq!(
        refused(&m, 1, "reserved_for_superusers"),
        Some(0.0),
        "{}",
        m.text
    );
    let before = refusal_lines(&cluster, 1)?;
    ensure!(cluster.dispatch(&Dispatch::new(3)).await.is_err());
    logged(|| Ok(refusal_lines(&cluster, 1)? - before), 1).await?;
    exporter
        .wait_for("one more refusal", |m| {
            refused(m, 1, "reserved_for_superusers") == Some(1.0)
        })
        .await?;
    drop(burst);
    Ok(())
}

/// An ordinary role may not read server files: the collector is off with
/// that reason on every instance, and the other collectors collect as before.
async fn an_ordinary_role_is_told_why(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let dir = tempfile::tempdir()?;
    let password = dir.path().join("password");
    std::fs::write(&password, gpemu_harness::ORDINARY_PASSWORD)?;
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let config = config_for(&cluster, "collectors = [\"connections\", \"log\"]\n")
        .replace("user = \"gpadmin\"", &format!("user = \"{ORDINARY_USER}\""))
        .replace(
            &cluster.superuser_password_file().display().to_string(),
            &password.display().to_string(),
        );
    let exporter = Exporter::start(&config)?;
    let off = [("reason", "insufficient_privilege")];
    let m = exporter
        .wait_for("the log collector off everywhere", |m| {
            m.all("greenplum_log_off_info", &off).len() == 3
        })
        .await?;
    for content in [-1, 0, 1] {
        assert_eq!(m.up(content), Some(1.0), "content {content}");
        assert_eq!(m.seg("greenplum_log_reading", content, &[]), Some(0.0));
        assert!(m.seg("greenplum_connections_used", content, &[]).is_some());
        assert!(refused(&m, content, "other").is_none(), "no counts served");
    }
    let warnings = exporter
        .log()
        .matches("log collector off for this instance")
        .count();
    assert_eq!(warnings, 3, "one line per instance:\n{}", exporter.log());
    Ok(())
}

/// The emulation's PostgreSQL writes its own log, not Greenplum's CSV: the
/// collector says there is none, and every instance is collected as before.
async fn no_greenplum_log_on_the_emulation(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let config = config_for(&cluster, "collectors = [\"connections\", \"log\"]\n");
    let exporter = Exporter::start(&config)?;
    let off = [("reason", "no_csv_log")];
    let m = exporter
        .wait_for("no CSV log on every instance", |m| {
            m.all("greenplum_log_off_info", &off).len() == 3
        })
        .await?;
    for content in [-1, 0, 1] {
        assert_eq!(m.up(content), Some(1.0), "content {content}");
        assert_eq!(m.seg("greenplum_log_reading", content, &[]), Some(0.0));
        assert!(m.seg("greenplum_connections_used", content, &[]).is_some());
    }
    support::promtool_check_metrics(&m.text)?;
    Ok(())
}

gpemu_harness::backend_tests!(refusals_counted_from_the_servers_logs: real_gp6, real_gp7);
gpemu_harness::backend_tests!(an_ordinary_role_is_told_why: real_gp6, real_gp7);
gpemu_harness::backend_tests!(no_greenplum_log_on_the_emulation: gp6, gp7);
