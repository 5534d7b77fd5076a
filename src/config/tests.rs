use super::*;
use std::io::Write;

fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn load_file(ext: &str, text: &str) -> Result<Settings, ConfigError> {
    let f = file(ext, text);
    load(&Overrides {
        config_file: Some(f.path().to_owned()),
        ..Overrides::default()
    })
}

#[test]
fn toml_and_yaml_give_the_same_settings() {
    let pw = file(".pass", "s3cret\n");
    let toml = format!(
        "[defaults]\nscrape_interval = \"10s\"\n[[clusters]]\nname = \"prod\"\nhost = \"mdw\"\n\
         password_file = \"{}\"\ncollectors = [\"connections\", \"locks\"]\n",
        pw.path().display()
    );
    let yaml = format!(
        "defaults:\n  scrape_interval: 10s\nclusters:\n  - name: prod\n    host: mdw\n    \
         password_file: {}\n    collectors: [connections, locks]\n",
        pw.path().display()
    );
    let a = load_file(".toml", &toml).unwrap();
    let b = load_file(".yaml", &yaml).unwrap();
    assert_eq!(a, b);
    let c = &a.clusters[0];
    assert_eq!(c.scrape_interval, Duration::from_secs(10));
    assert_eq!(c.password.as_ref().unwrap().expose(), "s3cret");
    assert_eq!(
        c.collectors,
        [CollectorName::Connections, CollectorName::Locks]
    );
    assert_eq!(c.port, 5432);
    assert_eq!(c.pool_size, 1);
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            "[[clusters]]\nhost = \"mdw\"\npool_size = 3\n",
            "clusters[0].pool_size",
        ),
        ("[[clusters]]\nport = 5432\n", "clusters[0].host"),
        (
            "[[clusters]]\nhost = \"mdw\"\npassword = \"x\"\n",
            "clusters[0].password",
        ),
        (
            "[[clusters]]\nhost = \"a\"\nscrape_interval = \"5s\"\ninstance_timeout = \"5s\"\n",
            "clusters[0].instance_timeout",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nscrape_interval = \"soon\"\n",
            "scrape_interval",
        ),
        ("[[clusters]]\nhost = \"mdw\"\nbogus = 1\n", "bogus"),
        (
            "[[clusters]]\nhost = \"a\"\n[[clusters]]\nhost = \"a\"\n",
            "clusters[1].name",
        ),
        (
            "[web]\nlisten_address = \"nowhere\"\n[[clusters]]\nhost = \"a\"\n",
            "web.listen_address",
        ),
    ];
    for (text, key) in cases {
        let err = load_file(".toml", text).expect_err(text).to_string();
        assert!(err.contains(key), "{err:?} should name {key}");
    }
}

#[test]
fn inline_password_is_refused_and_never_echoed() {
    let err = load_file(
        ".toml",
        "[[clusters]]\nhost = \"mdw\"\npassword = \"hunter2\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "<redacted>");
}

#[test]
fn dsn_quick_start() {
    let s = load(&Overrides {
        coordinator_dsn: Some("postgresql://gpadmin:pw@mdw:6000/gpdb".into()),
        collect_interval: Some(Duration::from_secs(30)),
        listen_address: Some(":9999".into()),
        ..Overrides::default()
    })
    .unwrap();
    let c = &s.clusters[0];
    assert_eq!(
        (c.host.as_str(), c.port, c.database.as_str()),
        ("mdw", 6000, "gpdb")
    );
    assert_eq!(c.password.as_ref().unwrap().expose(), "pw");
    assert_eq!(c.scrape_interval, Duration::from_secs(30));
    assert_eq!(c.name, "mdw");
    assert_eq!(s.web.listen_address.port(), 9999);

    let kv = load(&Overrides {
        coordinator_dsn: Some("host=10.0.0.1 port=5432 user=mon dbname=postgres".into()),
        cluster_name: Some("edw".into()),
        ..Overrides::default()
    })
    .unwrap();
    assert_eq!(kv.clusters[0].user, "mon");
    assert_eq!(kv.clusters[0].name, "edw");
}

#[test]
fn unset_timeouts_follow_a_short_interval() {
    let s = load(&Overrides {
        coordinator_dsn: Some("host=mdw".into()),
        collect_interval: Some(Duration::from_secs(2)),
        ..Overrides::default()
    })
    .unwrap();
    let c = &s.clusters[0];
    assert_eq!(c.instance_timeout, Duration::from_secs(1));
    assert_eq!(c.statement_timeout, Duration::from_millis(600));
    assert_eq!(c.lock_timeout, Duration::from_millis(600));
    assert_eq!(c.connect_timeout, Duration::from_secs(1));

    let s = load_file(".toml", "[[clusters]]\nhost = \"mdw\"\n").unwrap();
    let c = &s.clusters[0];
    assert_eq!(c.scrape_interval, Duration::from_secs(15));
    assert_eq!(c.instance_timeout, Duration::from_secs(5));
    assert_eq!(c.statement_timeout, Duration::from_secs(3));
    assert_eq!(c.lock_timeout, Duration::from_secs(1));
}

#[test]
fn pgpass_lines_match_like_libpq() {
    let text = "# comment\nother:5432:*:gpadmin:nope\nmdw:*:*:gpadmin:pa\\:ss\n*:*:*:*:any\n";
    assert_eq!(
        secrets::pgpass::find(text, "mdw", "5432", "postgres", "gpadmin").as_deref(),
        Some("pa:ss")
    );
    assert_eq!(
        secrets::pgpass::find(text, "sdw1", "1", "x", "y").as_deref(),
        Some("any")
    );
    assert_eq!(
        secrets::pgpass::find(
            "mdw:5432:postgres:gpadmin:x",
            "mdw",
            "5433",
            "postgres",
            "gpadmin"
        ),
        None
    );
}

#[test]
fn the_example_configuration_loads() {
    let pw = file(".pass", "s3cret\n");
    let example = include_str!("../../config/greenplum_segment_exporter.toml").replace(
        "/etc/greenplum_segment_exporter/edw.password",
        &pw.path().display().to_string(),
    );
    let s = load_file(".toml", &example).unwrap();
    assert_eq!(s.clusters.len(), 1);
    let c = &s.clusters[0];
    assert_eq!(
        (c.name.as_str(), c.host.as_str()),
        ("edw", "mdw.example.com")
    );
    assert_eq!(c.collectors, CollectorName::ALL);
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
