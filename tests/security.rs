//! Security settings through the real binary: HTTPS with and without client
//! certificates, basic auth, HTTP hardening, TLS to PostgreSQL servers
//! started with `ssl = on`, and secrets that never reach any output.
//! Certificates are made here with rcgen; nothing is fetched or shared.

mod support;

use anyhow::{bail, Context, Result};
use gpemu_harness::{Cluster, ClusterSpec, Family};
use nix::sys::signal::Signal;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{config_for, Exporter, Metrics};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const APP: &str = "greenplum_segment_exporter";

// ---- certificates -------------------------------------------------------

/// A certificate authority made for one test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Ca {
            pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A certificate for `names` (IP addresses or DNS names).
    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Result<Leaf> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "greenplum-exporter-test");
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

fn write_private(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

// ---- HTTP(S) client -------------------------------------------------------

struct Reply {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request (the answer is then close-delimited).
async fn exchange<S>(mut stream: S, method: &str, path: &str, extra: &str) -> Result<Reply>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8(raw)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no complete answer")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

async fn plain(port: u16, method: &str, path: &str, extra: &str) -> Result<Reply> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    exchange(tcp, method, path, extra).await
}

/// A TLS client trusting `ca`, showing `client` if given.
fn tls_client(ca: &Ca, client: Option<&Leaf>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.pem.as_bytes())?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(Arc::new(match client {
        Some(leaf) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes())?],
            PrivateKeyDer::from_pem_slice(leaf.key.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    }))
}

async fn https(
    port: u16,
    tls: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    extra: &str,
) -> Result<Reply> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("127.0.0.1")?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await?;
    exchange(stream, method, path, extra).await
}

