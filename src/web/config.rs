//! The web configuration file (`--web.config.file`) in the format of the
//! Prometheus exporter-toolkit, so the file written for node_exporter works
//! here: `tls_server_config` (HTTPS, client certificates), `basic_auth_users`
//! (bcrypt hashes) and `http_server_config.headers`. A key this exporter
//! cannot honour is refused rather than ignored: each one is a security
//! setting someone relies on.

use crate::config::ConfigError;
use crate::web::basic_auth::BasicAuth;
use crate::{config::permissions, tls};
use axum::http::{HeaderName, HeaderValue};
use rustls::server::{danger::ClientCertVerifier, WebPkiClientVerifier};
use rustls::version::{TLS12, TLS13};
use rustls::{ServerConfig, SupportedProtocolVersion};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use yaml_rust2::Yaml;

/// What the file asks for; the default (no file) is plain HTTP, no auth.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    pub auth: Option<BasicAuth>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A hash of the file and of the certificate and key files it names, so
    /// a reload can say whether anything changed (no secret is kept).
    fingerprint: u64,
}

/// The web configuration in force: a reload (SIGHUP) replaces it for the
/// next connection and request, so rotated certificates and changed users
/// apply without a restart.
#[derive(Clone, Default)]
pub struct LiveWebConfig(Arc<RwLock<Arc<WebConfig>>>);

impl LiveWebConfig {
    pub fn new(web: WebConfig) -> Self {
        LiveWebConfig(Arc::new(RwLock::new(Arc::new(web))))
    }

