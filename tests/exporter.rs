//! The exporter against emulated clusters: each test creates the real
//! situation on real servers and asserts the exact figures served at /metrics.

mod support;

use anyhow::Result;
use gpemu_harness::{
    Backend, Cluster, ClusterSpec, Family, InstanceSettings, Login, Mode, SessionState, WaitReason,
};
use greenplum_segment_exporter::config::CollectorName;
use greenplum_segment_exporter::model::error::ErrorKind;
use std::time::Duration;
use support::{config_for, promtool_check_metrics, Exporter, Metrics};

const SEG: InstanceSettings = InstanceSettings::SEGMENT;

/// A cluster with mirror rows in its catalog where the backend has them
/// (the emulation lists them; the real backend has none yet) and the
/// exporter against it.
fn start(backend: impl Into<Backend>, segments: usize) -> Result<(Cluster, Exporter)> {
    let backend = backend.into();
    let cluster = ClusterSpec::new(backend, segments)
        .mirrors(!backend.is_real())
        .start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    Ok((cluster, exporter))
}

fn used(m: &Metrics, content: i16) -> Option<f64> {
    m.seg("greenplum_connections_used", content, &[])
}

async fn k_ordinary_connections_change_only_that_segment(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 2)?;
    // At rest every instance holds exactly one client: the exporter itself.
    let m = exporter
        .wait_for("first round", |m| {
            used(m, 0) == Some(1.0) && used(m, 1) == Some(1.0)
        })
        .await?;
    assert_eq!(m.seg("greenplum_up", 0, &[]), Some(1.0));
    assert_eq!(
        m.seg("greenplum_connections_max", 0, &[]),
        Some(SEG.max_connections as f64)
    );
    assert_eq!(
        m.seg("greenplum_connections_superuser_reserved", 0, &[]),
        Some(SEG.superuser_reserved_connections as f64)
    );

    let _held = cluster.open_sessions(0, 7, SessionState::Idle).await?;
    let m = exporter
        .wait_for("7 more on content 0", |m| used(m, 0) == Some(8.0))
        .await?;
    assert_eq!(used(&m, 0), Some(8.0));
    assert_eq!(used(&m, 1), Some(1.0));
    assert_eq!(
        m.seg("greenplum_connections", 0, &[("state", "idle")]),
        Some(7.0)
    );
    // The exporter's own session is the active one, running the collection.
    assert_eq!(
        m.seg("greenplum_connections", 0, &[("state", "active")]),
        Some(1.0)
    );
    assert_eq!(
        m.seg(
            "greenplum_connections",
            0,
            &[("state", "idle in transaction")]
        ),
        Some(0.0)
    );
    let ordinary = (SEG.ordinary_slots() - 8) as f64;
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 0, &[]),
        Some(ordinary)
    );
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 1, &[]),
        Some(ordinary + 7.0)
    );
    let superuser = (SEG.max_connections - 1 - 8) as f64;
    // Derived figures: in the views (served series give them in PromQL).
    let view = exporter.instance_view(0).await?;
    assert_eq!(view["connections"]["used"], 8.0);
    assert_eq!(view["connections"]["headroom_superuser"], superuser);
    assert_eq!(
        view["connections"]["utilization"],
        8.0 / SEG.ordinary_slots() as f64
    );
    assert_eq!(
        m.seg(
            "greenplum_connections_by_user",
            0,
            &[("usename", "app_user")]
        ),
        Some(7.0)
    );
    assert_eq!(
        m.seg(
            "greenplum_connections_by_user",
            0,
            &[("usename", "gpadmin")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.seg(
            "greenplum_connections_by_application",
            0,
            &[("application_name", "greenplum_segment_exporter")]
        ),
        Some(1.0)
    );
    // Local sessions: one backend each, utility and the exporter's own.
    let backends = |kind: &str| m.seg("greenplum_backends", 0, &[("kind", kind)]);
    assert_eq!(
        (backends("utility"), backends("exporter")),
        (Some(7.0), Some(1.0))
    );
    assert_eq!(m.seg("greenplum_sessions", 0, &[("kind", "local")]), None);
    assert_eq!(
        m.seg("greenplum_sessions", 0, &[("kind", "distributed")]),
        Some(0.0)
    );
    Ok(())
}

async fn states_sessions_and_ages(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 2)?;
    let _in_tx = cluster
        .open_sessions(1, 2, SessionState::IdleInTransaction)
        .await?;
    let _active = cluster.open_sessions(1, 3, SessionState::Active).await?;
    // Two distributed sessions: a writer plus two readers on every segment each.
    let _s1 = cluster.dispatch(&gpemu_harness::Dispatch::new(2)).await?;
    let _s2 = cluster.dispatch(&gpemu_harness::Dispatch::new(2)).await?;
    let m = exporter
        .wait_for("sessions on content 1", |m| {
            used(m, 1) == Some(1.0 + 2.0 + 3.0 + 6.0)
        })
        .await?;
    assert_eq!(
        m.seg(
            "greenplum_connections",
            1,
            &[("state", "idle in transaction")]
        ),
        Some(4.0)
    );
    assert_eq!(
        m.seg("greenplum_connections", 1, &[("state", "active")]),
        Some(4.0)
    );
    assert_eq!(
        m.seg("greenplum_connections", 1, &[("state", "idle")]),
        Some(4.0)
    );
    assert_eq!(
        m.seg("greenplum_sessions", 1, &[("kind", "distributed")]),
        Some(2.0)
    );
    let backends = |kind: &str| m.seg("greenplum_backends", 1, &[("kind", kind)]);
    assert_eq!(
        (backends("utility"), backends("exporter")),
        (Some(5.0), Some(1.0))
    );
    assert_eq!(
        m.seg("greenplum_sessions", 0, &[("kind", "distributed")]),
        Some(2.0)
    );
    // Query executors carry an empty application_name.
    assert_eq!(
        m.seg(
            "greenplum_connections_by_application",
            1,
            &[("application_name", "")]
        ),
        Some(6.0)
    );
    let m = exporter
        .wait_for("ages above one second", |m| {
            m.seg("greenplum_connections_oldest_active_query_seconds", 1, &[])
                .is_some_and(|v| v >= 1.0)
                && m.seg(
                    "greenplum_connections_oldest_idle_in_transaction_seconds",
                    1,
                    &[],
                )
                .is_some_and(|v| v >= 1.0)
        })
        .await?;
    assert!(
        m.seg("greenplum_connections_oldest_active_query_seconds", 1, &[])
            .unwrap()
            < 120.0
    );
    // Content 0 has no long-running query of its own: the exporter's is excluded.
    assert_eq!(
        m.seg("greenplum_connections_oldest_active_query_seconds", 0, &[]),
        Some(0.0)
    );
    Ok(())
}

