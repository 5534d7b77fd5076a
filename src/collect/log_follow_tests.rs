//! Following real log files (`tests/logs/`) as they grow and rotate. The
//! answers are what `log.sql` returns for files of those bytes (the
//! statement itself runs against real Greenplum in `tests/log_collector.rs`).

use super::*;
use crate::collect::log_csv::tests::{GP6_COORDINATOR, GP6_SEGMENT, GP7_SEGMENT};

/// What `log.sql` answers for `files` (name, bytes) and a request.
fn answer(files: &[(&str, &[u8])], (name, offset, max): (String, i64, i64)) -> Answer {
    let mut sorted: Vec<_> = files.to_vec();
    sorted.sort_by_key(|f| f.0);
    let newest = sorted.last();
    let followed = sorted.iter().find(|f| f.0 == name);
    let start = followed.map(|f| offset.max(f.1.len() as i64 - max));
    Answer {
        ok: true,
        newest: newest.map(|f| f.0.to_owned()),
        newest_size: newest.map(|f| f.1.len() as i64),
        size: followed.map(|f| f.1.len() as i64),
        start,
        data: followed
            .zip(start)
            .filter(|(f, s)| (f.1.len() as i64) > *s)
            .map(|(f, s)| f.1[s as usize..].to_vec()),
        next: sorted
            .iter()
            .find(|f| f.0 > name.as_str())
            .map(|f| f.0.to_owned()),
    }
}

fn round(f: &mut Follower, files: &[(&str, &[u8])]) {
    let a = answer(files, f.request());
    assert_eq!(f.absorb(a), None);
}

const A: &str = "gpdb-2026-12-03_050000.csv";
const B: &str = "gpdb-2026-12-03_060000.csv";

fn refusals(t: &Tally) -> u64 {
    t.refused.values().sum()
}

#[test]
fn history_before_start_up_is_not_counted() {
    let mut f = Follower::new(1 << 20, 10);
    round(&mut f, &[(A, GP6_SEGMENT)]);
    round(&mut f, &[(A, GP6_SEGMENT)]);
    assert_eq!(f.tally, Tally::default());
    // Then the same lines again: counted once.
    let grown = [GP6_SEGMENT, GP6_SEGMENT].concat();
    round(&mut f, &[(A, &grown)]);
    round(&mut f, &[(A, &grown)]);
    assert_eq!(f.tally.refused[&Reason::ReservedForSuperusers], 10);
    assert_eq!(f.tally.refused[&Reason::FtsReserved], 4);
    assert_eq!(f.tally.refused_by_role["app"], 10);
    assert_eq!(f.tally.refused_by_role["gpuser"], 4);
    assert_eq!(f.tally.events[&Kind::CrashRecovery], 2);
    assert_eq!(f.tally.records, 44);
    // For the incident record: every refusal, with its session id when it
    // was an executor of a coordinator session.
    assert_eq!(f.tally.recent.len(), 14);
    let sessions: Vec<&str> = f
        .tally
        .recent
        .iter()
        .filter(|r| !r.1.is_empty())
        .map(|r| r.1.as_str())
        .collect();
    assert_eq!(
        sessions,
        ["con14", "con31", "con14", "con31", "con14", "con31"]
    );
    assert_eq!(f.tally.read_bytes, GP6_SEGMENT.len() as u64);
    assert_eq!(f.tally.skipped_bytes, 0);
    // The latest refusal in the file: seg0's FTS-slot refusal at
    // 2026-12-03 06:06:15.657410 UTC (later lines are of an earlier run).
    assert_eq!(f.tally.last_refusal, Some(1_796_277_975.657_41));
}

#[test]
fn records_split_between_reads_are_counted_once() {
    // The coordinator's lines (with two-line details), 37 bytes a round.
    let mut f = Follower::new(1 << 20, 10);
    round(&mut f, &[(A, b"")]);
    for end in (0..=GP6_COORDINATOR.len())
        .step_by(37)
        .chain([GP6_COORDINATOR.len()])
    {
        round(&mut f, &[(A, &GP6_COORDINATOR[..end])]);
    }
    assert_eq!(f.tally.dispatch_failed[&0], 2);
    assert_eq!(f.tally.events[&Kind::GangReset], 9);
    assert_eq!(f.tally.records, 37);
    assert_eq!(f.tally.malformed, 0);
    assert_eq!(f.tally.skipped_bytes, 0);
    // Failed dispatches are no refusals of this instance's (the incident
    // record lists a segment's refused executors).
    assert!(f.tally.recent.is_empty());
}