/// Waits until something accepts TCP connections on `port`.
async fn wait_listening(port: u16, log: impl Fn() -> String) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("nothing listens on {port}; log:\n{}", log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A cluster section whose coordinator does not exist: enough for the
/// HTTP side, which serves /metrics whatever the database does.
fn unreachable_cluster() -> Result<String> {
    Ok(format!(
        "[[clusters]]\nname = \"nowhere\"\nhost = \"127.0.0.1\"\nport = {}\n\
         scrape_interval = \"1s\"\ninstance_timeout = \"500ms\"\n",
        support::free_port()?
    ))
}

/// Starts the exporter with a web configuration file written from `web`.
fn exporter_with_web(dir: &Path, web: &str) -> Result<Exporter> {
    let web_path = write_private(dir, "web.yml", web)?;
    let flag = format!("--web.config.file={}", web_path.display());
    Exporter::start_with_args(&unreachable_cluster()?, &[&flag])
}

// ---- HTTPS and basic auth -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requires_a_client_certificate_from_the_configured_ca() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("exporter test CA")?;
    let stranger = Ca::new("some other CA")?;
    let server = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)?;
    let client = ca.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth)?;
    let forged = stranger.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth)?;
    write_private(dir.path(), "server.crt", &server.cert)?;
    write_private(dir.path(), "server.key", &server.key)?;
    write_private(dir.path(), "clients.pem", &ca.pem)?;
    // Relative paths: resolved next to the web configuration file.
    let exporter = exporter_with_web(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.pem\n  \
         min_version: TLS12\n",
    )?;
    wait_listening(exporter.port, || exporter.log()).await?;

    let with_cert = tls_client(&ca, Some(&client))?;
    let reply = https(exporter.port, &with_cert, "GET", "/metrics", "").await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("greenplum_exporter_build_info"));

    let without = tls_client(&ca, None)?;
    let refused = https(exporter.port, &without, "GET", "/metrics", "").await;
    assert!(refused.is_err(), "served without a client certificate");
    let wrong_ca = tls_client(&ca, Some(&forged))?;
    let refused = https(exporter.port, &wrong_ca, "GET", "/metrics", "").await;
    assert!(refused.is_err(), "served a certificate from another CA");
    // Plain HTTP on the TLS port gets no HTTP answer at all.
    assert!(plain(exporter.port, "GET", "/metrics", "").await.is_err());

    // Still serving the certified client after the refusals.
    let reply = https(exporter.port, &with_cert, "GET", "/-/healthy", "").await?;
    assert_eq!(reply.status, 200);
    assert!(exporter.log().contains("tls=true"), "{}", exporter.log());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_accepts_the_right_password_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hash = bcrypt::hash("correct horse", 8)?;
    let exporter = exporter_with_web(
        dir.path(),
        &format!(
            "basic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  headers:\n    \
             X-Content-Type-Options: nosniff\n"
        ),
    )?;
    wait_listening(exporter.port, || exporter.log()).await?;
    let port = exporter.port;

    let none = plain(port, "GET", "/metrics", "").await?;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Basic"));
    assert_eq!(none.header("x-content-type-options"), Some("nosniff"));
    assert!(!none.body.contains("greenplum_"));
    for (user, password) in [
        ("prometheus", "wrong horse"),
        ("nobody", "correct horse"),
        ("Prometheus", "correct horse"),
        ("prometheus", ""),
    ] {
        let reply = plain(port, "GET", "/metrics", &basic(user, password)).await?;
        assert_eq!(reply.status, 401, "{user}:{password}");
        assert!(!reply.body.contains("greenplum_"));
    }
    let garbled = plain(port, "GET", "/metrics", "Authorization: Basic %%%\r\n").await?;
    assert_eq!(garbled.status, 401);

    let ok = plain(
        port,
        "GET",
        "/metrics",
        &basic("prometheus", "correct horse"),
    )
    .await?;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("greenplum_exporter_build_info"));
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));
    // Every path is behind the password, unknown ones included.
    for path in ["/", "/-/healthy", "/-/ready", "/nowhere"] {
        assert_eq!(plain(port, "GET", path, "").await?.status, 401, "{path}");
    }

    // SIGHUP re-reads the file: a changed password applies without a restart...
    let new_hash = bcrypt::hash("battery staple", 8)?;
    write_private(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: '{new_hash}'\n"),
    )?;
    exporter.signal(Signal::SIGHUP)?;
    let new_auth = basic("prometheus", "battery staple");
    wait_status(port, &new_auth, 200).await?;
    let old = plain(
        port,
        "GET",
        "/metrics",
        &basic("prometheus", "correct horse"),
    )
    .await?;
    assert_eq!(old.status, 401);
    // ...and a broken one is refused, keeping the running users.
    write_private(
        dir.path(),
        "web.yml",
        "basic_auth_users:\n  prometheus: nope\n",
    )?;
    exporter.signal(Signal::SIGHUP)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = plain(port, "GET", "/metrics", &new_auth).await?;
        assert_eq!(reply.status, 200);
        let m = Metrics::parse(&reply.body);
        if m.get("greenplum_exporter_config_last_reload_successful", &[]) == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload not refused:\n{}",
            exporter.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exporter.log().contains("basic_auth_users.prometheus"));
    Ok(())
}