async fn filled_segment_shows_headroom_zero_and_stays_up(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 2)?;
    exporter
        .wait_for("first round", |m| used(m, 1) == Some(1.0))
        .await?;
    let held = cluster.fill(1).await?;
    // The exporter held its slot before the segment filled up.
    assert_eq!(held.len() as u32, SEG.ordinary_slots() - 1);
    let full = SEG.ordinary_slots() as f64;
    let m = exporter
        .wait_for("content 1 full", |m| used(m, 1) == Some(full))
        .await?;
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 1, &[]),
        Some(0.0)
    );
    let view = exporter.instance_view(1).await?;
    assert_eq!(view["connections"]["used"], full);
    assert_eq!(view["connections"]["utilization"], 1.0);
    assert_eq!(
        view["connections"]["headroom_superuser"],
        (SEG.max_connections - 1) as f64 - full
    );
    assert_eq!(m.seg("greenplum_up", 1, &[]), Some(1.0));
    assert!(cluster
        .connect(
            1,
            gpemu_harness::Login::Ordinary,
            gpemu_harness::Mode::Utility
        )
        .await
        .is_err());
    // Several rounds later it still reports the full segment.
    let m = exporter.wait_rounds(3.0).await?;
    assert_eq!(m.seg("greenplum_up", 1, &[]), Some(1.0));
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 1, &[]),
        Some(0.0)
    );
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 0, &[]),
        Some(full - 1.0)
    );
    Ok(())
}

/// Dispatched sessions (a writer and three readers each on every primary)
/// fill content 1, which has less room than content 0, until the next one is
/// refused (58M01 by a real coordinator, 53300 by the emulated segment):
/// used is what a utility session on content 1 counts, headroom 0, and the
/// distributed sessions are the sessions the test dispatched.
async fn dispatched_sessions_fill_a_segment_to_headroom_zero(backend: Backend) -> Result<()> {
    let small = InstanceSettings {
        max_connections: 20,
        ..SEG
    };
    let cluster = ClusterSpec::new(backend, 2)
        .settings_for(1, small)
        .start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    exporter
        .wait_for("first round", |m| used(m, 1) == Some(1.0))
        .await?;
    let burst = cluster.fill_with_sessions(1, 3).await?;
    assert!(!burst.refused.is_empty());
    let clients = match backend.family {
        Family::Gp6 => "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
        Family::Gp7 => {
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        }
    };
    let counted = cluster.query_i64(1, clients).await? as f64;
    assert_eq!(counted, f64::from(small.ordinary_slots()));
    let m = exporter
        .wait_for("content 1 full", |m| used(m, 1) == Some(counted))
        .await?;
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 1, &[]),
        Some(0.0),
        "{}",
        m.text
    );
    let sessions = burst.executors.len() as f64;
    assert_eq!(
        m.seg("greenplum_sessions", 1, &[("kind", "distributed")]),
        Some(sessions),
        "{}",
        m.text
    );
    assert_eq!(m.up(1), Some(1.0));
    Ok(())
}

/// Two distributed transactions left prepared on every segment (on real
/// servers the coordinator's second phase held by a fault): the count on
/// every segment, none on the coordinator, the limit, a growing oldest age,
/// both stale after the 2 s threshold, none once they commit.
async fn prepared_transactions_count_limit_and_age(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, "prepared_age_threshold = \"2s\"\n"))?;
    let m = exporter
        .wait_for("first round", |m| {
            m.seg("greenplum_prepared_transactions", 0, &[]).is_some()
        })
        .await?;
    assert_eq!(m.seg("greenplum_prepared_transactions", 0, &[]), Some(0.0));
    assert_eq!(
        m.seg("greenplum_prepared_transactions_oldest_age_seconds", 0, &[]),
        Some(0.0)
    );

    let prepared = cluster.hold_prepared(2).await?;
    let count = |m: &Metrics, c| m.seg("greenplum_prepared_transactions", c, &[]);
    let m = exporter
        .wait_for("two prepared on every segment", |m| {
            count(m, 0) == Some(2.0) && count(m, 1) == Some(2.0)
        })
        .await?;
    assert_eq!(count(&m, -1), Some(0.0));
    let max = SEG.max_prepared_transactions as f64;
    assert_eq!(
        m.seg("greenplum_prepared_transactions_max", 0, &[]),
        Some(max)
    );
    let view = exporter.instance_view(1).await?;
    assert_eq!(view["prepared"]["count"], 2.0);
    assert_eq!(view["prepared"]["headroom"], max - 2.0);
    let age = |m: &Metrics, c| {
        m.seg("greenplum_prepared_transactions_oldest_age_seconds", c, &[])
            .unwrap_or(0.0)
    };
    let first = age(&m, 0);
    let m = exporter
        .wait_for("both older than the 2 s threshold", |m| {
            (0..2).all(|c| m.seg("greenplum_prepared_transactions_stale", c, &[]) == Some(2.0))
        })
        .await?;
    for c in [0, 1] {
        assert!(age(&m, c) >= 2.0, "content {c}: {}", age(&m, c));
    }
    assert!(age(&m, 0) > first, "{first} then {}", age(&m, 0));

    cluster.release_prepared(prepared).await?;
    exporter
        .wait_for("none left", |m| {
            count(m, 0) == Some(0.0) && count(m, 1) == Some(0.0)
        })
        .await?;
    Ok(())
}

