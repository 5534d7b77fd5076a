//! The exporter through real faults: each test causes the fault on real
//! servers and asserts what /metrics and the log show. The faults do not
//! depend on the family, so each runs on one emulated family, the families
//! taking turns, and those a real server can be put through also on real
//! Greenplum (`::real_gp6`, `::real_gp7`); a slow catalog, catalog edits and
//! a promoted standby only the emulation can be made to show.

mod support;

use anyhow::{Context, Result};
use gpemu_harness::{Backend, Cluster, ClusterSpec, Family, InstanceSettings, Login, Mode};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, SystemTime};
use support::{config_for, Exporter, Metrics};

const APP: &str = "greenplum_segment_exporter";
/// Deadline of one instance in `config_for` (instance_timeout = 800ms).
const DEADLINE_SECONDS: f64 = 0.8;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Exporter backends on an instance, read without the views (which a test
/// may have locked).
async fn exporter_backends(cluster: &Cluster, content: i16) -> Result<i64> {
    cluster
        .query_i64(
            content,
            &format!(
                "SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE application_name = '{APP}'"
            ),
        )
        .await
}

/// Polls until the exporter has no backend left on any instance.
async fn no_exporter_backends_left(cluster: &Cluster) -> Result<()> {
    for inst in cluster.instances() {
        let sql = format!(
            "SELECT count(*) = 0 FROM pg_stat_get_activity(NULL) WHERE application_name = '{APP}'"
        );
        cluster
            .wait_until(inst.content, &sql)
            .await
            .with_context(|| format!("exporter backends left on content {}", inst.content))?;
    }
    Ok(())
}

/// A cluster config with our own role and timings.
fn config_as(cluster: &Cluster, user: &str, password_file: &Path, timings: &str) -> String {
    format!(
        "[[clusters]]\nname = \"test\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\n\
         password_file = \"{}\"\n{timings}",
        cluster.coordinator().port,
        password_file.display()
    )
}

const FAST: &str = "scrape_interval = \"1s\"\ninstance_timeout = \"800ms\"\n\
                    statement_timeout = \"700ms\"\nlock_timeout = \"200ms\"\ntopology_refresh = \"1s\"\n";

fn write_file(dir: &Path, name: &str, text: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Lines of the log that mention `needle` and the instance `dbid=N`.
fn log_lines(log: &str, needle: &str, dbid: i16) -> usize {
    let dbid = format!("dbid={dbid} ");
    log.lines()
        .filter(|l| l.contains(needle) && l.contains(&dbid))
        .count()
}

async fn killed_segment_goes_down_alone_and_comes_back(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 3).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    exporter
        .wait_for("all up", |m| (-1..3).all(|c| m.up(c) == Some(1.0)))
        .await?;
    let killed_at = unix_now();
    cluster.stop(1)?;
    let m = exporter
        .wait_for("content 1 down, refused", |m| {
            m.up(1) == Some(0.0) && m.error_kind(1).as_deref() == Some("connect")
        })
        .await?;
    assert_eq!(
        m.seg("greenplum_connections_used", 1, &[]),
        None,
        "no stale figures"
    );
    // Two more rounds: everyone else keeps fresh values, rounds stay short.
    let m = exporter.wait_rounds(2.0).await?;
    for content in [-1, 0, 2] {
        assert_eq!(m.up(content), Some(1.0));
        let last = m
            .seg("greenplum_last_success_timestamp_seconds", content, &[])
            .unwrap();
        assert!(
            last > killed_at,
            "content {content} stale: {last} <= {killed_at}"
        );
        assert_eq!(m.seg("greenplum_connections_used", content, &[]), Some(1.0));
    }
    let round = m
        .get("greenplum_exporter_round_duration_seconds", &[])
        .unwrap();
    assert!(round < DEADLINE_SECONDS, "round took {round} s");

    cluster.start_instance(1)?;
    let m = exporter
        .wait_for("content 1 back", |m| m.up(1) == Some(1.0))
        .await?;
    assert_eq!(m.seg("greenplum_connections_used", 1, &[]), Some(1.0));
    assert!(
        m.seg("greenplum_scrape_errors_total", 1, &[("kind", "connect")])
            .unwrap()
            >= 1.0
    );
    assert_eq!(m.error_kind(1), None);
    // One log line per change of state, not one per failed round.
    let dbid = cluster.instance(1).dbid;
    let log = exporter.log();
    assert_eq!(log_lines(&log, "instance down", dbid), 1, "{log}");
    assert_eq!(log_lines(&log, "instance up", dbid), 2, "{log}");
    Ok(())
}

/// A segment restarted under the exporter (as during maintenance or a crash
/// recovery), logging at the production level: every line the exporter
/// writes meanwhile names the instance (cluster, content, dbid, address), the
/// server's own warnings included, and there is one line for down and one
/// for up, not one per failed round. The exporter keeps counting the
/// instance it tries to collect.
async fn log_lines_of_a_restarted_segment_name_it(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start_with_args(&config_for(&cluster, ""), &["--log.level=info"])?;
    exporter
        .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
        .await?;
    let before = exporter.log().len();
    cluster.stop(1)?;
    let m = exporter
        .wait_for("content 1 down", |m| m.up(1) == Some(0.0))
        .await?;
    assert_eq!(m.get("greenplum_exporter_instances", &[]), Some(3.0));
    exporter.wait_rounds(3.0).await?;
    cluster.start_instance(1)?;
    exporter
        .wait_for("content 1 back", |m| m.up(1) == Some(1.0))
        .await?;
    let log = exporter.log();
    let window: Vec<&str> = log[before..].lines().filter(|l| !l.is_empty()).collect();
    let seg = cluster.instance(1);
    let names = [
        "cluster=test".to_owned(),
        "content=1".to_owned(),
        format!("dbid={}", seg.dbid),
        "address=127.0.0.1".to_owned(),
        format!("port={}", seg.port),
    ];
    for line in &window {
        for name in &names {
            assert!(
                line.contains(name.as_str()),
                "{line:?} lacks {name}:\n{log}"
            );
        }
    }
    let count = |what: &str| window.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("instance down"), 1, "{log}");
    assert_eq!(count("instance up"), 1, "{log}");
    // The down line carries what went wrong, never a bare "db error".
    assert!(!log.contains("db error"), "{log}");
    Ok(())
}

