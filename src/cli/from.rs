//! `top --from URL`: reads a running exporter's API instead of connecting
//! to the cluster, so that during an incident `top` takes no connection slot
//! on any instance. `http://` or `https://` (the server certificate checked
//! against `--from.ca-file`); basic auth with the URL's user name and the
//! password in `GPSE_FROM_PASSWORD`, never on the command line.

use crate::tls;
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The environment variable holding the basic-auth password for `--from`.
pub const PASSWORD_ENV: &str = "GPSE_FROM_PASSWORD";
/// A request that takes longer is abandoned: the exporter answers from memory.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running exporter's address, parsed from `--from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exporter {
    https: bool,
    user: Option<String>,
    host: String,
    port: u16,
    /// Path prefix before `/api/...`, without a trailing slash.
    base: String,
}

impl Exporter {
    /// Parses `http[s]://[user@]host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<Exporter> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            bail!("{url:?}: give an http:// or https:// URL");
        };
        let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, hp)) if !user.contains(':') => (Some(user.to_owned()), hp),
            Some(_) => bail!("put the password in {PASSWORD_ENV}, not in the URL"),
            None => (None, authority),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                let port = p
                    .parse()
                    .with_context(|| format!("{url:?}: bad port {p:?}"))?;
                (h, port)
            }
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("{url:?}: no host");
        }
        Ok(Exporter {
            https,
            user,
            host: host.to_owned(),
            port,
            base: match base.trim_end_matches('/') {
                "" => String::new(),
                prefix => format!("/{prefix}"),
            },
        })
    }

    /// GETs `path` (e.g. `/api/v1/instances`); the body of a 200 answer.
    pub async fn get(&self, path: &str, ca_file: Option<&Path>) -> Result<Bytes> {
        tokio::time::timeout(TIMEOUT, self.request(path, ca_file))
            .await
            .with_context(|| {
                format!(
                    "no answer from {}:{} within {TIMEOUT:?}",
                    self.host, self.port
                )
            })?
    }

    async fn request(&self, path: &str, ca_file: Option<&Path>) -> Result<Bytes> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        if !self.https {
            return self.exchange(tcp, path).await;
        }
        let Some(ca_file) = ca_file else {
            bail!("https:// needs --from.ca-file, the CA that signed the exporter's certificate");
        };
        let roots = tls::read_roots(ca_file).map_err(anyhow::Error::msg)?;
        let config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("TLS handshake with the exporter")?;
        self.exchange(stream, path).await
    }

    async fn exchange<S>(&self, stream: S, path: &str) -> Result<Bytes>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::get(format!("{}{path}", self.base))
            .header(header::HOST, format!("{}:{}", self.host, self.port));
        if let Some(user) = &self.user {
            let password = std::env::var(PASSWORD_ENV).unwrap_or_default();
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {token}"));
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new())?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            bail!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_an_exporter() {
        let e = Exporter::parse("http://127.0.0.1:9297").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.https),
            ("127.0.0.1", 9297, false)
        );
        let e = Exporter::parse("https://ops@mdw.example.com/gpse/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.https),
            ("mdw.example.com", 443, true)
        );
        assert_eq!((e.user.as_deref(), e.base.as_str()), (Some("ops"), "/gpse"));
        let e = Exporter::parse("http://[::1]:9297").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9297));
        assert!(Exporter::parse("ops:secret@host:1").is_err());
        assert!(Exporter::parse("http://ops:secret@host:1").is_err());
        assert!(Exporter::parse("http://:9297").is_err());
    }
}