/// Polls `/metrics` with `auth` until it answers `status`.
async fn wait_status(port: u16, auth: &str, status: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = plain(port, "GET", "/metrics", auth).await?;
        if reply.status == status {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "/metrics still answers {} instead of {status}",
                reply.status
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_get_and_head_on_known_paths_and_no_banner() -> Result<()> {
    let exporter = Exporter::start(&unreachable_cluster()?)?;
    wait_listening(exporter.port, || exporter.log()).await?;
    let port = exporter.port;

    let get = plain(port, "GET", "/metrics", "").await?;
    assert_eq!(get.status, 200);
    let head = plain(port, "HEAD", "/metrics", "").await?;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD with a body");
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
        for path in ["/metrics", "/", "/-/healthy"] {
            let reply = plain(port, method, path, "Content-Length: 0\r\n").await?;
            assert_eq!(reply.status, 405, "{method} {path}");
            let allow = reply.header("allow").unwrap_or_default().to_owned();
            assert!(
                allow.contains("GET") && allow.contains("HEAD") && !allow.contains("POST"),
                "{method} {path}: Allow {allow:?}"
            );
        }
    }
    assert_eq!(plain(port, "GET", "/metrics/x", "").await?.status, 404);
    assert_eq!(plain(port, "POST", "/nowhere", "").await?.status, 404);

    let version = env!("CARGO_PKG_VERSION");
    for path in ["/", "/-/healthy", "/-/ready", "/nowhere"] {
        let reply = plain(port, "GET", path, "").await?;
        assert_eq!(reply.header("server"), None, "{path}");
        assert!(!reply.body.contains(version), "{path} shows the version");
    }
    // The version is in the metric only.
    assert!(get.body.contains(&format!(
        "greenplum_exporter_build_info{{version=\"{version}\",commit=\"{}\",build_date=\"{}\"}}",
        env!("GPSE_GIT_COMMIT"),
        env!("GPSE_BUILD_DATE")
    )));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_requests_are_shed_and_a_stalled_request_head_is_cut_off() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Costly enough that concurrent checks overlap in a debug build.
    let hash = bcrypt::hash("pw", 10)?;
    let exporter = exporter_with_web(
        dir.path(),
        &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
    )?;
    wait_listening(exporter.port, || exporter.log()).await?;
    let port = exporter.port;
    let auth = basic("prometheus", "pw");
    // More than the 64 requests served at once, fewer than the 128 connections.
    let requests = (0..100).map(|_| {
        let auth = auth.clone();
        tokio::spawn(async move { plain(port, "GET", "/metrics", &auth).await })
    });
    let mut statuses = Vec::new();
    for r in futures::future::join_all(requests).await {
        statuses.push(r??.status);
    }
    let shed = statuses.iter().filter(|&&s| s == 503).count();
    let served = statuses.iter().filter(|&&s| s == 200).count();
    assert!(shed > 0 && served > 0, "statuses {statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 503, 408].contains(s)),
        "statuses {statuses:?}"
    );

    // A client that never finishes its request head is disconnected.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut rest))
        .await
        .context("a stalled request head was kept open for 30 s")??;
    assert!(started.elapsed() >= Duration::from_secs(5));
    // Meanwhile and afterwards, others are served.
    let ok = plain(port, "GET", "/metrics", &auth).await?;
    assert_eq!(ok.status, 200);
    Ok(())
}

#[test]
fn bad_web_configs_are_refused_at_start_naming_the_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("ca")?;
    let server = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)?;
    let other = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)?;
    let cert = write_private(dir.path(), "server.crt", &server.cert)?;
    let wrong_key = write_private(dir.path(), "other.key", &other.key)?;
    let not_pem = write_private(dir.path(), "junk.pem", "not a certificate")?;
    let tls = |extra: &str| {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{extra}",
            cert.display(),
            wrong_key.display()
        )
    };
    let cases = [
        ("colour: blue\n".to_owned(), "colour"),
        (
            "basic_auth_users:\n  alice: plaintext-password\n".to_owned(),
            "basic_auth_users.alice",
        ),
        (
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                not_pem.display(),
                wrong_key.display()
            ),
            "tls_server_config.cert_file",
        ),
        (tls(""), "tls_server_config.key_file"),
        (
            tls("  client_auth_type: RequireAndVerifyClientCert\n"),
            "tls_server_config.client_ca_file",
        ),
        (
            tls("  min_version: TLS10\n"),
            "tls_server_config.min_version",
        ),
    ];
    let cluster = unreachable_cluster()?;
    let config = write_private(dir.path(), "exporter.toml", &cluster)?;
    for (text, key) in cases {
        let web = write_private(dir.path(), "web.yml", &text)?;
        let out = Command::new(support::EXPORTER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.config.file={}", web.display()))
            .arg(format!(
                "--web.listen-address=127.0.0.1:{}",
                support::free_port()?
            ))
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
        assert!(stderr.contains(key), "{key} not named:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = Command::new(support::EXPORTER)
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.config.file=/nonexistent/web.yml")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--web.config.file"));
    Ok(())
}

// ---- web flags -------------------------------------------------------------

