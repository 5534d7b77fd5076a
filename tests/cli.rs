//! The binary's behaviour on bad input: a clear message naming the key, exit
//! code 2, never a panic or a password in the output.

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
    // e.g. "greenplum_segment_exporter 0.1.0 (commit 1a2b3c4, built 2026-12-02)"
    let (commit, date) = (env!("GPSE_GIT_COMMIT"), env!("GPSE_BUILD_DATE"));
    assert_eq!(
        stdout.trim(),
        format!(
            "greenplum_segment_exporter {} (commit {commit}, built {date})",
            env!("CARGO_PKG_VERSION")
        )
    );
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