    pub fn get(&self) -> Arc<WebConfig> {
        // A poisoned lock still holds a complete value: only whole Arcs are stored.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes `web` unless it switches between HTTP and HTTPS, which needs
    /// a restart (the listener's clients would break either way); true when
    /// the file or a file it names changed.
    pub fn replace(&self, web: WebConfig) -> Result<bool, ConfigError> {
        let old = self.get();
        if web.tls.is_some() != old.tls.is_some() {
            return Err(invalid(
                "tls_server_config",
                "switching between HTTP and HTTPS takes effect after a restart",
            ));
        }
        let changed = web.fingerprint != old.fingerprint;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(web);
        Ok(changed)
    }
}

/// Response headers the file may set (as exporter-toolkit allows).
const SETTABLE_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Reads and checks the file, its certificates, keys and hashes.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    let flag = "--web.config.file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(flag, format!("cannot read {}: {e}", path.display())))?;
    // bcrypt hashes and the paths of the certificate and key, no secret in
    // clear: its group may read it, as it may the configuration file.
    permissions::warn_if_exposed(flag, path);
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .map_err(|e| invalid(flag, format!("{}: not YAML: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut fingerprint = DefaultHasher::new();
    text.hash(&mut fingerprint);
    let mut web = WebConfig {
        fingerprint: fingerprint.finish(),
        ..WebConfig::default()
    };
    let Some(root) = docs.first() else {
        return Ok(web);
    };
    for (key, value) in mapping(root, flag)? {
        match key {
            "tls_server_config" => {
                let (tls, files) = server_tls(value, dir)?;
                web.tls = Some(Arc::new(tls));
                files.hash(&mut fingerprint);
                web.fingerprint = fingerprint.finish();
            }
            "basic_auth_users" => web.auth = basic_auth(value)?,
            "http_server_config" => web.headers = http_server(value)?,
            other => return Err(invalid(other, "unknown key")),
        }
    }
    Ok(web)
}

/// The entries of a YAML mapping (an empty document counts as empty).
fn mapping<'a>(y: &'a Yaml, at: &str) -> Result<Vec<(&'a str, &'a Yaml)>, ConfigError> {
    match y {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| match k.as_str() {
                Some(k) => Ok((k, v)),
                None => Err(invalid(at, format!("keys must be strings, found {k:?}"))),
            })
            .collect(),
        _ => Err(invalid(at, "must be a mapping")),
    }
}

fn string(y: &Yaml, key: &str) -> Result<String, ConfigError> {
    match y {
        Yaml::String(s) => Ok(s.clone()),
        _ => Err(invalid(key, "must be a string")),
    }
}

fn path_in(dir: &Path, y: &Yaml, key: &str) -> Result<PathBuf, ConfigError> {
    // Relative to the web configuration file, as exporter-toolkit does.
    Ok(dir.join(string(y, key)?))
}

#[derive(Default)]
struct TlsKeys {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
}

/// The server's TLS configuration, and a hash of the files it read.
fn server_tls(y: &Yaml, dir: &Path) -> Result<(ServerConfig, u64), ConfigError> {
    let at = |k: &str| format!("tls_server_config.{k}");
    let mut keys = TlsKeys::default();
    for (key, value) in mapping(y, "tls_server_config")? {
        let k = at(key);
        match key {
            "cert_file" => keys.cert_file = Some(path_in(dir, value, &k)?),
            "key_file" => keys.key_file = Some(path_in(dir, value, &k)?),
            "client_ca_file" => keys.client_ca_file = Some(path_in(dir, value, &k)?),
            "client_auth_type" => keys.client_auth_type = Some(string(value, &k)?),
            "min_version" => keys.min_version = Some(string(value, &k)?),
            "max_version" => keys.max_version = Some(string(value, &k)?),
            "prefer_server_cipher_suites" => {
                let b = value
                    .as_bool()
                    .ok_or_else(|| invalid(&k, "must be true or false"))?;
                keys.prefer_server_cipher_suites = Some(b);
            }
            "cipher_suites"
            | "curve_preferences"
            | "client_allowed_sans"
            | "cert"
            | "key"
            | "client_ca" => {
                return Err(invalid(
                    k,
                    "not supported by this exporter (rustls offers only its safe default \
                     suites and curves); remove it",
                ))
            }
            _ => return Err(invalid(k, "unknown key")),
        }
    }
    let cert_file = keys
        .cert_file
        .ok_or_else(|| invalid(at("cert_file"), "required"))?;
    let key_file = keys
        .key_file
        .ok_or_else(|| invalid(at("key_file"), "required"))?;
    let chain = tls::read_certs(&cert_file).map_err(|e| invalid(at("cert_file"), e))?;
    let key = tls::read_key(&key_file).map_err(|e| invalid(at("key_file"), e))?;
    permissions::warn_if_exposed(&at("key_file"), &key_file);
    let verifier = client_verifier(
        keys.client_auth_type.as_deref().unwrap_or("NoClientCert"),
        keys.client_ca_file.as_deref(),
    )?;
    let versions = protocol_versions(keys.min_version.as_deref(), keys.max_version.as_deref())?;
    let mut config = ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(at("min_version"), e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| invalid(at("key_file"), format!("does not fit cert_file: {e}")))?;
    config.ignore_client_order = keys.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Read again for the hash only: a rotated certificate is a change.
    let mut files = DefaultHasher::new();
    for path in [
        Some(&cert_file),
        Some(&key_file),
        keys.client_ca_file.as_ref(),
    ] {
        path.map(|p| std::fs::read(p).unwrap_or_default())
            .hash(&mut files);
    }
    Ok((config, files.finish()))
}

fn client_verifier(
    auth_type: &str,
    ca_file: Option<&Path>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let key_type = "tls_server_config.client_auth_type";
    let key_ca = "tls_server_config.client_ca_file";
    let verified = |allow_unauthenticated: bool| {
        let path = ca_file.ok_or_else(|| invalid(key_ca, format!("required with {auth_type}")))?;
        let roots = tls::read_roots(path).map_err(|e| invalid(key_ca, e))?;
        let builder = WebPkiClientVerifier::builder_with_provider(roots, tls::provider());
        let builder = match allow_unauthenticated {
            true => builder.allow_unauthenticated(),
            false => builder,
        };
        builder
            .build()
            .map_err(|e| invalid(key_ca, format!("{}: {e}", path.display())))
    };
    match auth_type {
        "NoClientCert" if ca_file.is_some() => Err(invalid(
            key_type,
            "client_ca_file is set but client certificates are not checked; set \
             client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven",
        )),
        "NoClientCert" => Ok(WebPkiClientVerifier::no_client_auth()),
        "RequestClientCert" => Ok(tls::AnyCertificate::new(false)),
        "RequireAnyClientCert" => Ok(tls::AnyCertificate::new(true)),
        "VerifyClientCertIfGiven" => verified(true),
        "RequireAndVerifyClientCert" => verified(false),
        other => Err(invalid(
            key_type,
            format!(
                "{other:?} is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, \
                 VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ),
        )),
    }
}

fn protocol_versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    let rank = |v: &str, key: &str| match v {
        "TLS12" => Ok(0),
        "TLS13" => Ok(1),
        "TLS10" | "TLS11" => Err(invalid(
            key,
            format!("{v} is not offered: TLS 1.0 and 1.1 are broken; use TLS12 or TLS13"),
        )),
        _ => Err(invalid(key, format!("{v:?} is not TLS12 or TLS13"))),
    };
    let lo = min.map_or(Ok(0), |v| rank(v, "tls_server_config.min_version"))?;
    let hi = max.map_or(Ok(1), |v| rank(v, "tls_server_config.max_version"))?;
    if lo > hi {
        return Err(invalid(
            "tls_server_config.max_version",
            "is below min_version",
        ));
    }
    Ok([&TLS12, &TLS13][lo..=hi].to_vec())
}

fn basic_auth(y: &Yaml) -> Result<Option<BasicAuth>, ConfigError> {
    let mut users = Vec::new();
    for (user, hash) in mapping(y, "basic_auth_users")? {
        let key = format!("basic_auth_users.{user}");
        users.push((user.to_owned(), string(hash, &key)?));
    }
    if users.is_empty() {
        return Ok(None);
    }
    BasicAuth::new(users)
        .map(Some)
        .map_err(|(user, why)| invalid(format!("basic_auth_users.{user}"), why))
}

fn http_server(y: &Yaml) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut headers = Vec::new();
    for (key, value) in mapping(y, "http_server_config")? {
        match key {
            // HTTP/1.1 only here; the setting only allows HTTP/2, so it is harmless.
            "http2" => {
                value
                    .as_bool()
                    .ok_or_else(|| invalid("http_server_config.http2", "must be true or false"))?;
            }
            "headers" => {
                for (name, v) in mapping(value, "http_server_config.headers")? {
                    let k = format!("http_server_config.headers.{name}");
                    if !SETTABLE_HEADERS
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(name))
                    {
                        return Err(invalid(
                            k,
                            format!("may not be set; allowed: {}", SETTABLE_HEADERS.join(", ")),
                        ));
                    }
                    let name = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| invalid(&k, e.to_string()))?;
                    let v = HeaderValue::from_str(&string(v, &k)?)
                        .map_err(|e| invalid(&k, e.to_string()))?;
                    headers.push((name, v));
                }
            }
            other => {
                return Err(invalid(
                    format!("http_server_config.{other}"),
                    "unknown key",
                ))
            }
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WebConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn empty_file_is_plain_http_without_auth() {
        let web = load_text("").unwrap();
        assert!(web.tls.is_none() && web.auth.is_none() && web.headers.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("bogus: 1\n", "bogus"),
            (
                "tls_server_config:\n  key_file: k.pem\n",
                "tls_server_config.cert_file",
            ),
            (
                "tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: k.pem\n",
                "tls_server_config.cert_file",
            ),
            (
                "tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                "tls_server_config.cipher_suites",
            ),
            (
                "basic_auth_users:\n  alice: not-a-hash\n",
                "basic_auth_users.alice",
            ),
            (
                "http_server_config:\n  headers:\n    Server: nginx\n",
                "http_server_config.headers.Server",
            ),
            (
                "http_server_config:\n  http3: true\n",
                "http_server_config.http3",
            ),
            ("- a list\n", "--web.config.file"),
        ];
        for (text, key) in cases {
            let err = load_text(text).expect_err(text);
            assert_eq!(err.key, key, "{text}: {err}");
        }
        let err = load(Path::new("/nonexistent/web.yml")).unwrap_err();
        assert_eq!(err.key, "--web.config.file");
    }

