//! Self-tests of the harness: the emulation must reproduce what a DBA sees on
//! Greenplum before the exporter relies on it, so every check a real server
//! can answer runs on real Greenplum 6 and 7 too (`real_gp6::`, `real_gp7::`)
//! with the same assertions; where they disagree the emulation is wrong.
//! The situations the load helpers make are checked in `tests/situations.rs`.

use anyhow::{Context, Result};
use gpemu_harness::{
    is_alive, Backend, Cluster, ClusterSpec, Dispatch, Family, InstanceSettings, Login, Mode,
    SessionState, WaitReason, ALLOW_UTILITY_PREPARE, APPLICATION_NAME, ORDINARY_USER,
    SCRATCH_TABLE,
};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tokio_postgres::error::{DbError, SqlState};

/// Client backends as the family counts them on a segment.
fn client_backends_sql(family: Family) -> &'static str {
    match family {
        // The GP6 view only lists sessions with a database and a role.
        Family::Gp6 => "SELECT count(*) FROM pg_stat_activity",
        Family::Gp7 => {
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        }
    }
}

fn db_error(e: &tokio_postgres::Error) -> &DbError {
    e.as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {e}"))
}

/// Asserts that `result` failed with this SQLSTATE and message.
fn assert_refused<T>(result: Result<T, tokio_postgres::Error>, code: &SqlState, message: &str) {
    let Err(err) = result else {
        panic!("expected {} {message:?}, but it succeeded", code.code());
    };
    let db = db_error(&err);
    assert_eq!((db.code(), db.message()), (code, message));
}

/// Opens superuser utility sessions on a full instance until one is refused;
/// returns the sessions and the refusal.
async fn superusers_until_refused(
    cluster: &Cluster,
    content: i16,
    settings: InstanceSettings,
) -> (Vec<tokio_postgres::Client>, tokio_postgres::Error) {
    let mut superusers = Vec::new();
    let refusal = loop {
        match cluster
            .connect(content, Login::Superuser, Mode::Utility)
            .await
        {
            Ok(c) => superusers.push(c),
            // The backend refused a moment ago may still hold its slot while it exits.
            Err(e) if db_error(&e).message() == "sorry, too many clients already" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => break e,
        }
        assert!(superusers.len() <= settings.superuser_reserved_connections as usize);
    };
    (superusers, refusal)
}

/// Polls `sql` until it returns `expected` (backends of refused or closed
/// sessions leave asynchronously); returns the last value seen.
async fn eventually_i64(client: &tokio_postgres::Client, sql: &str, expected: i64) -> Result<i64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value: i64 = client.query_one(sql, &[]).await?.get(0);
        if value == expected || Instant::now() > deadline {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn non_utility_connection_to_segment_fails_with_greenplum_message(
    cluster: &Cluster,
) -> Result<()> {
    let err = cluster
        .connect(1, Login::Superuser, Mode::Plain)
        .await
        .expect_err("a plain connection to a primary segment must be refused");
    let db = db_error(&err);
    assert_eq!(db.code(), &SqlState::CANNOT_CONNECT_NOW);
    assert_eq!(
        db.message(),
        "connections to primary segments are not allowed"
    );
    assert_eq!(
        db.hint(),
        Some("To force a connection anyway (dangerous!), use utility mode.")
    );
    // The coordinator takes ordinary client connections.
    let coordinator = cluster.connect(-1, Login::Ordinary, Mode::Plain).await?;
    let one: i32 = coordinator.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(one, 1);
    Ok(())
}

async fn utility_mode_connects_and_the_other_familys_option_fails(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    for inst in cluster.instances() {
        let client = cluster
            .connect(inst.content, Login::Superuser, Mode::Utility)
            .await?;
        let content: String = client.query_one("SHOW gp_contentid", &[]).await?.get(0);
        assert_eq!(content, inst.content.to_string());
        let dbid: String = client.query_one("SHOW gp_dbid", &[]).await?.get(0);
        assert_eq!(dbid, inst.dbid.to_string());

        let err = cluster
            .connect(inst.content, Login::Superuser, Mode::WrongFamilyUtility)
            .await
            .expect_err("the other family's utility option must be refused");
        let db = db_error(&err);
        match family {
            Family::Gp6 => {
                assert_eq!(db.code(), &SqlState::CANNOT_CONNECT_NOW);
                assert_eq!(
                    db.message(),
                    "System was started in master-only utility mode - only utility mode connections are allowed"
                );
            }
            Family::Gp7 => {
                assert_eq!(db.code(), &SqlState::UNDEFINED_OBJECT);
                assert_eq!(
                    db.message(),
                    "unrecognized configuration parameter \"gp_session_role\""
                );
            }
        }
    }
    Ok(())
}

/// The PostgreSQL base and the Greenplum version, as the exporter's family
/// detection reads them. (The real GP7-family build says `PostgreSQL 12
/// (MatrixDB 5.0.0-community~alpha) (Greenplum Database 7.0.0 build dev)`;
/// the emulation says what Greenplum 7.0.0 itself does, `PostgreSQL 12.12
/// (Greenplum Database 7.0.0 build commit:...)`.)
async fn version_names_the_family(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    for content in [-1, 0] {
        let client = cluster.admin(content).await?;
        let version: String = client.query_one("SELECT version()", &[]).await?.get(0);
        let (base, greenplum) = match family {
            Family::Gp6 => ("PostgreSQL 9.4.26 ", "(Greenplum Database 6.24.3 build "),
            Family::Gp7 => ("PostgreSQL 12", "(Greenplum Database 7.0.0 build "),
        };
        assert!(version.starts_with(base), "{version}");
        assert!(version.contains(greenplum), "{version}");
    }
    Ok(())
}

async fn k_ordinary_connections_raise_only_that_segments_count_by_k(
    backend: Backend,
) -> Result<()> {
    let family = backend.family;
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let sql = client_backends_sql(family);
    let seg0 = cluster.admin(0).await?;
    let seg1 = cluster.admin(1).await?;
    let before0: i64 = seg0.query_one(sql, &[]).await?.get(0);
    let before1: i64 = seg1.query_one(sql, &[]).await?.get(0);

    let held = cluster.open_sessions(0, 7, SessionState::Idle).await?;
    assert_eq!(held.len(), 7);
    // The helper's own check session ends asynchronously after it returns.
    let after0 = eventually_i64(&seg0, sql, before0 + 7).await?;
    let after1 = eventually_i64(&seg1, sql, before1).await?;
    assert_eq!(after0, before0 + 7);
    assert_eq!(after1, before1);
    Ok(())
}

async fn session_states_are_what_the_helpers_promise(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 1).start()?;
    let _idle = cluster.open_sessions(0, 2, SessionState::Idle).await?;
    let _in_tx = cluster
        .open_sessions(0, 3, SessionState::IdleInTransaction)
        .await?;
    let _active = cluster.open_sessions(0, 4, SessionState::Active).await?;
    let by_state = |state: &'static str| {
        format!("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_user' AND state = '{state}'")
    };
    assert_eq!(cluster.query_i64(0, &by_state("idle")).await?, 2);
    assert_eq!(
        cluster
            .query_i64(0, &by_state("idle in transaction"))
            .await?,
        3
    );
    assert_eq!(cluster.query_i64(0, &by_state("active")).await?, 4);
    Ok(())
}

