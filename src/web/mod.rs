//! The HTTP side: endpoints (`/metrics` from the round's snapshot, in the
//! text format or OpenMetrics as the scraper's `Accept` says, health,
//! readiness, the status page, `/api/v1/instances`), the listeners
//! (addresses, or systemd's sockets), the exporter-toolkit web configuration
//! (`config`: HTTPS, client certificates, basic auth, headers). GET and HEAD
//! only, behind basic auth when configured, each request under a deadline
//! and few at once (`--web.max-requests`; bcrypt runs are costly), no
//! version banner. Uses `round` (the snapshot), `config` (its error type,
//! file permissions) and `tls`.

pub mod basic_auth;
pub mod config;
pub mod listener;
mod negotiate;
mod status;
pub mod systemd;

use crate::round::snapshot::Snapshot;
use crate::web::config::LiveWebConfig;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use std::sync::Arc;
use std::time::Duration;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

pub use crate::config::DEFAULT_MAX_REQUESTS;
/// Deadline of one request until its response starts (auth included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    snapshot: Arc<Snapshot>,
    telemetry_path: String,
}

/// The endpoints; `max_requests` requests are served at once, every
/// endpoint counted (each passes basic auth), 0 for no limit.
pub fn router(
    snapshot: Arc<Snapshot>,
    telemetry_path: &str,
    web: LiveWebConfig,
    max_requests: usize,
) -> Router {
    let permits = match max_requests {
        0 => tokio::sync::Semaphore::MAX_PERMITS,
        n => n,
    };
    let state = AppState {
        snapshot,
        telemetry_path: telemetry_path.to_owned(),
    };
    Router::new()
        .route(telemetry_path, get(metrics))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/", get(status_page))
        .route("/api/v1/instances", get(instances))
        .route("/api/v1/incidents", get(incidents))
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
                .layer(GlobalConcurrencyLimitLayer::new(permits)),
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

/// The last rounds' exposition as encoded then, in the format the scraper
/// prefers, gzipped once per round for all who ask, and the peaks since the
/// previous scrape (see `Snapshot::scrape`).
async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let vary = (header::VARY, "Accept, Accept-Encoding");
    let (format, content_type) = negotiate::format(&headers);
    let content_type = (header::CONTENT_TYPE, content_type);
    if accepts_gzip(&headers) {
        let encoding = (header::CONTENT_ENCODING, "gzip");
        let headers = [content_type, encoding, vary];
        (headers, Parts::body(s.snapshot.scrape(format, true))).into_response()
    } else {
        (
            [content_type, vary],
            Parts::body(s.snapshot.scrape(format, false)),
        )
            .into_response()
    }
}

/// A response body sent as the parts it is made of, without copying them
/// into one buffer; its length is known, so it goes out with Content-Length.
struct Parts(std::collections::VecDeque<Bytes>);

impl Parts {
    fn body(parts: Vec<Bytes>) -> axum::body::Body {
        axum::body::Body::new(Parts(parts.into_iter().filter(|p| !p.is_empty()).collect()))
    }
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

/// True when `Accept-Encoding` lists gzip with a weight above 0.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let weight = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            name.eq_ignore_ascii_case("gzip") && weight > 0.0
        })
}

/// 200 once an instance of every cluster was collected; until then 503,
/// naming the clusters still waiting (their coordinator not reached yet).
async fn ready(State(s): State<AppState>) -> Response {
    if s.snapshot.is_ready() {
        return (StatusCode::OK, "Ready\n").into_response();
    }
    let waiting = s.snapshot.never_collected().join(", ");
    let why = format!("Not ready: no instance collected yet of cluster {waiting}\n");
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

/// What the status page is asked for: the whole page, or (its script's
/// refresh) `?fragment=clusters`.
#[derive(serde::Deserialize)]
struct PageQuery {
    fragment: Option<String>,
}

/// The status page (see `status`), written from the latest rounds; never
/// cached, so a reload shows the figures of now.
async fn status_page(State(s): State<AppState>, Query(q): Query<PageQuery>) -> Response {
    let html = match q.fragment.as_deref() {
        Some("clusters") => status::clusters(&s.snapshot),
        _ => status::page(&s.snapshot, &s.telemetry_path),
    };
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (headers, html).into_response()
}

/// The latest rounds' figures as JSON, from the same snapshot as `/metrics`.
async fn instances(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.snapshot.json(),
    )
        .into_response()
}

/// The recorded incidents as JSON, newest first.
async fn incidents(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.snapshot.incidents_json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::config::WebConfig;
    use std::io::Read;
    use tower::ServiceExt;

    fn encodings(value: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        accepts_gzip(&h)
    }

    #[test]
    fn gzip_is_used_when_asked_with_a_positive_weight() {
        assert!(encodings("gzip"));
        assert!(encodings("deflate, GZIP;q=0.5"));
        assert!(encodings("gzip, deflate, br"));
        assert!(!encodings("gzip;q=0"));
        assert!(!encodings("gzip; q=0.0, identity"));
        assert!(!encodings("identity"));
        assert!(!encodings("x-gzip-not"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn metrics_are_served_gzipped_to_who_asks_and_plain_otherwise() {
        let store = Arc::new(crate::incident::store::Store::in_memory(1));
        let snapshot = Arc::new(Snapshot::new(["c".to_owned()], store, true));
        let app = router(
            snapshot.clone(),
            "/metrics",
            LiveWebConfig::new(WebConfig::default()),
            DEFAULT_MAX_REQUESTS,
        );
        let get = |gzip: bool| {
            let mut r = Request::builder().uri("/metrics");
            if gzip {
                r = r.header(header::ACCEPT_ENCODING, "gzip");
            }
            r.body(axum::body::Body::empty()).unwrap()
        };
        let plain = app.clone().oneshot(get(false)).await.unwrap();
        assert_eq!(plain.headers().get(header::CONTENT_ENCODING), None);
        let plain = axum::body::to_bytes(plain.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(plain, snapshot.body());

        let zipped = app.oneshot(get(true)).await.unwrap();
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::VARY], "Accept, Accept-Encoding");
        let zipped = axum::body::to_bytes(zipped.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
        assert!(zipped.len() < plain.len());
    }
}
