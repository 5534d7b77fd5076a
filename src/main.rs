use greenplum_segment_exporter::cli::{self, Cli, Command, LogFormat, LogLevel};
use greenplum_segment_exporter::config::{self, ConfigError, Settings};
use greenplum_segment_exporter::incident::store::Store;
use greenplum_segment_exporter::round::service::Service;
use greenplum_segment_exporter::round::snapshot::Snapshot;
use greenplum_segment_exporter::web::config::{self as web_config, LiveWebConfig, WebConfig};
use greenplum_segment_exporter::{cli::top, web, web::listener, web::systemd};
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
    let cli = cli::parse();
    if cli.version {
        print!("{}", cli::version::block());
        return ExitCode::SUCCESS;
    }
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
    let loaded = config::load(&cli.overrides())
        .and_then(|s| Ok((s, load_web_config(&cli)?)))
        .and_then(|(s, web)| Ok((s, web, systemd_sockets(&cli)?)));
    let (settings, web, sockets) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            error!(key = %e.key, "configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match runtime.block_on(serve(settings, LiveWebConfig::new(web), sockets, &cli)) {
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
        LogFormat::Logfmt => builder.event_format(cli::logfmt::Logfmt).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// With `--web.systemd-socket`, the sockets systemd passed; else none (the
/// configured addresses are bound).
fn systemd_sockets(cli: &Cli) -> Result<Option<Vec<std::net::TcpListener>>, ConfigError> {
    cli.systemd_socket.then(systemd::listeners).transpose()
}

fn load_web_config(cli: &Cli) -> Result<WebConfig, ConfigError> {
    match &cli.web_config_file {
        Some(path) => web_config::load(path),
        None => Ok(WebConfig::default()),
    }
}

async fn serve(
    settings: Settings,
    web_config: LiveWebConfig,
    sockets: Option<Vec<std::net::TcpListener>>,
    cli: &Cli,
) -> anyhow::Result<()> {
    let names = settings.clusters.iter().map(|c| c.name.clone());
    let incidents = Arc::new(Store::open(&settings.incidents));
    let exporter_metrics = !cli.disable_exporter_metrics;
    let snapshot = Arc::new(Snapshot::new(names, incidents, exporter_metrics));
    let web = settings.web.clone();
    // Signal handlers first: a SIGTERM during start-up must not kill us uncleanly.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let listeners = match sockets {
        Some(sockets) => sockets,
        None => bind(&web.listen_addresses)?,
    };
    let mut service = Service::start(settings.clone(), snapshot.clone());
    let mut running = settings;
    let (tls, basic_auth) = {
        let w = web_config.get();
        (w.tls.is_some(), w.auth.is_some())
    };
    for l in &listeners {
        info!(address = %l.local_addr()?, path = %web.telemetry_path, tls, basic_auth,
              max_requests = cli.max_requests, systemd_socket = cli.systemd_socket, "listening");
    }
    let app = web::router(
        snapshot.clone(),
        &web.telemetry_path,
        web_config.clone(),
        cli.max_requests,
    );
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let connections = listener::max_connections(cli.max_requests);
    let server = http_thread(
        listeners,
        web_config.clone(),
        app,
        connections,
        async move {
            let _ = http_stopped.await;
        },
    )?;

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(cli, &mut running, &mut service, &snapshot, &web_config),
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

/// Binds every address, or names the one that cannot be bound.
fn bind(addresses: &[std::net::SocketAddr]) -> anyhow::Result<Vec<std::net::TcpListener>> {
    addresses
        .iter()
        .map(|a| {
            let l = std::net::TcpListener::bind(a)
                .map_err(|e| anyhow::anyhow!("cannot listen on {a}: {e}"))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .collect()
}

/// Serves HTTP on a thread and runtime of its own, apart from collection:
/// `/metrics` answers from the published snapshot in microseconds, and must
/// not wait behind a round's thousand tasks or its render.
fn http_thread(
    listeners: Vec<std::net::TcpListener>,
    web_config: LiveWebConfig,
    app: axum::Router,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listeners = listeners
                    .into_iter()
                    .map(tokio::net::TcpListener::from_std)
                    .collect::<Result<Vec<_>, _>>()?;
                listener::serve(listeners, web_config, app, max_connections, shutdown).await;
                Ok(())
            })
        })?;
    Ok(thread)
}

/// Re-reads the configuration and the web configuration on SIGHUP; if either
/// is invalid, both are refused and the running ones kept. An applied
/// reload says what it changed.
fn reload(
    cli: &Cli,
    running: &mut Settings,
    service: &mut Service,
    snapshot: &Snapshot,
    web_config: &LiveWebConfig,
) {
    let loaded = config::load(&cli.overrides()).and_then(|new| {
        let web_changed = web_config.replace(load_web_config(cli)?)?;
        Ok((new, web_changed))
    });
    match loaded {
        Ok((new, web_changed)) => {
            let mut changes = config::changes(running, &new);
            if web_changed {
                changes.push("--web.config.file changed".into());
            }
            *running = new.clone();
            service.apply(new);
            snapshot.reloaded(true);
            match changes.is_empty() {
                true => info!("configuration reloaded: nothing changed"),
                false => info!("configuration reloaded: {}", changes.join("; ")),
            }
        }
        Err(e) => {
            snapshot.reloaded(false);
            error!(key = %e.key, "configuration reload refused, keeping the running configuration: {e}");
        }
    }
}