/// A transaction prepared in utility mode on one segment (Greenplum 7
/// allows it, real Greenplum 6 refuses it; the emulated one lets the test
/// shortcut through): only that segment counts it.
async fn a_transaction_prepared_in_utility_mode(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let gids = cluster.prepare_transactions(0, 1).await?;
    let m = exporter
        .wait_for("one prepared on content 0", |m| {
            m.seg("greenplum_prepared_transactions", 0, &[]) == Some(1.0)
        })
        .await?;
    assert_eq!(m.seg("greenplum_prepared_transactions", 1, &[]), Some(0.0));
    cluster.commit_prepared(0, &gids[0]).await?;
    exporter
        .wait_for("none left", |m| {
            m.seg("greenplum_prepared_transactions", 0, &[]) == Some(0.0)
        })
        .await?;
    Ok(())
}

async fn lock_waiter_and_growing_wait(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 2)?;
    let _held = cluster.lock_wait(1).await?;
    let waiters = |m: &Metrics| m.seg("greenplum_lock_waiting_backends", 1, &[]);
    let m = exporter
        .wait_for("one waiter", |m| waiters(m) == Some(1.0))
        .await?;
    assert_eq!(
        m.seg(
            "greenplum_lock_waiters",
            1,
            &[("locktype", "relation"), ("mode", "AccessShareLock")]
        ),
        Some(1.0)
    );
    assert_eq!(m.seg("greenplum_lock_blockers", 1, &[]), Some(1.0));
    assert_eq!(m.seg("greenplum_lock_waiting_backends", 0, &[]), Some(0.0));
    let first = m
        .seg("greenplum_lock_wait_longest_seconds", 1, &[])
        .unwrap();
    assert!(first > 0.0, "wait time {first}");
    let later = exporter
        .wait_for("a longer wait", |m| {
            m.seg("greenplum_lock_wait_longest_seconds", 1, &[])
                .is_some_and(|w| w >= first + 1.0)
        })
        .await?;
    assert_eq!(waiters(&later), Some(1.0));
    assert_eq!(
        later.seg("greenplum_lock_wait_longest_seconds", 0, &[]),
        Some(0.0)
    );
    Ok(())
}

/// Why backends wait, each reason made real: a lock wait and two sessions in
/// a resource queue on content 0, one waiting for synchronous replication on
/// content 1, three coordinator sessions queued for a resource group.
/// (`gpemu.wait_reason` declares the waits the emulation cannot produce:
/// docs/emulation.md.)
async fn waiting_backends_by_reason(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
    let _lock = cluster.lock_wait(0).await?;
    let _queue = cluster
        .waiting_sessions(0, 2, WaitReason::ResourceQueue, Login::Ordinary)
        .await?;
    let _sync = cluster
        .waiting_sessions(1, 1, WaitReason::Replication, Login::Ordinary)
        .await?;
    let _group = cluster
        .waiting_sessions(-1, 3, WaitReason::ResourceGroup, Login::Ordinary)
        .await?;
    let waiting = |m: &Metrics, content: i16, reason: &str| {
        m.seg("greenplum_backends_waiting", content, &[("reason", reason)])
    };
    let m = exporter
        .wait_for("every reason", |m| {
            waiting(m, -1, "resource_group") == Some(3.0)
                && waiting(m, 0, "resource_queue") == Some(2.0)
                && waiting(m, 1, "replication") == Some(1.0)
        })
        .await?;
    assert_eq!(waiting(&m, 0, "lock"), Some(1.0), "{}", m.text);
    // A reason is served only while a backend waits for it: no zero series.
    let served = |content: i16| {
        m.all(
            "greenplum_backends_waiting",
            &[("content", &content.to_string())],
        )
        .into_iter()
        .map(|(_, labels, v)| (labels["reason"].clone(), *v))
        .collect::<Vec<_>>()
    };
    let expect = |pairs: &[(&str, f64)]| {
        pairs
            .iter()
            .map(|(r, v)| (r.to_string(), *v))
            .collect::<Vec<_>>()
    };
    assert_eq!(served(-1), expect(&[("resource_group", 3.0)]));
    assert_eq!(served(0), expect(&[("lock", 1.0), ("resource_queue", 2.0)]));
    assert_eq!(served(1), expect(&[("replication", 1.0)]));
    // Queued coordinator sessions still hold a coordinator slot each.
    assert_eq!(used(&m, -1), Some(4.0), "{}", m.text);
    Ok(())
}

