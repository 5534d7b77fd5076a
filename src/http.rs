//! HTTP endpoints: the metrics snapshot, health, readiness and a landing page;
//! GET and HEAD only, behind basic auth when configured, each request under a
//! deadline and few at once (bcrypt runs are costly), no version banner.

use crate::metrics::Snapshot;
use crate::web_config::LiveWebConfig;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use std::time::Duration;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Requests served at once; more are answered 503 at once rather than queued.
/// Enough for 50 concurrent scrapers, few enough to bound the CPU that
/// bcrypt checks of basic auth can take.
const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Deadline of one request until its response starts (auth included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    snapshot: Arc<Snapshot>,
    /// The exporter process's own CPU, memory and file descriptors.
    process: Registry,
    telemetry_path: String,
}

pub fn router(snapshot: Arc<Snapshot>, telemetry_path: &str, web: LiveWebConfig) -> Router {
    let process = Registry::new();
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    process
        .register(Box::new(collector))
        .expect("a fresh registry accepts the process collector");
    let state = AppState {
        snapshot,
        process,
        telemetry_path: telemetry_path.to_owned(),
    };
    Router::new()
        .route(telemetry_path, get(metrics))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/", get(status_page))
        .route("/api/v1/instances", get(instances))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not found\n") })
        .layer(middleware::from_fn_with_state(web, guard))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS)),
        )
        .with_state(state)
}

async fn overloaded(_: BoxError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many requests in progress\n",
    )
        .into_response()
}

/// Basic auth when configured, then the configured response headers.
async fn guard(State(web): State<LiveWebConfig>, request: Request, next: Next) -> Response {
    let web = web.get();
    let allowed = match &web.auth {
        None => true,
        Some(auth) => {
            let (auth, value) = (
                auth.clone(),
                request.headers().get(header::AUTHORIZATION).cloned(),
            );
            // bcrypt takes milliseconds of CPU: off the async workers.
            tokio::task::spawn_blocking(move || auth.check_header(value.as_ref()))
                .await
                .unwrap_or(false)
        }
    };
    let mut response = if allowed {
        next.run(request).await
    } else {
        let challenge = [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"))];
        (StatusCode::UNAUTHORIZED, challenge, "Unauthorized\n").into_response()
    };
    for (name, value) in &web.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut process = Vec::new();
    // Encoding a handful of process gauges cannot fail on a Vec.
    let _ = TextEncoder::new().encode(&s.process.gather(), &mut process);
    let chunks = [s.snapshot.body(), process.into()];
    let body = Body::from_stream(futures::stream::iter(
        chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
    ));
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.snapshot.is_ready() {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: waiting for the first complete collection round\n",
        )
            .into_response()
    }
}

/// The status page: the instances as a grid coloured by connection headroom,
/// refreshing itself from `/api/v1/instances`, with links to `/metrics` and
/// health. No external assets, and no version: that is in
/// `greenplum_exporter_build_info` only, for those allowed to scrape.
async fn status_page(State(s): State<AppState>) -> Html<String> {
    Html(STATUS_PAGE.replace("@METRICS_PATH@", &html_escape(&s.telemetry_path)))
}

const STATUS_PAGE: &str = include_str!("status.html");

/// The latest rounds' figures as JSON, from the same snapshot as `/metrics`.
async fn instances(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.snapshot.json(),
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
