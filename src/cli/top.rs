//! `greenplum_segment_exporter top`: the view a DBA builds by hand with psql
//! during a "too many clients" incident: per instance, lowest connection
//! headroom first, and the coordinator sessions holding most segment slots.
//! The figures come from one collection round of the daemon's own code and
//! configuration, or, with `--from`, from a running exporter's API, which
//! takes no connection slot anywhere. `--incidents` lists the recorded
//! episodes instead.

use super::from::Exporter;
use super::{incidents, table};
use crate::cli::TopArgs;
use crate::config::Settings;
use crate::incident::store::{self, Store};
use crate::model::incident::{Incident, IncidentDocument};
use crate::model::view::{ClusterView, Document, OwnedDocument};
use crate::round::Runner;
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

/// Exit status with `--fail-below`: an instance is below the headroom asked for.
pub const EXIT_LOW_HEADROOM: u8 = 1;
/// Exit status with `--fail-below`: an instance could not be collected.
pub const EXIT_NOT_COLLECTED: u8 = 3;
/// Exit status when the figures could not be had at all (`--from` failed).
pub const EXIT_UNAVAILABLE: u8 = 4;

/// Width when the output is not a terminal: nothing is cut.
pub const UNLIMITED: usize = usize::MAX;

/// Where the figures come from.
enum Source {
    /// Rounds of the daemon's own code, over connections of `top`'s own.
    Rounds(Vec<Runner>),
    /// A running exporter's `/api/v1/instances`.
    Exporter(Exporter),
}

/// Prints the table (once, or every `--watch` seconds until Ctrl-C), or the
/// incidents; returns the exit status. `settings` is `None` with `--from`
/// and no configuration.
pub async fn run(settings: Option<Settings>, args: &TopArgs) -> u8 {
    match run_checked(settings, args).await {
        Ok(status) => status,
        Err(e) => {
            eprintln!("top: {e:#}");
            EXIT_UNAVAILABLE
        }
    }
}

async fn run_checked(settings: Option<Settings>, args: &TopArgs) -> Result<u8> {
    let from = args.from.as_deref().map(Exporter::parse).transpose()?;
    if args.incidents {
        let list = match &from {
            Some(e) => fetch_incidents(e, args).await?,
            None => incidents_file(settings.as_ref())?,
        };
        print(&incidents::render(&list, width()));
        return Ok(0);
    }
    let mut source = match from {
        Some(e) => Source::Exporter(e),
        None => {
            let settings = settings.context("no cluster configured")?;
            // Incidents of top's own rounds are not kept: the daemon records them.
            let store = Arc::new(Store::in_memory(1));
            let runners = settings
                .clusters
                .into_iter()
                .map(|c| Runner::new(c, store.clone()))
                .collect();
            Source::Rounds(runners)
        }
    };
    let status = loop {
        let views = match source.views(args).await {
            Ok(views) => views,
            Err(e) => {
                source.close();
                return Err(e);
            }
        };
        let text = if args.json {
            let document = Document {
                clusters: views.iter().collect(),
            };
            // Serialising plain data cannot fail.
            let json = serde_json::to_string_pretty(&document).unwrap_or_default();
            format!("{json}\n")
        } else {
            let width = width();
            views.iter().map(|v| table::render(v, width)).collect()
        };
        // Redraw in place on a terminal; otherwise one report after another.
        let clear = args.watch.is_some() && std::io::stdout().is_terminal();
        print(&format!(
            "{}{text}",
            if clear { "\x1b[H\x1b[2J" } else { "" }
        ));
        let status = args.fail_below.map_or(0, |n| check(&views, n));
        let Some(seconds) = args.watch else {
            break status;
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
            _ = tokio::signal::ctrl_c() => break status,
        }
    };
    source.close();
    Ok(status)
}

impl Source {
    async fn views(&mut self, args: &TopArgs) -> Result<Vec<ClusterView>> {
        match self {
            Source::Rounds(runners) => {
                futures::future::join_all(runners.iter_mut().map(Runner::round)).await;
                Ok(runners.iter_mut().map(|r| r.render().1).collect())
            }
            Source::Exporter(e) => {
                let body = e
                    .get("/api/v1/instances", args.from_ca_file.as_deref())
                    .await?;
                let document: OwnedDocument = serde_json::from_slice(&body)
                    .context("/api/v1/instances is not an exporter's document")?;
                Ok(document.clusters)
            }
        }
    }

    fn close(&mut self) {
        if let Source::Rounds(runners) = self {
            for runner in runners {
                runner.close();
            }
        }
    }
}

async fn fetch_incidents(e: &Exporter, args: &TopArgs) -> Result<Vec<Incident>> {
    let body = e
        .get("/api/v1/incidents", args.from_ca_file.as_deref())
        .await?;
    let document: IncidentDocument =
        serde_json::from_slice(&body).context("/api/v1/incidents is not an exporter's document")?;
    Ok(document.incidents)
}

/// The episodes of the configured incidents file, newest first.
fn incidents_file(settings: Option<&Settings>) -> Result<Vec<Incident>> {
    let path = settings.and_then(|s| s.incidents.file.as_ref()).context(
        "no incidents file configured (incidents.file): give --from URL of a running exporter",
    )?;
    Ok(store::read_back(path).into_iter().rev().collect())
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn width() -> usize {
    if std::io::stdout().is_terminal() {
        terminal_size::terminal_size().map_or(80, |(w, _)| usize::from(w.0))
    } else {
        UNLIMITED
    }
}

/// `--fail-below N`: which instances fail the check, said on stderr.
fn check(views: &[ClusterView], n: u32) -> u8 {
    let mut status = 0;
    for v in views {
        for i in &v.instances {
            let c = &i.catalog;
            match (&i.up, &i.connections) {
                (Some(true), Some(slots)) if slots.headroom_ordinary < f64::from(n) => {
                    eprintln!(
                        "{} content {} (dbid {}): {} ordinary slots left, below {n}",
                        v.cluster, c.content, c.dbid, slots.headroom_ordinary
                    );
                    status = status.max(EXIT_LOW_HEADROOM);
                }
                (Some(true), _) => {}
                _ => {
                    eprintln!(
                        "{} content {} (dbid {}): not collected",
                        v.cluster, c.content, c.dbid
                    );
                    status = status.max(EXIT_NOT_COLLECTED);
                }
            }
        }
    }
    status
}
