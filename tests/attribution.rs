//! Who holds the segment slots: distributed sessions of several users and
//! applications are dispatched the way a coordinator does it (a writer plus
//! cached readers on every segment, sharing the session id, and the session
//! on the coordinator), and the exporter must attribute every segment
//! backend exactly.

mod support;

use anyhow::Result;
use gpemu_harness::{
    Backend, ClusterSpec, Dispatch, Family, InstanceSettings, Login, Mode, SessionState,
};
use support::{config_for, Exporter, Metrics};

async fn segment_backends_are_attributed_to_sessions_users_and_applications(
    backend: Backend,
) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).cached_readers(4).start()?;
    cluster.create_role("alice").await?;
    cluster.create_role("bob").await?;
    let session = |readers, user, app, state| Dispatch {
        readers,
        login: Login::Named(user),
        application_name: app,
        state,
    };
    // Per segment: 4 + 2 + 3 executors of live sessions.
    let s1 = cluster
        .dispatch(&session(3, "alice", "etl", SessionState::IdleInTransaction))
        .await?;
    let _s2 = cluster
        .dispatch(&session(1, "alice", "bi", SessionState::Idle))
        .await?;
    let s3 = cluster
        .dispatch(&session(2, "bob", "etl", SessionState::Active))
        .await?;
    let (s1, s3) = (s1.sessions[0].to_string(), s3.sessions[0].to_string());
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
    for content in [0, 1] {
        assert_eq!(kind(&m, content, "executor_active"), Some(7.0));
        assert_eq!(kind(&m, content, "executor_idle_session"), Some(2.0));
        // Served only while there are any.
        assert_eq!(kind(&m, content, "executor_orphaned"), None);
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
            ("sess_id", s1.as_str()),
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
        &[
            ("sess_id", s3.as_str()),
            ("usename", "bob"),
            ("state", "active"),
        ],
    );
    assert_eq!(s103, Some(6.0));
    let other = m.get(
        "greenplum_session_segment_backends",
        &[("sess_id", "other")],
    );
    assert_eq!(other, Some(4.0));
    let age = m
        .get("greenplum_session_age_seconds", &[("sess_id", s1.as_str())])
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
    Ok(())
}

/// Executors whose coordinator session is gone (only the emulation can leave
/// them: a real segment's executors end with their coordinator session) are
/// served as orphaned, on that segment only.
async fn executors_without_a_coordinator_session_are_orphaned(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).start()?;
    let _live = cluster.dispatch(&Dispatch::new(1)).await?;
    let mut orphans = Vec::new();
    for writer in [true, false] {
        let mode = Mode::Executor {
            session_id: 999,
            writer,
        };
        orphans.push(cluster.connect(0, Login::Ordinary, mode).await?);
    }
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let kind = |m: &Metrics, content: i16, kind: &str| {
        m.seg("greenplum_backends", content, &[("kind", kind)])
    };
    let m = exporter
        .wait_for("orphans on content 0", |m| {
            kind(m, 0, "executor_orphaned") == Some(2.0)
        })
        .await?;
    assert_eq!(kind(&m, 1, "executor_orphaned"), None);
    for content in [0, 1] {
        assert_eq!(kind(&m, content, "executor_active"), Some(2.0));
    }
    drop(orphans);
    Ok(())
}

async fn without_the_coordinator_executors_are_unattributed(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    let _s = cluster.dispatch(&Dispatch::new(2)).await?;
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
async fn coordinator_sessions_dispatch_only_on_evidence(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let _s1 = cluster.dispatch(&Dispatch::new(1)).await?;
    let s2 = cluster.dispatch(&Dispatch::new(1)).await?;
    let s2 = s2.sessions[0];
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

    // The second session's executors are ended (by a DBA, or as after
    // gp_vmem_idle_resource_timeout on GP7): it was seen dispatching, so it
    // stays a dispatcher.
    for content in [0, 1] {
        cluster
            .admin(content)
            .await?
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE sess_id = $1",
                &[&s2],
            )
            .await?;
    }
    let m = exporter
        .wait_for("gangs of the second session gone", |m| {
            m.seg("greenplum_sessions", 0, &[("kind", "distributed")]) == Some(1.0)
        })
        .await?;
    assert_eq!(kind(&m, "dispatcher"), Some(2.0));
    assert_eq!(kind(&m, "utility"), Some(1.0));
    drop(psql);
    Ok(())
}