async fn hung_segment_times_out_without_piling_up(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    exporter
        .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
        .await?;
    let port = cluster.instance(1).port;
    assert_eq!(exporter.connections_to(port)?, 1);

    cluster.pause(1)?;
    let m = exporter
        .wait_for("content 1 timing out", |m| {
            m.up(1) == Some(0.0) && m.error_kind(1).as_deref() == Some("timeout")
        })
        .await?;
    let first_timeouts = m
        .seg("greenplum_scrape_errors_total", 1, &[("kind", "timeout")])
        .unwrap();
    // Five rounds later: one collection outstanding, one connection, and
    // every round inside its deadline while the others stay fresh.
    for _ in 0..5 {
        let m = exporter.wait_rounds(1.0).await?;
        assert_eq!(m.up(1), Some(0.0));
        assert_eq!(m.up(0), Some(1.0));
        assert_eq!(m.up(-1), Some(1.0));
        assert_eq!(
            m.get("greenplum_exporter_pending_collections", &[]),
            Some(1.0)
        );
        let round = m
            .get("greenplum_exporter_round_duration_seconds", &[])
            .unwrap();
        // Not delayed past its deadline (a second wait would add 0.8 s); the
        // margin is for a loaded machine.
        assert!(round < DEADLINE_SECONDS + 0.5, "round took {round} s");
        assert_eq!(exporter.connections_to(port)?, 1);
    }
    let m = exporter.scrape().await?;
    let timeouts = m
        .seg("greenplum_scrape_errors_total", 1, &[("kind", "timeout")])
        .unwrap();
    assert!(
        timeouts >= first_timeouts + 5.0,
        "{timeouts} vs {first_timeouts}"
    );

    cluster.resume(1);
    let m = exporter
        .wait_for("content 1 answering again", |m| m.up(1) == Some(1.0))
        .await?;
    assert_eq!(
        m.get("greenplum_exporter_pending_collections", &[]),
        Some(0.0)
    );
    assert_eq!(m.seg("greenplum_connections_used", 1, &[]), Some(1.0));
    assert_eq!(exporter_backends(&cluster, 1).await?, 1);
    Ok(())
}

