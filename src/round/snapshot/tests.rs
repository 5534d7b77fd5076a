//! The snapshot: encodings, formats, peaks per scrape and readiness.

use super::*;

#[test]
fn gzip_body_is_the_body_compressed_once_per_change() {
    use std::io::Read;
    let snapshot = Snapshot::new(["c".to_owned()], Arc::new(Store::in_memory(1)), true);
    let gz = snapshot.body_gzip();
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain.as_bytes(), &snapshot.body()[..]);
    assert!(plain.contains("greenplum_exporter_build_info"));
    assert!(plain.contains("process_cpu_seconds_total"));
    // Same bytes (the cached buffer) until the body changes.
    assert_eq!(snapshot.body_gzip().as_ptr(), gz.as_ptr());
    snapshot.reloaded(false);
    assert_ne!(snapshot.body_gzip().as_ptr(), gz.as_ptr());
}

#[test]
fn a_scrape_is_the_body_then_the_peaks_written_once_per_change() {
    use std::io::Read;
    let snapshot = Snapshot::new(["c".to_owned()], Arc::new(Store::in_memory(1)), true);
    let view = empty_view();
    let round = |used: f64| {
        vec![Observation {
            labels: "cluster=\"c\",content=\"0\"".into(),
            used,
            headroom: 25.0 - used,
        }]
    };
    snapshot.publish("c", Writer::default(), view.clone(), round(25.0), None);
    snapshot.publish("c", Writer::default(), view, round(1.0), None);
    let pieces = snapshot.scrape(Format::Text, false);
    let (peaks, body) = pieces.split_last().unwrap();
    assert_eq!(body.concat(), snapshot.body());
    let text = String::from_utf8(peaks.to_vec()).unwrap();
    assert!(
        text.contains("greenplum_connections_used_peak{cluster=\"c\",content=\"0\"} 25\n"),
        "{text}"
    );
    // The next scrape starts a new interval; the one after writes nothing new.
    let next = snapshot.scrape(Format::Text, false).pop().unwrap();
    assert!(String::from_utf8_lossy(&next).contains("_peak{cluster=\"c\",content=\"0\"} 1\n"));
    let again = snapshot.scrape(Format::Text, false).pop().unwrap();
    assert_eq!(again.as_ptr(), next.as_ptr());
    // Gzipped: two members, which decode to the same text.
    let [gz_body, gz_peaks] = <[Bytes; 2]>::try_from(snapshot.scrape(Format::Text, true)).unwrap();
    let mut both = gz_body.to_vec();
    both.extend_from_slice(&gz_peaks);
    let mut plain = String::new();
    flate2::read::MultiGzDecoder::new(&both[..])
        .read_to_string(&mut plain)
        .unwrap();
    let mut expected = snapshot.body().to_vec();
    expected.extend_from_slice(&again);
    assert_eq!(plain.as_bytes(), &expected[..]);
}

fn empty_view() -> ClusterView {
    ClusterView {
        cluster: "c".into(),
        family: None,
        version: None,
        round_finished_at: None,
        interval_seconds: 1.0,
        instances: Vec::new(),
        not_collected: Vec::new(),
        attribution: None,
    }
}

fn gunzip(members: &[Bytes]) -> String {
    use std::io::Read;
    let mut plain = String::new();
    flate2::read::MultiGzDecoder::new(&members.concat()[..])
        .read_to_string(&mut plain)
        .unwrap();
    plain
}

#[test]
fn openmetrics_scrapes_share_the_samples_and_end_with_eof() {
    let snapshot = Snapshot::new(["c".to_owned()], Arc::new(Store::in_memory(1)), true);
    let text = snapshot.scrape(Format::Text, false).concat();
    let om = snapshot.scrape(Format::OpenMetrics, false).concat();
    let (text, om) = (
        String::from_utf8(text).unwrap(),
        String::from_utf8(om).unwrap(),
    );
    assert!(om.ends_with("\n# EOF\n") && !text.contains("# EOF"), "{om}");
    assert_eq!(om.matches("# EOF").count(), 1);
    let samples = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    // Process figures may move between the two encodings' gathers: the
    // same series in the same order, values aside.
    let series = |s: &str| -> Vec<String> {
        samples(s)
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
            .collect()
    };
    assert_eq!(series(&om), series(&text));
    assert!(om.contains("# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total "));
    assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    // Gzipped: the members decode to the plain scrape.
    let zipped = snapshot.scrape(Format::OpenMetrics, true);
    assert_eq!(zipped.len(), 3);
    assert_eq!(gunzip(&zipped), om);
}

#[test]
fn without_exporter_metrics_only_the_clusters_series_are_served() {
    let snapshot = Snapshot::new(["c".to_owned()], Arc::new(Store::in_memory(1)), false);
    let mut w = Writer::default();
    static G: Desc = Desc::gauge("greenplum_test_gauge", "A test gauge.");
    w.sample(&G, "cluster=\"c\"", &[], 1.0);
    snapshot.publish("c", w, empty_view(), Vec::new(), None);
    let body = String::from_utf8(snapshot.body().to_vec()).unwrap();
    assert_eq!(
        body,
        "# HELP greenplum_test_gauge A test gauge.\n# TYPE greenplum_test_gauge gauge\n\
         greenplum_test_gauge{cluster=\"c\"} 1\n"
    );
}

#[test]
fn ready_once_an_instance_of_every_cluster_was_collected() {
    use crate::model::catalog::SegmentRow;
    let names = ["a".to_owned(), "b".to_owned()];
    let snapshot = Snapshot::new(names, Arc::new(Store::in_memory(1)), true);
    let row = SegmentRow {
        dbid: 1,
        content: -1,
        role: 'p',
        preferred_role: 'p',
        mode: 'n',
        status: 'u',
        port: 5432,
        hostname: "mdw".into(),
        address: "mdw".into(),
    };
    let view = |cluster: &str, up: bool| {
        let mut v = empty_view();
        v.cluster = cluster.into();
        v.instances = vec![crate::collect::instance_view(
            &row,
            Some(up),
            None,
            None,
            &[],
        )];
        v
    };
    // Rounds that reached no instance do not make it ready.
    for cluster in ["a", "b"] {
        snapshot.publish(
            cluster,
            Writer::default(),
            view(cluster, false),
            Vec::new(),
            None,
        );
    }
    assert!(!snapshot.is_ready());
    assert_eq!(snapshot.never_collected(), ["a", "b"]);
    snapshot.publish("a", Writer::default(), view("a", true), Vec::new(), None);
    assert!(!snapshot.is_ready());
    assert_eq!(snapshot.never_collected(), ["b"]);
    snapshot.publish("b", Writer::default(), view("b", true), Vec::new(), None);
    assert!(snapshot.is_ready());
    // And stays ready while the instances are down.
    snapshot.publish("b", Writer::default(), view("b", false), Vec::new(), None);
    assert!(snapshot.is_ready());
}
