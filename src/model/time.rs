//! Unix times as people read them: UTC to the second, in the form the log,
//! `top --incidents` and the status page (before its script shows local
//! time) write them.

/// RFC 3339 in UTC, to the second: `2026-12-02T00:00:00Z`.
pub fn rfc3339(unix: f64) -> String {
    let (date, [h, m, s]) = civil(unix);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

/// Date, time and zone: `2026-12-02 00:00:00 UTC`.
pub fn readable(unix: f64) -> String {
    let (date, [h, m, s]) = civil(unix);
    format!("{date} {h:02}:{m:02}:{s:02} UTC")
}

/// The date (`YYYY-MM-DD`) and the hour, minute and second of `unix`.
fn civil(unix: f64) -> (String, [u64; 3]) {
    let secs = unix.max(0.0) as u64;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let date = format!("{y:04}-{m:02}-{d:02}");
    (date, [rest / 3600, rest % 3600 / 60, rest % 60])
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_the_log() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_169_600.0), "2026-12-02T00:00:00Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(readable(951_782_400.0 + 3_723.9), "2000-02-29 01:02:03 UTC");
    }
}