async fn full_segment_takes_the_exporter_back_through_a_reserved_slot(
    backend: Backend,
) -> Result<()> {
    let seg = InstanceSettings::SEGMENT;
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let m = exporter
        .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
        .await?;
    assert_eq!(
        m.get("greenplum_exporter_reserved_connections_usable", &[]),
        Some(1.0)
    );
    let mut held = cluster.fill(1).await?;
    let before = cluster
        .query_i64(
            1,
            &format!("SELECT pid::bigint FROM pg_stat_activity WHERE application_name = '{APP}'"),
        )
        .await?;

    // Freeze the exporter, end its session and let a client take the freed
    // ordinary slot: when it wakes up, only a reserved slot is left for it.
    exporter.signal(Signal::SIGSTOP)?;
    let admin = cluster.admin(1).await?;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&(before as i32)])
        .await?;
    cluster
        .wait_until(
            1,
            &format!("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = {before}"),
        )
        .await?;
    drop(admin);
    held.absorb(cluster.fill(1).await?);
    assert_eq!(held.len() as u32, seg.ordinary_slots());
    exporter.signal(Signal::SIGCONT)?;

    let full = seg.ordinary_slots() as f64 + 1.0;
    let m = exporter
        .wait_for("content 1 reported again, full", |m| {
            m.up(1) == Some(1.0) && m.seg("greenplum_connections_used", 1, &[]) == Some(full)
        })
        .await?;
    assert_eq!(
        m.seg("greenplum_connections_headroom_ordinary", 1, &[]),
        Some(0.0)
    );
    let view = exporter.instance_view(1).await?;
    assert_eq!(view["connections"]["used"], full);
    assert_eq!(
        view["connections"]["headroom_superuser"],
        (seg.max_connections - 1) as f64 - full
    );
    let after = cluster
        .query_i64(
            1,
            &format!("SELECT pid::bigint FROM pg_stat_activity WHERE application_name = '{APP}'"),
        )
        .await?;
    assert_ne!(after, before, "a new exporter session");
    assert!(cluster
        .connect(1, Login::Ordinary, Mode::Utility)
        .await
        .is_err());
    Ok(())
}

async fn ordinary_role_is_told_it_cannot_use_reserved_slots(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 1).start()?;
    let dir = tempfile::tempdir()?;
    let pw = write_file(dir.path(), "pw", gpemu_harness::ORDINARY_PASSWORD)?;
    let exporter = Exporter::start(&config_as(
        &cluster,
        gpemu_harness::ORDINARY_USER,
        &pw,
        FAST,
    ))?;
    let m = exporter
        .wait_for("up as an ordinary role", |m| m.up(0) == Some(1.0))
        .await?;
    assert_eq!(
        m.get("greenplum_exporter_reserved_connections_usable", &[]),
        Some(0.0)
    );
    let log = exporter.log();
    assert!(
        log.contains("cannot use superuser_reserved_connections"),
        "{log}"
    );
    Ok(())
}

