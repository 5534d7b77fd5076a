//! Greenplum's server log lines (`gpdb-*.csv`, 30 columns, the same on GP6
//! and GP7): records split off a byte stream that may end in the middle of
//! one, and what a record means to the `log` collector. PostgreSQL's own
//! 26-column layout is not Greenplum's and is counted as malformed.

/// Columns of a Greenplum CSV log record.
pub const COLUMNS: usize = 30;
const TIME: usize = 0;
const USER: usize = 1;
const SESSION: usize = 9;
const SEVERITY: usize = 16;
const SQLSTATE: usize = 17;
const MESSAGE: usize = 18;
const DETAIL: usize = 19;

/// Complete records at the front of `buf` (each ended by a newline outside
/// quotes) and the bytes they take; what follows is an unfinished record,
/// kept for the next read.
pub fn split_records(buf: &[u8]) -> (Vec<Vec<String>>, usize) {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field: Vec<u8> = Vec::new();
    let (mut quoted, mut at_start, mut consumed) = (false, true, 0);
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if quoted {
            if b == b'"' {
                match buf.get(i + 1) {
                    Some(b'"') => {
                        field.push(b'"');
                        i += 1;
                    }
                    // The closing quote, unless the buffer ends on it: then
                    // the record is unfinished anyway.
                    Some(_) => quoted = false,
                    None => break,
                }
            } else {
                field.push(b);
            }
        } else {
            match b {
                b'"' if at_start => quoted = true,
                b',' => {
                    fields.push(String::from_utf8_lossy(&field).into_owned());
                    field.clear();
                    at_start = true;
                    i += 1;
                    continue;
                }
                b'\n' => {
                    fields.push(String::from_utf8_lossy(&field).into_owned());
                    field.clear();
                    records.push(std::mem::take(&mut fields));
                    consumed = i + 1;
                    at_start = true;
                    i += 1;
                    continue;
                }
                b'\r' if buf.get(i + 1) == Some(&b'\n') => {}
                _ => field.push(b),
            }
        }
        at_start = false;
        i += 1;
    }
    (records, consumed)
}

/// The first byte of `buf` where a record may start after a read that began
/// at an arbitrary offset: just after a newline, at a line that begins with
/// a log timestamp (`2026-12-03 05:51:58`). `None` when no such line is there.
pub fn resync_point(buf: &[u8]) -> Option<usize> {
    let starts_record = |at: usize| {
        let s = &buf[at..];
        let digits =
            |r: std::ops::Range<usize>| r.clone().all(|k| s.get(k).is_some_and(u8::is_ascii_digit));
        s.len() >= 19
            && digits(0..4)
            && s[4] == b'-'
            && digits(5..7)
            && s[7] == b'-'
            && digits(8..10)
            && s[10] == b' '
            && digits(11..13)
            && s[13] == b':'
    };
    buf.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .find(|&at| at < buf.len() && starts_record(at))
}

/// Why a connection was refused (`53300`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    TooManyClients,
    ReservedForSuperusers,
    FtsReserved,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::TooManyClients,
        Reason::ReservedForSuperusers,
        Reason::FtsReserved,
        Reason::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::TooManyClients => "too_many_clients",
            Reason::ReservedForSuperusers => "reserved_for_superusers",
            Reason::FtsReserved => "fts_reserved",
            Reason::Other => "other",
        }
    }

    fn of(message: &str) -> Reason {
        if message.contains("too many clients") {
            Reason::TooManyClients
        } else if message.contains("reserved for FTS") {
            Reason::FtsReserved
        } else if message.contains("reserved for superusers")
            || message.contains("reserved for non-replication superuser")
        {
            Reason::ReservedForSuperusers
        } else {
            Reason::Other
        }
    }
}

