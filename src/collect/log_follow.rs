//! Following one instance's server log between rounds: which file, up to
//! which byte, the unfinished record at the end of the last read, and the
//! counts so far (counters: they only grow while the exporter runs).

use super::log_csv::{classify, resync_point, split_records, Event, Kind, Reason};
use std::collections::BTreeMap;

/// Why the collector is not reading an instance's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Off {
    /// Not a superuser (GP7: nor a member of `pg_read_server_files` allowed
    /// the file functions).
    InsufficientPrivilege,
    /// No `gpdb-*.csv` in `log_directory` (not Greenplum's CSV log, e.g. the
    /// emulation's PostgreSQL, or `logging_collector` off).
    NoCsvLog,
    /// The read failed (the error is logged).
    ReadError,
}

impl Off {
    pub const ALL: [Off; 3] = [Off::InsufficientPrivilege, Off::NoCsvLog, Off::ReadError];

    pub fn label(self) -> &'static str {
        match self {
            Off::InsufficientPrivilege => "insufficient_privilege",
            Off::NoCsvLog => "no_csv_log",
            Off::ReadError => "read_error",
        }
    }
}

/// The read statement's one row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub ok: bool,
    pub newest: Option<String>,
    pub newest_size: Option<i64>,
    /// The followed file's size (`None`: it is gone).
    pub size: Option<i64>,
    pub start: Option<i64>,
    pub data: Option<Vec<u8>>,
    /// The file after the followed one, by name.
    pub next: Option<String>,
}

/// Label value of the roles beyond the cap.
pub const OTHER_ROLES: &str = "other";

/// What the log said since the exporter started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub refused: BTreeMap<Reason, u64>,
    /// Refusals by role: the first `top_n.usename` roles seen keep their own
    /// label for the life of the exporter, later ones count as `other`, so
    /// every series only grows.
    pub refused_by_role: BTreeMap<String, u64>,
    /// Failed dispatches by the content named (-1: none named).
    pub dispatch_failed: BTreeMap<i16, u64>,
    pub events: BTreeMap<Kind, u64>,
    pub records: u64,
    pub malformed: u64,
    pub read_bytes: u64,
    pub skipped_bytes: u64,
    /// Unix time of the last refusal's log line.
    pub last_refusal: Option<f64>,
    /// Refusals since the incident record last took them, by role and
    /// coordinator session id.
    pub recent: Vec<(String, String)>,
}

const RECENT_MAX: usize = 1000;

impl Tally {
    fn count(&mut self, e: Event, role_cap: usize) {
        self.records += 1;
        match e {
            Event::Refused {
                reason,
                role,
                session,
                time,
            } => {
                *self.refused.entry(reason).or_default() += 1;
                let known = self.refused_by_role.contains_key(&role);
                let named = self
                    .refused_by_role
                    .keys()
                    .filter(|r| *r != OTHER_ROLES)
                    .count();
                let key = if known || named < role_cap {
                    role.clone()
                } else {
                    OTHER_ROLES.to_owned()
                };
                *self.refused_by_role.entry(key).or_default() += 1;
                if let Some(t) = time {
                    self.last_refusal = Some(self.last_refusal.map_or(t, |l| l.max(t)));
                }
                self.remember(role, session);
            }
            // The refused executors are on the segment's own list.
            Event::DispatchFailed { content, .. } => {
                *self
                    .dispatch_failed
                    .entry(content.unwrap_or(-1))
                    .or_default() += 1;
            }
            Event::Other(kind) => *self.events.entry(kind).or_default() += 1,
            Event::Ignored => {}
            Event::Malformed => self.malformed += 1,
        }
    }

    fn remember(&mut self, role: String, session: String) {
        if self.recent.len() < RECENT_MAX {
            self.recent.push((role, session));
        }
    }
}

/// One instance's log, followed round by round.
#[derive(Debug)]
pub struct Follower {
    file: Option<String>,
    offset: i64,
    /// The unfinished record at the end of the last read.
    pending: Vec<u8>,
    /// The last read skipped ahead: drop bytes up to the next record.
    resync: bool,
    pub tally: Tally,
    pub off: Option<Off>,
    /// Set when the collector was just switched off: the target logs it once.
    pub announce: Option<Off>,
    /// What the privilege test said (`None`: not asked yet, or asked again).
    pub privileged: Option<bool>,
    rounds_unprivileged: u32,
    /// The last read's error, until the target logs it.
    pub last_error: Option<crate::model::error::ScrapeError>,
    max_bytes: i64,
    role_cap: usize,
}