/// `--web.listen-address` given twice: both addresses serve, the same figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_listen_addresses_all_serve() -> Result<()> {
    let second = support::free_port()?;
    let flag = format!("--web.listen-address=127.0.0.1:{second}");
    let exporter = Exporter::start_with_args(&unreachable_cluster()?, &[&flag])?;
    for port in [exporter.port, second] {
        wait_listening(port, || exporter.log()).await?;
        exporter
            .wait_for("a round", |m| m.up(-1) == Some(0.0))
            .await?;
        let reply = plain(port, "GET", "/metrics", "").await?;
        assert_eq!(reply.status, 200, "port {port}");
        assert!(
            reply.body.contains("greenplum_up{cluster=\"nowhere\""),
            "{}",
            reply.body
        );
    }
    let log = exporter.log();
    for port in [exporter.port, second] {
        assert!(log.contains(&format!("address=127.0.0.1:{port}")), "{log}");
    }
    Ok(())
}

/// `--web.systemd-socket`: the exporter serves on the socket systemd passes
/// (descriptor 3, `LISTEN_FDS`, `LISTEN_PID`, as `sd_listen_fds` reads
/// them) and binds no address of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_socket_activation_serves_on_the_passed_socket() -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = socket.local_addr()?.port();
    let fd = socket.as_raw_fd();
    let unused = support::free_port()?;
    let dir = tempfile::tempdir()?;
    let config = write_private(dir.path(), "exporter.toml", &unreachable_cluster()?)?;
    let log = dir.path().join("log");
    let mut command = Command::new("sh");
    command
        // The shell's pid is the exporter's after exec, as systemd sets it.
        .args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""])
        .arg(support::EXPORTER)
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.systemd-socket")
        .arg(format!("--web.listen-address=127.0.0.1:{unused}"))
        .env_remove("GPSE_COORDINATOR_DSN")
        .stderr(std::fs::File::create(&log)?);
    // SAFETY: between fork and exec only dup2 and fcntl, async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    drop(socket);
    let output = || std::fs::read_to_string(&log).unwrap_or_default();
    let served = async {
        wait_listening(port, output).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = plain(port, "GET", "/metrics", "").await?;
            anyhow::ensure!(reply.status == 200, "{}", reply.status);
            if reply.body.contains("greenplum_up{cluster=\"nowhere\"") {
                return Ok::<_, anyhow::Error>(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no round served:\n{}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    .await;
    let bound = tokio::net::TcpStream::connect(("127.0.0.1", unused))
        .await
        .is_ok();
    let _ = child.kill();
    let _ = child.wait();
    served.with_context(output)?;
    assert!(!bound, "--web.listen-address was bound too:\n{}", output());
    assert!(output().contains("systemd_socket=true"), "{}", output());
    Ok(())
}

/// `--web.disable-exporter-metrics` leaves out process_* and the build and
/// reload series; the clusters' series stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_metrics_can_be_left_out() -> Result<()> {
    let own = [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "greenplum_exporter_build_info",
        "greenplum_exporter_config_last_reload_successful",
    ];
    for disabled in [false, true] {
        let flags: &[&str] = match disabled {
            true => &["--web.disable-exporter-metrics"],
            false => &[],
        };
        let exporter = Exporter::start_with_args(&unreachable_cluster()?, flags)?;
        let m = exporter
            .wait_for("a round", |m| m.up(-1) == Some(0.0))
            .await?;
        for name in own {
            assert_eq!(m.all(name, &[]).is_empty(), disabled, "{name}:\n{}", m.text);
        }
        assert!(!m.all("greenplum_exporter_rounds_total", &[]).is_empty());
        let report = support::promtool_check_metrics(&m.text)?;
        assert!(report.trim().is_empty(), "{report}");
    }
    Ok(())
}

/// `--web.max-requests=1`: while one request is in progress (its bcrypt
/// check), others are answered 503; `--web.max-requests=0`: none is, however
/// many arrive at once (the 64 of the default are exceeded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_bounds_requests_in_progress() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let web_path = |hash: &str| {
        write_private(
            dir.path(),
            "web.yml",
            &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
        )
    };
    let auth = basic("prometheus", "pw");
    let statuses = |port: u16, n: usize| {
        let auth = auth.clone();
        async move {
            let requests = (0..n).map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { plain(port, "GET", "/metrics", &auth).await })
            });
            let mut statuses = Vec::new();
            for r in futures::future::join_all(requests).await {
                statuses.push(r??.status);
            }
            Ok::<_, anyhow::Error>(statuses)
        }
    };
    // About a quarter second of CPU per check: requests overlap.
    let slow = web_path(&bcrypt::hash("pw", 12)?)?;
    let one = Exporter::start_with_args(
        &unreachable_cluster()?,
        &[
            &format!("--web.config.file={}", slow.display()),
            "--web.max-requests=1",
        ],
    )?;
    wait_listening(one.port, || one.log()).await?;
    let got = statuses(one.port, 4).await?;
    assert_eq!(got.iter().filter(|&&s| s == 200).count(), 1, "{got:?}");
    assert_eq!(got.iter().filter(|&&s| s == 503).count(), 3, "{got:?}");
    drop(one);

    let quick = web_path(&bcrypt::hash("pw", 6)?)?;
    let unlimited = Exporter::start_with_args(
        &unreachable_cluster()?,
        &[
            &format!("--web.config.file={}", quick.display()),
            "--web.max-requests=0",
        ],
    )?;
    wait_listening(unlimited.port, || unlimited.log()).await?;
    let got = statuses(unlimited.port, 100).await?;
    assert!(got.iter().all(|&s| s == 200), "{got:?}");
    Ok(())
}

