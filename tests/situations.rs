//! The situations of a real incident, made the real way by the harness's
//! load helpers, checked from what a DBA sees in utility mode: on the
//! emulation (which plays what a coordinator does) and on real Greenplum 6
//! and 7 (where the coordinator does it).

use anyhow::Result;
use gpemu_harness::{
    Backend, ClusterSpec, Dispatch, Family, InstanceSettings, Login, SessionState,
};
use std::time::Duration;

/// Backends of session `id` an instance shows.
fn backends_of(id: i32) -> String {
    format!("SELECT count(*) FROM pg_stat_activity WHERE sess_id = {id}")
}

/// Dispatched sessions fill content 1, which has less room than content 0,
/// until one more is refused: by the segment with 53300 on the emulation, by
/// the coordinator with 58M01 naming the segment on real servers. The full
/// segment holds exactly its ordinary slots.
async fn sessions_fill_a_segment_until_the_coordinator_refuses_one(backend: Backend) -> Result<()> {
    let small = InstanceSettings {
        max_connections: 20,
        superuser_reserved_connections: 5,
        max_prepared_transactions: 25,
    };
    let cluster = ClusterSpec::new(backend, 2)
        .settings_for(1, small)
        .start()?;
    let burst = cluster.fill_with_sessions(1, 3).await?;
    // 15 ordinary slots: three sessions of four executors and one of three.
    assert_eq!(burst.executors, [4, 4, 4, 3]);
    assert_eq!(burst.held.sessions.len(), 4);
    let expected_refusal = match backend.is_real() {
        true => "failed to acquire resources on one or more segments: FATAL:  remaining connection slots are reserved for non-replication superuser connections",
        false => "remaining connection slots are reserved for non-replication superuser connections",
    };
    assert!(
        burst.refused.starts_with(expected_refusal),
        "{}",
        burst.refused
    );
    if backend.is_real() {
        let seg = cluster.instance(1);
        assert!(
            burst
                .refused
                .contains(&format!("(seg1 127.0.0.1:{})", seg.port)),
            "{}",
            burst.refused
        );
    }
    let ids: Vec<String> = burst.held.sessions.iter().map(i32::to_string).collect();
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE sess_id IN ({})",
        ids.join(",")
    );
    for content in [0, 1] {
        assert_eq!(
            cluster.query_i64(content, &sql).await?,
            15,
            "content {content}"
        );
    }
    Ok(())
}

/// Two distributed transactions left prepared on every segment (on real
/// servers the coordinator's second phase is held by a fault); released,
/// they commit.
async fn distributed_transactions_held_prepared_on_every_segment(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let prepared = cluster.hold_prepared(2).await?;
    assert_eq!(prepared.count, 2);
    let age = "SELECT extract(epoch FROM now() - min(prepared))::float8 FROM pg_prepared_xacts";
    let mut first = Vec::new();
    for seg in cluster.segments() {
        let c = cluster.admin(seg.content).await?;
        let row = c
            .query_one(
                "SELECT count(*), count(DISTINCT gid), min(owner) FROM pg_prepared_xacts",
                &[],
            )
            .await?;
        assert_eq!(
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, &str>(2)
            ),
            (2, 2, "app_user"),
            "content {}",
            seg.content
        );
        first.push(c.query_one(age, &[]).await?.get::<_, f64>(0));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (seg, before) in cluster.segments().iter().zip(first) {
        let later: f64 = cluster
            .admin(seg.content)
            .await?
            .query_one(age, &[])
            .await?
            .get(0);
        assert!(
            later >= before + 1.0,
            "content {}: {before} then {later}",
            seg.content
        );
    }
    // The coordinator itself holds none.
    assert_eq!(
        cluster
            .query_i64(-1, "SELECT count(*) FROM pg_prepared_xacts")
            .await?,
        0
    );
    cluster.release_prepared(prepared).await?;
    for seg in cluster.segments() {
        let n = cluster
            .query_i64(seg.content, "SELECT count(*) FROM pg_prepared_xacts")
            .await?;
        assert_eq!(n, 0);
    }
    Ok(())
}

