//! The collection interval's ticks: a tick missed while a round ran late is
//! taken late, not made up for with a burst of rounds.

use std::time::Duration;

/// A ticker whose first tick is now.
pub fn ticker(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// A ticker whose first tick is one period from now.
pub fn ticker_from_now(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}
