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
