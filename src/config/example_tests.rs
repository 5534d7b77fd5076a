//! The shipped example configuration and the `[incidents]` keys.

use super::tests::{file, load_file};
use super::*;

/// The example, as shipped and with only `scrape_interval` changed: the
/// timeouts it leaves to their defaults follow the interval.
#[test]
fn the_example_configuration_loads_as_shipped_and_with_a_5s_interval() {
    let pw = file(".pass", "s3cret\n");
    let example = include_str!("../../config/greenplum_segment_exporter.toml").replace(
        "/etc/greenplum_segment_exporter/edw.password",
        &pw.path().display().to_string(),
    );
    let interval = "scrape_interval = \"15s\"";
    assert_eq!(example.matches(interval).count(), 1);
    let fast = load_file(
        ".toml",
        &example.replace(interval, "scrape_interval = \"5s\""),
    )
    .unwrap();
    let c = &fast.clusters[0];
    let ms = |d: std::time::Duration| d.as_millis();
    assert_eq!(
        [
            c.scrape_interval,
            c.instance_timeout,
            c.statement_timeout,
            c.lock_timeout,
            c.connect_timeout
        ]
        .map(ms),
        [5000, 2500, 1500, 1000, 2500]
    );
    let s = load_file(".toml", &example).unwrap();
    let c = &s.clusters[0];
    assert_eq!(
        [
            c.scrape_interval,
            c.instance_timeout,
            c.statement_timeout,
            c.lock_timeout,
            c.connect_timeout
        ]
        .map(ms),
        [15000, 5000, 3000, 1000, 5000]
    );
    assert_eq!(s.clusters.len(), 1);
    let c = &s.clusters[0];
    assert_eq!(
        (c.name.as_str(), c.host.as_str()),
        ("edw", "mdw.example.com")
    );
    // Every collector but the opt-in `log`.
    let all_but_log: Vec<CollectorName> = CollectorName::ALL
        .into_iter()
        .filter(|c| *c != CollectorName::Log)
        .collect();
    assert_eq!(c.collectors, all_but_log);
    assert_eq!(c.peak_window, None);
    assert_eq!(s.incidents, IncidentSettings::default());
    assert_eq!(c.incidents, s.incidents);
}

#[test]
fn incidents_keys_are_checked_and_query_text_is_off_by_default() {
    let pw = file(".pass", "x\n");
    let cluster = format!(
        "[[clusters]]\nhost = \"mdw\"\npassword_file = \"{}\"\n",
        pw.path().display()
    );
    let with =
        |incidents: &str| load_file(".toml", &format!("[incidents]\n{incidents}\n{cluster}"));
    assert_eq!(with("").unwrap().incidents.query_text_chars, 0);
    assert_eq!(
        with("query_text = true")
            .unwrap()
            .incidents
            .query_text_chars,
        200
    );
    let cut = with("query_text = true\nquery_text_max_chars = 40").unwrap();
    assert_eq!(cut.incidents.query_text_chars, 40);
    for (keys, key) in [
        (
            "query_text_max_chars = 40",
            "incidents.query_text_max_chars",
        ),
        ("threshold = -1", "incidents.threshold"),
        ("end_after_rounds = 0", "incidents.end_after_rounds"),
        ("keep = 0", "incidents.keep"),
        ("file_max_bytes = 100", "incidents.file_max_bytes"),
    ] {
        assert_eq!(with(keys).unwrap_err().key, key, "{keys}");
    }
    let windowed = load_file(".toml", &format!("{cluster}peak_window = \"500ms\"\n"));
    assert_eq!(windowed.unwrap_err().key, "clusters[0].peak_window");
}
