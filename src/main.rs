use clap::Parser;
use greenplum_segment_exporter::cli::{Cli, LogFormat};
use greenplum_segment_exporter::config::{self, Settings};
use greenplum_segment_exporter::http;
use greenplum_segment_exporter::metrics::Snapshot;
use greenplum_segment_exporter::service::Service;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
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
    match runtime.block_on(serve(settings, &cli)) {
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

async fn serve(settings: Settings, cli: &Cli) -> anyhow::Result<()> {
    let names = settings.clusters.iter().map(|c| c.name.clone());
    let snapshot = Arc::new(Snapshot::new(names));
    let web = settings.web.clone();
    // Signal handlers first: a SIGTERM during start-up must not kill us uncleanly.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let listener = tokio::net::TcpListener::bind(web.listen_address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", web.listen_address))?;
    let mut service = Service::start(settings, snapshot.clone());
    info!(address = %listener.local_addr()?, path = %web.telemetry_path, "listening");
    let app = http::router(snapshot.clone(), &web.telemetry_path);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stopped.await;
    });
    let server = tokio::spawn(async move { server.await });

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(cli, &mut service, &snapshot),
        }
    }
    info!("shutting down");
    service.stop().await;
    let _ = stop_http.send(());
    server.await??;
    info!("stopped");
    Ok(())
}

/// Re-reads the configuration on SIGHUP; an invalid one is refused and the
/// running configuration kept.
fn reload(cli: &Cli, service: &mut Service, snapshot: &Snapshot) {
    match config::load(&cli.overrides()) {
        Ok(new) => {
            service.apply(new);
            snapshot.reloaded(true);
            info!("configuration reloaded");
        }
        Err(e) => {
            snapshot.reloaded(false);
            error!(key = %e.key, "configuration reload refused, keeping the running configuration: {e}");
        }
    }
}
