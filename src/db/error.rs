//! The database driver's and the pool's errors as [`ScrapeError`]s: the
//! SQLSTATE and the driver's message decide the kind.

use crate::db::pool::PoolError;
use crate::model::error::{ErrorKind, ScrapeError};

impl From<tokio_postgres::Error> for ScrapeError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // tokio-postgres does not expose its error kind; its message does.
            let kind = if e.to_string().starts_with("error performing TLS handshake") {
                ErrorKind::Tls
            } else if e.is_closed() || source_is_io(&e) {
                ErrorKind::Connect
            } else {
                ErrorKind::Query
            };
            return ScrapeError::new(kind, with_causes(&e));
        };
        let code = db.code().code();
        let kind = match code {
            "53300" => ErrorKind::TooManyConnections,
            "57P03" | "57P01" | "57P02" => ErrorKind::Unavailable,
            "42501" => ErrorKind::Permission,
            "55P03" => ErrorKind::LockTimeout,
            "57014" => ErrorKind::StatementTimeout,
            c if c.starts_with("28") => ErrorKind::Auth,
            "3D000" => ErrorKind::Auth,
            _ => ErrorKind::Query,
        };
        ScrapeError {
            kind,
            sqlstate: Some(code.to_owned()),
            message: format!("{}: {}", db.severity(), db.message()),
        }
    }
}

/// The driver's message followed by its causes ("error connecting to server: Connection refused").
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn source_is_io(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    // tokio-postgres reports connect failures and timeouts without a db error.
    let text = e.to_string();
    text.contains("error connecting") || text.contains("timeout")
}

impl From<PoolError> for ScrapeError {
    fn from(e: PoolError) -> Self {
        match e {
            // Making the connection failed: whatever the server answered, the
            // instance refused the exporter at login.
            PoolError::Backend(e) => at_login(ScrapeError::from(e)),
            PoolError::Timeout(t) => {
                ScrapeError::new(ErrorKind::Timeout, format!("pool {t:?} timeout"))
            }
            other => ScrapeError::new(ErrorKind::Connect, other.to_string()),
        }
    }
}

/// A failed login outside a pool (the family probe), as a pool's would be.
pub fn login_failed(e: tokio_postgres::Error) -> ScrapeError {
    at_login(ScrapeError::from(e))
}

/// An error the server answered at login (a FATAL before the session
/// started) is a refused connection, whatever its SQLSTATE, unless a more
/// telling kind already says so (auth, too many connections, unavailable).
fn at_login(mut e: ScrapeError) -> ScrapeError {
    if e.sqlstate.is_some() && e.kind == ErrorKind::Query {
        e.kind = ErrorKind::Refused;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(kind: ErrorKind, code: &str) -> ScrapeError {
        ScrapeError {
            kind,
            sqlstate: Some(code.to_owned()),
            message: "FATAL: ...".to_owned(),
        }
    }

    #[test]
    fn a_fatal_at_login_is_a_refused_connection_keeping_its_sqlstate() {
        let unknown_setting = at_login(answered(ErrorKind::Query, "42704"));
        assert_eq!(unknown_setting.kind, ErrorKind::Refused);
        assert_eq!(unknown_setting.sqlstate.as_deref(), Some("42704"));
        for (kind, code) in [
            (ErrorKind::TooManyConnections, "53300"),
            (ErrorKind::Unavailable, "57P03"),
            (ErrorKind::Auth, "28P01"),
        ] {
            assert_eq!(at_login(answered(kind, code)).kind, kind, "{code}");
        }
        let no_answer = at_login(ScrapeError::new(ErrorKind::Connect, "refused"));
        assert_eq!(no_answer.kind, ErrorKind::Connect);
    }
}
