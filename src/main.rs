use clap::Parser;
use greenplum_segment_exporter::cli::{Cli, LogFormat};
use greenplum_segment_exporter::config::{self, Settings};
use greenplum_segment_exporter::http;
use greenplum_segment_exporter::metrics::Snapshot;
use greenplum_segment_exporter::round::Runner;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info};

/// Exit code for invalid configuration, as for invalid flags.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let settings = match config::load(&cli.overrides()) {
        Ok(s) => s,
        Err(e) => {
            error!(key = %e.key, "configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GPSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_level.as_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let snapshot = Arc::new(Snapshot::new(settings.clusters.len()));
    let (stop, stopped) = watch::channel(false);
    let mut runners = Vec::new();
    for cluster in settings.clusters {
        let runner = Runner::new(cluster);
        info!(cluster = runner.name(), "starting collection");
        runners.push(tokio::spawn(runner.run(snapshot.clone(), stopped.clone())));
    }

    let listener = tokio::net::TcpListener::bind(settings.web.listen_address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.web.listen_address))?;
    info!(address = %listener.local_addr()?, path = %settings.web.telemetry_path, "listening");
    let app = http::router(snapshot, &settings.web.telemetry_path);
    let mut http_stopped = stopped.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stopped.changed().await;
    });
    let server = tokio::spawn(async move { server.await });

    wait_for_shutdown_signal().await?;
    info!("shutting down");
    let _ = stop.send(true);
    for r in runners {
        let _ = r.await;
    }
    server.await??;
    Ok(())
}

async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