/// `/-/ready` answers 503 while no instance was ever collected (the
/// coordinator unreachable from the start), however many rounds ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_nothing_was_ever_collected() -> Result<()> {
    let exporter = Exporter::start(&unreachable_cluster()?)?;
    exporter.wait_rounds(3.0).await?;
    let (status, body) = exporter.get("/-/ready").await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        "Not ready: no instance collected yet of cluster nowhere\n"
    );
    assert_eq!(exporter.get("/-/healthy").await?.0, 200);
    Ok(())
}

// ---- TLS to the database ---------------------------------------------------

/// Exporter sessions on an instance that use TLS, and all exporter sessions.
async fn exporter_sessions(cluster: &Cluster, content: i16) -> Result<(i64, i64)> {
    let count = |filter: &str| {
        format!(
            "SELECT count(*) FROM pg_stat_get_activity(NULL) a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = '{APP}' {filter}"
        )
    };
    let encrypted = cluster.query_i64(content, &count("AND s.ssl")).await?;
    let all = cluster.query_i64(content, &count("")).await?;
    Ok((encrypted, all))
}

fn tls_keys(mode: &str, root: &Path) -> String {
    format!(
        "sslmode = \"{mode}\"\nsslrootcert = \"{}\"\n",
        root.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_tls_verifies_the_chain_and_the_segment_address() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("database CA")?;
    let stranger = Ca::new("not the database CA")?;
    // The catalog's address of every instance is 127.0.0.1.
    let server = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)?;
    let cluster = ClusterSpec::new(Family::Gp7, 2)
        .tls(&server.cert, &server.key)
        .start()?;
    let root = write_private(dir.path(), "root.crt", &ca.pem)?;
    let wrong_root = write_private(dir.path(), "wrong.crt", &stranger.pem)?;

    let verified = Exporter::start(&config_for(&cluster, &tls_keys("verify-full", &root)))?;
    verified
        .wait_for("all up over verify-full", |m| {
            (-1..2).all(|c| m.up(c) == Some(1.0))
        })
        .await?;
    for content in -1..2 {
        let (encrypted, all) = exporter_sessions(&cluster, content).await?;
        assert_eq!((encrypted, all), (1, 1), "content {content}");
    }
    drop(verified);

    let refused = Exporter::start(&config_for(&cluster, &tls_keys("verify-full", &wrong_root)))?;
    refused
        .wait_for("coordinator refused: unknown CA", |m| {
            m.up(-1) == Some(0.0) && m.error_kind(-1).as_deref() == Some("tls")
        })
        .await?;
    let m = refused.wait_rounds(2.0).await?;
    assert_eq!(m.up(-1), Some(0.0));
    assert_eq!(m.get("greenplum_exporter_instances", &[]), Some(1.0));
    let log = refused.log();
    assert!(log.contains("UnknownIssuer"), "{log}");
    drop(refused);

    // Reached by a name the certificate does not carry: verify-full refuses,
    // verify-ca (chain only) accepts.
    let by_name = |mode: &str| {
        config_for(&cluster, &tls_keys(mode, &root))
            .replace("host = \"127.0.0.1\"", "host = \"localhost\"")
    };
    let strict = Exporter::start(&by_name("verify-full"))?;
    strict
        .wait_for("name mismatch refused", |m| m.up(-1) == Some(0.0))
        .await?;
    assert!(
        strict.log().contains("not valid for name"),
        "{}",
        strict.log()
    );
    drop(strict);
    let chain_only = Exporter::start(&by_name("verify-ca"))?;
    chain_only
        .wait_for("all up over verify-ca", |m| {
            (-1..2).all(|c| m.up(c) == Some(1.0))
        })
        .await?;
    drop(chain_only);

    // require: encrypted without any CA file.
    let require = Exporter::start(&config_for(&cluster, "sslmode = \"require\"\n"))?;
    require
        .wait_for("all up over require", |m| {
            (-1..2).all(|c| m.up(c) == Some(1.0))
        })
        .await?;
    assert_eq!(exporter_sessions(&cluster, 0).await?, (1, 1));
    Ok(())
}