async fn filled_segment_refuses_ordinary_roles_but_not_superusers(backend: Backend) -> Result<()> {
    let family = backend.family;
    let settings = InstanceSettings::SEGMENT;
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let held = cluster.fill(1).await?;
    assert_eq!(held.len() as u32, settings.ordinary_slots());

    let err = cluster
        .connect(1, Login::Ordinary, Mode::Utility)
        .await
        .expect_err("a full segment must refuse an ordinary role");
    let db = db_error(&err);
    assert_eq!(db.code(), &SqlState::TOO_MANY_CONNECTIONS);
    assert_eq!(
        db.message(),
        "remaining connection slots are reserved for non-replication superuser connections"
    );

    // Superusers get the reserved slots, less the one kept for the FTS prober.
    let (superusers, refusal) = superusers_until_refused(&cluster, 1, settings).await;
    assert_eq!(
        superusers.len() as u32,
        settings.superuser_reserved_connections - 1
    );
    let db = db_error(&refusal);
    assert_eq!(db.code(), &SqlState::TOO_MANY_CONNECTIONS);
    assert_eq!(
        db.message(),
        "connection limit exceeded for superusers (need at least 1 connections reserved for FTS handler)"
    );
    let used = eventually_i64(
        &superusers[0],
        client_backends_sql(family),
        settings.max_connections as i64 - 1,
    )
    .await?;
    assert_eq!(used, settings.max_connections as i64 - 1);
    // The other segment is untouched.
    cluster.connect(0, Login::Ordinary, Mode::Utility).await?;
    Ok(())
}

async fn prepared_transactions_appear_in_pg_prepared_xacts(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let gids = cluster.prepare_transactions(0, 2).await?;
    let seg0 = cluster.admin(0).await?;
    let rows = seg0
        .query("SELECT gid, owner FROM pg_prepared_xacts ORDER BY gid", &[])
        .await?;
    let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut expected: Vec<(String, String)> = gids
        .iter()
        .map(|g| (g.clone(), "app_user".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(
        cluster
            .query_i64(1, "SELECT count(*) FROM pg_prepared_xacts")
            .await?,
        0
    );

    cluster.commit_prepared(0, &gids[0]).await?;
    assert_eq!(
        cluster
            .query_i64(0, "SELECT count(*) FROM pg_prepared_xacts")
            .await?,
        1
    );
    Ok(())
}

async fn lock_waiter_shows_an_ungranted_lock(backend: Backend) -> Result<()> {
    let family = backend.family;
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let held = cluster.lock_wait(1).await?;
    let (holder, waiter) = (held.pids[0], held.pids[1]);
    let seg1 = cluster.admin(1).await?;
    let rows = seg1
        .query(
            "SELECT pid, mode, locktype, mppsessionid, gp_segment_id FROM pg_locks \
             WHERE NOT granted",
            &[],
        )
        .await?;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<_, i32>("pid"), waiter);
    assert_eq!(row.get::<_, &str>("mode"), "AccessShareLock");
    assert_eq!(row.get::<_, &str>("locktype"), "relation");
    assert_eq!(row.get::<_, i32>("mppsessionid"), -1);
    assert_eq!(row.get::<_, i32>("gp_segment_id"), 1);
    let holders = seg1
        .query(
            "SELECT pid FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' \
             AND locktype = 'relation'",
            &[],
        )
        .await?;
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].get::<_, i32>(0), holder);

    // The family's own way of saying "waiting on a lock".
    let waiting_sql = match family {
        Family::Gp6 => {
            "SELECT count(*) FROM pg_stat_activity WHERE waiting AND waiting_reason = 'lock'"
        }
        Family::Gp7 => "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
    };
    assert_eq!(cluster.query_i64(1, waiting_sql).await?, 1);
    assert_eq!(
        cluster
            .query_i64(0, "SELECT count(*) FROM pg_locks WHERE NOT granted")
            .await?,
        0
    );
    Ok(())
}

