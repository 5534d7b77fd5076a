//! Who holds the segment slots: the join of one round's sessions collector
//! rows across the instances (see `collect::sessions`).

/// The join of one round, as `/metrics`, the status page and `top` show it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attribution {
    /// Backends by kind of each instance joined (by `collect::sessions`),
    /// in its order (each instance's view carries its own).
    #[serde(skip)]
    pub kinds: Vec<Vec<(&'static str, f64)>>,
    /// Distributed sessions of each instance, in the same order.
    #[serde(skip)]
    pub distributed_sessions: Vec<f64>,
    /// The roles whose sessions hold most segment backends, then `other`.
    pub by_user: Vec<Holder>,
    /// The same by the sessions' `application_name`.
    pub by_application: Vec<Holder>,
    /// The coordinator sessions holding most segment backends (empty when
    /// the coordinator was not read this round).
    pub sessions: Vec<SessionHolder>,
    /// Segment backends of the sessions beyond `sessions`.
    pub other_sessions: f64,
    pub overcommit: Option<Overcommit>,
    /// The segments with the least ordinary headroom, least first, and
    /// who holds their slots (`collect::lowest_headroom`; empty without
    /// the connections collector).
    #[serde(default)]
    pub lowest_headroom: Vec<SegmentHolders>,
}

/// One of the segments with the least ordinary headroom and the
/// applications holding its client backends.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentHolders {
    pub content: i16,
    pub headroom_ordinary: f64,
    /// Client backends by application, most first, then `other`: query
    /// executors under the `application_name` of the coordinator session
    /// they serve (empty when that session is not known), other sessions
    /// under their own.
    pub by_application: Vec<(String, f64)>,
}

/// Segment backends held by a role's or an application's sessions.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub name: String,
    /// Summed over segments.
    pub segment_backends: f64,
    /// On the segment where they hold most.
    pub most_on_one_segment: f64,
}

/// A coordinator session as `pg_stat_activity` shows it: who, from where,
/// doing what, since when.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionIdentity {
    pub sess_id: String,
    pub usename: String,
    pub application_name: String,
    pub client_addr: String,
    pub state: String,
    pub age_seconds: f64,
}

/// A coordinator session and the segment backends it holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionHolder {
    #[serde(flatten)]
    pub session: SessionIdentity,
    /// Summed over segments.
    pub segment_backends: f64,
}

/// Coordinator slots against the sessions the segments can hold.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Overcommit {
    pub segment_session_capacity: f64,
    pub coordinator_session_slots: f64,
    /// `None` when the capacity is 0.
    pub ratio: Option<f64>,
}