async fn coordinator_down_at_start_and_later(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).mirrors(true).start()?;
    cluster.stop(-1)?;
    let mut exporter = Exporter::start(&config_for(&cluster, ""))?;
    let m = exporter
        .wait_for("coordinator reported down", |m| {
            m.up(-1) == Some(0.0) && m.error_kind(-1).as_deref() == Some("connect")
        })
        .await?;
    assert_eq!(m.get("greenplum_exporter_instances", &[]), Some(1.0));
    exporter.wait_rounds(3.0).await?;
    assert_eq!(exporter.get("/-/healthy").await?.0, 200);
    assert!(
        exporter.wait_exit(Duration::ZERO).await?.is_none(),
        "still running"
    );

    cluster.start_instance(-1)?;
    let m = exporter
        .wait_for("cluster discovered", |m| {
            (-1..2).all(|c| m.up(c) == Some(1.0))
        })
        .await?;
    assert_eq!(m.get("greenplum_exporter_instances", &[]), Some(3.0));

    // Down again: the segments are scraped from the last known topology.
    cluster.stop(-1)?;
    exporter
        .wait_for("coordinator down again", |m| m.up(-1) == Some(0.0))
        .await?;
    let down_at = unix_now();
    let m = exporter.wait_rounds(2.0).await?;
    for content in [0, 1] {
        assert_eq!(m.up(content), Some(1.0));
        let last = m
            .seg("greenplum_last_success_timestamp_seconds", content, &[])
            .unwrap();
        assert!(last > down_at);
    }
    assert!(
        m.get(
            "greenplum_exporter_topology_refreshes_total",
            &[("result", "error")]
        )
        .unwrap()
            >= 1.0
    );

    // Back, and a catalog change is picked up.
    cluster.start_instance(-1)?;
    exporter
        .wait_for("coordinator up again", |m| m.up(-1) == Some(1.0))
        .await?;
    let mirror = cluster
        .initial_catalog()
        .iter()
        .find(|r| r.content == 0 && r.role == 'm')
        .unwrap()
        .dbid;
    cluster.set_catalog_status(mirror, 'd').await?;
    let mirror = mirror.to_string();
    exporter
        .wait_for("mirror marked down", |m| {
            m.get("greenplum_catalog_instance_up", &[("dbid", &mirror)]) == Some(0.0)
        })
        .await?;
    Ok(())
}

/// A real failover: the mirror (a streaming standby) is promoted and the
/// catalog swaps the rows, as FTS does. The content's series go on with the
/// same labels, `greenplum_instance_info` describes the new primary (its
/// dbid, host and port), and the old primary's pool is closed.
async fn failover_keeps_the_series_and_moves_the_pool(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).mirrors(true).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let headroom = |m: &Metrics| {
        m.all(
            "greenplum_connections_headroom_ordinary",
            &[("content", "1")],
        )
        .iter()
        .map(|(_, labels, _)| labels.clone())
        .collect::<Vec<_>>()
    };
    let m = exporter
        .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
        .await?;
    let before = headroom(&m);
    assert_eq!(before.len(), 1, "{}", m.text);
    let primary = cluster.instance(1).clone();
    let mirror = cluster
        .initial_catalog()
        .iter()
        .find(|r| r.content == 1 && r.role == 'm')
        .unwrap()
        .clone();
    let standby = cluster.start_standby(1).await?;
    // FTS: the primary is gone, the mirror promoted and marked primary.
    cluster.stop(1)?;
    standby.promote()?;
    cluster
        .coordinator_execute(&format!(
            "UPDATE gp_segment_configuration SET \
               role = CASE role WHEN 'p' THEN 'm' ELSE 'p' END, \
               status = CASE role WHEN 'p' THEN 'd' ELSE 'u' END, \
               mode = 'n', \
               port = CASE role WHEN 'm' THEN {} ELSE port END \
             WHERE content = 1",
            standby.port
        ))
        .await?;
    let (mirror_dbid, port) = (mirror.dbid.to_string(), standby.port.to_string());
    let acting = [
        ("content", "1"),
        ("role", "p"),
        ("dbid", mirror_dbid.as_str()),
        ("port", port.as_str()),
    ];
    let m = exporter
        .wait_for("the promoted mirror collected", |m| {
            m.up(1) == Some(1.0) && m.get("greenplum_instance_info", &acting) == Some(1.0)
        })
        .await?;
    assert_eq!(headroom(&m), before, "the same series before and after");
    // The promoted mirror has no walsender until the old primary is recovered
    // as its mirror; the catalog says that row is down: they agree.
    let none = [("content", "1"), ("state", "none")];
    assert_eq!(
        m.get("greenplum_replication_state", &none),
        Some(1.0),
        "{}",
        m.text
    );
    let disagreement = m.get(
        "greenplum_replication_catalog_disagreement",
        &[("content", "1")],
    );
    assert_eq!(disagreement, Some(0.0), "{}", m.text);
    let info = m.all("greenplum_instance_info", &acting);
    assert_eq!(info[0].1["hostname"], mirror.hostname);
    assert_eq!(info[0].1["preferred_role"], "m");
    let old = primary.dbid.to_string();
    let old_info = m.all("greenplum_instance_info", &[("dbid", &old)]);
    assert_eq!(old_info[0].1["role"], "m", "{}", m.text);
    // Out of its preferred role, as the alert reads it.
    let promoted = m.all("greenplum_instance_info", &[("dbid", &mirror_dbid)]);
    assert_eq!(
        (
            promoted[0].1["role"].as_str(),
            promoted[0].1["preferred_role"].as_str()
        ),
        ("p", "m")
    );
    assert_eq!(
        m.get("greenplum_catalog_instance_up", &[("dbid", &old)]),
        Some(0.0)
    );
    assert_eq!(m.seg("greenplum_connections_used", 1, &[]), Some(1.0));
    // One exporter session on the promoted server, none left on the old one.
    let promoted = cluster
        .connect_at(standby.port, "postgres", Login::Superuser, Mode::Utility)
        .await?;
    let sql =
        format!("SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE application_name = '{APP}'");
    let on_standby: i64 = promoted.query_one(&sql, &[]).await?.get(0);
    assert_eq!(on_standby, 1);
    Ok(())
}