async fn dispatched_session_holds_a_writer_and_readers_per_segment(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let held = cluster.dispatch(&Dispatch::new(3)).await?;
    assert_eq!(held.sessions.len(), 1);
    let id = held.sessions[0];
    assert!(id > 0, "{id}");
    // A writer and three readers per segment.
    for seg in cluster.segments() {
        let c = cluster.admin(seg.content).await?;
        let rows = c
            .query(
                "SELECT state, usename::text, application_name FROM pg_stat_activity \
                 WHERE sess_id = $1 ORDER BY state",
                &[&id],
            )
            .await?;
        let states: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(states, ["idle", "idle", "idle", "idle in transaction"]);
        assert!(rows.iter().all(|r| r.get::<_, &str>(1) == "app_user"));
        assert!(rows.iter().all(|r| r.get::<_, &str>(2).is_empty()));
        // This utility session is not part of any distributed session.
        let own: i32 = c
            .query_one(
                "SELECT sess_id FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?
            .get(0);
        assert_eq!(own, -1);
        let writers: i64 = c
            .query_one(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE mppsessionid = $1 AND mppiswriter",
                &[&id],
            )
            .await?
            .get(0);
        assert_eq!(writers, 1);
    }
    let on_coordinator = cluster
        .query_i64(
            -1,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE sess_id = {id}"),
        )
        .await?;
    assert_eq!(on_coordinator, 1);
    Ok(())
}

async fn catalog_lists_the_cluster_and_follows_failover(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 3).mirrors(true).start()?;
    let coord = cluster.admin(-1).await?;
    let catalog = "SELECT dbid, content, role::text, preferred_role::text, mode::text, \
                   status::text, port, hostname, address, datadir \
                   FROM gp_segment_configuration ORDER BY dbid";
    let rows = coord.query(catalog, &[]).await?;
    assert_eq!(rows.len(), 1 + 3 + 3);
    assert_eq!(rows.len(), cluster.initial_catalog().len());
    for (row, want) in rows.iter().zip(cluster.initial_catalog()) {
        assert_eq!(row.get::<_, i16>("dbid"), want.dbid);
        assert_eq!(row.get::<_, i16>("content"), want.content);
        assert_eq!(row.get::<_, &str>("role"), want.role.to_string());
        assert_eq!(row.get::<_, i32>("port"), want.port as i32);
        assert_eq!(row.get::<_, &str>("address"), "127.0.0.1");
    }
    for inst in cluster.instances() {
        let row = rows
            .iter()
            .find(|r| r.get::<_, i16>("dbid") == inst.dbid)
            .expect("every instance has a row");
        assert_eq!(row.get::<_, i32>("port"), inst.port as i32);
        assert_eq!(row.get::<_, &str>("role"), "p");
    }

    cluster.swap_roles(1).await?;
    let mirror_dbid = cluster
        .initial_catalog()
        .iter()
        .find(|r| r.content == 1 && r.role == 'm')
        .map(|r| r.dbid)
        .expect("mirror row");
    cluster
        .set_catalog_status(cluster.instance(1).dbid, 'd')
        .await?;
    let roles = coord
        .query(
            "SELECT dbid, role::text, preferred_role::text, status::text \
             FROM gp_segment_configuration WHERE content = 1 ORDER BY dbid",
            &[],
        )
        .await?;
    let got: Vec<(i16, String, String, String)> = roles
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let old_primary = cluster.instance(1).dbid;
    assert_eq!(
        got,
        [
            (old_primary, "m".into(), "p".into(), "d".into()),
            (mirror_dbid, "p".into(), "m".into(), "u".into()),
        ]
    );
    Ok(())
}

async fn stop_start_pause_resume_one_instance(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    cluster.stop(0)?;
    assert!(cluster
        .connect(0, Login::Superuser, Mode::Utility)
        .await
        .is_err());
    cluster.connect(1, Login::Superuser, Mode::Utility).await?;
    cluster.start_instance(0)?;
    cluster.connect(0, Login::Superuser, Mode::Utility).await?;

    cluster.pause(1)?;
    let attempt = tokio::time::timeout(
        Duration::from_secs(2),
        cluster.connect(1, Login::Superuser, Mode::Utility),
    )
    .await;
    assert!(attempt.is_err(), "a paused instance must not answer");
    cluster.connect(0, Login::Superuser, Mode::Utility).await?;
    cluster.resume(1);
    let client = cluster.connect(1, Login::Superuser, Mode::Utility).await?;
    let one: i32 = client.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(one, 1);
    Ok(())
}

