//! Starts an emulated Greenplum cluster for a demo or a benchmark, prints how to
//! reach it, optionally runs a command against it, and tears it down on Ctrl-C,
//! SIGTERM or when the command exits.
//!
//! In the command's arguments `{coordinator_dsn}` and `{password_file}` are
//! replaced by the coordinator's libpq DSN and the superuser's password file;
//! the command also gets `PGPASSFILE` naming a pgpass file for the cluster.
//!
//! SIGUSR1 replays the incident the exporter's incident tools were made for
//! (`bash scripts/demo replay` sends it): distributed sessions fill content 0's
//! ordinary slots, one more session is refused, and after 18 seconds they
//! are released.

use anyhow::{Context, Result};
use clap::Parser;
use gpemu_harness::{Cluster, ClusterSpec, Family, InstanceSettings, Login};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// The segment a replay fills.
const REPLAY_CONTENT: i16 = 0;
/// Readers besides the writer of each replayed session, per segment (the
/// last session gets fewer, to fill the segment exactly).
const REPLAY_READERS: usize = 3;
/// How long the replayed sessions hold their slots: the incident's 18 s, the
/// default gp_vmem_idle_resource_timeout after which idle reader gangs go.
/// Shorter than the 30 s GreenplumConnectionHeadroomExhausted waits, so it is
/// GreenplumConnectionSlotsExhaustedBriefly that fires.
const REPLAY_HOLD: Duration = Duration::from_secs(18);

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
    /// Connection limits of one primary, CONTENT:MAX_CONNECTIONS:SUPERUSER_RESERVED
    /// (repeatable; the others keep 30 and 5).
    #[arg(long, value_parser = parse_limits)]
    segment_limits: Vec<(i16, InstanceSettings)>,
    /// File to write this process's id to once it listens for SIGUSR1, which
    /// replays the incident (removed on exit).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Command to run against the cluster; the cluster stops when it exits.
    #[arg(last = true)]
    command: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut spec = ClusterSpec::new(args.family, args.segments).mirrors(args.mirrors);
    for (content, limits) in args.segment_limits {
        anyhow::ensure!(
            (content as usize) < args.segments,
            "--segment-limits: no primary with content {content}"
        );
        spec = spec.settings_for(content, limits);
    }
    let cluster = spec.start()?;
    eprintln!(
        "emulated {} cluster up in {:.1} s: coordinator + {} primaries",
        cluster.family(),
        started.elapsed().as_secs_f64(),
        cluster.segments().len()
    );
    for inst in cluster.instances() {
        eprintln!(
            "  content {:>3}  dbid {:>3}  {}  127.0.0.1:{}  max_connections {}, {} reserved",
            inst.content,
            inst.dbid,
            inst.hostname,
            inst.port,
            inst.settings.max_connections,
            inst.settings.superuser_reserved_connections
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
    // Handled before the pid file names this process: SIGUSR1 would end it otherwise.
    let mut usr1 = signal(SignalKind::user_defined1())?;
    if let Some(path) = &args.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "  replay the incident: kill -USR1 {} (bash scripts/demo replay)",
            std::process::id()
        );
    }
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
    let mut replay = None;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            status = async { child.as_mut().expect("child").wait().await }, if child.is_some() => {
                eprintln!("command exited: {}", status?);
                break;
            }
            _ = usr1.recv() => {
                if replay.is_some() {
                    eprintln!("replay: one is running already");
                } else {
                    replay = Some(Box::pin(replay_incident(&cluster)));
                }
            }
            done = async { replay.as_mut().expect("replay").await }, if replay.is_some() => {
                replay = None;
                if let Err(e) = done {
                    eprintln!("replay failed: {e:#}");
                }
            }
        }
    }
    drop(replay);
    if let Some(child) = child.as_mut() {
        let _ = child.kill().await;
    }
    if let Some(path) = &args.pid_file {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("stopping the cluster");
    drop(cluster);
    Ok(())
}

/// Fills content 0 with distributed sessions in open transactions, as the
/// incident did, holds them for the incident's 18 s and releases them.
async fn replay_incident(cluster: &Cluster) -> Result<()> {
    eprintln!(
        "replay: dispatching sessions until content {REPLAY_CONTENT} has no ordinary slot left"
    );
    let burst = cluster
        .fill_with_sessions(REPLAY_CONTENT, REPLAY_READERS)
        .await?;
    eprintln!(
        "replay: {} sessions hold {} executors on every segment; content {REPLAY_CONTENT} is full: \
         the next session was refused ({}); releasing them in {} s",
        burst.executors.len(),
        burst.executors.iter().sum::<usize>(),
        burst.refused,
        REPLAY_HOLD.as_secs()
    );
    tokio::time::sleep(REPLAY_HOLD).await;
    drop(burst);
    eprintln!("replay: sessions released");
    Ok(())
}

fn parse_limits(s: &str) -> Result<(i16, InstanceSettings), String> {
    let fields: Vec<&str> = s.split(':').collect();
    let [content, max, reserved] = fields[..] else {
        return Err("expected CONTENT:MAX_CONNECTIONS:SUPERUSER_RESERVED".into());
    };
    let number = |f: &str| f.parse::<u32>().map_err(|e| format!("{f}: {e}"));
    let content = content
        .parse::<i16>()
        .ok()
        .filter(|c| *c >= 0)
        .ok_or(format!("{content}: not the content id of a primary"))?;
    let (max_connections, superuser_reserved_connections) = (number(max)?, number(reserved)?);
    if superuser_reserved_connections >= max_connections {
        return Err("SUPERUSER_RESERVED must be below MAX_CONNECTIONS".into());
    }
    Ok((
        content,
        InstanceSettings {
            max_connections,
            superuser_reserved_connections,
            ..InstanceSettings::SEGMENT
        },
    ))
}