async fn lock_storms_and_slow_catalogs_are_cut_off_by_the_server(family: Family) -> Result<()> {
    let cluster = ClusterSpec::new(family, 2).start()?;
    // Wide margins: the server-side timeouts must fire well before the deadline.
    let timings = "scrape_interval = \"3s\"\ninstance_timeout = \"2500ms\"\n\
                   statement_timeout = \"1s\"\nlock_timeout = \"300ms\"\ntopology_refresh = \"3s\"\n";
    let exporter = Exporter::start(&config_as(
        &cluster,
        gpemu_harness::SUPERUSER,
        &cluster.superuser_password_file(),
        timings,
    ))?;
    exporter
        .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
        .await?;

    // A DBA's transaction holds ACCESS EXCLUSIVE on a view the collectors read.
    let dba = cluster.admin(1).await?;
    dba.batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_stat_activity IN ACCESS EXCLUSIVE MODE")
        .await?;
    let m = exporter
        .wait_for("content 1 cut off by lock_timeout", |m| {
            m.error_kind(1).as_deref() == Some("lock_timeout")
        })
        .await?;
    let info = m.all("greenplum_last_error_info", &[("content", "1")]);
    assert_eq!(info[0].1["sqlstate"], "55P03");
    assert_eq!(m.up(0), Some(1.0));
    // Counted from the DBA's session: while the view is locked, new sessions
    // cannot even log in to this instance (a reason to hold the connection).
    let count_sql = "SELECT count(*), count(*) FILTER (WHERE EXISTS ( \
                       SELECT 1 FROM pg_lock_status() l WHERE l.pid = a.pid AND NOT l.granted)) \
                     FROM pg_stat_get_activity(NULL) a WHERE application_name = $1";
    for _ in 0..4 {
        exporter.wait_rounds(1.0).await?;
        let row = dba.query_one(count_sql, &[&APP]).await?;
        let (backends, waiting): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(backends, 1, "exporter backends on content 1");
        assert!(waiting <= 1, "{waiting} exporter backends waiting");
    }
    dba.batch_execute("COMMIT").await?;
    exporter
        .wait_for("content 1 back after the lock", |m| m.up(1) == Some(1.0))
        .await?;

    // pg_stat_activity becomes slow on content 0: statement_timeout ends it.
    cluster.set_catalog_delay(0, 5000).await?;
    let m = exporter
        .wait_for("content 0 cut off by statement_timeout", |m| {
            m.error_kind(0).as_deref() == Some("statement_timeout")
        })
        .await?;
    let info = m.all("greenplum_last_error_info", &[("content", "0")]);
    assert_eq!(info[0].1["sqlstate"], "57014");
    assert_eq!(m.up(1), Some(1.0));
    let round = m
        .get("greenplum_exporter_round_duration_seconds", &[])
        .unwrap();
    assert!(round < 2.5, "round took {round} s");
    assert_eq!(exporter_backends(&cluster, 0).await?, 1);
    cluster.set_catalog_delay(0, 0).await?;
    exporter
        .wait_for("content 0 back", |m| m.up(0) == Some(1.0))
        .await?;
    Ok(())
}

