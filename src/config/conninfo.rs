//! libpq connection strings (`key=value ...` or `postgresql://...?key=value`)
//! may carry TLS keys that tokio-postgres does not know (`verify-ca`,
//! `verify-full`, `sslrootcert`, `sslcert`, `sslkey`): they are taken out
//! here and the rest is left to tokio-postgres.

use crate::tls::database::{SslMode, TlsKeys};
use std::path::PathBuf;

/// The DSN without its TLS keys, and those keys.
pub fn take_tls_keys(dsn: &str) -> Result<(String, TlsKeys), String> {
    let (rest, pairs) = match ["postgresql://", "postgres://"]
        .iter()
        .any(|p| dsn.starts_with(p))
    {
        true => split_url(dsn),
        false => split_keywords(dsn)?,
    };
    let mut keys = TlsKeys::default();
    for (key, value) in pairs {
        match key.as_str() {
            "sslmode" => {
                keys.sslmode = Some(SslMode::parse(&value).ok_or_else(|| {
                    format!(
                        "sslmode {value:?} is not one of disable, prefer, require, verify-ca, \
                         verify-full"
                    )
                })?)
            }
            "sslrootcert" => keys.sslrootcert = Some(PathBuf::from(value)),
            "sslcert" => keys.sslcert = Some(PathBuf::from(value)),
            "sslkey" => keys.sslkey = Some(PathBuf::from(value)),
            _ => unreachable!("only TLS keys are taken"),
        }
    }
    Ok((rest, keys))
}

fn is_tls_key(key: &str) -> bool {
    matches!(key, "sslmode" | "sslrootcert" | "sslcert" | "sslkey")
}

type Pairs = Vec<(String, String)>;

/// `postgresql://user:pw@host:port/db?sslmode=verify-full&...`
fn split_url(dsn: &str) -> (String, Pairs) {
    let Some((base, query)) = dsn.split_once('?') else {
        return (dsn.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = decode(key);
        if is_tls_key(&key) {
            taken.push((key, decode(value)));
        } else {
            kept.push(param);
        }
    }
    let rest = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    (rest, taken)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `host=mdw sslmode=verify-full sslrootcert='/etc/ca dir/root.crt'`, with
/// libpq's quoting: single quotes, backslash escapes.
fn split_keywords(dsn: &str) -> Result<(String, Pairs), String> {
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after {key:?}"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = read_value(&mut chars).ok_or_else(|| format!("no value for {key:?}"))?;
        if is_tls_key(&key) {
            taken.push((key, value));
        } else {
            kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok((kept.join(" "), taken))
}

fn read_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut value = String::new();
    if chars.next_if_eq(&'\'').is_some() {
        loop {
            match chars.next()? {
                '\'' => return Some(value),
                '\\' => value.push(chars.next()?),
                c => value.push(c),
            }
        }
    }
    while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_form_keeps_the_rest_parseable() {
        let (rest, keys) = take_tls_keys(
            "host=mdw sslmode=verify-full sslrootcert='/etc/my ca/root.crt' user=mon",
        )
        .unwrap();
        assert_eq!(keys.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(keys.sslrootcert, Some(PathBuf::from("/etc/my ca/root.crt")));
        let cfg: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(cfg.get_user(), Some("mon"));
        assert_eq!(cfg.get_hosts().len(), 1);
    }

    #[test]
    fn quotes_and_backslashes_survive() {
        let (rest, keys) =
            take_tls_keys(r"host=mdw password='a\'b\\c d' sslkey=/k\ ey.pem").unwrap();
        assert_eq!(keys.sslkey, Some(PathBuf::from("/k ey.pem")));
        let cfg: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(cfg.get_password(), Some(&b"a'b\\c d"[..]));
    }

    #[test]
    fn url_form() {
        let (rest, keys) = take_tls_keys(
            "postgresql://mon@mdw:6000/gpdb?sslmode=verify-ca&application_name=x&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://mon@mdw:6000/gpdb?application_name=x");
        assert_eq!(keys.sslmode, Some(SslMode::VerifyCa));
        assert_eq!(keys.sslrootcert, Some(PathBuf::from("/ca.pem")));
        let (rest, keys) = take_tls_keys("postgres://mdw/db?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://mdw/db");
        assert_eq!(keys.sslmode, Some(SslMode::Require));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(take_tls_keys("host=mdw sslmode=maybe").is_err());
        assert!(take_tls_keys("host=mdw sslmode").is_err());
    }
}