async fn catalog_status_follows_a_segment_marked_down(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
    let mirror = cluster
        .initial_catalog()
        .iter()
        .find(|r| r.content == 1 && r.role == 'm')
        .unwrap()
        .dbid
        .to_string();
    let up = |m: &Metrics, dbid: &str| m.get("greenplum_catalog_instance_up", &[("dbid", dbid)]);
    let m = exporter
        .wait_for("catalog", |m| up(m, &mirror) == Some(1.0))
        .await?;
    assert_eq!(
        m.get(
            "greenplum_catalog_instances",
            &[("role", "p"), ("status", "u")]
        ),
        Some(3.0)
    );
    assert_eq!(
        m.get(
            "greenplum_catalog_instances",
            &[("role", "m"), ("status", "u")]
        ),
        Some(2.0)
    );
    assert_eq!(
        m.get(
            "greenplum_catalog_instance_synchronized",
            &[("dbid", &mirror)]
        ),
        Some(1.0)
    );
    // Mode means nothing without a standby: no coordinator sync series.
    assert_eq!(
        m.seg("greenplum_catalog_instance_synchronized", -1, &[]),
        None
    );
    // Mirrors are reported from the catalog only, never connected to.
    assert_eq!(m.all("greenplum_up", &[]).len(), 3);
    assert_eq!(m.get("greenplum_exporter_instances", &[]), Some(3.0));

    cluster.set_catalog_status(mirror.parse()?, 'd').await?;
    let m = exporter
        .wait_for("mirror down", |m| up(m, &mirror) == Some(0.0))
        .await?;
    assert_eq!(
        m.get(
            "greenplum_catalog_instances",
            &[("role", "m"), ("status", "d")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "greenplum_catalog_instances",
            &[("role", "m"), ("status", "u")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "greenplum_catalog_instance_synchronized",
            &[("dbid", &mirror)]
        ),
        Some(0.0)
    );
    // In its preferred role: the mirror row's info says so (no series of its own).
    let info = m.all("greenplum_instance_info", &[("dbid", &mirror)]);
    assert_eq!(
        (
            info[0].1["role"].as_str(),
            info[0].1["preferred_role"].as_str()
        ),
        ("m", "m")
    );
    assert!(m
        .all("greenplum_catalog_instance_in_preferred_role", &[])
        .is_empty());
    Ok(())
}

/// Unmirrored segments and a coordinator without standby always say mode n:
/// no synchronized series at all, rather than zeros a DBA reads as faults.
async fn no_sync_state_without_mirrors(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let m = exporter
        .wait_for("catalog", |m| {
            m.all("greenplum_catalog_instance_up", &[]).len() == 3
        })
        .await?;
    assert!(
        m.all("greenplum_catalog_instance_synchronized", &[])
            .is_empty(),
        "{}",
        m.text
    );
    Ok(())
}

async fn coordinator_series_and_family_detection(backend: Backend) -> Result<()> {
    let family = backend.family;
    let (cluster, exporter) = start(backend, 2)?;
    let m = exporter
        .wait_for("coordinator", |m| used(m, -1).is_some())
        .await?;
    let c = cluster.coordinator();
    // Samples name the instance by cluster and content only...
    let up = m.all("greenplum_up", &[("content", "-1")]);
    assert_eq!(up.len(), 1);
    let names: Vec<&str> = up[0].1.keys().map(String::as_str).collect();
    assert_eq!(names, ["cluster", "content"], "{}", m.text);
    assert_eq!(up[0].2, 1.0);
    // ... greenplum_instance_info describes it.
    let port = c.port.to_string();
    let described = [
        ("cluster", "test"),
        ("content", "-1"),
        ("dbid", "1"),
        ("role", "p"),
        ("preferred_role", "p"),
        ("hostname", c.hostname.as_str()),
        ("address", "127.0.0.1"),
        ("port", port.as_str()),
    ];
    assert_eq!(m.get("greenplum_instance_info", &described), Some(1.0));
    assert_eq!(used(&m, -1), Some(1.0));
    let max = InstanceSettings::COORDINATOR.max_connections as f64;
    assert_eq!(m.seg("greenplum_connections_max", -1, &[]), Some(max));
    // No FTS slot on the coordinator: superusers may use all but the used slots.
    let view = exporter.instance_view(-1).await?;
    assert_eq!(view["connections"]["used"], 1.0);
    assert_eq!(view["connections"]["headroom_superuser"], max - 1.0);
    let info = m.all("greenplum_cluster_info", &[("family", family.name())]);
    assert_eq!(info.len(), 1, "{}", m.text);
    assert!(info[0].1["version"].contains("Greenplum Database"));
    assert_eq!(m.get("greenplum_exporter_build_info", &[]), Some(1.0));
    assert_eq!(
        m.get("greenplum_exporter_collect_interval_seconds", &[]),
        Some(1.0)
    );
    // A segment's description comes from its catalog row; mirrors have one too.
    let seg = &cluster.segments()[1];
    let (dbid, port) = (seg.dbid.to_string(), seg.port.to_string());
    let seg_labels = [
        ("content", "1"),
        ("dbid", dbid.as_str()),
        ("role", "p"),
        ("port", port.as_str()),
        ("hostname", seg.hostname.as_str()),
    ];
    assert_eq!(m.get("greenplum_instance_info", &seg_labels), Some(1.0));
    assert_eq!(
        m.all("greenplum_instance_info", &[]).len(),
        cluster.initial_catalog().len()
    );
    Ok(())
}

async fn own_backends_never_exceed_the_pool_size(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 3)?;
    exporter.wait_rounds(6.0).await?;
    for inst in cluster.instances() {
        let n = cluster
            .query_i64(
                inst.content,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'greenplum_segment_exporter'",
            )
            .await?;
        assert_eq!(n, 1, "content {}", inst.content);
    }
    Ok(())
}

async fn exposition_passes_promtool_and_endpoints_answer(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 2)?;
    // Prepared first: the lock wait's table lock would hold up its writes.
    let _prepared = cluster.hold_prepared(1).await?;
    let _held = cluster.open_sessions(0, 2, SessionState::Idle).await?;
    let _lock = cluster.lock_wait(0).await?;
    let m = exporter
        .wait_for("a full round", |m| {
            m.seg("greenplum_lock_waiting_backends", 0, &[]) == Some(1.0)
        })
        .await?;
    let report = promtool_check_metrics(&m.text)?;
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );

    assert_eq!(exporter.get("/-/healthy").await?.0, 200);
    assert_eq!(exporter.get("/-/ready").await?.0, 200);
    let (status, landing) = exporter.get("/").await?;
    assert_eq!(status, 200);
    assert!(landing.contains("href=\"/metrics\""));
    assert!(m.get("process_resident_memory_bytes", &[]).is_some());
    Ok(())
}