// ---- secrets ---------------------------------------------------------------

/// The exporter with stdout and stderr in one file: everything it prints.
struct Run {
    child: Child,
    port: u16,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn start(args: &[String], env: &[(&str, &str)]) -> Result<Run> {
        let dir = tempfile::tempdir()?;
        let output = dir.path().join("output");
        let file = std::fs::File::create(&output)?;
        let port = support::free_port()?;
        let child = Command::new(support::EXPORTER)
            .args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .env_remove("GPSE_COORDINATOR_DSN")
            .env_remove("PGPASSWORD")
            .envs(env.iter().copied())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Run {
            child,
            port,
            output,
            _dir: dir,
        })
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.output).unwrap_or_default()).into_owned()
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&Metrics) -> bool) -> Result<Metrics> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, body)) = support::http_get(self.port, "/metrics").await {
                let m = Metrics::parse(&body);
                if pred(&m) {
                    return Ok(m);
                }
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; output:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }

    /// SIGTERM, then everything the process printed.
    async fn stop(mut self) -> Result<String> {
        self.signal(Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("still running 15 s after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(self.output())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_secret_absent(secret: &str, what: &str, text: &str) {
    assert!(
        !text.contains(secret),
        "the password leaked into {what}:\n{text}"
    );
}

/// A failing run (wrong password) at trace level, from a password file and
/// from the DSN: neither stdout, stderr, /metrics nor the landing page ever
/// contains the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_appears_in_no_output() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp6, 1).start()?;
    let dir = tempfile::tempdir()?;
    let secret = "Qx7-wrong-password-do-not-print";
    let pw = write_private(dir.path(), "pw", secret)?;
    let coordinator = cluster.coordinator().port;
    let config = format!(
        "[[clusters]]\nname = \"test\"\nhost = \"127.0.0.1\"\nport = {coordinator}\n\
         password_file = \"{}\"\nscrape_interval = \"1s\"\ninstance_timeout = \"800ms\"\n\
         sslmode = \"prefer\"\n",
        pw.display()
    );
    let config_path = write_private(dir.path(), "exporter.toml", &config)?;
    let trace = [("GPSE_LOG", "trace")];
    let refused = |m: &Metrics| m.error_kind(-1).as_deref() == Some("auth");

    let run = Run::start(
        &[format!("--config.file={}", config_path.display())],
        &trace,
    )?;
    let m = run.wait_for("password refused", refused).await?;
    assert_secret_absent(secret, "/metrics", &m.text);
    let (_, landing) = support::http_get(run.port, "/").await?;
    assert_secret_absent(secret, "the landing page", &landing);
    let output = run.stop().await?;
    assert!(
        output.contains("password authentication failed"),
        "{output}"
    );
    assert!(output.contains("DEBUG"), "not verbose:\n{output}");
    assert_secret_absent(secret, "the output", &output);

    let dsn = format!(
        "host=127.0.0.1 port={coordinator} user=gpadmin password='{secret}' sslmode=prefer"
    );
    let run = Run::start(
        &[format!("--coordinator.dsn={dsn}")],
        &[("GPSE_LOG", "trace")],
    )?;
    let m = run.wait_for("DSN password refused", refused).await?;
    assert_secret_absent(secret, "/metrics", &m.text);
    let output = run.stop().await?;
    assert_secret_absent(secret, "the output", &output);

    // A DSN the driver cannot parse is refused without echoing it.
    let out = Command::new(support::EXPORTER)
        .arg(format!(
            "--coordinator.dsn=host=x port=nope password={secret}"
        ))
        .env_remove("GPSE_COORDINATOR_DSN")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("--coordinator.dsn"), "{all}");
    assert_secret_absent(secret, "the error", &all);
    Ok(())
}

