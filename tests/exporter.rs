//! The exporter against emulated clusters: each test creates the real
//! situation on real servers and asserts the exact figures served at /metrics.

mod support;

use anyhow::Result;
use gpemu_harness::{
    Cluster, ClusterSpec, Family, InstanceSettings, Login, SessionState, WaitReason,
};
use support::{config_for, promtool_check_metrics, Exporter, Metrics};

const SEG: InstanceSettings = InstanceSettings::SEGMENT;

fn start(family: Family, segments: usize) -> Result<(Cluster, Exporter)> {
    let cluster = ClusterSpec::new(family, segments).mirrors(true).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    Ok((cluster, exporter))
}

fn used(m: &Metrics, content: i16) -> Option<f64> {
    m.seg("greenplum_connections_used", content, &[])
}

async fn k_ordinary_connections_change_only_that_segment(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
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

async fn states_sessions_and_ages(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
    let _in_tx = cluster
        .open_sessions(1, 2, SessionState::IdleInTransaction)
        .await?;
    let _active = cluster.open_sessions(1, 3, SessionState::Active).await?;
    // Two distributed sessions: a writer plus two readers on every segment each.
    let _s1 = cluster
        .dispatch(&gpemu_harness::Dispatch::new(101, 2))
        .await?;
    let _s2 = cluster
        .dispatch(&gpemu_harness::Dispatch::new(102, 2))
        .await?;
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

async fn filled_segment_shows_headroom_zero_and_stays_up(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
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

async fn prepared_transactions_count_limit_and_age(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).start()?;
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

    let gids = cluster.prepare_transactions(0, 2).await?;
    let m = exporter
        .wait_for("two prepared", |m| {
            m.seg("greenplum_prepared_transactions", 0, &[]) == Some(2.0)
        })
        .await?;
    let max = SEG.max_prepared_transactions as f64;
    assert_eq!(
        m.seg("greenplum_prepared_transactions_max", 0, &[]),
        Some(max)
    );
    let view = exporter.instance_view(0).await?;
    assert_eq!(view["prepared"]["count"], 2.0);
    assert_eq!(view["prepared"]["headroom"], max - 2.0);
    assert_eq!(m.seg("greenplum_prepared_transactions", 1, &[]), Some(0.0));
    let m = exporter
        .wait_for("both older than the 2 s threshold", |m| {
            m.seg("greenplum_prepared_transactions_stale", 0, &[]) == Some(2.0)
        })
        .await?;
    assert!(
        m.seg("greenplum_prepared_transactions_oldest_age_seconds", 0, &[])
            .unwrap()
            >= 2.0
    );

    cluster.commit_prepared(0, &gids[0]).await?;
    cluster.commit_prepared(0, &gids[1]).await?;
    exporter
        .wait_for("none left", |m| {
            m.seg("greenplum_prepared_transactions", 0, &[]) == Some(0.0)
        })
        .await?;
    Ok(())
}

async fn lock_waiter_and_growing_wait(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
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
async fn no_sync_state_without_mirrors(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).start()?;
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

async fn coordinator_series_and_family_detection(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
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

async fn own_backends_never_exceed_the_pool_size(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 3)?;
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

async fn exposition_passes_promtool_and_endpoints_answer(family: Family) -> Result<()> {
    let (cluster, exporter) = start(family, 2)?;
    let _held = cluster.open_sessions(0, 2, SessionState::Idle).await?;
    let _lock = cluster.lock_wait(0).await?;
    let _prepared = cluster.prepare_transactions(1, 1).await?;
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
async fn every_collector_collects_every_instance(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).mirrors(true).start()?;
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

gpemu_harness::for_each_family!(
    every_collector_collects_every_instance,
    greenplum_5_is_refused_naming_its_version,
    a_walsender_holds_a_slot_on_gp6,
    k_ordinary_connections_change_only_that_segment,
    states_sessions_and_ages,
    filled_segment_shows_headroom_zero_and_stays_up,
    prepared_transactions_count_limit_and_age,
    lock_waiter_and_growing_wait,
    waiting_backends_by_reason,
    catalog_status_follows_a_segment_marked_down,
    no_sync_state_without_mirrors,
    coordinator_series_and_family_detection,
    own_backends_never_exceed_the_pool_size,
    exposition_passes_promtool_and_endpoints_answer,
);
