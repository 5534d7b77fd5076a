//! Rows of the emulated `gp_segment_configuration` on the coordinator.

/// One row of `gp_segment_configuration`, with the GP6/GP7 column set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogRow {
    pub dbid: i16,
    pub content: i16,
    pub role: char,
    pub preferred_role: char,
    pub mode: char,
    pub status: char,
    pub port: u16,
    pub hostname: String,
    pub address: String,
    pub datadir: String,
}

impl CatalogRow {
    /// `INSERT` statement for this row.
    pub(crate) fn insert_sql(&self) -> String {
        format!(
            "INSERT INTO gp_segment_configuration \
             (dbid, content, role, preferred_role, mode, status, port, hostname, address, datadir) \
             VALUES ({}, {}, '{}', '{}', '{}', '{}', {}, {}, {}, {});",
            self.dbid,
            self.content,
            self.role,
            self.preferred_role,
            self.mode,
            self.status,
            self.port,
            quote(&self.hostname),
            quote(&self.address),
            quote(&self.datadir),
        )
    }
}

/// A SQL string literal.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier, double-quoted.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
