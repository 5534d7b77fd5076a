//! Per-instance figures of one round, as `/metrics`, the status page, the
//! API and `top` show them. The collectors compute them from their rows.

/// One instance's connection slots, as `/metrics`, the status page and
/// `top` show them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Slots {
    /// `max_connections` slots in use: client backends, the exporter's own
    /// included, and walsenders where they take such a slot.
    pub used: f64,
    /// Walsenders holding `max_connections` slots (GP6); `None` where they
    /// have slots of their own (GP7+).
    pub walsenders: Option<f64>,
    pub max_connections: f64,
    pub superuser_reserved: f64,
    /// `max_connections - superuser_reserved_connections - used`, not below 0.
    pub headroom_ordinary: f64,
    /// `max_connections - used`, less the FTS prober's slot on segments, not below 0.
    pub headroom_superuser: f64,
    /// `used` over the ordinary slots; `None` when there are none.
    pub utilization: Option<f64>,
    pub idle_in_transaction: f64,
    pub oldest_idle_in_transaction_seconds: f64,
    pub oldest_active_query_seconds: f64,
}

/// One instance's prepared transactions, as `/metrics`, the status page and
/// `top` show them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreparedFigures {
    pub count: f64,
    /// `max_prepared_transactions`.
    pub max: f64,
    /// `max - count`, not below 0.
    pub headroom: f64,
    pub oldest_age_seconds: f64,
    /// Older than `prepared_age_threshold`.
    pub stale: f64,
}

/// One instance's lock waits, as `/metrics`, the status page and `top` show them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LockFigures {
    /// Backends waiting for a lock.
    pub waiting: f64,
    /// Distinct sessions holding a lock somebody waits for.
    pub blockers: f64,
    pub longest_wait_seconds: f64,
}

/// One instance's walsender to its mirror (coordinator: standby), as
/// `/metrics`, the status page and `top` show it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicationFigures {
    /// `streaming`, `catchup`, ..., `none` without a walsender.
    pub state: String,
    /// `sync`, `async`, `potential`, `quorum`, `none` without a walsender.
    pub sync_state: String,
    /// WAL bytes behind the instance's current position; `None` without a
    /// walsender (or where the position is not known yet).
    pub sent_lag_bytes: Option<f64>,
    pub flush_lag_bytes: Option<f64>,
    pub replay_lag_bytes: Option<f64>,
    /// The catalog's mirror row of this content, `status` and `mode` (`u/s`,
    /// `d/n`, ...); `None` where the catalog lists no mirror (or standby).
    #[serde(default)]
    pub catalog_mirror: Option<String>,
    /// `greenplum_replication_catalog_disagreement`: the catalog says up and in
    /// sync and the primary does not stream, or the reverse.
    #[serde(default)]
    pub disagrees: bool,
}

impl ReplicationFigures {
    /// The line the status page and `top` show: the state, the sync state and
    /// the replay lag, e.g. `streaming sync, replay 12.0 MiB behind`.
    pub fn summary(&self) -> String {
        let mut s = self.state.clone();
        if self.sync_state != "none" {
            s.push(' ');
            s.push_str(&self.sync_state);
        }
        if let Some(b) = self.replay_lag_bytes {
            s.push_str(&format!(", replay {} behind", bytes(b)));
        }
        if let Some(m) = &self.catalog_mirror {
            s.push_str(&format!(" (catalog {m})"));
        }
        s
    }

    /// A cell of at most 5 characters: the replay lag while streaming
    /// (`0`, `512M`, `3.1G`), else the state (`none`, `catch`, ...).
    pub fn cell(&self) -> String {
        match (self.state.as_str(), self.replay_lag_bytes) {
            ("streaming", Some(b)) => short_bytes(b),
            ("streaming", None) => "strm".to_owned(),
            (state, _) => state.chars().take(5).collect(),
        }
    }
}

/// Bytes in binary units, one decimal.
fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{v:.0} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

/// Bytes in at most 5 characters: `0`, `900`, `12K`, `512M`, `3.1G`.
fn short_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match v < 10.0 && unit > 0 {
        true => format!("{v:.1}{}", UNITS[unit]),
        false => format!("{v:.0}{}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_reads_short_in_top_and_whole_on_the_page() {
        let mut r = ReplicationFigures {
            state: "streaming".into(),
            sync_state: "sync".into(),
            replay_lag_bytes: Some(12.0 * 1024.0 * 1024.0),
            catalog_mirror: Some("u/s".into()),
            ..Default::default()
        };
        assert_eq!(
            r.summary(),
            "streaming sync, replay 12.0 MiB behind (catalog u/s)"
        );
        assert_eq!(r.cell(), "12M");
        r.replay_lag_bytes = Some(0.0);
        assert_eq!(r.cell(), "0");
        r.replay_lag_bytes = Some(3.1 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(r.cell(), "3.1G");
        let none = ReplicationFigures {
            state: "none".into(),
            sync_state: "none".into(),
            ..Default::default()
        };
        assert_eq!(none.summary(), "none");
        assert_eq!(none.cell(), "none");
        let catchup = ReplicationFigures {
            state: "catchup".into(),
            ..none
        };
        assert_eq!(catchup.cell(), "catch");
    }
}