async fn bad_credentials_and_privileges_fail_clearly_without_secrets(
    backend: Backend,
) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let dir = tempfile::tempdir()?;
    let secret = "Tr0ub4dor&3-not-the-password";
    let wrong = write_file(dir.path(), "wrong", secret)?;

    let exporter = Exporter::start(&config_as(&cluster, gpemu_harness::SUPERUSER, &wrong, FAST))?;
    let m = exporter
        .wait_for("wrong password refused", |m| {
            m.error_kind(-1).as_deref() == Some("auth")
        })
        .await?;
    let info = m.all("greenplum_last_error_info", &[("content", "-1")]);
    assert_eq!(info[0].1["sqlstate"], "28P01");
    assert_eq!(m.up(-1), Some(0.0));
    exporter.wait_rounds(2.0).await?;
    let log = exporter.log();
    assert!(log.contains("password authentication failed"), "{log}");
    assert!(!log.contains(secret), "the password leaked into the log");
    assert!(!exporter.scrape().await?.text.contains(secret));

    let nobody = Exporter::start(&config_as(&cluster, "nobody", &wrong, FAST))?;
    let m = nobody
        .wait_for("missing role refused", |m| {
            m.error_kind(-1).as_deref() == Some("auth")
        })
        .await?;
    // PostgreSQL answers a missing role like a wrong password, to hide which it was.
    let sqlstate = &m.all("greenplum_last_error_info", &[("content", "-1")])[0].1["sqlstate"];
    assert!(sqlstate == "28P01" || sqlstate == "28000", "{sqlstate}");
    assert!(!nobody.log().contains(secret));

    // A monitoring role loses SELECT on a view on one segment.
    let pw = write_file(dir.path(), "app", gpemu_harness::ORDINARY_PASSWORD)?;
    let monitor = Exporter::start(&config_as(
        &cluster,
        gpemu_harness::ORDINARY_USER,
        &pw,
        FAST,
    ))?;
    monitor
        .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
        .await?;
    let admin = cluster.admin(1).await?;
    admin
        .batch_execute("REVOKE SELECT ON pg_catalog.pg_prepared_xacts FROM PUBLIC")
        .await?;
    let m = monitor
        .wait_for("permission denied on content 1", |m| {
            m.error_kind(1).as_deref() == Some("permission")
        })
        .await?;
    assert_eq!(m.up(1), Some(0.0));
    assert_eq!(m.up(0), Some(1.0));
    admin
        .batch_execute("GRANT SELECT ON pg_catalog.pg_prepared_xacts TO PUBLIC")
        .await?;
    monitor
        .wait_for("content 1 back", |m| m.up(1) == Some(1.0))
        .await?;
    assert!(!monitor.log().contains(gpemu_harness::ORDINARY_PASSWORD));
    Ok(())
}

async fn sigterm_and_sigint_close_every_connection(backend: Backend) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut exporter = Exporter::start(&config_for(&cluster, ""))?;
        exporter
            .wait_for("all up", |m| (-1..2).all(|c| m.up(c) == Some(1.0)))
            .await?;
        // A hung segment keeps a collection in flight while we stop.
        cluster.pause(1)?;
        exporter
            .wait_for("a collection in flight", |m| {
                m.get("greenplum_exporter_pending_collections", &[]) == Some(1.0)
            })
            .await?;
        exporter.signal(signal)?;
        let status = exporter.wait_exit(Duration::from_secs(10)).await?;
        cluster.resume(1);
        let status = status.with_context(|| format!("still running 10 s after {signal}"))?;
        assert!(status.success(), "{signal}: {status}");
        assert!(exporter.log().contains("closed connections"));
        no_exporter_backends_left(&cluster).await?;
    }
    Ok(())
}