/// Every collector (the default), the family detected or fixed in the
/// configuration: every instance is collected and none reports an error. The
/// emulation refuses settings and functions the family's real server lacks,
/// so a statement or startup option that Greenplum 6 or 7 would refuse fails
/// here.
async fn every_collector_collects_every_instance(backend: Backend) -> Result<()> {
    let family = backend.family;
    let cluster = ClusterSpec::new(backend, 2)
        .mirrors(!backend.is_real())
        .start()?;
    for choice in ["auto", family.name()] {
        let config = config_for(&cluster, &format!("family = \"{choice}\"\n"));
        let exporter = Exporter::start(&config)?;
        let m = exporter
            .wait_for("a round with the topology", |m| {
                m.all("greenplum_up", &[]).len() == cluster.instances().len()
            })
            .await?;
        let m = exporter.wait_rounds(1.0).await.unwrap_or(m);
        for inst in cluster.instances() {
            let c = inst.content;
            assert_eq!(
                m.up(c),
                Some(1.0),
                "family = {choice}, content {c}:\n{}",
                m.text
            );
            for name in [
                "greenplum_connections_used",
                "greenplum_prepared_transactions",
                "greenplum_lock_waiting_backends",
            ] {
                assert!(m.seg(name, c, &[]).is_some(), "{name} of content {c}");
            }
            let backends = m.all("greenplum_backends", &[("content", &c.to_string())]);
            assert!(!backends.is_empty(), "greenplum_backends of content {c}");
            let settings = m.all("greenplum_setting", &[("content", &c.to_string())]);
            assert!(!settings.is_empty(), "greenplum_setting of content {c}");
            // No instance has a walsender here (no standby runs): none, no lag.
            let none = [("state", "none")];
            assert_eq!(m.seg("greenplum_replication_state", c, &none), Some(1.0));
            let lag = m.all(
                "greenplum_replication_lag_bytes",
                &[("content", &c.to_string())],
            );
            assert!(lag.is_empty(), "content {c}: {lag:?}");
        }
        assert!(
            m.all("greenplum_last_error_info", &[]).is_empty(),
            "family = {choice}:\n{}",
            m.text
        );
        assert_eq!(
            m.all("greenplum_catalog_instance_up", &[]).len(),
            cluster.initial_catalog().len()
        );
    }
    Ok(())
}

/// On GP6 (PostgreSQL 9.4) a mirror's walsender holds a max_connections slot
/// that GP6's pg_stat_activity hides: with a real streaming standby of a
/// segment, `used` is its client backends plus one, and headroom one lower.
/// GP7's walsenders have slots of their own.
async fn a_walsender_holds_a_slot_on_gp6(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).start()?;
    let _standby = cluster.start_standby(0).await?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let _held = cluster.open_sessions(0, 3, SessionState::Idle).await?;
    let clients = 4.0; // the three sessions and the exporter
    let walsenders = match family {
        Family::Gp6 => 1.0,
        Family::Gp7 => 0.0,
    };
    let m = exporter
        .wait_for("three sessions on content 0", |m| {
            m.seg("greenplum_connections", 0, &[("state", "idle")]) == Some(3.0)
        })
        .await?;
    assert_eq!(used(&m, 0), Some(clients + walsenders), "{}", m.text);
    assert_eq!(used(&m, 1), Some(1.0));
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 0, &[]),
        Some(f64::from(SEG.ordinary_slots()) - clients - walsenders)
    );
    let exported = m.seg("greenplum_connections_walsenders", 0, &[]);
    assert_eq!(exported, (family == Family::Gp6).then_some(1.0));
    Ok(())
}

/// Greenplum 5 (PostgreSQL 8.3) lacks what the collectors' SQL needs: the
/// exporter refuses it, naming the version, rather than failing every round.
async fn greenplum_5_is_refused_naming_its_version(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    cluster
        .admin(-1)
        .await?
        .batch_execute(
            "SET allow_system_table_mods = on; \
             CREATE OR REPLACE FUNCTION pg_catalog.version() RETURNS text LANGUAGE sql AS \
             $$SELECT 'PostgreSQL 8.3.23 (Greenplum Database 5.29.1 build commit:x) on x86_64'::text$$",
        )
        .await?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let m = exporter
        .wait_for("the coordinator refused", |m| m.error_kind(-1).is_some())
        .await?;
    assert_eq!(m.error_kind(-1).as_deref(), Some("not_supported"));
    let info = m.all("greenplum_last_error_info", &[("content", "-1")]);
    let message = &info[0].1["message"];
    assert!(
        message.starts_with("Greenplum Database 5.29.1 is not supported"),
        "{message}"
    );
    assert_eq!(m.up(-1), Some(0.0));
    assert!(m.up(0).is_none(), "no segment is collected:\n{}", m.text);
    assert!(exporter
        .log()
        .contains("Greenplum Database 5.29.1 is not supported"));
    Ok(())
}

/// A statement queued in a resource queue is queueing, not a lock wait. On
/// GP6 it is an ungranted `pg_locks` row of type `resource queue` and the
/// backend shows `waiting_reason = 'lock'` (GP7: an ungranted row too, wait
/// event `ResourceQueue`); the emulation shows a declared wait that way
/// (docs/emulation.md). One queued coordinator session: reason
/// `resource_queue` 1, and no lock waiter, blocker or wait time, in
/// `/metrics` and in what `top` and the status page show. A real lock wait
/// beside it still counts 1, its wait time its own.
async fn a_resource_queue_wait_is_not_a_lock_wait(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 1)?;
    // A role of its own: on a real cluster the helper moves it to a queue.
    cluster.create_role("queued").await?;
    let queued_at = std::time::Instant::now();
    let _queued = cluster
        .waiting_sessions(-1, 1, WaitReason::ResourceQueue, Login::Named("queued"))
        .await?;
    let queue_locks =
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'resource queue'";
    assert_eq!(cluster.query_i64(-1, queue_locks).await?, 1);
    let waiting =
        |m: &Metrics, reason: &str| m.seg("greenplum_backends_waiting", -1, &[("reason", reason)]);
    let lock_figures = |m: &Metrics| {
        [
            "greenplum_lock_waiting_backends",
            "greenplum_lock_blockers",
            "greenplum_lock_wait_longest_seconds",
        ]
        .map(|name| m.seg(name, -1, &[]))
    };
    let m = exporter
        .wait_for("the queued session", |m| {
            waiting(m, "resource_queue") == Some(1.0)
        })
        .await?;
    assert_eq!(lock_figures(&m), [Some(0.0); 3], "{}", m.text);
    assert!(
        m.all("greenplum_lock_waiters", &[("content", "-1")])
            .is_empty(),
        "{}",
        m.text
    );
    assert_eq!(waiting(&m, "lock"), None, "{}", m.text);
    let view = exporter.instance_view(-1).await?;
    assert_eq!(view["locks"]["waiting"], 0.0, "{view}");
    assert_eq!(view["locks"]["blockers"], 0.0, "{view}");
    assert_eq!(view["locks"]["longest_wait_seconds"], 0.0, "{view}");

    // Queued for a while first, so that its wait is longer than any the
    // lock wait can have reached when it is seen.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(queued_at.elapsed())).await;
    let lock_started = std::time::Instant::now();
    let _lock = cluster.lock_wait(-1).await?;
    let m = exporter
        // Both views: pg_locks shows the ungranted lock a moment before
        // pg_stat_activity shows the backend waiting.
        .wait_for("the lock wait", |m| {
            m.seg("greenplum_lock_waiting_backends", -1, &[]) == Some(1.0)
                && waiting(m, "lock") == Some(1.0)
        })
        .await?;
    let lock_age = lock_started.elapsed().as_secs_f64();
    assert_eq!(
        m.all("greenplum_lock_waiters", &[("content", "-1")])
            .iter()
            .map(|(_, labels, v)| (labels["locktype"].as_str(), labels["mode"].as_str(), *v))
            .collect::<Vec<_>>(),
        [("relation", "AccessShareLock", 1.0)],
        "{}",
        m.text
    );
    assert_eq!(m.seg("greenplum_lock_blockers", -1, &[]), Some(1.0));
    let longest = m
        .seg("greenplum_lock_wait_longest_seconds", -1, &[])
        .unwrap_or(0.0);
    assert!(
        longest > 0.0 && longest <= lock_age,
        "lock wait {longest} s, begun {lock_age:.1} s ago, queued {:.1} s ago",
        queued_at.elapsed().as_secs_f64()
    );
    assert_eq!(waiting(&m, "resource_queue"), Some(1.0));
    assert_eq!(waiting(&m, "lock"), Some(1.0));
    let view = exporter.instance_view(-1).await?;
    assert_eq!(view["locks"]["waiting"], 1.0, "{view}");
    assert_eq!(view["locks"]["blockers"], 1.0, "{view}");
    Ok(())
}

