//! Retry spacing for an instance that keeps failing: the first retry comes
//! with the next round, later ones wait exponentially longer (capped), with
//! jitter so instances that failed together (one host) do not all reconnect
//! in the same instant when it comes back.

use std::time::{Duration, Instant};

/// Longest wait between attempts, in collection intervals: an instance that
/// comes back is seen again within this many rounds.
const MAX_INTERVALS: u32 = 4;
/// Each wait is scaled by a random factor in `1 ± JITTER`.
const JITTER: f64 = 0.2;

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Backoff {
    /// True when an attempt may be made at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.next_attempt.is_none_or(|t| now >= t)
    }

    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Records a failed attempt that ended at `now`.
    pub fn failed(&mut self, now: Instant, interval: Duration) {
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = Some(now + self.delay(interval, fastrand::f64()));
    }

    /// Records a failed attempt that the server answered with a passing
    /// state (starting up, shutting down, in recovery: SQLSTATE 57P0x): it
    /// is there and takes connections again in moments, so the next round
    /// tries again however many attempts failed before, and `up` follows
    /// within a round, not after the backoff the failures before built up.
    pub fn failed_briefly(&mut self, now: Instant, interval: Duration) {
        self.failures = 1;
        self.next_attempt = Some(now + self.delay(interval, fastrand::f64()));
    }

    /// Wait after the current run of failures, `unit` in [0, 1) picking the
    /// jitter: 1, 2, 4, 4... intervals, less half an interval so that timer
    /// noise never pushes a retry one more round. After one failure the next
    /// round retries; after two, one round is skipped; from three on, three.
    fn delay(&self, interval: Duration, unit: f64) -> Duration {
        let rounds = 1u32
            .checked_shl(self.failures.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(MAX_INTERVALS);
        let jitter = 1.0 + JITTER * (2.0 * unit - 1.0);
        let wait = interval.mul_f64(f64::from(rounds) * jitter);
        wait.saturating_sub(interval / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_and_reset_on_success() {
        let interval = Duration::from_secs(10);
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(b.ready(t0));
        let mut waits = Vec::new();
        for _ in 0..6 {
            b.failures += 1;
            waits.push(b.delay(interval, 0.5)); // 0.5: no jitter
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 15, 35, 35, 35, 35]);

        b.failed(t0, interval);
        assert!(!b.ready(t0 + Duration::from_secs(1)));
        assert!(b.ready(t0 + interval * MAX_INTERVALS * 2));
        b.succeeded();
        assert!(b.ready(t0));
    }

    /// A segment restarting: refused connections while it was down built
    /// the backoff up to its cap; its "starting up" answer brings the next
    /// attempt back to the next round.
    #[test]
    fn a_server_starting_up_is_tried_again_the_next_round() {
        let interval = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut b = Backoff::default();
        for _ in 0..4 {
            b.failed(t0, interval);
        }
        assert!(!b.ready(t0 + interval * 2));
        b.failed_briefly(t0, interval);
        assert!(!b.ready(t0 + interval / 4));
        assert!(b.ready(t0 + interval * 3 / 4));
        b.failed_briefly(t0, interval);
        assert!(b.ready(t0 + interval * 3 / 4), "not growing");
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let interval = Duration::from_secs(10);
        let b = Backoff {
            failures: 3,
            next_attempt: None,
        };
        let low = b.delay(interval, 0.0);
        let high = b.delay(interval, 0.999_999);
        assert_eq!(low, Duration::from_secs(27)); // 40 s * 0.8 - 5 s
        assert!(high > Duration::from_secs(42) && high <= Duration::from_secs(43));
    }
}
