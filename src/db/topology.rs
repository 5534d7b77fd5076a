//! Segment discovery: the coordinator's `gp_segment_configuration`, read in
//! utility mode so reading it never starts processes on the segments.

use crate::model::catalog::SegmentRow;
use tokio_postgres::GenericClient;

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