#[test]
fn rotation_in_the_middle_of_a_burst_loses_nothing() {
    // The burst's first 20 lines in A, which then gets 5 more as B appears
    // with the rest: A is finished, then B read from its start.
    let lines: Vec<&[u8]> = GP6_SEGMENT.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 44);
    let (a1, a2, b) = (
        lines[..20].concat(),
        lines[..25].concat(),
        lines[25..].concat(),
    );
    let mut f = Follower::new(1 << 20, 10);
    round(&mut f, &[(A, b"")]);
    round(&mut f, &[(A, &a1)]);
    assert_eq!(f.tally.records, 20);
    round(&mut f, &[(A, &a2), (B, &b)]);
    assert_eq!(f.tally.records, 25);
    round(&mut f, &[(A, &a2), (B, &b)]);
    assert_eq!(f.tally.records, 44);
    assert_eq!(refusals(&f.tally), 14);
    assert_eq!(f.tally.skipped_bytes, 0);
    // A removed by log rotation's cleanup does not matter any more.
    round(&mut f, &[(B, &b)]);
    assert_eq!(f.tally.records, 44);
}

#[test]
fn more_than_a_rounds_limit_is_skipped_and_counted() {
    let limit = 4096;
    let mut f = Follower::new(limit, 10);
    round(&mut f, &[(A, b"")]);
    round(&mut f, &[(A, GP6_SEGMENT)]);
    // One line per record in this file: those starting in the last 4096 bytes.
    let len = GP6_SEGMENT.len() as u64;
    let starts: Vec<u64> = std::iter::once(0)
        .chain(
            GP6_SEGMENT
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i as u64 + 1),
        )
        .filter(|&s| s < len)
        .collect();
    let first_kept = *starts.iter().find(|&&s| s >= len - limit).unwrap();
    let kept = starts.iter().filter(|&&s| s >= first_kept).count() as u64;
    assert_eq!(f.tally.read_bytes, limit);
    assert_eq!(f.tally.skipped_bytes, first_kept);
    assert_eq!(f.tally.records, kept);
    assert_eq!(kept, 20, "the last twenty lines of gp6-segment.csv");
    assert_eq!(first_kept, 5006);
    // Six of them refusals of an ordinary role (con14 and con31 on seg0, seg1, seg2).
    assert_eq!(f.tally.refused[&Reason::ReservedForSuperusers], 6);
    assert_eq!(f.tally.refused.get(&Reason::FtsReserved), None);
    // Nothing pending: growth within the limit is read from where this
    // stopped (gp7-segment.csv's 22 lines, in two rounds of 11).
    let half = GP7_SEGMENT
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(10)
        .unwrap()
        .0
        + 1;
    let grown = [GP6_SEGMENT, &GP7_SEGMENT[..half]].concat();
    round(&mut f, &[(A, &grown)]);
    let grown = [GP6_SEGMENT, GP7_SEGMENT].concat();
    round(&mut f, &[(A, &grown)]);
    assert_eq!(f.tally.records, kept + 22);
    assert_eq!(f.tally.refused[&Reason::ReservedForSuperusers], 6 + 3);
    assert_eq!(f.tally.skipped_bytes, first_kept);
    assert_eq!(f.tally.read_bytes, limit + GP7_SEGMENT.len() as u64);
}

#[test]
fn roles_beyond_the_cap_count_as_other_and_labelled_ones_stay() {
    let mut f = Follower::new(1 << 20, 1);
    round(&mut f, &[(A, b"")]);
    round(&mut f, &[(A, GP6_SEGMENT)]);
    // "app" was refused first, then "gpuser".
    assert_eq!(f.tally.refused_by_role["app"], 10);
    assert_eq!(f.tally.refused_by_role[OTHER_ROLES], 4);
    assert_eq!(f.tally.refused_by_role.len(), 2);
}

#[test]
fn without_the_privilege_or_a_csv_log_it_is_off_and_says_why_once() {
    let mut f = Follower::new(1 << 20, 10);
    let refused = Answer::default();
    assert_eq!(f.absorb(refused.clone()), Some(Off::InsufficientPrivilege));
    assert_eq!(f.absorb(refused), None);
    assert_eq!(f.off, Some(Off::InsufficientPrivilege));
    let no_log = Answer {
        ok: true,
        ..Answer::default()
    };
    assert_eq!(f.absorb(no_log), Some(Off::NoCsvLog));
    round(&mut f, &[(A, GP6_SEGMENT)]);
    assert_eq!(f.off, None);
    assert_eq!(f.tally, Tally::default());
}