/// `max_wal_senders` on both families: Greenplum 6 hides it from
/// `pg_settings` (as the emulation does), so it is read another way. The
/// segments are given 7, the coordinator keeps its own.
async fn max_wal_senders_is_served_on_both_families(backend: Backend) -> Result<()> {
    let family = backend.family;
    let cluster = ClusterSpec::new(backend, 2)
        .segment_setting("max_wal_senders", "7")
        .start()?;
    let listed = "SELECT count(*) FROM pg_settings WHERE name = 'max_wal_senders'";
    assert_eq!(
        cluster.query_i64(0, listed).await?,
        i64::from(family == Family::Gp7)
    );
    let coordinator = cluster
        .query_i64(-1, "SELECT current_setting('max_wal_senders')::int8")
        .await?;
    assert_ne!(coordinator, 7);
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let setting = |m: &Metrics, content: i16| {
        m.seg("greenplum_setting", content, &[("name", "max_wal_senders")])
    };
    let m = exporter
        .wait_for("every instance", |m| {
            [-1, 0, 1].iter().all(|c| m.up(*c) == Some(1.0))
        })
        .await?;
    assert_eq!(setting(&m, 0), Some(7.0), "{}", m.text);
    assert_eq!(setting(&m, 1), Some(7.0), "{}", m.text);
    assert_eq!(setting(&m, -1), Some(coordinator as f64), "{}", m.text);
    Ok(())
}

/// The lines of a server log that report an error: FATAL, ERROR or PANIC
/// (PostgreSQL's text log on the emulation, Greenplum's CSV on real servers).
fn error_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            [
                " FATAL: ",
                " ERROR: ",
                " PANIC: ",
                ",\"FATAL\",",
                ",\"ERROR\",",
                ",\"PANIC\",",
            ]
            .iter()
            .any(|s| l.contains(s))
        })
        .collect()
}