/// A session queued on the coordinator behind the only slot of a resource
/// queue: GP6 shows it as a lock wait (`waiting_reason = 'lock'`) on an
/// ungranted `resource queue` lock, GP7 as wait event `ResourceQueue` with
/// the same lock; the holder runs.
async fn a_session_queued_on_a_resource_queue(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 1).start()?;
    cluster.create_role("queued").await?;
    let held = cluster
        .waiting_sessions(
            -1,
            1,
            gpemu_harness::WaitReason::ResourceQueue,
            Login::Named("queued"),
        )
        .await?;
    let (holder, waiter) = (held.pids[0], held.pids[1]);
    let c = cluster.admin(-1).await?;
    let view = match backend.family {
        Family::Gp6 => {
            "SELECT pid, state, CASE WHEN waiting THEN coalesce(waiting_reason, '?') ELSE '-' END \
                        FROM pg_stat_activity WHERE usename = 'queued' ORDER BY pid"
        }
        Family::Gp7 => {
            "SELECT pid, state, coalesce(wait_event_type, '-') \
                        FROM pg_stat_activity WHERE usename = 'queued' ORDER BY pid"
        }
    };
    let rows = c.query(view, &[]).await?;
    let shown: Vec<(i32, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let queued = match backend.family {
        Family::Gp6 => "lock",
        Family::Gp7 => "ResourceQueue",
    };
    let holder_wait = match backend.family {
        Family::Gp6 => "-",
        Family::Gp7 => "Timeout",
    };
    assert_eq!(
        shown,
        [
            (holder, "active".to_owned(), holder_wait.to_owned()),
            (waiter, "active".to_owned(), queued.to_owned())
        ]
    );
    let ungranted = c
        .query(
            "SELECT pid, locktype, mode FROM pg_locks WHERE NOT granted",
            &[],
        )
        .await?;
    let ungranted: Vec<(i32, String, String)> = ungranted
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        ungranted,
        [(
            waiter,
            "resource queue".to_owned(),
            "ExclusiveLock".to_owned()
        )]
    );
    // Nothing of it on the segment.
    assert_eq!(
        cluster
            .query_i64(0, "SELECT count(*) FROM pg_locks WHERE NOT granted")
            .await?,
        0
    );
    Ok(())
}

/// A client session of the coordinator waits for another's table lock: the
/// wait is on the coordinator, the segments show no ungranted lock.
async fn a_lock_wait_through_the_coordinator(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let held = cluster.lock_wait_dispatched().await?;
    let waiter = held.pids[1];
    let c = cluster.admin(-1).await?;
    let rows = c
        .query(
            "SELECT pid, locktype, mode FROM pg_locks WHERE NOT granted",
            &[],
        )
        .await?;
    let ungranted: Vec<(i32, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        ungranted,
        [(waiter, "relation".to_owned(), "AccessShareLock".to_owned())]
    );
    for seg in cluster.segments() {
        let n = cluster
            .query_i64(
                seg.content,
                "SELECT count(*) FROM pg_locks WHERE NOT granted",
            )
            .await?;
        assert_eq!(n, 0, "content {}", seg.content);
    }
    Ok(())
}

/// Sessions keep their cached gangs while busy; once idle for
/// `gp_vmem_idle_resource_timeout` (2 s here) the readers go and the writer
/// of a session in a transaction stays. A session not in a transaction keeps
/// its writer on GP6 and lets it go too on GP7 (as the real servers do).
async fn idle_reader_gangs_are_released(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2)
        .idle_gang_timeout(Duration::from_secs(2))
        .start()?;
    let in_tx = cluster.dispatch(&Dispatch::new(3)).await?;
    let idle = cluster
        .dispatch(&Dispatch {
            state: SessionState::Idle,
            ..Dispatch::new(2)
        })
        .await?;
    cluster.release_idle_gangs(&[&in_tx, &idle]).await?;
    let idle_writer = match backend.family {
        Family::Gp6 => 1,
        Family::Gp7 => 0,
    };
    for seg in cluster.segments() {
        let kept = |held: &gpemu_harness::Held| backends_of(held.sessions[0]);
        assert_eq!(cluster.query_i64(seg.content, &kept(&in_tx)).await?, 1);
        assert_eq!(
            cluster.query_i64(seg.content, &kept(&idle)).await?,
            idle_writer
        );
    }
    Ok(())
}

/// A primary stopped at once, as a crash would: it refuses connections, the
/// others answer; started again it takes them back.
async fn a_killed_primary_restarts(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let _before = cluster.dispatch(&Dispatch::new(1)).await?;
    cluster.stop(1)?;
    assert!(cluster.admin(1).await.is_err());
    assert_eq!(cluster.query_i64(0, "SELECT 1::bigint").await?, 1);
    cluster.start_instance(1)?;
    assert_eq!(cluster.query_i64(1, "SELECT 1::bigint").await?, 1);
    Ok(())
}

gpemu_harness::for_each_backend!(
    sessions_fill_a_segment_until_the_coordinator_refuses_one,
    distributed_transactions_held_prepared_on_every_segment,
    a_session_queued_on_a_resource_queue,
    a_lock_wait_through_the_coordinator,
    idle_reader_gangs_are_released,
    a_killed_primary_restarts,
);
