use clap::Parser;
use greenplum_segment_exporter::cli::{Cli, Command, LogFormat, LogLevel};
use greenplum_segment_exporter::config::{self, ConfigError, Settings};
use greenplum_segment_exporter::incident::store::Store;
use greenplum_segment_exporter::round::service::Service;
use greenplum_segment_exporter::round::snapshot::Snapshot;
use greenplum_segment_exporter::web::config::{self as web_config, LiveWebConfig, WebConfig};
use greenplum_segment_exporter::{cli::top, web, web::listener};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info};

/// Exit code for invalid configuration, as for invalid flags.
const EXIT_CONFIG: u8 = 2;

/// Every round builds and drops buffers of megabytes at 1000 segments (the
/// body, its gzip, the JSON views). glibc raises its mmap threshold after the
/// first such free, so later ones stay in the heap and resident; and it
/// gives each thread an arena. A fixed threshold gives big buffers back to
/// the system when freed; two arenas are plenty for two to a few workers.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called first in main, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    init_logging(&cli);
    // Collection runs on this one thread: a round is a thousand small
    // socket reads whose tasks, on one thread, wake each other without
    // futexes or work stealing. Scrapes are served by a thread of their own
    // (`serve`), so a round's CPU never queues one.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Top(args)) = &cli.command {
        // `top --from` needs no configuration; one given is still read (and
        // must be valid), for the incidents file.
        let o = cli.overrides();
        let settings = match (&args.from, &o.config_file, &o.coordinator_dsn) {
            (Some(_), None, None) => None,
            _ => match config::load(&o) {
                Ok(s) => Some(s),
                Err(e) => {
                    error!(key = %e.key, "configuration error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            },
        };
        return ExitCode::from(runtime.block_on(top::run(settings, args)));
    }
    let (settings, web) =
        match config::load(&cli.overrides()).and_then(|s| Ok((s, load_web_config(&cli)?))) {
            Ok(loaded) => loaded,
            Err(e) => {
                error!(key = %e.key, "configuration error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
    match runtime.block_on(serve(settings, LiveWebConfig::new(web), &cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cli: &Cli) {
    // `top` prints a report: only problems go to the log unless asked.
    let default = match cli.command {
        Some(Command::Top(_)) => LogLevel::Warn,
        None => LogLevel::Info,
    };
    let level = cli.log_level.unwrap_or(default);
    let filter = tracing_subscriber::EnvFilter::try_from_env("GPSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_web_config(cli: &Cli) -> Result<WebConfig, ConfigError> {
    match &cli.web_config_file {
        Some(path) => web_config::load(path),
        None => Ok(WebConfig::default()),
    }
}

async fn serve(settings: Settings, web_config: LiveWebConfig, cli: &Cli) -> anyhow::Result<()> {
    let names = settings.clusters.iter().map(|c| c.name.clone());
    let incidents = Arc::new(Store::open(&settings.incidents));
    let snapshot = Arc::new(Snapshot::new(names, incidents));
    let web = settings.web.clone();
    // Signal handlers first: a SIGTERM during start-up must not kill us uncleanly.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let listener = tokio::net::TcpListener::bind(web.listen_address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", web.listen_address))?;
    let mut service = Service::start(settings, snapshot.clone());
    let (tls, basic_auth) = {
        let w = web_config.get();
        (w.tls.is_some(), w.auth.is_some())
    };
    info!(address = %listener.local_addr()?, path = %web.telemetry_path, tls, basic_auth,
          "listening");
    let app = web::router(snapshot.clone(), &web.telemetry_path, web_config.clone());
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = http_thread(listener.into_std()?, web_config.clone(), app, async move {
        let _ = http_stopped.await;
    })?;

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(cli, &mut service, &snapshot, &web_config),
        }
    }
    info!("shutting down");
    service.stop().await;
    let _ = stop_http.send(());
    tokio::task::spawn_blocking(move || server.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the HTTP thread panicked"))??;
    info!("stopped");
    Ok(())
}

/// Serves HTTP on a thread and runtime of its own, apart from collection:
/// `/metrics` answers from the published snapshot in microseconds, and must
/// not wait behind a round's thousand tasks or its render.
fn http_thread(
    listener: std::net::TcpListener,
    web_config: LiveWebConfig,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                listener::serve(listener, web_config, app, shutdown).await;
                Ok(())
            })
        })?;
    Ok(thread)
}

/// Re-reads the configuration and the web configuration on SIGHUP; if either
/// is invalid, both are refused and the running ones kept.
fn reload(cli: &Cli, service: &mut Service, snapshot: &Snapshot, web_config: &LiveWebConfig) {
    let loaded = config::load(&cli.overrides()).and_then(|new| {
        web_config.replace(load_web_config(cli)?)?;
        Ok(new)
    });
    match loaded {
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