/// With `family = "auto"` the daemon and `top` find the family without a
/// refused login: the coordinator's server log gains no FATAL or ERROR line
/// while they start, detect the family and collect. (That such a line would
/// be seen: a login with the other family's option is refused, and logged.)
async fn family_detection_leaves_no_error_in_the_coordinator_log(backend: Backend) -> Result<()> {
    let family = backend.family;
    let cluster = ClusterSpec::new(backend, 1).start()?;
    let log = || cluster.server_log(-1);
    let before = log()?.len();
    let exporter = Exporter::start(&config_for(&cluster, "family = \"auto\"\n"))?;
    let m = exporter
        .wait_for("both instances", |m| {
            m.up(-1) == Some(1.0) && m.up(0) == Some(1.0)
        })
        .await?;
    let info = m.all("greenplum_cluster_info", &[("family", family.name())]);
    assert_eq!(info.len(), 1, "{}", m.text);
    exporter.wait_rounds(2.0).await?;
    let top = std::process::Command::new(support::EXPORTER)
        .arg("top")
        .arg("--json")
        .arg(format!("--config.file={}", exporter.config_path.display()))
        .output()?;
    assert!(
        top.status.success(),
        "{}",
        String::from_utf8_lossy(&top.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&top.stdout)?;
    assert_eq!(doc["clusters"][0]["family"], family.name(), "{doc}");
    drop(exporter);

    // The server's log is written by its logger process a little after the
    // event: once the refused login's line is there, everything the exporter
    // caused before it is too.
    let refused = cluster
        .connect(-1, Login::Superuser, Mode::WrongFamilyUtility)
        .await;
    assert!(
        refused.is_err(),
        "the other family's utility option was accepted"
    );
    let is_the_refusal = |line: &str| {
        line.contains("unrecognized configuration parameter")
            || line.contains("System was started in master-only utility mode")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let errors = loop {
        let written = log()?;
        let errors: Vec<String> = error_lines(&written[before..])
            .into_iter()
            .map(String::from)
            .collect();
        if errors.iter().any(|l| is_the_refusal(l)) || std::time::Instant::now() > deadline {
            break errors;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        errors.len() == 1 && is_the_refusal(&errors[0]),
        "the only error line should be the refused login's:\n{}",
        errors.join("\n")
    );
    Ok(())
}

/// Prometheus' own scrape header: OpenMetrics first.
const PROMETHEUS_ACCEPT: &str = "Accept: application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";

/// Checks OpenMetrics' rules a text-format reader does not: each family
/// once, `# HELP` then `# TYPE`; a counter family named without `_total`,
/// its samples `<family>_total` (or `_created`, which this exporter does not
/// write); a gauge's samples named as the family and no gauge named like a
/// counter's sample; help escapes `\\`, `\n`, `\"` only; `# EOF` last, once.
fn check_openmetrics(om: &str) -> Result<(), String> {
    let (body, tail) = om.rsplit_once("# EOF\n").ok_or("no # EOF")?;
    if !tail.is_empty() || body.contains("# EOF") {
        return Err(format!("# EOF is not last and once: {tail:?}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut family: Option<(String, String)> = None;
    let mut help: Option<String> = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut chars = text.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if matches!(chars.next(), Some('\\' | 'n' | '"')) => {}
                    '\\' => return Err(format!("bad escape in {line}")),
                    '"' => return Err(format!("unescaped quote in {line}")),
                    _ => {}
                }
            }
            if !seen.insert(name.to_owned()) {
                return Err(format!("family {name} twice"));
            }
            help = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad {line}"))?;
            if help.as_deref() != Some(name) {
                return Err(format!("TYPE without its HELP: {line}"));
            }
            match kind {
                "counter" if name.ends_with("_total") => {
                    return Err(format!("counter family named with _total: {line}"))
                }
                "gauge" if name.ends_with("_total") || name.ends_with("_created") => {
                    return Err(format!("gauge named like a counter's sample: {line}"))
                }
                "counter" | "gauge" => {}
                other => return Err(format!("unexpected type {other}: {line}")),
            }
            family = Some((name.to_owned(), kind.to_owned()));
        } else if line.starts_with('#') {
            return Err(format!("unexpected comment {line}"));
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let (f, kind) = family
                .as_ref()
                .ok_or(format!("sample before a TYPE: {line}"))?;
            let ok = match kind.as_str() {
                "counter" => name == format!("{f}_total"),
                _ => name == f,
            };
            if !ok {
                return Err(format!("{name} is not a sample of {kind} {f}"));
            }
        }
    }
    Ok(())
}

/// The series (name and labels) of an exposition, in order.
fn series(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_owned())
        .collect()
}

/// Prometheus' OpenMetrics parser (`promtool tsdb create-blocks-from
/// openmetrics`, which needs a timestamp on every sample: one is added).
fn prometheus_parses_openmetrics(om: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let stamped: String = om
        .lines()
        .map(|l| match l.starts_with('#') {
            true => format!("{l}\n"),
            false => format!("{l} {now}\n"),
        })
        .collect();
    let input = dir.path().join("scrape.om");
    std::fs::write(&input, stamped)?;
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.path().join("blocks"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "Prometheus' OpenMetrics parser refused the body: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A scraper that prefers OpenMetrics, as Prometheus does, gets it: its
/// content type, counters named by OpenMetrics' rules, `# EOF` last, the same
/// series as the text format (which promtool lints) and a body Prometheus'
/// OpenMetrics parser reads; gzipped too.
async fn openmetrics_is_negotiated_and_follows_its_rules(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
    let _held = cluster.open_sessions(0, 2, SessionState::Idle).await?;
    let _lock = cluster.lock_wait(0).await?;
    let _prepared = cluster.prepare_transactions(1, 1).await?;
    exporter
        .wait_for("a full round", |m| {
            m.seg("greenplum_lock_waiting_backends", 0, &[]) == Some(1.0)
        })
        .await?;
    let (status, head, body) = exporter.get_with("/metrics", PROMETHEUS_ACCEPT).await?;
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains(
            "\r\ncontent-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
        ),
        "{head}"
    );
    let om = String::from_utf8(body)?;
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    check_openmetrics(&om).map_err(|e| anyhow::anyhow!("{e}\n{om}"))?;
    for counter in [
        "greenplum_scrape_errors",
        "greenplum_exporter_rounds",
        "process_cpu_seconds",
    ] {
        assert!(
            om.contains(&format!("\n# TYPE {counter} counter\n{counter}_total")),
            "{counter}"
        );
    }
    prometheus_parses_openmetrics(&om)?;

    let (text_status, text) = exporter.get("/metrics").await?;
    assert_eq!(text_status, 200);
    let report = promtool_check_metrics(&text)?;
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
    assert!(!text.contains("# EOF"));
    // The check bites: the text format's counter lines break its rules.
    let as_text = check_openmetrics(&format!("{text}# EOF\n")).unwrap_err();
    assert!(
        as_text.contains("counter family named with _total"),
        "{as_text}"
    );
    // The same series: a round between the two requests may add or drop a
    // transient one (a state), so ask again until a pair matches.
    let mut pair = (series(&om), series(&text));
    for _ in 0..5 {
        if pair.0 == pair.1 {
            break;
        }
        let (_, _, om) = exporter.get_with("/metrics", PROMETHEUS_ACCEPT).await?;
        let (_, text) = exporter.get("/metrics").await?;
        pair = (series(&String::from_utf8(om)?), series(&text));
    }
    assert_eq!(pair.0, pair.1);

    let gzip = format!("{PROMETHEUS_ACCEPT}Accept-Encoding: gzip\r\n");
    let (_, head, zipped) = exporter.get_with("/metrics", &gzip).await?;
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&zipped[..]),
        &mut unzipped,
    )?;
    check_openmetrics(&unzipped).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(series(&unzipped).len(), series(&om).len());
    Ok(())
}

