//! Who holds the segment slots: distributed sessions of several users and
//! applications are dispatched the way a coordinator does it (a writer plus
//! cached readers on every segment, sharing the session id, and the session
//! on the coordinator), and the exporter must attribute every segment
//! backend exactly.

mod support;

use anyhow::Result;
use gpemu_harness::{ClusterSpec, Dispatch, Family, Login, Mode, SessionState};
use support::{config_for, Exporter, Metrics};

async fn segment_backends_are_attributed_to_sessions_users_and_applications(
    family: Family,
) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2)
        .segment_setting("gpemu.cached_segworkers_threshold", "4")
        .start()?;
    cluster.create_role("alice").await?;
    cluster.create_role("bob").await?;
    let session = |id, readers, user, app, state| Dispatch {
        session_id: id,
        readers,
        login: Login::Named(user),
        application_name: app,
        state,
    };
    // Per segment: 4 + 2 + 3 executors of live sessions.
    let _s101 = cluster
        .dispatch(&session(
            101,
            3,
            "alice",
            "etl",
            SessionState::IdleInTransaction,
        ))
        .await?;
    let _s102 = cluster
        .dispatch(&session(102, 1, "alice", "bi", SessionState::Idle))
        .await?;
    let _s103 = cluster
        .dispatch(&session(103, 2, "bob", "etl", SessionState::Active))
        .await?;
    // Two executors on content 0 whose coordinator session is gone.
    let mut orphans = Vec::new();
    for writer in [true, false] {
        let mode = Mode::Executor {
            session_id: 999,
            writer,
        };
        orphans.push(cluster.connect(0, Login::Ordinary, mode).await?);
    }
    let _utility = cluster.open_sessions(1, 2, SessionState::Idle).await?;

    let exporter = Exporter::start(&config_for(
        &cluster,
        "[clusters.top_n]\nusename = 1\nsessions = 2\n",
    ))?;
    let kind = |m: &Metrics, content: i16, kind: &str| {
        m.seg("greenplum_backends", content, &[("kind", kind)])
    };
    let m = exporter
        .wait_for("settled backends by kind", |m| {
            kind(m, 0, "utility") == Some(0.0)
                && kind(m, 1, "utility") == Some(2.0)
                && kind(m, -1, "utility") == Some(0.0)
                && kind(m, 0, "executor_active") == Some(7.0)
        })
        .await?;
    for (content, orphaned) in [(0, Some(2.0)), (1, None)] {
        assert_eq!(kind(&m, content, "executor_active"), Some(7.0));
        assert_eq!(kind(&m, content, "executor_idle_session"), Some(2.0));
        // Served only while there are any.
        assert_eq!(kind(&m, content, "executor_orphaned"), orphaned);
        // Served only while the coordinator is not read.
        assert_eq!(kind(&m, content, "executor_unattributed"), None);
        assert_eq!(kind(&m, content, "exporter"), Some(1.0));
        assert_eq!(kind(&m, content, "dispatcher"), None);
    }
    assert_eq!(kind(&m, -1, "dispatcher"), Some(3.0));
    assert_eq!(kind(&m, -1, "exporter"), Some(1.0));

    // Per role, capped at one: alice, and bob in `other`.
    let user = |name: &str| m.get("greenplum_segment_backends_by_user", &[("usename", name)]);
    let user_max = |name: &str| {
        m.get(
            "greenplum_segment_backends_by_user_max",
            &[("usename", name)],
        )
    };
    assert_eq!(user("alice"), Some(12.0));
    assert_eq!(user_max("alice"), Some(6.0));
    assert_eq!(user("other"), Some(6.0));
    assert_eq!(user_max("other"), Some(3.0));
    assert_eq!(user("bob"), None);

    let app = |name: &str| {
        m.get(
            "greenplum_segment_backends_by_application",
            &[("application_name", name)],
        )
    };
    let app_max = |name: &str| {
        m.get(
            "greenplum_segment_backends_by_application_max",
            &[("application_name", name)],
        )
    };
    assert_eq!(app("etl"), Some(14.0));
    assert_eq!(app_max("etl"), Some(7.0));
    assert_eq!(app("bi"), Some(4.0));
    assert_eq!(app_max("bi"), Some(2.0));

    // The top two sessions, the third summed as `other`.
    let sessions = m.all("greenplum_session_segment_backends", &[]);
    assert_eq!(sessions.len(), 3, "{}", m.text);
    let s101 = m.all(
        "greenplum_session_segment_backends",
        &[
            ("sess_id", "101"),
            ("usename", "alice"),
            ("application_name", "etl"),
            ("client_addr", "127.0.0.1"),
            ("state", "idle in transaction"),
        ],
    );
    assert_eq!(s101.len(), 1, "{}", m.text);
    assert_eq!(s101[0].2, 8.0);
    let s103 = m.get(
        "greenplum_session_segment_backends",
        &[("sess_id", "103"), ("usename", "bob"), ("state", "active")],
    );
    assert_eq!(s103, Some(6.0));
    let other = m.get(
        "greenplum_session_segment_backends",
        &[("sess_id", "other")],
    );
    assert_eq!(other, Some(4.0));
    let age = m
        .get("greenplum_session_age_seconds", &[("sess_id", "101")])
        .unwrap();
    assert!(age > 0.0 && age < 600.0, "{age}");

    // 25 ordinary slots per segment / (1 + 4 cached readers) = 5 sessions,
    // against 15 ordinary slots on the coordinator.
    assert_eq!(
        m.get("greenplum_config_segment_session_capacity", &[]),
        Some(5.0)
    );
    assert_eq!(
        m.get("greenplum_config_coordinator_session_slots", &[]),
        Some(15.0)
    );
    assert_eq!(
        m.get("greenplum_config_segment_overcommit_ratio", &[]),
        Some(3.0)
    );
    drop(orphans);
    Ok(())
}

