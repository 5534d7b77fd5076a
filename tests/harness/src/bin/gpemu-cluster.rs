//! Starts an emulated Greenplum cluster for a demo or a benchmark, prints how to
//! reach it, optionally runs a command against it, and tears it down on Ctrl-C,
//! SIGTERM or when the command exits.
//!
//! In the command's arguments `{coordinator_dsn}` and `{password_file}` are
//! replaced by the coordinator's libpq DSN and the superuser's password file;
//! the command also gets `PGPASSFILE` naming a pgpass file for the cluster.

use anyhow::Result;
use clap::Parser;
use gpemu_harness::{ClusterSpec, Family, Login};
use std::time::Instant;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(about = "Run an emulated Greenplum cluster made of real PostgreSQL servers")]
struct Args {
    /// Emulated family: gp6 (gp_session_role) or gp7 (gp_role, also Cloudberry).
    #[arg(long, default_value = "gp6")]
    family: Family,
    /// Number of primary segments.
    #[arg(long, default_value_t = 4)]
    segments: usize,
    /// Also list a mirror per primary in gp_segment_configuration.
    #[arg(long)]
    mirrors: bool,
    /// Command to run against the cluster; the cluster stops when it exits.
    #[arg(last = true)]
    command: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let cluster = ClusterSpec::new(args.family, args.segments)
        .mirrors(args.mirrors)
        .start()?;
    eprintln!(
        "emulated {} cluster up in {:.1} s: coordinator + {} primaries",
        cluster.family(),
        started.elapsed().as_secs_f64(),
        cluster.segments().len()
    );
    for inst in cluster.instances() {
        eprintln!(
            "  content {:>3}  dbid {:>3}  {}  127.0.0.1:{}",
            inst.content, inst.dbid, inst.hostname, inst.port
        );
    }
    let dsn = cluster.dsn(-1, Login::Superuser);
    let password_file = cluster.superuser_password_file().display().to_string();
    eprintln!("  coordinator DSN: {dsn}  (password in {password_file})");
    eprintln!(
        "  inspect a segment: PGOPTIONS='{}' PGPASSWORD=$(cat {password_file}) psql -h 127.0.0.1 -p {} -U {} postgres",
        cluster.family().utility_options(),
        cluster.segments().first().map_or(0, |s| s.port),
        Login::Superuser.user()
    );

    let mut term = signal(SignalKind::terminate())?;
    let mut child = match args.command.split_first() {
        Some((program, rest)) => {
            let rest = rest.iter().map(|a| {
                a.replace("{coordinator_dsn}", &dsn)
                    .replace("{password_file}", &password_file)
            });
            let pgpass = cluster.root().join("pgpass");
            std::fs::write(
                &pgpass,
                format!(
                    "127.0.0.1:*:*:{}:{}\n",
                    Login::Superuser.user(),
                    Login::Superuser.password()
                ),
            )?;
            std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            Some(
                tokio::process::Command::new(program)
                    .args(rest)
                    .env("PGPASSFILE", &pgpass)
                    .spawn()?,
            )
        }
        None => None,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        status = async { child.as_mut().expect("child").wait().await }, if child.is_some() => {
            eprintln!("command exited: {}", status?);
        }
    }
    if let Some(child) = child.as_mut() {
        let _ = child.kill().await;
    }
    eprintln!("stopping the cluster");
    drop(cluster);
    Ok(())
}