async fn sighup_reloads_keeping_healthy_pools_and_refuses_bad_configs(
    backend: Backend,
) -> Result<()> {
    let cluster = ClusterSpec::new(backend, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let setting = |m: &Metrics| m.all("greenplum_setting", &[("content", "0")]).len();
    exporter
        .wait_for("settings exported", |m| setting(m) > 0)
        .await?;
    let pid_sql =
        format!("SELECT pid::bigint FROM pg_stat_activity WHERE application_name = '{APP}'");
    let pid = cluster.query_i64(0, &pid_sql).await?;

    // Fewer collectors: applied without reconnecting.
    exporter.rewrite_config(&config_for(
        &cluster,
        "collectors = [\"connections\", \"prepared\", \"locks\", \"topology\"]\n",
    ))?;
    exporter.signal(Signal::SIGHUP)?;
    let m = exporter
        .wait_for("settings collector off", |m| {
            setting(m) == 0 && m.seg("greenplum_connections_used", 0, &[]).is_some()
        })
        .await?;
    assert_eq!(
        m.get("greenplum_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert_eq!(cluster.query_i64(0, &pid_sql).await?, pid, "pool kept");
    // The log says what the reload changed.
    let log = exporter.log();
    assert!(
        log.contains(
            "configuration reloaded: cluster \"test\": collectors \
             [connections,prepared,locks,settings,sessions,replication,topology] -> \
             [connections,prepared,locks,topology]"
        ),
        "{log}"
    );

    // An invalid file is refused; the running configuration stays.
    exporter.rewrite_config(&config_for(&cluster, "pool_size = 3\n"))?;
    exporter.signal(Signal::SIGHUP)?;
    let m = exporter
        .wait_for("reload refused", |m| {
            m.get("greenplum_exporter_config_last_reload_successful", &[]) == Some(0.0)
        })
        .await?;
    let log = exporter.log();
    assert!(log.contains("configuration reload refused"), "{log}");
    assert!(log.contains("clusters[0].pool_size"), "{log}");
    assert_eq!(setting(&m), 0);
    let m = exporter.wait_rounds(2.0).await?;
    assert_eq!(m.up(0), Some(1.0));
    assert_eq!(cluster.query_i64(0, &pid_sql).await?, pid);

    // A changed connection setting reconnects.
    exporter.rewrite_config(&config_for(&cluster, "").replace("700ms", "600ms"))?;
    exporter.signal(Signal::SIGHUP)?;
    exporter
        .wait_for("settings back", |m| {
            setting(m) > 0
                && m.get("greenplum_exporter_config_last_reload_successful", &[]) == Some(1.0)
        })
        .await?;
    exporter.wait_rounds(1.0).await?;
    let new_pid = cluster.query_i64(0, &pid_sql).await?;
    assert_ne!(new_pid, pid, "reconnected with the new statement_timeout");
    let log = exporter.log();
    assert!(
        log.contains(
            "cluster \"test\": collectors [connections,prepared,locks,topology] -> \
                      [connections,prepared,locks,settings,sessions,replication,topology]; \
                      cluster \"test\": statement_timeout 700ms -> 600ms"
        ),
        "{log}"
    );
    assert_eq!(exporter_backends(&cluster, 0).await?, 1);
    Ok(())
}

gpemu_harness::backend_tests!(killed_segment_goes_down_alone_and_comes_back: gp6, real_gp6, real_gp7);
gpemu_harness::backend_tests!(log_lines_of_a_restarted_segment_name_it: gp7, real_gp7);
gpemu_harness::backend_tests!(hung_segment_times_out_without_piling_up: gp7, real_gp6);
gpemu_harness::backend_tests!(full_segment_takes_the_exporter_back_through_a_reserved_slot: gp6, real_gp6);
gpemu_harness::backend_tests!(ordinary_role_is_told_it_cannot_use_reserved_slots: gp7, real_gp7);
gpemu_harness::backend_tests!(coordinator_down_at_start_and_later: gp7);
gpemu_harness::backend_tests!(failover_keeps_the_series_and_moves_the_pool: gp6);
gpemu_harness::backend_tests!(lock_storms_and_slow_catalogs_are_cut_off_by_the_server: gp7);
gpemu_harness::backend_tests!(bad_credentials_and_privileges_fail_clearly_without_secrets: gp6, real_gp6);
gpemu_harness::backend_tests!(sigterm_and_sigint_close_every_connection: gp7, real_gp7);
gpemu_harness::backend_tests!(sighup_reloads_keeping_healthy_pools_and_refuses_bad_configs: gp6, real_gp6);