/// The segments closest to running out, and who holds them by application:
/// six segments given different loads, two distributed sessions on all of
/// them, an orphaned executor on one. The five with the least ordinary
/// headroom are listed (a tie by content), each segment's client backends
/// by the application of the session they serve, capped at three.
async fn lowest_headroom_segments_name_the_applications_holding_them(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 6).start()?;
    cluster.create_role("alice").await?;
    cluster.create_role("bob").await?;
    let session = |readers, user, app| Dispatch {
        readers,
        login: Login::Named(user),
        application_name: app,
        state: SessionState::IdleInTransaction,
    };
    // On every segment: 3 executors of etl, 1 of bi.
    let _etl = cluster.dispatch(&session(2, "alice", "etl")).await?;
    let _bi = cluster.dispatch(&session(0, "bob", "bi")).await?;
    // Utility sessions of the harness's application: c - 1 on content c >= 2.
    let mut utility = Vec::new();
    for content in 2..6i16 {
        let n = usize::try_from(content - 1)?;
        utility.push(
            cluster
                .open_sessions(content, n, SessionState::Idle)
                .await?,
        );
    }
    // An executor on content 4 whose coordinator session is gone.
    let orphan = Mode::Executor {
        session_id: 999,
        writer: true,
    };
    let _orphan = cluster.connect(4, Login::Ordinary, orphan).await?;

    let config = config_for(&cluster, "[clusters.top_n]\napplication_name = 3\n");
    let exporter = Exporter::start(&config)?;
    let name = "greenplum_lowest_headroom_connections_by_application";
    let app =
        |m: &Metrics, content: i16, app: &str| m.seg(name, content, &[("application_name", app)]);
    // Used: the sessions' 4 executors, the utility sessions, the orphan, the exporter.
    let used = [5.0, 5.0, 6.0, 7.0, 9.0, 9.0];
    let m = exporter
        .wait_for("settled load", |m| {
            (0..6).zip(used).all(|(content, used)| {
                m.seg("greenplum_connections_used", content, &[]) == Some(used)
            }) && app(m, 4, "etl") == Some(3.0)
        })
        .await?;
    // Content 1 ties with content 0 and comes after it: not listed.
    let listed: std::collections::BTreeSet<&str> = m
        .all(name, &[])
        .iter()
        .map(|(_, labels, _)| labels["content"].as_str())
        .collect();
    assert_eq!(listed, ["0", "2", "3", "4", "5"].into(), "{}", m.text);
    let expected: &[(i16, &[(&str, f64)])] = &[
        // Ties go by name: bi before greenplum_segment_exporter.
        (
            0,
            &[
                ("etl", 3.0),
                ("bi", 1.0),
                ("greenplum_segment_exporter", 1.0),
            ],
        ),
        (
            2,
            &[
                ("etl", 3.0),
                ("bi", 1.0),
                ("gpemu_harness", 1.0),
                ("other", 1.0),
            ],
        ),
        (
            3,
            &[
                ("etl", 3.0),
                ("gpemu_harness", 2.0),
                ("bi", 1.0),
                ("other", 1.0),
            ],
        ),
        // The orphan's executor has no session, so no application: "".
        (
            4,
            &[
                ("etl", 3.0),
                ("gpemu_harness", 3.0),
                ("", 1.0),
                ("other", 2.0),
            ],
        ),
        (
            5,
            &[
                ("gpemu_harness", 4.0),
                ("etl", 3.0),
                ("bi", 1.0),
                ("other", 1.0),
            ],
        ),
    ];
    for (content, apps) in expected {
        let served = m.all(name, &[("content", &content.to_string())]);
        assert_eq!(served.len(), apps.len(), "content {content}: {served:?}");
        for (application, n) in *apps {
            assert_eq!(
                app(&m, *content, application),
                Some(*n),
                "content {content} {application}"
            );
        }
        // Every client backend, once.
        let sum: f64 = served.iter().map(|s| s.2).sum();
        assert_eq!(
            Some(sum),
            m.seg("greenplum_connections_used", *content, &[])
        );
    }

    // The API lists them least headroom first, ties by content.
    let (_, body) = exporter.get("/api/v1/instances").await?;
    let doc: serde_json::Value = serde_json::from_str(&body)?;
    let lowest = doc["clusters"][0]["attribution"]["lowest_headroom"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let order: Vec<(i64, f64)> = lowest
        .iter()
        .map(|s| {
            let content = s["content"].as_i64().unwrap_or(-9);
            (content, s["headroom_ordinary"].as_f64().unwrap_or(-1.0))
        })
        .collect();
    let ordinary = f64::from(InstanceSettings::SEGMENT.ordinary_slots());
    let headroom = |used: f64| ordinary - used;
    assert_eq!(
        order,
        [
            (4, headroom(9.0)),
            (5, headroom(9.0)),
            (3, headroom(7.0)),
            (2, headroom(6.0)),
            (0, headroom(5.0)),
        ],
        "{body}"
    );
    drop(utility);
    Ok(())
}

gpemu_harness::for_each_backend!(
    segment_backends_are_attributed_to_sessions_users_and_applications,
    coordinator_sessions_dispatch_only_on_evidence,
);

// A real coordinator's executors end with it: only the emulation keeps them.
gpemu_harness::for_each_family!(
    executors_without_a_coordinator_session_are_orphaned,
    lowest_headroom_segments_name_the_applications_holding_them,
    without_the_coordinator_executors_are_unattributed,
);