    #[test]
    fn versions_and_client_auth_types_are_checked() {
        assert_eq!(protocol_versions(None, None).unwrap().len(), 2);
        assert_eq!(protocol_versions(Some("TLS13"), None).unwrap(), [&TLS13]);
        assert!(protocol_versions(Some("TLS10"), None).is_err());
        assert!(protocol_versions(Some("TLS13"), Some("TLS12")).is_err());
        let err = client_verifier("RequireAndVerifyClientCert", None).unwrap_err();
        assert_eq!(err.key, "tls_server_config.client_ca_file");
        let err = client_verifier("NoClientCert", Some(Path::new("/ca.pem"))).unwrap_err();
        assert_eq!(err.key, "tls_server_config.client_auth_type");
        let err = client_verifier("Maybe", None).unwrap_err();
        assert_eq!(err.key, "tls_server_config.client_auth_type");
        assert!(client_verifier("RequireAnyClientCert", None)
            .unwrap()
            .client_auth_mandatory());
    }

    #[test]
    fn users_and_headers_are_read() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let web = load_text(&format!(
            "basic_auth_users:\n  Prometheus: '{hash}'\nhttp_server_config:\n  http2: false\n  \
             headers:\n    X-Frame-Options: deny\n"
        ))
        .unwrap();
        assert!(web.auth.unwrap().check(b"Prometheus", b"pw"));
        assert_eq!(web.headers.len(), 1);
    }
}