async fn settings_are_per_segment(backend: Backend) -> Result<()> {
    let small = InstanceSettings {
        max_connections: 12,
        superuser_reserved_connections: 2,
        max_prepared_transactions: 7,
    };
    let mut cluster = ClusterSpec::new(backend, 2)
        .settings_for(1, small)
        .start()?;
    let show = "SELECT current_setting('max_connections')::bigint * 10000 \
                + current_setting('superuser_reserved_connections')::bigint * 100 \
                + current_setting('max_prepared_transactions')::bigint";
    assert_eq!(cluster.query_i64(1, show).await?, 12_02_07);
    let d = InstanceSettings::SEGMENT;
    let default = (d.max_connections * 10000
        + d.superuser_reserved_connections * 100
        + d.max_prepared_transactions) as i64;
    assert_eq!(cluster.query_i64(0, show).await?, default);

    let changed = InstanceSettings {
        max_connections: 15,
        ..small
    };
    cluster.reconfigure(1, changed)?;
    assert_eq!(cluster.query_i64(1, show).await?, 15_02_07);
    Ok(())
}

async fn dropping_the_cluster_stops_every_server_it_started(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let _held = cluster.open_sessions(0, 2, SessionState::Idle).await?;
    cluster.pause(1)?;
    let pids = cluster.server_pids();
    // Three postmasters plus their auxiliary processes and backends.
    assert!(pids.len() > 3 * 3, "{pids:?}");
    let root = cluster.root().to_path_buf();
    drop(cluster);
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
    assert!(alive.is_empty(), "still running: {alive:?}");
    assert!(!root.exists());
    Ok(())
}

async fn dropping_after_a_panic_stops_every_server(backend: Backend) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let cluster = ClusterSpec::new(backend, 1).start().expect("start");
        tx.send(cluster.server_pids()).unwrap();
        panic!("a failed assertion inside a test");
    })
    .join();
    assert!(result.is_err());
    let pids = rx.recv()?;
    assert!(!pids.is_empty());
    assert!(pids.iter().all(|&p| !is_alive(p)));
    Ok(())
}