async fn without_the_coordinator_executors_are_unattributed(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    let _s = cluster.dispatch(&Dispatch::new(7, 2)).await?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let kind = |m: &Metrics, kind: &str| m.seg("greenplum_backends", 0, &[("kind", kind)]);
    exporter
        .wait_for("attributed", |m| kind(m, "executor_active") == Some(3.0))
        .await?;
    cluster.stop(-1)?;
    let m = exporter
        .wait_for("coordinator gone", |m| {
            kind(m, "executor_unattributed") == Some(3.0)
        })
        .await?;
    assert_eq!(kind(&m, "executor_active"), Some(0.0));
    assert!(m.all("greenplum_session_segment_backends", &[]).is_empty());
    assert_eq!(
        m.get("greenplum_config_segment_overcommit_ratio", &[]),
        None
    );
    Ok(())
}

/// A real coordinator gives every session a positive `sess_id`, utility-mode
/// ones and the exporter's own included (so does the emulated one): only
/// executors on a segment show that a coordinator session dispatches, and a
/// session seen doing so stays a dispatcher after its gangs are released.
async fn coordinator_sessions_dispatch_only_on_evidence(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).start()?;
    let _s1 = cluster.dispatch(&Dispatch::new(201, 1)).await?;
    let _s2 = cluster.dispatch(&Dispatch::new(202, 1)).await?;
    let psql = cluster.connect(-1, Login::Superuser, Mode::Utility).await?;
    let own_id: i32 = psql
        .query_one(
            "SELECT sess_id FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .get(0);
    assert!(
        own_id > 0,
        "a utility session on the coordinator has sess_id {own_id}"
    );

    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let kind = |m: &Metrics, kind: &str| m.seg("greenplum_backends", -1, &[("kind", kind)]);
    let sessions = |m: &Metrics, kind: &str| m.seg("greenplum_sessions", -1, &[("kind", kind)]);
    let m = exporter
        // Both conditions: a harness session that just closed may still be
        // listed for a round (a second "utility" then).
        .wait_for("coordinator sessions", |m| {
            kind(m, "dispatcher") == Some(2.0) && kind(m, "utility") == Some(1.0)
        })
        .await?;
    assert_eq!(kind(&m, "exporter"), Some(1.0));
    assert_eq!(sessions(&m, "distributed"), Some(2.0));
    // Local sessions (not served: one backend each): utility and exporter.
    assert_eq!(
        (kind(&m, "utility"), kind(&m, "exporter")),
        (Some(1.0), Some(1.0))
    );
    for content in [0, 1] {
        assert_eq!(
            m.seg("greenplum_sessions", content, &[("kind", "distributed")]),
            Some(2.0)
        );
        assert_eq!(
            m.seg("greenplum_backends", content, &[("kind", "utility")]),
            Some(0.0)
        );
        assert_eq!(
            m.seg("greenplum_backends", content, &[("kind", "exporter")]),
            Some(1.0)
        );
    }

    // Session 202's gangs go away (as after gp_vmem_idle_resource_timeout):
    // it was seen dispatching, so it stays a dispatcher.
    for content in [0, 1] {
        cluster
            .admin(content)
            .await?
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE sess_id = 202",
                &[],
            )
            .await?;
    }
    let m = exporter
        .wait_for("gangs of 202 gone", |m| {
            m.seg("greenplum_sessions", 0, &[("kind", "distributed")]) == Some(1.0)
        })
        .await?;
    assert_eq!(kind(&m, "dispatcher"), Some(2.0));
    assert_eq!(kind(&m, "utility"), Some(1.0));
    drop(psql);
    Ok(())
}

gpemu_harness::for_each_family!(
    segment_backends_are_attributed_to_sessions_users_and_applications,
    without_the_coordinator_executors_are_unattributed,
    coordinator_sessions_dispatch_only_on_evidence,
);
