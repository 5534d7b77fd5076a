//! Why an instance could not be collected, in a form fit for labels.

use std::fmt;

/// The `kind` label of `greenplum_scrape_errors_total` and `greenplum_last_error_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The instance's deadline passed (hung or very slow instance).
    Timeout,
    /// TCP connect or the connection itself failed (instance down, network).
    Connect,
    /// The server refused the login: wrong password, missing role, pg_hba.
    Auth,
    /// The TLS handshake failed: an untrusted certificate, a name it does not
    /// carry, or a server without TLS (see `sslmode`).
    Tls,
    /// Out of connection slots, even for the exporter (SQLSTATE 53300).
    TooManyConnections,
    /// The server is starting, stopping or in recovery (SQLSTATE 57P03).
    Unavailable,
    /// Missing privilege on a view or function (SQLSTATE 42501).
    Permission,
    /// The server cancelled the exporter's statement at its `lock_timeout`
    /// (SQLSTATE 55P03): something holds a lock on a catalog it reads.
    LockTimeout,
    /// The server cancelled the exporter's statement at its
    /// `statement_timeout` (SQLSTATE 57014).
    StatementTimeout,
    /// Any other error of the statement.
    Query,
    /// The server is not a Greenplum-family server the exporter understands.
    NotGreenplum,
    /// A Greenplum-family version the exporter does not support (Greenplum 5).
    NotSupported,
    /// The coordinator was never reached, so the instance list is unknown.
    NoTopology,
    /// A collection task ended abnormally (a bug; reported, never fatal).
    Internal,
}

impl ErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Tls => "tls",
            ErrorKind::TooManyConnections => "too_many_connections",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Permission => "permission",
            ErrorKind::LockTimeout => "lock_timeout",
            ErrorKind::StatementTimeout => "statement_timeout",
            ErrorKind::Query => "query",
            ErrorKind::NotGreenplum => "not_greenplum",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::NoTopology => "no_topology",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Longest error message carried in a label: enough for a server's message
/// ("unrecognized configuration parameter ..."), short enough for a label.
pub const LABEL_MESSAGE_CHARS: usize = 200;

/// A failed collection or topology read. The message never carries a
/// password: it comes from the server or the driver, which do not echo it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeError {
    pub kind: ErrorKind,
    /// SQLSTATE when the server answered with an error.
    pub sqlstate: Option<String>,
    pub message: String,
}

impl ScrapeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ScrapeError {
            kind,
            sqlstate: None,
            message: message.into(),
        }
    }

    /// The message as the `message` label of `greenplum_last_error_info`:
    /// its first line, at most [`LABEL_MESSAGE_CHARS`] characters.
    pub fn label_message(&self) -> &str {
        let line = self.message.lines().next().unwrap_or("");
        match line.char_indices().nth(LABEL_MESSAGE_CHARS) {
            Some((end, _)) => &line[..end],
            None => line,
        }
    }

    /// True when the connection rather than the statement failed, which is a
    /// reason to re-read the topology (the instance may have moved).
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Unavailable
        )
    }
}

impl fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{} ({code}): {}", self.kind.label(), self.message),
            None => write!(f, "{}: {}", self.kind.label(), self.message),
        }
    }
}

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

impl From<deadpool_postgres::PoolError> for ScrapeError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(t) => {
                ScrapeError::new(ErrorKind::Timeout, format!("pool {t:?} timeout"))
            }
            other => ScrapeError::new(ErrorKind::Connect, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_message_is_one_bounded_line() {
        let e = ScrapeError::new(ErrorKind::Query, "first line\nsecond line");
        assert_eq!(e.label_message(), "first line");
        let long = ScrapeError::new(ErrorKind::Query, "é".repeat(LABEL_MESSAGE_CHARS + 5));
        assert_eq!(long.label_message().chars().count(), LABEL_MESSAGE_CHARS);
    }
}