async fn sixteen_segments_start_and_stop(family: Family) -> Result<()> {
    let t0 = Instant::now();
    let cluster = ClusterSpec::new(family, 16).start()?;
    let started = t0.elapsed();
    for seg in cluster.segments() {
        let c = cluster.admin(seg.content).await?;
        let content: String = c.query_one("SHOW gp_contentid", &[]).await?.get(0);
        assert_eq!(content, seg.content.to_string());
    }
    assert_eq!(
        cluster
            .query_i64(
                -1,
                "SELECT count(*) FROM gp_segment_configuration WHERE content >= 0"
            )
            .await?,
        16
    );
    let t1 = Instant::now();
    drop(cluster);
    // A figure for the reader, not an assertion: these machines are shared.
    eprintln!(
        "{family}: 16-segment cluster started in {:.1} s, stopped in {:.1} s",
        started.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn startup_settings_the_family_lacks_are_refused(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    for content in [-1, 0] {
        // PostgreSQL 9.6's setting: the report from real Greenplum 6 clusters.
        let lacking = Mode::UtilityWith("-c idle_in_transaction_session_timeout=1s");
        let attempt = cluster.connect(content, Login::Superuser, lacking).await;
        match family {
            Family::Gp6 => assert_refused(
                attempt,
                &SqlState::UNDEFINED_OBJECT,
                "unrecognized configuration parameter \"idle_in_transaction_session_timeout\"",
            ),
            Family::Gp7 => {
                let value: String = attempt?
                    .query_one("SHOW idle_in_transaction_session_timeout", &[])
                    .await?
                    .get(0);
                assert_eq!(value, "1s");
            }
        }
        // A setting both families have.
        let shared = Mode::UtilityWith("-c statement_timeout=2s");
        let client = cluster.connect(content, Login::Superuser, shared).await?;
        let value: String = client
            .query_one("SHOW statement_timeout", &[])
            .await?
            .get(0);
        assert_eq!(value, "2s");
    }
    Ok(())
}

async fn set_and_show_refuse_settings_the_family_lacks(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    let client = cluster.admin(0).await?;
    let set = client
        .batch_execute("SET idle_in_transaction_session_timeout = 1000")
        .await;
    let shown = client
        .query_one("SHOW idle_in_transaction_session_timeout", &[])
        .await;
    let read = client
        .query_one(
            "SELECT current_setting('idle_in_transaction_session_timeout')",
            &[],
        )
        .await;
    let listed = client
        .query_one(
            "SELECT count(*) FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'",
            &[],
        )
        .await?
        .get::<_, i64>(0);
    match family {
        Family::Gp6 => {
            let unknown =
                "unrecognized configuration parameter \"idle_in_transaction_session_timeout\"";
            assert_refused(set, &SqlState::UNDEFINED_OBJECT, unknown);
            assert_refused(shown, &SqlState::UNDEFINED_OBJECT, unknown);
            assert_refused(read, &SqlState::UNDEFINED_OBJECT, unknown);
            assert_eq!(listed, 0);
        }
        Family::Gp7 => {
            set?;
            assert_eq!(shown?.get::<_, String>(0), "1s");
            assert_eq!(read?.get::<_, String>(0), "1s");
            assert_eq!(listed, 1);
        }
    }
    // A setting both families have.
    client.batch_execute("SET statement_timeout = 1000").await?;
    let value: String = client
        .query_one("SHOW statement_timeout", &[])
        .await?
        .get(0);
    assert_eq!(value, "1s");
    let listed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_settings WHERE name = 'statement_timeout'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(listed, 1);
    Ok(())
}

async fn functions_the_family_lacks_are_refused(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    let client = cluster.admin(0).await?;
    let missing_ok = client
        .query_one("SELECT current_setting('max_connections', true)", &[])
        .await;
    let blocking = client.query_one("SELECT pg_blocking_pids(1)", &[]).await;
    let xid_ne = client.query_one("SELECT '1'::xid <> '2'::xid", &[]).await;
    match family {
        Family::Gp6 => {
            assert_refused(
                missing_ok,
                &SqlState::UNDEFINED_FUNCTION,
                "function current_setting(unknown, boolean) does not exist",
            );
            assert_refused(
                blocking,
                &SqlState::UNDEFINED_FUNCTION,
                "function pg_blocking_pids(integer) does not exist",
            );
            assert_refused(
                xid_ne,
                &SqlState::UNDEFINED_FUNCTION,
                "operator does not exist: xid <> xid",
            );
        }
        Family::Gp7 => {
            let max = InstanceSettings::SEGMENT.max_connections.to_string();
            assert_eq!(missing_ok?.get::<_, String>(0), max);
            assert_eq!(blocking?.get::<_, Vec<i32>>(0), Vec::<i32>::new());
            assert!(xid_ne?.get::<_, bool>(0));
        }
    }

    // Functions both families have, EXTRACT being date_part() before PostgreSQL 14.
    for sql in [
        "SELECT date_part('epoch', interval '1 minute')",
        "SELECT extract(epoch FROM interval '1 minute')::float8",
    ] {
        let value: f64 = client.query_one(sql, &[]).await?.get(0);
        assert_eq!(value, 60.0, "{sql}");
    }
    // name = text is a PostgreSQL 12 operator; 9.4 compares as text.
    let found: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = 'postgres'::text",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(found, 1);
    // PostgreSQL 13: neither family has it.
    assert_refused(
        client.query_one("SELECT normalize('a')", &[]).await,
        &SqlState::UNDEFINED_FUNCTION,
        "function normalize(unknown) does not exist",
    );
    Ok(())
}

async fn prepare_transaction_in_utility_mode_is_refused_on_gp6(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    let prepare = format!("BEGIN; INSERT INTO {SCRATCH_TABLE} VALUES (1); PREPARE TRANSACTION");
    let client = cluster.connect(0, Login::Ordinary, Mode::Utility).await?;
    let attempt = client.batch_execute(&format!("{prepare} 'plain'")).await;
    let prepared = "SELECT count(*) FROM pg_prepared_xacts";
    match family {
        Family::Gp6 => {
            assert_refused(
                attempt,
                &SqlState::FEATURE_NOT_SUPPORTED,
                "PREPARE TRANSACTION is not supported in utility mode",
            );
            assert_eq!(cluster.query_i64(0, prepared).await?, 0);
        }
        Family::Gp7 => {
            attempt?;
            assert_eq!(cluster.query_i64(0, prepared).await?, 1);
        }
    }
    if cluster.backend().is_real() {
        return Ok(());
    }
    // The shortcut the emulation's harness uses to make prepared transactions.
    let shortcut = cluster
        .connect(0, Login::Ordinary, Mode::UtilityWith(ALLOW_UTILITY_PREPARE))
        .await?;
    shortcut
        .batch_execute(&format!("{prepare} 'shortcut'"))
        .await?;
    let gids = cluster
        .query_i64(
            0,
            "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'shortcut'",
        )
        .await?;
    assert_eq!(gids, 1);
    Ok(())
}

async fn a_standby_takes_a_connection_slot_on_gp6(family: Family) -> Result<()> {
    let settings = InstanceSettings::SEGMENT;
    let cluster = ClusterSpec::new(family, 1).start()?;
    let standby = cluster.start_standby(0).await?;
    let replication = "SELECT count(*) FROM pg_stat_replication";
    assert_eq!(cluster.query_i64(0, replication).await?, 1);
    assert_eq!(cluster.query_i64(-1, replication).await?, 0);

    // PostgreSQL 9.4 gives the walsender one of the max_connections slots.
    let walsender_slots = match family {
        Family::Gp6 => 1,
        Family::Gp7 => 0,
    };
    let held = cluster.fill(0).await?;
    assert_eq!(
        held.len() as u32,
        settings.max_connections - settings.superuser_reserved_connections - walsender_slots
    );
    assert_refused(
        cluster.connect(0, Login::Ordinary, Mode::Utility).await,
        &SqlState::TOO_MANY_CONNECTIONS,
        "remaining connection slots are reserved for non-replication superuser connections",
    );
    // Superusers still get the reserved slots but the FTS prober's.
    let (superusers, refusal) = superusers_until_refused(&cluster, 0, settings).await;
    assert_eq!(
        superusers.len() as u32,
        settings.superuser_reserved_connections - 1
    );
    assert_refused(
        Err::<(), _>(refusal),
        &SqlState::TOO_MANY_CONNECTIONS,
        "connection limit exceeded for superusers (need at least 1 connections reserved for FTS handler)",
    );

    // Without the standby its slot is free again.
    drop((held, superusers, standby));
    cluster
        .wait_until(
            0,
            &format!(
                "SELECT ({}) = 1 AND ({replication}) = 0",
                client_backends_sql(family)
            ),
        )
        .await?;
    let held = cluster.fill(0).await?;
    assert_eq!(held.len() as u32, settings.ordinary_slots());
    Ok(())
}

async fn dropping_the_cluster_stops_a_standby_still_running(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    let standby = cluster.start_standby(0).await?;
    assert!(standby.datadir.join("postmaster.pid").exists());
    // Coordinator, primary and standby with their auxiliary processes.
    let pids = cluster.server_pids();
    assert!(pids.len() > 3 * 3, "{pids:?}");
    drop(cluster);
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
    assert!(alive.is_empty(), "still running: {alive:?}");
    drop(standby);
    Ok(())
}

/// The session id a connection's own backend shows: `sess_id` in
/// `pg_stat_activity`, `mppsessionid` of its own lock, `SHOW gp_session_id`.
async fn own_session_ids(client: &tokio_postgres::Client) -> Result<(i32, i32, String)> {
    let sess_id: i32 = client
        .query_one(
            "SELECT sess_id FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .get(0);
    let lock: i32 = client
        .query_one(
            "SELECT mppsessionid FROM pg_locks \
             WHERE pid = pg_backend_pid() AND locktype = 'virtualxid'",
            &[],
        )
        .await?
        .get(0);
    let shown: String = client.query_one("SHOW gp_session_id", &[]).await?.get(0);
    Ok((sess_id, lock, shown))
}

async fn coordinator_gives_every_session_a_positive_sess_id(cluster: &Cluster) -> Result<()> {
    let utility = cluster.connect(-1, Login::Ordinary, Mode::Utility).await?;
    let plain = cluster.connect(-1, Login::Ordinary, Mode::Plain).await?;
    let (utility_id, _, _) = own_session_ids(&utility).await?;
    let (plain_id, _, _) = own_session_ids(&plain).await?;
    assert!(utility_id > 0, "{utility_id}");
    assert!(plain_id > 0, "{plain_id}");
    assert_ne!(utility_id, plain_id);
    for (client, id) in [(&utility, utility_id), (&plain, plain_id)] {
        assert_eq!(own_session_ids(client).await?, (id, id, id.to_string()));
    }
    // On a segment a utility session has none.
    let segment = cluster.connect(0, Login::Ordinary, Mode::Utility).await?;
    assert_eq!(own_session_ids(&segment).await?, (-1, -1, "-1".to_owned()));
    Ok(())
}

/// The emulated coordinator counts its ids from 10000, above any a test
/// declares; a declared id is kept; a walsender has none.
async fn emulated_session_ids_are_counted_declared_or_none(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    let plain = cluster.connect(-1, Login::Ordinary, Mode::Plain).await?;
    let (plain_id, _, _) = own_session_ids(&plain).await?;
    assert!(plain_id >= 10000, "{plain_id}");

    // A coordinator backend of a distributed session keeps the id it declares.
    let declared = Mode::Dispatcher {
        session_id: 42,
        application_name: APPLICATION_NAME,
    };
    let dispatcher = cluster.connect(-1, Login::Ordinary, declared).await?;
    assert_eq!(
        own_session_ids(&dispatcher).await?,
        (42, 42, "42".to_owned())
    );

    // A walsender is no client session: a standby of the coordinator.
    let _standby = cluster.start_standby(-1).await?;
    let walsenders = cluster
        .admin(-1)
        .await?
        .query(
            "SELECT gpemu_sess_id(pid) FROM pg_stat_get_activity(NULL) \
             WHERE backend_type = 'walsender'",
            &[],
        )
        .await?;
    let ids: Vec<i32> = walsenders.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [-1]);
    Ok(())
}

/// What `pg_stat_activity` shows of why these backends wait, in pid order:
/// GP6 `waiting` and `waiting_reason`, GP7 `wait_event_type` and `wait_event`
/// (`-` for NULL).
async fn shown_waits(
    client: &tokio_postgres::Client,
    family: Family,
    pids: &[i32],
) -> Result<Vec<(String, String)>> {
    let sql = match family {
        Family::Gp6 => {
            "SELECT CASE WHEN waiting THEN 'true' ELSE 'false' END, \
                    coalesce(waiting_reason, '-') \
             FROM pg_stat_activity WHERE pid = ANY($1) ORDER BY pid"
        }
        Family::Gp7 => {
            "SELECT coalesce(wait_event_type, '-'), coalesce(wait_event, '-') \
             FROM pg_stat_activity WHERE pid = ANY($1) ORDER BY pid"
        }
    };
    let rows = client.query(sql, &[&pids]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn declared_wait_reasons_show_in_the_familys_views(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 1).start()?;
    for content in [-1, 0] {
        let admin = cluster.admin(content).await?;
        for reason in WaitReason::ALL {
            let mode = if content < 0 {
                Mode::Plain
            } else {
                Mode::Utility
            };
            let held = cluster
                .waiting_sessions_as(content, 2, mode, reason, Login::Ordinary)
                .await?;
            let mut pids = held.pids.clone();
            pids.sort();
            let expected = match family {
                Family::Gp6 => ("true".to_owned(), reason.gp6_waiting_reason().to_owned()),
                Family::Gp7 => (
                    reason.gp7_wait_event().to_owned(),
                    reason.gp7_wait_event().to_owned(),
                ),
            };
            assert_eq!(
                shown_waits(&admin, family, &pids).await?,
                [expected.clone(), expected],
                "content {content}, {reason:?}"
            );

            // A resource queue wait is an ungranted lock of Greenplum's type on
            // the default queue, in the backend's own virtual transaction.
            let locks = admin
                .query(
                    "SELECT l.pid, l.locktype, l.mode, l.objid::text, l.classid IS NULL, \
                            l.relation IS NULL, l.mppsessionid, l.mppiswriter, l.gp_segment_id, \
                            l.database = a.datid, l.virtualtransaction = v.virtualxid, \
                            a.sess_id \
                     FROM pg_locks l \
                     JOIN pg_stat_activity a ON a.pid = l.pid \
                     LEFT JOIN pg_locks v ON v.pid = l.pid AND v.locktype = 'virtualxid' \
                                         AND v.granted \
                     WHERE NOT l.granted AND l.pid = ANY($1) ORDER BY l.pid",
                    &[&pids],
                )
                .await?;
            if reason == WaitReason::ResourceQueue {
                assert_eq!(locks.len(), 2, "content {content}");
                for (row, pid) in locks.iter().zip(&pids) {
                    let sess_id: i32 = row.get(11);
                    assert_eq!(row.get::<_, i32>(0), *pid);
                    assert_eq!(row.get::<_, &str>(1), "resource queue");
                    assert_eq!(row.get::<_, &str>(2), "ExclusiveLock");
                    assert_eq!(row.get::<_, &str>(3), "6055");
                    assert!(row.get::<_, bool>(4) && row.get::<_, bool>(5));
                    assert_eq!(row.get::<_, i32>(6), sess_id);
                    assert!(!row.get::<_, bool>(7));
                    assert_eq!(row.get::<_, i32>(8), i32::from(content));
                    assert!(row.get::<_, bool>(9) && row.get::<_, bool>(10));
                    if content < 0 {
                        assert!(sess_id >= 10000, "{sess_id}");
                    } else {
                        assert_eq!(sess_id, -1);
                    }
                }
            } else {
                assert!(locks.is_empty(), "content {content}, {reason:?}");
            }
            drop(held);
        }

        // Declared but idle: a session waits only while it runs a statement.
        let idle = cluster
            .connect(
                content,
                Login::Ordinary,
                Mode::UtilityWith("-c gpemu.wait_reason=resource_queue"),
            )
            .await?;
        let pid: i32 = idle.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
        cluster
            .wait_until(
                content,
                &format!("SELECT state = 'idle' FROM pg_stat_activity WHERE pid = {pid}"),
            )
            .await?;
        let not_waiting = match family {
            Family::Gp6 => ("false", "-"),
            Family::Gp7 => ("Client", "ClientRead"),
        };
        let shown = shown_waits(&admin, family, &[pid]).await?;
        assert_eq!(
            shown,
            [(not_waiting.0.to_owned(), not_waiting.1.to_owned())]
        );
        let ungranted: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = $1",
                &[&pid],
            )
            .await?
            .get(0);
        assert_eq!(ungranted, 0);
    }

    // A coordinator session with a known id, queued before it dispatched:
    // nothing of it on the segments.
    let queued = Mode::Dispatcher {
        session_id: 77,
        application_name: "queued",
    };
    let held = cluster
        .waiting_sessions_as(-1, 1, queued, WaitReason::ResourceGroup, Login::Ordinary)
        .await?;
    let row = cluster
        .admin(-1)
        .await?
        .query_one(
            "SELECT sess_id, application_name FROM pg_stat_activity WHERE pid = $1",
            &[&held.pids[0]],
        )
        .await?;
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, &str>(1)),
        (77, "queued")
    );
    assert_eq!(
        cluster
            .query_i64(
                0,
                "SELECT count(*) FROM pg_stat_activity WHERE sess_id = 77"
            )
            .await?,
        0
    );
    Ok(())
}

