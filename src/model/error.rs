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
    /// The server refused the connection at login for another reason (a FATAL
    /// before the session started: an unknown setting in the startup options,
    /// utility mode refused, ...); the SQLSTATE says which.
    Refused,
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
    /// Every kind, in label order of the exposition: each instance's
    /// `greenplum_scrape_errors_total` starts at 0 for all of them, so a
    /// healthy cluster shows zeros rather than no data.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Auth,
        ErrorKind::Tls,
        ErrorKind::Refused,
        ErrorKind::TooManyConnections,
        ErrorKind::Unavailable,
        ErrorKind::Permission,
        ErrorKind::LockTimeout,
        ErrorKind::StatementTimeout,
        ErrorKind::Query,
        ErrorKind::NotGreenplum,
        ErrorKind::NotSupported,
        ErrorKind::NoTopology,
        ErrorKind::Internal,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Tls => "tls",
            ErrorKind::Refused => "refused",
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
/// password: it comes from the server or the driver, which do not echo it
/// (`db::error` classifies the driver's errors).
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
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Refused | ErrorKind::Unavailable
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once() {
        let mut labels: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn label_message_is_one_bounded_line() {
        let e = ScrapeError::new(ErrorKind::Query, "first line\nsecond line");
        assert_eq!(e.label_message(), "first line");
        let long = ScrapeError::new(ErrorKind::Query, "é".repeat(LABEL_MESSAGE_CHARS + 5));
        assert_eq!(long.label_message().chars().count(), LABEL_MESSAGE_CHARS);
    }
}
