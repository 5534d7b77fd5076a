//! HTTP endpoints: the metrics snapshot, health, readiness and a landing page.

use crate::metrics::Snapshot;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct AppState {
    snapshot: Arc<Snapshot>,
    /// The exporter process's own CPU, memory and file descriptors.
    process: Registry,
    telemetry_path: String,
}

pub fn router(snapshot: Arc<Snapshot>, telemetry_path: &str) -> Router {
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
        .route("/", get(landing))
        .with_state(state)
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

async fn landing(State(s): State<AppState>) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>Greenplum segment exporter</title></head><body>\
         <h1>Greenplum segment exporter</h1><p>Version {}</p><ul>\
         <li><a href=\"{path}\">{path}</a></li>\
         <li><a href=\"/-/healthy\">/-/healthy</a></li>\
         <li><a href=\"/-/ready\">/-/ready</a></li></ul></body></html>",
        env!("CARGO_PKG_VERSION"),
        path = s.telemetry_path
    ))
}
