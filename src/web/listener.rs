//! Accepting HTTP connections on every listener, over TLS when the web
//! configuration says so, within bounds a misbehaving client cannot push: a
//! deadline for the TLS handshake and for the request head, and a cap on
//! open connections (all listeners together), so a slow or flooding client
//! cannot keep Prometheus out.

use crate::web::config::LiveWebConfig;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at most; Prometheus needs one or two (keep-alive), a
/// dashboard or `curl` loop a few more. Twice the request limit when that is
/// higher (`--web.max-requests`), so that excess requests get a 503 rather
/// than a closed socket.
const MIN_MAX_CONNECTIONS: usize = 128;
/// How long stopping waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors), not to spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Open connections at most, for a request limit (0: none).
pub fn max_connections(max_requests: usize) -> usize {
    MIN_MAX_CONNECTIONS.max(max_requests.saturating_mul(2))
}

/// Serves `app` on `listeners` until `shutdown` completes, then lets
/// requests in progress finish (for at most a few seconds). At most
/// `max_connections` are open at once, on all listeners together.
pub async fn serve(
    listeners: Vec<TcpListener>,
    web: LiveWebConfig,
    app: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    tokio::pin!(shutdown);
    let mut next = 0;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = accept(&listeners, &mut next) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "too many open connections: closing a new one");
            continue;
        };
        let tls = web.get().tls.clone();
        let (app, watcher) = (app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                return serve_connection(tcp, app, watcher).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(tls).accept(tcp)).await
            {
                Ok(Ok(stream)) => serve_connection(stream, app, watcher).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listeners);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("requests still in progress at shutdown were cut off");
    }
}

/// The next connection on any of `listeners`, polled from `next` on so that
/// none is starved by a busy one.
async fn accept(
    listeners: &[TcpListener],
    next: &mut usize,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    std::future::poll_fn(|cx| {
        for i in 0..listeners.len() {
            let at = (*next + i) % listeners.len();
            if let std::task::Poll::Ready(r) = listeners[at].poll_accept(cx) {
                *next = at + 1;
                return std::task::Poll::Ready(r);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn serve_connection<S>(stream: S, app: Router, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(connection).await {
        debug!(error = %e, "connection ended with an error");
    }
}
