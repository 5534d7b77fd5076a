//! TLS to the coordinator and the segments, with libpq's `sslmode` meanings:
//! `disable` plain TCP; `prefer` TLS when the server offers it, else plain;
//! `require` TLS without checking the certificate; `verify-ca` TLS with a
//! certificate chain to `sslrootcert` but any host name; `verify-full` also
//! the host name (for segments: the catalog's `address`). As with libpq, a
//! given `sslrootcert` makes `prefer` and `require` check the chain too.

use crate::tls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// The default: what the exporter always did, see docs/security.md.
    #[default]
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// The TLS keys of one cluster, as written in the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsKeys {
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
}

/// A cluster's validated TLS settings, files already read.
#[derive(Clone)]
pub struct DbTls {
    mode: SslMode,
    keys: TlsKeys,
    /// `None` with `disable`.
    client: Option<Arc<ClientConfig>>,
    /// Raw bytes of the files read, so a reload notices a rotated certificate.
    contents: Vec<Vec<u8>>,
}

impl PartialEq for DbTls {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode && self.keys == other.keys && self.contents == other.contents
    }
}

impl std::fmt::Debug for DbTls {
    // File contents (a private key among them) are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTls")
            .field("mode", &self.mode)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Default for DbTls {
    fn default() -> Self {
        DbTls {
            mode: SslMode::Disable,
            keys: TlsKeys::default(),
            client: None,
            contents: Vec::new(),
        }
    }
}

/// A refused TLS setting: the key (`sslrootcert`, ...) and why.
pub type KeyError = (&'static str, String);

impl DbTls {
    /// Validates the keys and reads their files.
    pub fn load(keys: TlsKeys) -> Result<DbTls, KeyError> {
        let mode = keys.sslmode.unwrap_or_default();
        check_combination(mode, &keys)?;
        if mode == SslMode::Disable {
            return Ok(DbTls {
                keys,
                ..DbTls::default()
            });
        }
        let mut contents = Vec::new();
        let mut read = |key: &'static str, path: &PathBuf| -> Result<(), KeyError> {
            let bytes = std::fs::read(path)
                .map_err(|e| (key, format!("cannot read {}: {e}", path.display())))?;
            contents.push(bytes);
            Ok(())
        };
        for (key, path) in [
            ("sslrootcert", &keys.sslrootcert),
            ("sslcert", &keys.sslcert),
            ("sslkey", &keys.sslkey),
        ] {
            if let Some(path) = path {
                read(key, path)?;
            }
        }
        let client = client_config(mode, &keys)?;
        Ok(DbTls {
            mode,
            keys,
            client: Some(Arc::new(client)),
            contents,
        })
    }

    /// What tokio-postgres does before the handshake (the checks are ours).
    pub fn pg_ssl_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Pg;
        match self.mode {
            SslMode::Disable => Pg::Disable,
            SslMode::Prefer => Pg::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Pg::Require,
        }
    }

    /// The connector for tokio-postgres; `None` with `disable`.
    pub fn connector(&self) -> Option<MakeRustlsConnect> {
        let client = self.client.as_ref()?;
        Some(MakeRustlsConnect::new(ClientConfig::clone(client)))
    }
}

fn check_combination(mode: SslMode, keys: &TlsKeys) -> Result<(), KeyError> {
    if mode.verifies() && keys.sslrootcert.is_none() {
        return Err((
            "sslrootcert",
            "required with sslmode verify-ca and verify-full: the CA certificate(s) to trust"
                .into(),
        ));
    }
    if mode == SslMode::Disable {
        // A file that would be silently ignored usually means a forgotten sslmode.
        for (key, set) in [
            ("sslrootcert", keys.sslrootcert.is_some()),
            ("sslcert", keys.sslcert.is_some()),
            ("sslkey", keys.sslkey.is_some()),
        ] {
            if set {
                return Err((
                    key,
                    "has no effect with sslmode disable (the default); set sslmode".into(),
                ));
            }
        }
    }
    match (&keys.sslcert, &keys.sslkey) {
        (Some(_), None) => Err(("sslkey", "required with sslcert".into())),
        (None, Some(_)) => Err(("sslcert", "required with sslkey".into())),
        _ => Ok(()),
    }
}

fn client_config(mode: SslMode, keys: &TlsKeys) -> Result<ClientConfig, KeyError> {
    let verifier: Arc<dyn ServerCertVerifier> = match &keys.sslrootcert {
        None => tls::AnyCertificate::new(false),
        Some(path) => {
            let roots = tls::read_roots(path).map_err(|e| ("sslrootcert", e))?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, tls::provider())
                .build()
                .map_err(|e| ("sslrootcert", format!("{}: {e}", path.display())))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("sslmode", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&keys.sslcert, &keys.sslkey) {
        (Some(cert), Some(key)) => {
            let chain = tls::read_certs(cert).map_err(|e| ("sslcert", e))?;
            let key = tls::read_key(key).map_err(|e| ("sslkey", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ("sslkey", format!("does not fit sslcert: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked last, after the chain: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_need_a_root_and_disable_refuses_stray_files() {
        let keys = |mode, root: Option<&str>| TlsKeys {
            sslmode: Some(mode),
            sslrootcert: root.map(PathBuf::from),
            ..TlsKeys::default()
        };
        let err = DbTls::load(keys(SslMode::VerifyFull, None)).unwrap_err();
        assert_eq!(err.0, "sslrootcert");
        let err = DbTls::load(keys(SslMode::Disable, Some("/ca.pem"))).unwrap_err();
        assert_eq!(err.0, "sslrootcert");
        let err = DbTls::load(keys(SslMode::VerifyCa, Some("/nonexistent/ca.pem"))).unwrap_err();
        assert_eq!(err.0, "sslrootcert");
        assert!(err.1.contains("/nonexistent/ca.pem"), "{}", err.1);
        let err = DbTls::load(TlsKeys {
            sslmode: Some(SslMode::Require),
            sslcert: Some("/c.pem".into()),
            ..TlsKeys::default()
        })
        .unwrap_err();
        assert_eq!(err.0, "sslkey");
    }

    #[test]
    fn require_without_root_encrypts_and_prefer_may_fall_back() {
        let require = DbTls::load(TlsKeys {
            sslmode: Some(SslMode::Require),
            ..TlsKeys::default()
        })
        .unwrap();
        assert!(require.connector().is_some());
        assert_eq!(
            require.pg_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let prefer = DbTls::load(TlsKeys {
            sslmode: Some(SslMode::Prefer),
            ..TlsKeys::default()
        })
        .unwrap();
        assert_eq!(
            prefer.pg_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        let off = DbTls::load(TlsKeys::default()).unwrap();
        assert!(off.connector().is_none());
        assert_eq!(off.pg_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    }
}