/// Opens a connection to an instance as the ordinary role that stops in
/// authentication: its backend holds a connection slot but is not shown in
/// `pg_stat_activity` yet (as one that is leaving is no longer).
fn unauthenticated_backend(port: u16, family: Family) -> Result<std::net::TcpStream> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let options = family.utility_options();
    let mut body = 196_608_i32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [
        ("user", ORDINARY_USER),
        ("database", "postgres"),
        ("options", options.as_str()),
    ] {
        for text in [key, value] {
            body.extend_from_slice(text.as_bytes());
            body.push(0);
        }
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    stream.write_all(&packet)?;
    // The password request comes from a backend that has its slot.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut kind = [0u8; 1];
    stream.read_exact(&mut kind)?;
    assert_eq!(&kind, b"R", "an authentication request");
    Ok(stream)
}

async fn fill_waits_for_slots_of_backends_not_shown(backend: Backend) -> Result<()> {
    let family = backend.family;
    let settings = InstanceSettings::SEGMENT;
    let cluster = ClusterSpec::new(backend, 1).start()?;
    let stuck = unauthenticated_backend(cluster.instance(0).port, family)?;
    if !backend.is_real() {
        let free = "SELECT gpemu_free_slots()::bigint";
        let before = cluster.query_i64(0, free).await?;
        assert_eq!(
            before,
            settings.max_connections as i64 - 2,
            "it and the check"
        );
    }
    // The backend goes once the client hangs up, a while after fill starts.
    let hang_up = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(stuck);
    });
    let held = cluster.fill(0).await?;
    hang_up.await?;
    assert_eq!(held.len() as u32, settings.ordinary_slots());
    Ok(())
}