/// Other events worth counting, by the `event` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `The previous session was reset because its gang was disconnected`.
    GangReset,
    /// `automatic recovery in progress`: the instance restarted after a crash.
    CrashRecovery,
    Panic,
    /// `53200 out of memory`.
    OutOfMemory,
    /// Greenplum's vmem protection cancelled a query.
    VmemProtect,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::GangReset,
        Kind::CrashRecovery,
        Kind::Panic,
        Kind::OutOfMemory,
        Kind::VmemProtect,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::GangReset => "gang_reset",
            Kind::CrashRecovery => "crash_recovery",
            Kind::Panic => "panic",
            Kind::OutOfMemory => "out_of_memory",
            Kind::VmemProtect => "vmem_protect",
        }
    }
}

/// What one record means.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A refused connection: why, the role (may be empty) and the
    /// coordinator session id (`con14`, may be empty).
    Refused {
        reason: Reason,
        role: String,
        session: String,
        time: Option<f64>,
    },
    /// A dispatch the coordinator could not start (58M01), with the segment
    /// content its detail names (`None`: not named).
    DispatchFailed {
        content: Option<i16>,
        role: String,
        session: String,
    },
    Other(Kind),
    /// Nothing the collector counts.
    Ignored,
    /// Not Greenplum's 30 columns.
    Malformed,
}

/// What a record means to the collector. The statement text (column 24)
/// is never looked at.
pub fn classify(r: &[String]) -> Event {
    if r.len() != COLUMNS {
        return Event::Malformed;
    }
    let (severity, sqlstate, message) = (&r[SEVERITY], &r[SQLSTATE], &r[MESSAGE]);
    let failing = matches!(severity.as_str(), "ERROR" | "FATAL" | "PANIC");
    if sqlstate == "53300" && severity == "FATAL" {
        return Event::Refused {
            reason: Reason::of(message),
            role: r[USER].clone(),
            session: r[SESSION].clone(),
            time: unix_time(&r[TIME]),
        };
    }
    if sqlstate == "58M01"
        && failing
        && (message.contains("failed to acquire resources")
            || message.contains("unable to connect to seg"))
    {
        return Event::DispatchFailed {
            content: named_content(&r[DETAIL]).or_else(|| named_content(message)),
            role: r[USER].clone(),
            session: r[SESSION].clone(),
        };
    }
    if severity == "PANIC" {
        return Event::Other(Kind::Panic);
    }
    if message.starts_with("The previous session was reset because its gang was disconnected") {
        return Event::Other(Kind::GangReset);
    }
    if message.contains("automatic recovery in progress") {
        return Event::Other(Kind::CrashRecovery);
    }
    if failing && message.contains("VMEM") {
        return Event::Other(Kind::VmemProtect);
    }
    if failing && sqlstate == "53200" && message.contains("out of memory") {
        return Event::Other(Kind::OutOfMemory);
    }
    Event::Ignored
}

/// The content of the last `segN` a text names: `(seg0 127.0.0.1:6001)` in
/// a 58M01 detail, `Master unable to connect to seg3 with options` in GP5's.
fn named_content(text: &str) -> Option<i16> {
    text.match_indices("seg")
        .filter(|(i, _)| *i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric())
        .filter_map(|(i, _)| {
            let digits: String = text[i + 3..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let after = text[i + 3 + digits.len()..].chars().next();
            (!digits.is_empty() && after.is_none_or(|c| c == ' ' || c == ':' || c == ')'))
                .then(|| digits.parse().ok())
                .flatten()
        })
        .last()
}

/// Unix time of a log timestamp in UTC (`2026-12-03 05:51:58.216953 UTC`);
/// `None` in another zone.
fn unix_time(s: &str) -> Option<f64> {
    let (stamp, zone) = s.rsplit_once(' ')?;
    if zone != "UTC" && zone != "GMT" {
        return None;
    }
    let (date, time) = stamp.split_once(' ')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let sec = t.next()?.parse::<f64>().ok()?;
    let days = days_from_civil(y, m, day) as f64;
    Some(days * 86_400.0 + h * 3600.0 + min * 60.0 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[path = "log_csv_tests.rs"]
pub(crate) mod tests;
