//! Names from the database end up in label values: roles, databases and
//! applications with quotes, backslashes, newlines, UTF-8 and bytes that are
//! not UTF-8 at all must leave the exposition valid and be reported as the
//! server has them.

mod support;

use anyhow::Result;
use gpemu_harness::{ClusterSpec, Family, Login, Mode};
use support::{config_for, promtool_check_metrics, Exporter};
use tokio_postgres::NoTls;

const QUOTED_ROLE: &str = "we\"ird\\role";
const UTF8_ROLE: &str = "ролевой_пользователь";
const NEWLINE_DB: &str = "line1\nline2";
const APP_NAME: &str = "app \"quoted\" \\ back";
/// A role name that is not UTF-8, created from a SQL_ASCII database.
const RAW_ROLE: &[u8] = b"bad-\xff-name";
const PASSWORD: &str = "weird-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_names_are_escaped_and_the_exposition_stays_valid() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp6, 1).start()?;
    let admin = cluster.admin(0).await?;
    for role in [QUOTED_ROLE, UTF8_ROLE] {
        let sql = format!(
            "CREATE ROLE {} LOGIN PASSWORD '{PASSWORD}'",
            quote_ident(role)
        );
        admin.batch_execute(&sql).await?;
    }
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template1",
            quote_ident(NEWLINE_DB)
        ))
        .await?;
    admin
        .batch_execute("CREATE DATABASE ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        .await?;
    let ascii = cluster
        .connect_to(0, "ascii", Login::Superuser, Mode::Utility)
        .await?;
    let hex: String = RAW_ROLE.iter().map(|b| format!("{b:02x}")).collect();
    ascii
        .batch_execute(&format!(
            "DO $$ BEGIN EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', \
             convert_from('\\x{hex}'::bytea, 'SQL_ASCII'), '{PASSWORD}'); END $$"
        ))
        .await?;

    // One session of each, as real clients would open them.
    let port = cluster.instance(0).port;
    let mut sessions = Vec::new();
    for (user, db) in [(QUOTED_ROLE, "postgres"), (UTF8_ROLE, NEWLINE_DB)] {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(port)
            .user(user)
            .password(PASSWORD)
            .dbname(db)
            .application_name(APP_NAME)
            .options(cluster.family().utility_options())
            .connect(NoTls)
            .await?;
        tokio::spawn(connection);
        sessions.push(client);
    }
    let _raw = cluster.raw_user_session(0, RAW_ROLE, PASSWORD).await?;

    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let by_user = |m: &support::Metrics, user: &str| {
        m.seg("greenplum_connections_by_user", 0, &[("usename", user)])
    };
    let raw_lossy = String::from_utf8_lossy(RAW_ROLE).into_owned();
    let m = exporter
        .wait_for("odd names reported", |m| {
            by_user(m, QUOTED_ROLE) == Some(1.0)
                && by_user(m, UTF8_ROLE) == Some(1.0)
                && by_user(m, &raw_lossy) == Some(1.0)
        })
        .await?;
    assert_eq!(
        m.seg(
            "greenplum_connections_by_database",
            0,
            &[("datname", NEWLINE_DB)]
        ),
        Some(1.0)
    );
    // The server keeps what application_name it accepts; the label shows exactly that.
    let reported: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE usename = $1",
            &[&QUOTED_ROLE],
        )
        .await?
        .get(0);
    assert_eq!(reported, APP_NAME);
    assert_eq!(
        m.seg(
            "greenplum_connections_by_application",
            0,
            &[("application_name", APP_NAME)]
        ),
        Some(2.0)
    );
    assert_eq!(m.seg("greenplum_up", 0, &[]), Some(1.0));
    let report = promtool_check_metrics(&m.text)?;
    assert!(report.trim().is_empty(), "promtool findings:\n{report}");
    // The raw bytes never reach the exposition: it is valid UTF-8 text.
    assert!(m.text.contains("bad-\u{fffd}-name"));
    drop(sessions);
    Ok(())
}

/// A double-quoted SQL identifier.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
