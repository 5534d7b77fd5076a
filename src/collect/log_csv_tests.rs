//! The parser on real Greenplum log lines (`tests/logs/`, copies of
//! `../shared/greenplum/logs/`); the figures are those files' own.

use super::*;

pub(crate) const GP6_COORDINATOR: &[u8] = include_bytes!("../../tests/logs/gp6-coordinator.csv");
pub(crate) const GP6_SEGMENT: &[u8] = include_bytes!("../../tests/logs/gp6-segment.csv");
pub(crate) const GP7_COORDINATOR: &[u8] = include_bytes!("../../tests/logs/gp7-coordinator.csv");
pub(crate) const GP7_SEGMENT: &[u8] = include_bytes!("../../tests/logs/gp7-segment.csv");

fn events(file: &[u8]) -> Vec<Event> {
    let (records, consumed) = split_records(file);
    assert_eq!(consumed, file.len(), "every record ends with a newline");
    records.iter().map(|r| classify(r)).collect()
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn refused(events: &[Event], want: Reason, want_role: &str) -> usize {
    count(
        events,
        |e| matches!(e, Event::Refused { reason, role, .. } if *reason == want && role == want_role),
    )
}

fn dispatch(events: &[Event], want: Option<i16>) -> usize {
    count(
        events,
        |e| matches!(e, Event::DispatchFailed { content, .. } if *content == want),
    )
}

fn other(events: &[Event], kind: Kind) -> usize {
    count(events, |e| *e == Event::Other(kind))
}

#[test]
fn every_real_line_has_greenplums_thirty_columns() {
    // Records (lines minus the newlines inside quoted fields).
    for (file, records, newlines) in [
        (GP6_COORDINATOR, 37, 44),
        (GP6_SEGMENT, 44, 44),
        (GP7_COORDINATOR, 20, 28),
        (GP7_SEGMENT, 22, 22),
    ] {
        let (all, _) = split_records(file);
        assert_eq!(all.len(), records);
        assert_eq!(file.iter().filter(|&&b| b == b'\n').count(), newlines);
        assert!(all.iter().all(|r| r.len() == COLUMNS));
        assert_eq!(count(&events(file), |e| *e == Event::Malformed), 0);
    }
}

#[test]
fn gp6_segment_refusals_by_reason_and_role() {
    let e = events(GP6_SEGMENT);
    assert_eq!(refused(&e, Reason::ReservedForSuperusers, "app"), 10);
    assert_eq!(refused(&e, Reason::FtsReserved, "gpuser"), 4);
    assert_eq!(count(&e, |e| matches!(e, Event::Refused { .. })), 14);
    assert_eq!(count(&e, |e| matches!(e, Event::DispatchFailed { .. })), 0);
    assert_eq!(other(&e, Kind::CrashRecovery), 2);
    assert_eq!(other(&e, Kind::GangReset), 0);
    // The refused executors of coordinator sessions 14 and 31 carry their ids.
    let sessions: Vec<&str> = e
        .iter()
        .filter_map(|e| match e {
            Event::Refused { session, .. } if !session.is_empty() => Some(session.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sessions,
        ["con14", "con31", "con14", "con31", "con14", "con31"]
    );
}

#[test]
fn gp7_segment_refusals() {
    let e = events(GP7_SEGMENT);
    assert_eq!(refused(&e, Reason::ReservedForSuperusers, "app"), 3);
    assert_eq!(count(&e, |e| matches!(e, Event::Refused { .. })), 3);
    assert_eq!(other(&e, Kind::CrashRecovery), 2);
}

#[test]
fn coordinators_count_failed_dispatches_by_the_segment_named() {
    let e = events(GP6_COORDINATOR);
    // Two ERRORs naming seg0; the WARNING of a background retry and the
    // "Error on receive" of a killed executor are not failed dispatches.
    assert_eq!(dispatch(&e, Some(0)), 2);
    assert_eq!(count(&e, |e| matches!(e, Event::DispatchFailed { .. })), 2);
    assert_eq!(other(&e, Kind::GangReset), 9);
    assert_eq!(count(&e, |e| matches!(e, Event::Refused { .. })), 0);

    let e = events(GP7_COORDINATOR);
    assert_eq!(dispatch(&e, Some(0)), 1);
    assert_eq!(dispatch(&e, Some(1)), 1);
    assert_eq!(count(&e, |e| matches!(e, Event::DispatchFailed { .. })), 2);
    assert_eq!(other(&e, Kind::GangReset), 5);
    assert_eq!(other(&e, Kind::Panic), 0);
}

#[test]
fn a_record_cut_anywhere_is_left_whole_for_the_next_read() {
    for file in [GP6_COORDINATOR, GP7_COORDINATOR, GP6_SEGMENT] {
        let (all, _) = split_records(file);
        for cut in 0..file.len() {
            let (mut first, consumed) = split_records(&file[..cut]);
            let (rest, _) = split_records(&file[consumed..]);
            first.extend(rest);
            assert_eq!(first, all, "cut at {cut}");
        }
    }
}

#[test]
fn quoted_fields_keep_newlines_and_doubled_quotes() {
    let line = b"2026-12-03 06:07:32.757881 UTC,app,postgres,p1,th1,127.0.0.1,1,2026-12-03 06:07:32 UTC,0,con9,,seg-1,,,,sx1,FATAL,28P01,\"password authentication failed for user \"\"app\"\"\",\"line one\nline two\",,,,,,0,,auth.c,359,\n";
    let (records, consumed) = split_records(line);
    assert_eq!(consumed, line.len());
    assert_eq!(records[0].len(), COLUMNS);
    assert_eq!(
        records[0][18],
        "password authentication failed for user \"app\""
    );
    assert_eq!(records[0][19], "line one\nline two");
}

#[test]
fn postgresqls_own_layout_is_not_greenplums() {
    // PostgreSQL 15's csvlog: 26 columns.
    let pg = b"2026-12-03 06:00:00.000 UTC,\"app\",\"postgres\",1,\"127.0.0.1:1\",1.1,1,\"authentication\",2026-12-03 06:00:00 UTC,,0,FATAL,53300,\"sorry, too many clients already\",,,,,,,,,\"\",client backend,,0\n";
    let (records, _) = split_records(pg);
    assert_eq!(records[0].len(), 26);
    assert_eq!(classify(&records[0]), Event::Malformed);
}

#[test]
fn reasons_and_named_segments() {
    assert_eq!(
        Reason::of("sorry, too many clients already"),
        Reason::TooManyClients
    );
    assert_eq!(
        Reason::of("remaining connection slots are reserved for superusers"),
        Reason::ReservedForSuperusers
    );
    assert_eq!(
        Reason::of("too many connections for role \"app\""),
        Reason::Other
    );
    assert_eq!(named_content("FATAL: x\n (seg12 10.0.0.1:6001)"), Some(12));
    assert_eq!(
        named_content("Master unable to connect to seg3 with options : FATAL"),
        Some(3)
    );
    assert_eq!(named_content("no segment here"), None);
    assert_eq!(unix_time("1970-01-02 00:00:01.5 UTC"), Some(86_401.5));
    assert_eq!(unix_time("2026-12-02 00:00:00 UTC"), Some(1_796_169_600.0));
    assert_eq!(unix_time("2026-12-02 00:00:00 CET"), None);
}

#[test]
fn a_read_from_the_middle_resyncs_at_the_next_record() {
    let second = GP6_SEGMENT.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(resync_point(&GP6_SEGMENT[5..]), Some(second - 5));
    // Inside the coordinator's two-line detail the next line is no record.
    let detail = GP6_COORDINATOR
        .windows(5)
        .position(|w| w == b"\n (se")
        .unwrap();
    let at = resync_point(&GP6_COORDINATOR[detail..]).unwrap();
    assert!(GP6_COORDINATOR[detail + at..].starts_with(b"2026-12-03 "));
}