/// Files others can read are reported, once per state of the file; a pgpass
/// file is used for a configured cluster without password_file /
/// password_env, unless group or others can read it (libpq ignores it then,
/// and so does the exporter). A file only its owner and group can read
/// (0640, as the packages install the configuration) is not reported, nor
/// one in a directory others cannot enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposed_secret_files_are_reported_and_pgpass_is_used() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp7, 1).start()?;
    let dir = tempfile::tempdir()?;
    let coordinator = cluster.coordinator().port;
    let pgpass = write_private(
        dir.path(),
        "pgpass",
        &format!(
            "127.0.0.1:*:postgres:gpadmin:{}\n",
            gpemu_harness::SUPERUSER_PASSWORD
        ),
    )?;
    let config = format!(
        "[[clusters]]\nname = \"test\"\nhost = \"127.0.0.1\"\nport = {coordinator}\n\
         scrape_interval = \"1s\"\ninstance_timeout = \"800ms\"\n"
    );
    let config_path = write_private(dir.path(), "exporter.toml", &config)?;
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    };
    mode(&config_path, 0o640)?;
    let args = [format!("--config.file={}", config_path.display())];
    let env = [("PGPASSFILE", pgpass.to_str().context("utf-8 path")?)];

    let private = Run::start(&args, &env)?;
    private
        .wait_for("up with the pgpass password", |m| {
            (-1..1).all(|c| m.up(c) == Some(1.0))
        })
        .await?;
    let output = private.stop().await?;
    assert!(
        !output.contains("group or") && !output.contains("accessible by"),
        "{output}"
    );

    // Readable by others, in a directory they cannot enter: reaches nobody.
    mode(dir.path(), 0o700)?;
    mode(&config_path, 0o644)?;
    let unreachable = Run::start(&args, &env)?;
    unreachable
        .wait_for("up", |m| m.up(-1) == Some(1.0))
        .await?;
    let output = unreachable.stop().await?;
    assert!(!output.contains("accessible by"), "{output}");

    // Others may enter the directory now.
    mode(dir.path(), 0o711)?;
    mode(&pgpass, 0o644)?;
    let exposed = Run::start(&args, &env)?;
    exposed
        .wait_for("no password to offer", |m| m.up(-1) == Some(0.0))
        .await?;
    let reloaded = |n: usize| {
        let exposed = &exposed;
        async move {
            exposed.signal(Signal::SIGHUP)?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while exposed.output().matches("configuration reloaded").count() < n {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "no reload:\n{}",
                    exposed.output()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, anyhow::Error>(())
        }
    };
    // A reload of the same files says nothing new...
    reloaded(1).await?;
    // ...one whose mode changed says it again.
    mode(&config_path, 0o604)?;
    reloaded(2).await?;
    let output = exposed.stop().await?;
    assert!(output.contains("password missing"), "{output}");
    let pgpass_warnings = output
        .matches("password file has group or world access and is ignored")
        .count();
    assert_eq!(pgpass_warnings, 1, "once, not at every reload:\n{output}");
    let config_warnings: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("accessible by others") && l.contains("--config.file"))
        .collect();
    assert_eq!(
        config_warnings.len(),
        2,
        "at start and after chmod:\n{output}"
    );
    assert!(config_warnings[0].contains("mode=0644"), "{output}");
    assert!(config_warnings[1].contains("mode=0604"), "{output}");
    assert_secret_absent(gpemu_harness::SUPERUSER_PASSWORD, "the output", &output);
    Ok(())
}