/// `greenplum_scrape_errors_total` is there from the first round, at 0 for
/// every kind the exporter knows, on every instance; a stopped segment
/// counts its kind up, the others stay at 0.
async fn scrape_errors_start_at_zero_for_every_kind(backend: Backend) -> Result<()> {
    let (cluster, exporter) = start(backend, 2)?;
    let m = exporter
        .wait_for("every instance up", |m| {
            cluster
                .instances()
                .iter()
                .all(|i| m.up(i.content) == Some(1.0))
        })
        .await?;
    for inst in cluster.instances() {
        let content = inst.content.to_string();
        let errors = m.all("greenplum_scrape_errors_total", &[("content", &content)]);
        let kinds: Vec<&str> = errors.iter().map(|s| s.1["kind"].as_str()).collect();
        let known: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(kinds, known, "content {content}");
        assert!(
            errors.iter().all(|s| s.2 == 0.0),
            "content {content}:\n{}",
            m.text
        );
    }
    cluster.stop(1)?;
    let m = exporter
        .wait_for("content 1 refused", |m| {
            m.seg("greenplum_scrape_errors_total", 1, &[("kind", "connect")]) >= Some(1.0)
        })
        .await?;
    let others: f64 = m
        .all("greenplum_scrape_errors_total", &[("content", "1")])
        .iter()
        .filter(|s| s.1["kind"] != "connect")
        .map(|s| s.2)
        .sum();
    assert_eq!(others, 0.0, "{}", m.text);
    for c in [-1, 0] {
        let total: f64 = m
            .all(
                "greenplum_scrape_errors_total",
                &[("content", &c.to_string())],
            )
            .iter()
            .map(|s| s.2)
            .sum();
        assert_eq!(total, 0.0, "content {c}");
    }
    Ok(())
}

/// The series each collector alone writes.
fn collector_series(c: CollectorName) -> &'static str {
    match c {
        CollectorName::Connections => "greenplum_connections_used",
        CollectorName::Prepared => "greenplum_prepared_transactions",
        CollectorName::Locks => "greenplum_lock_waiting_backends",
        CollectorName::Settings => "greenplum_setting",
        CollectorName::Sessions => "greenplum_backends",
        CollectorName::Replication => "greenplum_replication_state",
        CollectorName::Topology => "greenplum_catalog_instance_up",
        CollectorName::Log => "greenplum_log_reading",
    }
}

/// Waits two rounds past every instance up and returns which collectors'
/// series are served.
async fn collectors_served(exporter: &Exporter, instances: usize) -> Result<Vec<CollectorName>> {
    exporter
        .wait_for("every instance up", |m| {
            m.all("greenplum_up", &[])
                .iter()
                .filter(|s| s.2 == 1.0)
                .count()
                == instances
        })
        .await?;
    let m = exporter.wait_rounds(2.0).await?;
    Ok(CollectorName::ALL
        .into_iter()
        .filter(|c| !m.all(collector_series(*c), &[]).is_empty())
        .collect())
}

/// `--no-collector.<name>` and `--collector.<name>` switch collectors with
/// `--coordinator.dsn` (no file to say it) and over a file's `collectors`
/// list (the flags win); `--collector.disable-defaults` leaves only those
/// enabled by flag.
async fn collector_flags_take_effect(family: Family) -> Result<()> {
    use CollectorName::*;
    let cluster = ClusterSpec::new(family, 2).mirrors(true).start()?;
    let n = cluster.instances().len();
    let dsn = format!(
        "--coordinator.dsn=host=127.0.0.1 port={} user={} dbname=postgres",
        cluster.coordinator().port,
        gpemu_harness::SUPERUSER
    );
    let env = [("PGPASSWORD", gpemu_harness::SUPERUSER_PASSWORD)];
    let base = [dsn.as_str(), "--collect.interval=1s"];
    fn with<'a>(base: &[&'a str], flags: &[&'a str]) -> Vec<&'a str> {
        [base, flags].concat()
    }

    // Every collector: the defaults and the opt-in `log`.
    let all = Exporter::start_with_flags(&with(&base, &["--collector.log"]), &env)?;
    assert_eq!(collectors_served(&all, n).await?, CollectorName::ALL);
    drop(all);
    let without = Exporter::start_with_flags(
        &with(&base, &["--no-collector.locks", "--no-collector.topology"]),
        &env,
    )?;
    assert_eq!(
        collectors_served(&without, n).await?,
        [Connections, Prepared, Settings, Sessions, Replication]
    );
    drop(without);
    let only = Exporter::start_with_flags(
        &with(
            &base,
            &["--collector.disable-defaults", "--collector.prepared"],
        ),
        &env,
    )?;
    assert_eq!(collectors_served(&only, n).await?, [Prepared]);
    drop(only);

    // A file enabling connections and settings; the flags add locks and
    // take settings away.
    let file = config_for(&cluster, "collectors = [\"connections\", \"settings\"]\n");
    let flagged =
        Exporter::start_with_args(&file, &["--collector.locks", "--no-collector.settings"])?;
    assert_eq!(collectors_served(&flagged, n).await?, [Connections, Locks]);
    Ok(())
}

gpemu_harness::for_each_backend!(
    every_collector_collects_every_instance,
    k_ordinary_connections_change_only_that_segment,
    states_sessions_and_ages,
    filled_segment_shows_headroom_zero_and_stays_up,
    dispatched_sessions_fill_a_segment_to_headroom_zero,
    prepared_transactions_count_limit_and_age,
    lock_waiter_and_growing_wait,
    a_resource_queue_wait_is_not_a_lock_wait,
    max_wal_senders_is_served_on_both_families,
    family_detection_leaves_no_error_in_the_coordinator_log,
    no_sync_state_without_mirrors,
    coordinator_series_and_family_detection,
    own_backends_never_exceed_the_pool_size,
    exposition_passes_promtool_and_endpoints_answer,
    scrape_errors_start_at_zero_for_every_kind,
);

// Conventions of the HTTP side and the flags: the family does not matter,
// the emulation serves them.
gpemu_harness::for_each_family!(
    openmetrics_is_negotiated_and_follows_its_rules,
    collector_flags_take_effect,
);

// Real Greenplum 6 refuses PREPARE TRANSACTION in utility mode.
gpemu_harness::backend_tests!(a_transaction_prepared_in_utility_mode: gp6, gp7, real_gp7);

// Declared waits, a doctored version(), standbys and catalog edits: what
// only the emulation can be made to show on demand.
gpemu_harness::for_each_family!(
    greenplum_5_is_refused_naming_its_version,
    a_walsender_holds_a_slot_on_gp6,
    waiting_backends_by_reason,
    catalog_status_follows_a_segment_marked_down,
);