async fn gp6_answers_to_the_94_names_of_the_wal_functions(cluster: &Cluster) -> Result<()> {
    let family = cluster.family();
    let client = cluster.admin(0).await?;
    let position = client
        .query_one(
            "SELECT pg_xlog_location_diff(pg_current_xlog_location(), '0/0') > 0, \
                    length(pg_xlogfile_name(pg_current_xlog_location())), \
                    (pg_xlogfile_name_offset(pg_current_xlog_location())).file_name \
                        = pg_xlogfile_name(pg_current_xlog_location()), \
                    pg_last_xlog_receive_location() IS NULL, \
                    pg_current_xlog_insert_location() >= pg_current_xlog_location()",
            &[],
        )
        .await;
    match family {
        Family::Gp6 => {
            let row = position?;
            assert!(row.get::<_, bool>(0));
            assert_eq!(row.get::<_, i32>(1), 24);
            assert!(row.get::<_, bool>(2) && row.get::<_, bool>(3) && row.get::<_, bool>(4));
            // PostgreSQL's own answer on a primary, under the 9.4 name.
            let paused = client
                .query_one("SELECT pg_is_xlog_replay_paused()", &[])
                .await;
            assert_refused(
                paused,
                &SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                "recovery is not in progress",
            );
        }
        // Greenplum 7 is PostgreSQL 12: the new names only.
        Family::Gp7 => assert_refused(
            position,
            &SqlState::UNDEFINED_FUNCTION,
            "function pg_current_xlog_location() does not exist",
        ),
    }
    Ok(())
}