impl Follower {
    /// At most `max_bytes` read per round; `role_cap` roles labelled.
    pub fn new(max_bytes: u64, role_cap: usize) -> Follower {
        Follower {
            file: None,
            offset: 0,
            pending: Vec::new(),
            resync: false,
            tally: Tally::default(),
            off: None,
            announce: None,
            last_error: None,
            privileged: None,
            rounds_unprivileged: 0,
            max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
            role_cap,
        }
    }

    /// The statement's parameters: the followed file, the offset, the limit.
    pub fn request(&self) -> (String, i64, i64) {
        (
            self.file.clone().unwrap_or_default(),
            self.offset,
            self.max_bytes,
        )
    }

    /// Takes one round's answer. Returns the reason when the collector has
    /// just been switched off (to log once).
    pub fn absorb(&mut self, a: Answer) -> Option<Off> {
        let off = match (a.ok, &a.newest) {
            (false, _) => Some(Off::InsufficientPrivilege),
            (true, None) => Some(Off::NoCsvLog),
            _ => None,
        };
        let newly = off.filter(|o| self.off != Some(*o));
        self.off = off;
        if off.is_some() {
            // Back on later, it starts at the end again.
            self.file = None;
            self.drop_pending();
            return newly;
        }
        let Some(file) = self.file.clone() else {
            // Start-up: history before it is not counted.
            self.file = a.newest;
            self.offset = a.newest_size.unwrap_or(0);
            return None;
        };
        let Some(size) = a.size else {
            // Removed: go on with the next file, from its start.
            self.skip(0);
            self.file = a.next.or(a.newest).filter(|n| *n != file);
            self.offset = 0;
            return None;
        };
        if size < self.offset {
            // Truncated or replaced under the same name.
            self.drop_pending();
            self.offset = 0;
            return None;
        }
        let start = a.start.unwrap_or(self.offset);
        if start > self.offset {
            self.skip(start - self.offset);
            self.resync = true;
        }
        let data = a.data.unwrap_or_default();
        self.offset = start + data.len() as i64;
        self.feed(&data);
        if self.offset >= size {
            if let Some(next) = a.next {
                // Finished; a record cannot go on in the next file.
                self.drop_pending();
                self.file = Some(next);
                self.offset = 0;
            }
        }
        None
    }

    /// True when the privilege test is to run this round: at first, after a
    /// failure, and every `every` rounds while the role may not read.
    pub fn privilege_check_due(&mut self, every: u32) -> bool {
        match self.privileged {
            None => true,
            Some(true) => false,
            Some(false) => {
                self.rounds_unprivileged += 1;
                let due = self.rounds_unprivileged >= every;
                if due {
                    self.rounds_unprivileged = 0;
                }
                due
            }
        }
    }

    /// Records the read failed this round (the offset stays).
    pub fn failed(&mut self) -> bool {
        let newly = self.off != Some(Off::ReadError);
        self.off = Some(Off::ReadError);
        newly
    }

    fn feed(&mut self, data: &[u8]) {
        self.tally.read_bytes += data.len() as u64;
        self.pending.extend_from_slice(data);
        if self.resync {
            let at = match self.pending.first() {
                Some(_) => resync_point(&self.pending),
                None => return,
            };
            let Some(at) = at else {
                // No record starts in what was read: wait for more, but
                // not forever.
                if self.pending.len() as i64 > self.max_bytes {
                    self.drop_pending();
                }
                return;
            };
            self.pending.drain(..at);
            self.tally.skipped_bytes += at as u64;
            self.resync = false;
        }
        let (records, consumed) = split_records(&self.pending);
        for r in records {
            self.tally.count(classify(&r), self.role_cap);
        }
        self.pending.drain(..consumed);
        if self.pending.len() as i64 > self.max_bytes {
            // One record larger than a round's reading: give up on it.
            self.drop_pending();
            self.resync = true;
        }
    }

    fn skip(&mut self, bytes: i64) {
        self.tally.skipped_bytes += u64::try_from(bytes).unwrap_or(0);
        self.drop_pending();
    }

    fn drop_pending(&mut self) {
        self.tally.skipped_bytes += self.pending.len() as u64;
        // Counted as read once; skipped now.
        self.pending.clear();
    }
}

#[cfg(test)]
#[path = "log_follow_tests.rs"]
mod tests;
