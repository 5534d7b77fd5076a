use super::*;
use std::io::Write;

pub(super) fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

pub(super) fn load_file(ext: &str, text: &str) -> Result<Settings, ConfigError> {
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

/// The error's key is the key as the user wrote it: where in the file (a
/// cluster's own key, or one `[defaults]` gave it), or which flag; never
/// the file's path.
#[test]
fn errors_name_the_key_as_written() {
    let cases = [
        (
            "[[clusters]]\nhost = \"mdw\"\nscrape_interval = 5\n",
            "clusters[0].scrape_interval",
            "5 is a number without a unit",
        ),
        (
            "[defaults]\nscrape_interval = 5\n[[clusters]]\nhost = \"mdw\"\n",
            "defaults.scrape_interval",
            "write a duration such as \"5s\"",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nscrape_interval = \"soon\"\n",
            "clusters[0].scrape_interval",
            "\"soon\" is not a duration",
        ),
        (
            "[defaults]\ninstance_timeout = \"20s\"\n[[clusters]]\nhost = \"mdw\"\n",
            "defaults.instance_timeout",
            "20s must be above 0 and below scrape_interval (15s)",
        ),
        (
            "[defaults]\ninstance_timeout = \"20s\"\n[[clusters]]\nhost = \"mdw\"\n\
             instance_timeout = \"16s\"\n",
            "clusters[0].instance_timeout",
            "16s must be above 0",
        ),
        (
            "[defaults]\ntop_n = { usename = 0 }\n[[clusters]]\nhost = \"mdw\"\n",
            "defaults.top_n.usename",
            "between 1 and 1000",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nlog_max_bytes_per_round = 100\n",
            "clusters[0].log_max_bytes_per_round",
            "100 must be between 4096 and 67108864 bytes",
        ),
        (
            "[defaults]\nlog_max_bytes_per_round = \"1MB\"\n[[clusters]]\nhost = \"mdw\"\n",
            "defaults.log_max_bytes_per_round",
            "expected an integer",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nport = \"five\"\n",
            "clusters[0].port",
            "string \"five\" given, expected an integer",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nsurprise = 1\n",
            "clusters[0].surprise",
            "unknown key; the keys here are `name`, `host`",
        ),
        (
            "[defaults]\nsurprise = 1\n[[clusters]]\nhost = \"mdw\"\n",
            "defaults.surprise",
            "unknown key",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\ncollectors = [\"connections\", \"gossip\"]\n",
            "clusters[0].collectors[1]",
            "unknown collector \"gossip\"; the collectors are connections, prepared",
        ),
        (
            "[web]\nlisten_address = [\"127.0.0.1:1\", \"nowhere\"]\n[[clusters]]\nhost = \"a\"\n",
            "web.listen_address",
            "\"nowhere\" is not host:port",
        ),
        (
            "this is not toml",
            "--config.file",
            "TOML parse error at line 1",
        ),
    ];
    for (text, key, message) in cases {
        let err = load_file(".toml", text).expect_err(text);
        assert_eq!(err.key, key, "{text}: {err}");
        assert!(err.message.contains(message), "{text}: {err}");
        assert!(!err.message.contains('\n'), "one line: {err}");
    }
    // YAML says it the same way.
    let err = load_file(
        ".yaml",
        "clusters:\n  - host: mdw\n    scrape_interval: 5\n",
    )
    .unwrap_err();
    assert_eq!(err.key, "clusters[0].scrape_interval");
}

#[test]
fn flags_are_named_as_flags() {
    let dsn = || Overrides {
        coordinator_dsn: Some("host=mdw".into()),
        ..Overrides::default()
    };
    let cases = [
        (
            Overrides {
                collect_interval: Some(Duration::ZERO),
                ..dsn()
            },
            "--collect.interval",
        ),
        (
            Overrides {
                listen_addresses: vec!["127.0.0.1:1".into(), "nowhere".into()],
                ..dsn()
            },
            "--web.listen-address",
        ),
        (
            Overrides {
                listen_addresses: vec![":9297".into(), "0.0.0.0:9297".into()],
                ..dsn()
            },
            "--web.listen-address",
        ),
        (
            Overrides {
                telemetry_path: Some("metrics".into()),
                ..dsn()
            },
            "--web.telemetry-path",
        ),
        (
            Overrides {
                cluster_name: Some(String::new()),
                ..dsn()
            },
            "--cluster.name",
        ),
        (
            Overrides {
                coordinator_dsn: Some("host=mdw port=0".into()),
                ..Overrides::default()
            },
            "--coordinator.dsn",
        ),
        (
            Overrides {
                collectors: CollectorFlags {
                    disable_defaults: true,
                    ..CollectorFlags::default()
                },
                ..dsn()
            },
            "--collector.disable-defaults",
        ),
    ];
    for (o, key) in cases {
        let err = load(&o).expect_err(key);
        assert_eq!(err.key, key, "{err}");
    }
}

#[test]
fn collector_flags_win_over_the_file() {
    let pw = file(".pass", "x\n");
    let text = format!(
        "[defaults]\ncollectors = [\"connections\", \"locks\"]\n[[clusters]]\nname = \"a\"\n\
         host = \"mdw\"\npassword_file = \"{0}\"\n[[clusters]]\nname = \"b\"\nhost = \"sdw\"\n\
         password_file = \"{0}\"\ncollectors = [\"prepared\"]\n",
        pw.path().display()
    );
    let f = file(".toml", &text);
    let with = |collectors: CollectorFlags| {
        let s = load(&Overrides {
            config_file: Some(f.path().to_owned()),
            collectors,
            ..Overrides::default()
        })
        .unwrap();
        let all: Vec<Vec<CollectorName>> =
            s.clusters.iter().map(|c| c.collectors.clone()).collect();
        all
    };
    use CollectorName::*;
    assert_eq!(
        with(CollectorFlags::default()),
        [vec![Connections, Locks], vec![Prepared]]
    );
    let flags = CollectorFlags {
        enable: vec![Topology],
        disable: vec![Locks],
        ..CollectorFlags::default()
    };
    assert_eq!(
        with(flags),
        [vec![Connections, Topology], vec![Prepared, Topology]]
    );
    let only = CollectorFlags {
        disable_defaults: true,
        enable: vec![Sessions],
        ..CollectorFlags::default()
    };
    assert_eq!(with(only), [vec![Sessions], vec![Sessions]]);
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
        listen_addresses: vec![":9999".into(), "[::1]:9998".into()],
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
    let ports: Vec<u16> = s.web.listen_addresses.iter().map(|a| a.port()).collect();
    assert_eq!(ports, [9999, 9998]);

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
fn standby_port_needs_standby_host() {
    let base = "[[clusters]]\nhost = \"mdw\"\nport = 5432\npassword_env = \"HOME\"\n";
    let c = load_file(".toml", &format!("{base}standby_host = \"smdw\"\n")).unwrap();
    assert_eq!(c.clusters[0].standby, Some(("smdw".into(), 5432)));
    let err = load_file(".toml", &format!("{base}standby_port = 5433\n")).unwrap_err();
    assert!(err.to_string().contains("standby_port"), "{err}");
}

#[test]
fn collect_family_sets_every_cluster_over_the_file() {
    let pw = file(".pass", "x\n");
    let text = format!(
        "[defaults]\nfamily = \"gp6\"\n[[clusters]]\nhost = \"a\"\npassword_file = \"{0}\"\n\
         [[clusters]]\nhost = \"b\"\nfamily = \"auto\"\npassword_file = \"{0}\"\n",
        pw.path().display()
    );
    let toml = file(".toml", &text);
    let families = |family| {
        load(&Overrides {
            config_file: Some(toml.path().to_owned()),
            family,
            ..Overrides::default()
        })
        .unwrap()
        .clusters
        .iter()
        .map(|c| c.family)
        .collect::<Vec<_>>()
    };
    assert_eq!(families(None), [FamilyChoice::Gp6, FamilyChoice::Auto]);
    assert_eq!(
        families(Some(FamilyChoice::Gp7)),
        [FamilyChoice::Gp7, FamilyChoice::Gp7]
    );
    let dsn = load(&Overrides {
        coordinator_dsn: Some("host=mdw".into()),
        family: Some(FamilyChoice::Gp6),
        ..Overrides::default()
    })
    .unwrap();
    assert_eq!(dsn.clusters[0].family, FamilyChoice::Gp6);
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
