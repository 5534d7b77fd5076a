//! The binary's behaviour on bad input: a clear message naming the key, exit
//! code 2, never a panic or a password in the output.

use greenplum_segment_exporter::config::REGISTRY;
use std::process::{Command, Output};

const EXPORTER: &str = env!("CARGO_BIN_EXE_greenplum_segment_exporter");

fn run(args: &[&str]) -> Output {
    Command::new(EXPORTER)
        .args(args)
        .env_remove("GPSE_COORDINATOR_DSN")
        .output()
        .expect("run the exporter")
}

fn run_with_config(text: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exporter.toml");
    std::fs::write(&path, text).unwrap();
    let out = run(&[&format!("--config.file={}", path.display())]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

#[test]
fn invalid_config_names_the_key_and_exits_2() {
    let cases = [
        (
            "[[clusters]]\nhost = \"mdw\"\npool_size = 3\n",
            "clusters[0].pool_size",
        ),
        ("[[clusters]]\nport = 5432\n", "clusters[0].host"),
        (
            "[[clusters]]\nhost = \"mdw\"\nscrape_interval = \"sometimes\"\n",
            "scrape_interval",
        ),
        ("[[clusters]]\nhost = \"mdw\"\nsurprise = 1\n", "surprise"),
        ("[[clusters]]\nhost = \"mdw\"\nport = \"five\"\n", "port"),
        (
            "[[clusters]]\nhost = \"mdw\"\nport = 0\n",
            "clusters[0].port",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nscrape_interval = \"0s\"\n",
            "clusters[0].scrape_interval",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\nconcurrency = 0\n",
            "clusters[0].concurrency",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\ncollectors = [\"connections\", \"gossip\"]\n",
            "gossip",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\npassword_file = \"/nonexistent/pw\"\n",
            "clusters[0].password_file",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\npassword_file = \"/\"\n",
            "clusters[0].password_file",
        ),
        (
            "[[clusters]]\nhost = \"mdw\"\npassword_env = \"GPSE_TEST_UNSET_VARIABLE\"\n",
            "clusters[0].password_env",
        ),
        (
            "[[clusters]]\nname = \"a\"\nhost = \"x\"\n[[clusters]]\nname = \"a\"\nhost = \"y\"\n",
            "clusters[1].name",
        ),
        ("[[clusters]]\nhost = [1, 2]\n", "host"),
        ("this is not toml", "exporter.toml"),
        (
            "[web]\nlisten_address = \"nowhere\"\n",
            "web.listen_address",
        ),
    ];
    for (text, key) in cases {
        let (out, stderr) = run_with_config(text);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(key), "{text}: {stderr:?} should name {key}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn inline_password_is_refused_without_echoing_it() {
    let (out, stderr) =
        run_with_config("[[clusters]]\nhost = \"mdw\"\npassword = \"correct-horse-battery\"\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("clusters[0].password"), "{stderr}");
    assert!(!stderr.contains("correct-horse-battery"), "{stderr}");
}

#[test]
fn missing_configuration_exits_2() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--config.file"), "{stderr}");

    let out = run(&["--config.file=/nonexistent/gpse.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn bad_flags_exit_2_and_version_exits_0() {
    let out = run(&["--no.such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--collect.interval=often", "--coordinator.dsn=host=mdw"]);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The build block of Prometheus exporters.
    let (commit, date) = (env!("GPSE_GIT_COMMIT"), env!("GPSE_BUILD_DATE"));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(
        lines[0],
        format!(
            "greenplum_segment_exporter, version {} (branch: {}, revision: {commit})",
            env!("CARGO_PKG_VERSION"),
            env!("GPSE_GIT_BRANCH")
        )
    );
    let field = |i: usize, name: &str| {
        let prefix = format!("  {name}:");
        let value = lines[i]
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{stdout}"));
        // Values line up in one column, as Prometheus prints them.
        assert_eq!(
            prefix.len() + value.len() - value.trim_start().len(),
            20,
            "{stdout}"
        );
        value.trim().to_owned()
    };
    let user = field(1, "build user");
    assert!(user.contains('@') && !user.starts_with('@'), "{user}");
    let built = field(2, "build date");
    assert!(
        built.len() == 17
            && built.starts_with(&date.replace('-', ""))
            && built.as_bytes()[8] == b'-',
        "{built}"
    );
    let rust = field(3, "rust version");
    assert!(
        rust.split('.').count() == 3 && rust.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{rust}"
    );
    assert_eq!(field(4, "platform"), "linux/amd64");
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    let digits: Vec<_> = date.split('-').map(|p| p.parse::<u32>().ok()).collect();
    assert!(
        matches!(digits[..], [Some(y), Some(1..=12), Some(1..=31)] if y >= 2024),
        "{date}"
    );
}

/// Every flag of the command line is listed by `--help`: those Prometheus
/// exporters share, and one pair per collector of the registry.
#[test]
fn help_lists_every_flag() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    let mut flags: Vec<String> = [
        "--version",
        "--config.file",
        "--coordinator.dsn",
        "--cluster.name",
        "--collect.interval",
        "--web.listen-address",
        "--web.systemd-socket",
        "--web.disable-exporter-metrics",
        "--web.max-requests",
        "--web.telemetry-path",
        "--web.config.file",
        "--log.level",
        "--log.format",
        "--collector.disable-defaults",
    ]
    .map(String::from)
    .to_vec();
    for r in REGISTRY {
        flags.push(format!("--collector.{}", r.name.name()));
        flags.push(format!("--no-collector.{}", r.name.name()));
    }
    for flag in &flags {
        let listed = help
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{flag} ")) || l.trim() == flag);
        assert!(listed, "{flag} not in --help:\n{help}");
    }
    assert!(help.contains("logfmt"), "{help}");
    assert!(help.contains("[default: 64]"), "{help}");
}

/// The exporter's log line of a configuration error, in logfmt, and the
/// exit code; `env` is set for the run.
fn config_error(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(EXPORTER)
        .args(args)
        .arg("--log.format=logfmt")
        .env_remove("GPSE_COORDINATOR_DSN")
        .envs(env.iter().copied())
        .output()
        .expect("run the exporter");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

/// The `key=` field of a logfmt line, unquoted.
fn key_field(line: &str) -> Option<String> {
    let rest = line.split(" key=").nth(1)?;
    Some(match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?.to_owned(),
        None => rest.split(' ').next()?.to_owned(),
    })
}

/// Arguments, environment, the key expected in the log and part of the message.
type ErrorCase<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str, &'a str);

/// Each error names the key as the user wrote it, in the message and in the
/// log's `key` field: a duration written as a number, a key set under
/// `[defaults]`, flags, environment overrides, an unknown key, a file that
/// is not TOML. The `key` field never holds the file's path.
#[test]
fn config_errors_name_the_key_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        format!("--config.file={}", path.display())
    };
    let dsn = "--coordinator.dsn=host=mdw";
    let cases: Vec<ErrorCase> = vec![
        (
            vec![file(
                "a.toml",
                "[[clusters]]\nhost = \"mdw\"\nscrape_interval = 5\n",
            )],
            vec![],
            "clusters[0].scrape_interval",
            "5 is a number without a unit",
        ),
        (
            vec![file(
                "b.toml",
                "[defaults]\ninstance_timeout = \"20s\"\n[[clusters]]\nhost = \"mdw\"\n",
            )],
            vec![],
            "defaults.instance_timeout",
            "below scrape_interval (15s)",
        ),
        (
            vec![dsn.into(), "--collect.interval=0s".into()],
            vec![],
            "--collect.interval",
            "0s is too short",
        ),
        (
            vec![dsn.into(), "--web.listen-address=nowhere".into()],
            vec![],
            "--web.listen-address",
            "\\\"nowhere\\\" is not host:port",
        ),
        (
            vec![dsn.into()],
            vec![("GPSE_DEFAULTS__SCRAPE_INTERVAL", "5")],
            "GPSE_DEFAULTS__SCRAPE_INTERVAL",
            "5 is a number without a unit",
        ),
        (
            vec![file("c.toml", "[[clusters]]\nhost = \"mdw\"\n")],
            vec![("GPSE_DEFAULTS__INSTANCE_TIMEOUT", "30s")],
            "GPSE_DEFAULTS__INSTANCE_TIMEOUT",
            "30s must be above 0",
        ),
        (
            vec![file(
                "d.toml",
                "[[clusters]]\nhost = \"mdw\"\nport = \"five\"\n",
            )],
            vec![],
            "clusters[0].port",
            "string \\\"five\\\" given, expected an integer",
        ),
        (
            vec![file(
                "e.toml",
                "[[clusters]]\nhost = \"mdw\"\nsurprise = 1\n",
            )],
            vec![],
            "clusters[0].surprise",
            "unknown key",
        ),
        (
            vec![file("f.toml", "this is not toml")],
            vec![],
            "--config.file",
            "f.toml: TOML parse error at line 1",
        ),
        (
            vec![dsn.into(), "--collector.disable-defaults".into()],
            vec![],
            "--collector.disable-defaults",
            "no collector left",
        ),
        (
            vec![dsn.into(), "--web.systemd-socket".into()],
            vec![],
            "--web.systemd-socket",
            "no socket passed by systemd",
        ),
    ];
    for (args, env, key, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = config_error(&args, &env);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("configuration error"))
            .unwrap_or_else(|| panic!("{args:?}: {stderr}"));
        assert_eq!(key_field(line).as_deref(), Some(key), "{args:?}: {line}");
        assert!(line.contains(message), "{args:?}: {line}");
        assert!(
            !key_field(line)
                .unwrap()
                .contains(dir.path().to_str().unwrap()),
            "{line}"
        );
    }
}

/// `--log.format=logfmt`: every line is `ts=... level=... target=... msg=...`
/// and the event's fields, values quoted when they must be.
#[test]
fn logfmt_lines_are_key_value_pairs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(EXPORTER)
        .arg(format!("--coordinator.dsn=host=127.0.0.1 port={closed}"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--collect.interval=1s", "--log.format=logfmt"])
        .env_remove("GPSE_COORDINATOR_DSN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let listening = format!(
        " level=info target=greenplum_segment_exporter msg=listening address=127.0.0.1:{port} \
         path=/metrics tls=false basic_auth=false max_requests=64 systemd_socket=false"
    );
    assert!(stderr.contains(&listening), "{stderr}");
    assert!(
        stderr.contains("msg=\"instance down\" cluster=127.0.0.1 content=-1"),
        "{stderr}"
    );
    for line in stderr.lines() {
        let ts = line.strip_prefix("ts=").unwrap_or_else(|| panic!("{line}"));
        let (ts, rest) = ts.split_once(' ').unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{line}");
        assert!(rest.starts_with("level="), "{line}");
        assert!(rest.contains(" msg="), "{line}");
    }
}
