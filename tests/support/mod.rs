//! Running the real exporter binary against an emulated cluster and reading
//! its `/metrics` over HTTP, as Prometheus would.

#![allow(dead_code)] // each test binary uses a different part of this module

use anyhow::{bail, Context, Result};
use gpemu_harness::Cluster;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const EXPORTER: &str = env!("CARGO_BIN_EXE_greenplum_segment_exporter");

/// A running exporter process; killed when dropped.
pub struct Exporter {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

/// Extra TOML lines for the cluster section.
pub fn config_for(cluster: &Cluster, extra: &str) -> String {
    let c = cluster.coordinator();
    format!(
        "[[clusters]]\nname = \"test\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"gpadmin\"\n\
         password_file = \"{}\"\nscrape_interval = \"1s\"\ninstance_timeout = \"800ms\"\n\
         statement_timeout = \"700ms\"\nlock_timeout = \"200ms\"\ntopology_refresh = \"1s\"\n{extra}",
        c.port,
        cluster.superuser_password_file().display()
    )
}

impl Exporter {
    /// Starts the exporter with `config` (TOML).
    pub fn start(config: &str) -> Result<Exporter> {
        Self::start_with_args(config, &[])
    }

    pub fn start_with_args(config: &str, args: &[&str]) -> Result<Exporter> {
        Self::launch(Some(config), args, &[])
    }

    /// Starts the exporter with `args` and `env` only (no configuration
    /// file: e.g. `--coordinator.dsn`), listening on a free port.
    pub fn start_with_flags(args: &[&str], env: &[(&str, &str)]) -> Result<Exporter> {
        Self::launch(None, args, env)
    }

    fn launch(config: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Result<Exporter> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("exporter.toml");
        if let Some(config) = config {
            std::fs::write(&config_path, config)?;
        }
        let log_path = dir.path().join("exporter.log");
        let log = std::fs::File::create(&log_path)?;
        let port = free_port()?;
        let child = Command::new(EXPORTER)
            .args(config.map(|_| format!("--config.file={}", config_path.display())))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Debug logs unless the test asks for a level of its own.
            .args(
                (!args.iter().any(|a| a.starts_with("--log.level"))).then_some("--log.level=debug"),
            )
            .args(args)
            .env_remove("GPSE_COORDINATOR_DSN")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the exporter")?;
        Ok(Exporter {
            child,
            port,
            _dir: dir,
            config_path,
            log_path,
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the exporter process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Replaces the configuration file (for a reload with SIGHUP).
    pub fn rewrite_config(&self, config: &str) -> Result<()> {
        std::fs::write(&self.config_path, config)?;
        Ok(())
    }

    /// The exporter's established TCP connections to `port` on loopback.
    pub fn connections_to(&self, port: u16) -> Result<usize> {
        let pid = self.child.id();
        let mut inodes = std::collections::HashSet::new();
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
            let link = std::fs::read_link(fd?.path()).unwrap_or_default();
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))?;
        let remote = format!(":{port:04X}");
        Ok(table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            // local_address rem_address st ... inode (field 9)
            .filter(|f| f.len() > 9 && f[2].ends_with(&remote) && f[3] == "01")
            .filter(|f| inodes.contains(f[9]))
            .count())
    }

    /// GET a path; returns status and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.port, path).await
    }

    /// GET a path with extra request headers (`Name: value\r\n` each);
    /// returns status, the response head and the body.
    pub async fn get_with(&self, path: &str, headers: &str) -> Result<(u16, String, Vec<u8>)> {
        http_get_with(self.port, path, headers).await
    }

    /// One instance's figures in `/api/v1/instances` (first cluster): what
    /// `top` and the status page show, the figures derived in PromQL from
    /// served series (superuser headroom, utilization) included.
    pub async fn instance_view(&self, content: i64) -> Result<serde_json::Value> {
        let (status, body) = self.get("/api/v1/instances").await?;
        if status != 200 {
            bail!("/api/v1/instances answered {status}: {body}");
        }
        let mut doc: serde_json::Value = serde_json::from_str(&body)?;
        let instances = doc["clusters"][0]["instances"].take();
        instances
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["catalog"]["content"] == content)
            .cloned()
            .with_context(|| format!("no content {content} in {body}"))
    }

    pub async fn scrape(&self) -> Result<Metrics> {
        let (status, body) = self.get("/metrics").await?;
        if status != 200 {
            bail!("/metrics answered {status}: {body}");
        }
        Ok(Metrics::parse(&body))
    }

    /// Scrapes until `pred` holds (rounds run every second); returns that scrape.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Metrics) -> bool) -> Result<Metrics> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(m) = self.scrape().await {
                if pred(&m) {
                    return Ok(m);
                }
                if Instant::now() > deadline {
                    bail!(
                        "timed out waiting for {what}; last scrape:\n{}\nlog:\n{}",
                        m.text,
                        self.log()
                    );
                }
            } else if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what}; exporter not answering; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `rounds` more collection rounds have completed.
    pub async fn wait_rounds(&self, rounds: f64) -> Result<Metrics> {
        let start = self
            .scrape()
            .await
            .ok()
            .and_then(|m| m.get("greenplum_exporter_rounds_total", &[]));
        let start = start.unwrap_or(0.0);
        self.wait_for("more rounds", |m| {
            m.get("greenplum_exporter_rounds_total", &[])
                .is_some_and(|r| r >= start + rounds)
        })
        .await
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A minimal HTTP/1.0 GET (the body is then close-delimited).
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let (status, _, body) = http_get_with(port, path, "").await?;
    Ok((status, String::from_utf8(body)?))
}

/// [`http_get`] with extra request headers; returns status, head and body.
pub async fn http_get_with(port: u16, path: &str, headers: &str) -> Result<(u16, String, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await??;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8(raw[..end].to_vec())?;
    let status = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok((status, head, raw[end + 4..].to_vec()))
}

/// One parsed exposition.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(parse_sample)
            .collect();
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    /// Samples of `name` whose labels include `labels`.
    pub fn all(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<&(String, BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The single sample of `name` matching `labels`; `None` if absent.
    /// Panics if several match: a test must name the series exactly.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.all(name, labels);
        assert!(
            found.len() <= 1,
            "{name}{labels:?} matches {} series",
            found.len()
        );
        found.first().map(|s| s.2)
    }

    /// `greenplum_up` of the instance with this content id.
    pub fn up(&self, content: i16) -> Option<f64> {
        self.seg("greenplum_up", content, &[])
    }

    /// The `kind` of the instance's `greenplum_last_error_info`, while it fails.
    pub fn error_kind(&self, content: i16) -> Option<String> {
        let content = content.to_string();
        let found = self.all("greenplum_last_error_info", &[("content", &content)]);
        found.first().map(|s| s.1["kind"].clone())
    }

    /// Like [`Metrics::get`] for an instance of content `content`.
    pub fn seg(&self, name: &str, content: i16, extra: &[(&str, &str)]) -> Option<f64> {
        let content = content.to_string();
        let mut labels = vec![("content", content.as_str())];
        labels.extend_from_slice(extra);
        self.get(name, &labels)
    }
}

fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_owned(), BTreeMap::new(), value));
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => val.push('\n'),
                    other => val.push(other),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => val.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), val);
        rest = &after[end? + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Some((name.to_owned(), labels, value))
}

/// Runs `promtool check metrics` on an exposition.
pub fn promtool_check_metrics(text: &str) -> Result<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running promtool (Debian package prometheus; `bash scripts/test` installs it)")?;
    child.stdin.take().unwrap().write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("promtool check metrics failed:\n{report}");
    }
    Ok(report)
}
