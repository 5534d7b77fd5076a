//! Segment discovery: the coordinator's `gp_segment_configuration`, read in
//! utility mode so reading it never starts processes on the segments.

use tokio_postgres::GenericClient;

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

/// Columns by name, only those the exporter needs.
const CATALOG_SQL: &str = "SELECT dbid, content, role::text, preferred_role::text, mode::text, \
     status::text, port, hostname, address FROM gp_segment_configuration ORDER BY content, dbid";

/// Reads the catalog.
pub async fn read_catalog(
    client: &impl GenericClient,
) -> Result<Vec<SegmentRow>, tokio_postgres::Error> {
    let rows = client.query(CATALOG_SQL, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| SegmentRow {
            dbid: r.get(0),
            content: r.get(1),
            role: first_char(r.get(2)),
            preferred_role: first_char(r.get(3)),
            mode: first_char(r.get(4)),
            status: first_char(r.get(5)),
            port: u16::try_from(r.get::<_, i32>(6)).unwrap_or(0),
            hostname: r.get(7),
            address: r.get(8),
        })
        .collect())
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or('?')
}