/// What a server of the family answers, where the emulation must answer as a
/// real one: read-only checks (the last leaves a prepared transaction on
/// GP7), one cluster for all, each failure named.
async fn the_family_answers_as_a_real_server(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    macro_rules! check {
        ($($name:ident),+ $(,)?) => {
            $( $name(&cluster).await.context(stringify!($name))?; )+
        };
    }
    check!(
        version_names_the_family,
        utility_mode_connects_and_the_other_familys_option_fails,
        non_utility_connection_to_segment_fails_with_greenplum_message,
        coordinator_gives_every_session_a_positive_sess_id,
        gp6_answers_to_the_94_names_of_the_wal_functions,
        startup_settings_the_family_lacks_are_refused,
        set_and_show_refuse_settings_the_family_lacks,
        functions_the_family_lacks_are_refused,
        prepare_transaction_in_utility_mode_is_refused_on_gp6,
    );
    Ok(())
}

gpemu_harness::for_each_backend!(
    the_family_answers_as_a_real_server,
    fill_waits_for_slots_of_backends_not_shown,
    k_ordinary_connections_raise_only_that_segments_count_by_k,
    session_states_are_what_the_helpers_promise,
    filled_segment_refuses_ordinary_roles_but_not_superusers,
    lock_waiter_shows_an_ungranted_lock,
    dispatched_session_holds_a_writer_and_readers_per_segment,
    stop_start_pause_resume_one_instance,
    settings_are_per_segment,
    dropping_the_cluster_stops_every_server_it_started,
    dropping_after_a_panic_stops_every_server,
);

gpemu_harness::for_each_family!(
    emulated_session_ids_are_counted_declared_or_none,
    declared_wait_reasons_show_in_the_familys_views,
    catalog_lists_the_cluster_and_follows_failover,
    sixteen_segments_start_and_stop,
    a_standby_takes_a_connection_slot_on_gp6,
    dropping_the_cluster_stops_a_standby_still_running,
);

// PREPARE TRANSACTION in utility mode: real Greenplum 6 refuses it.
gpemu_harness::backend_tests!(prepared_transactions_appear_in_pg_prepared_xacts: gp6, gp7, real_gp7);
