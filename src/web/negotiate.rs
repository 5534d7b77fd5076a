//! Which exposition format a scraper gets: OpenMetrics when its `Accept`
//! prefers it (Prometheus lists `application/openmetrics-text` first), else
//! the text format, as before any negotiation.

use crate::round::snapshot::Format;
use axum::http::{header, HeaderMap};

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_1: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The same exposition under the draft's version, for a scraper that
/// accepts only that one.
const OPENMETRICS_0: &str = "application/openmetrics-text; version=0.0.1; charset=utf-8";

/// The format for a request's headers, and its `Content-Type`.
pub(super) fn format(headers: &HeaderMap) -> (Format, &'static str) {
    // (weight, content type) of the best range for each format.
    let mut text = (0.0_f32, TEXT);
    let mut om = (0.0_f32, OPENMETRICS_1);
    let mut any = false;
    for range in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        any = true;
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0_f32, None);
        for p in parts {
            match p
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            {
                Some(("q", v)) => q = v.parse().unwrap_or(0.0),
                Some(("version", v)) => version = Some(v.to_owned()),
                _ => {}
            }
        }
        let candidate = match (media.as_str(), version.as_deref()) {
            ("application/openmetrics-text", None | Some("1.0.0")) => {
                Some((&mut om, OPENMETRICS_1))
            }
            ("application/openmetrics-text", Some("0.0.1")) => Some((&mut om, OPENMETRICS_0)),
            ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => Some((&mut text, TEXT)),
            _ => None,
        };
        if let Some((best, content_type)) = candidate {
            // Of equal weights the newer OpenMetrics version wins.
            if q > best.0 || (q == best.0 && content_type == OPENMETRICS_1) {
                *best = (q, content_type);
            }
        }
    }
    if any && om.0 > 0.0 && om.0 >= text.0 {
        (Format::OpenMetrics, om.1)
    } else {
        (Format::Text, TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn negotiated(accept: Option<&str>) -> &'static str {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        format(&h).1
    }

    #[test]
    fn openmetrics_when_preferred_text_otherwise() {
        // Prometheus 2.x's scrape header.
        assert_eq!(
            negotiated(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                 version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            OPENMETRICS_1
        );
        assert_eq!(
            negotiated(Some("application/openmetrics-text")),
            OPENMETRICS_1
        );
        assert_eq!(
            negotiated(Some(
                "application/openmetrics-text; version=0.0.1,text/plain;q=0.5"
            )),
            OPENMETRICS_0
        );
        assert_eq!(negotiated(None), TEXT);
        assert_eq!(negotiated(Some("*/*")), TEXT);
        assert_eq!(negotiated(Some("text/plain")), TEXT);
        assert_eq!(
            negotiated(Some(
                "text/plain;version=0.0.4,application/openmetrics-text;q=0.5"
            )),
            TEXT
        );
        assert_eq!(negotiated(Some("application/openmetrics-text;q=0")), TEXT);
        // An unknown version is not offered.
        assert_eq!(
            negotiated(Some("application/openmetrics-text;version=9.9.9")),
            TEXT
        );
        assert_eq!(negotiated(Some("application/json")), TEXT);
    }
}
