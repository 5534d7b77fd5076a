//! The coordinator's topology catalog, `gp_segment_configuration`, as the
//! exporter keeps it.

/// One catalog row (coordinator, primary or mirror). Instances are keyed by
/// `dbid`: several instances may share a host and even a port across hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub dbid: i16,
    /// -1 for the coordinator (and its standby), 0.. for segments.
    pub content: i16,
    /// `p` primary, `m` mirror (or coordinator standby).
    pub role: char,
    pub preferred_role: char,
    /// `s` synchronized, `n` not in sync.
    pub mode: char,
    /// `u` up, `d` down.
    pub status: char,
    pub port: u16,
    pub hostname: String,
    /// Where to connect (not `hostname`).
    pub address: String,
}

impl SegmentRow {
    /// Primaries and the active coordinator accept SQL; mirrors and the
    /// standby are in recovery and are reported from the catalog only.
    pub fn is_scrape_target(&self) -> bool {
        self.role == 'p'
    }

    pub fn is_coordinator(&self) -> bool {
        self.content < 0
    }
}

/// The coordinator's dbid on every Greenplum cluster (gpinitsystem assigns
/// 1); used for it before the catalog has been read.
pub const COORDINATOR_DBID: i16 = 1;
