//! HTTP dates (RFC 9110 §5.6.7): written as IMF-fixdate, read in all three
//! forms a recipient must accept (IMF-fixdate, RFC 850, asctime). Seconds
//! since the epoch, UTC; no clock is read.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const LEN: usize = 29;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `secs` as an IMF-fixdate. Years outside 0..=9999 are clamped to
/// its first or last second (the format has four digits).
pub fn write(out: &mut Vec<u8>, secs: i64) {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = secs.clamp(MIN, MAX);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let two = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8])
    };
    out.extend_from_slice(DAYS[days.rem_euclid(7) as usize].as_bytes());
    out.extend_from_slice(b", ");
    two(out, day);
    out.push(b' ');
    out.extend_from_slice(MONTHS[month as usize - 1].as_bytes());
    out.push(b' ');
    let y = year as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push(b' ');
    two(out, rest / 3600);
    out.push(b':');
    two(out, rest / 60 % 60);
    out.push(b':');
    two(out, rest % 60);
    out.extend_from_slice(b" GMT");
}

/// The date as a string (tests and tools).
pub fn format(secs: i64) -> String {
    let mut out = Vec::with_capacity(LEN);
    write(&mut out, secs);
    String::from_utf8(out).expect("ASCII")
}

/// Reads an HTTP date; None for anything else (a recipient ignores a
/// precondition whose date does not parse).
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let bytes = s.as_bytes();
    // asctime: "Sun Nov  6 08:49:37 1994"
    if bytes.len() == 24 && bytes.get(3) == Some(&b' ') {
        let day_name = &s[..3];
        DAYS.contains(&day_name).then_some(())?;
        let month = month(&s[4..7])?;
        let day = s[8..10].trim_start().parse::<u32>().ok()?;
        (s.as_bytes()[7] == b' ' && bytes[10] == b' ' && bytes[19] == b' ').then_some(())?;
        let (h, m, sec) = clock(&s[11..19])?;
        let year = digits(&s[20..24])?;
        return assemble(i64::from(year), month, day, h, m, sec);
    }
    let (day_name, rest) = s.split_once(", ")?;
    if day_name.len() == 3 {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        DAYS.contains(&day_name).then_some(())?;
        let rb = rest.as_bytes();
        if rb.len() != 24
            || rb[2] != b' '
            || rb[6] != b' '
            || rb[11] != b' '
            || &rest[20..] != " GMT"
        {
            return None;
        }
        let day = digits(&rest[..2])?;
        let month = month(&rest[3..6])?;
        let year = digits(&rest[7..11])?;
        let (h, m, sec) = clock(&rest[12..20])?;
        return assemble(i64::from(year), month, day, h, m, sec);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    const LONG: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    LONG.contains(&day_name).then_some(())?;
    let rb = rest.as_bytes();
    if rb.len() != 22 || rb[2] != b'-' || rb[6] != b'-' || rb[9] != b' ' || &rest[18..] != " GMT" {
        return None;
    }
    let day = digits(&rest[..2])?;
    let month = month(&rest[3..6])?;
    let yy = digits(&rest[7..9])?;
    // Two-digit years: RFC 9110 takes the most recent past year with those
    // digits; without a clock, 70-99 are 1970-1999 and 00-69 are 2000-2069.
    let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
    let (h, m, sec) = clock(&rest[10..18])?;
    assemble(i64::from(year), month, day, h, m, sec)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == s).map(|i| i as u32 + 1)
}

fn clock(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((digits(&s[..2])?, digits(&s[3..5])?, digits(&s[6..8])?))
}

fn assemble(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    // 60 seconds: a leap second, read as the next second.
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Reject days past the month's end (30 Feb reads back as 2 Mar).
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_rfc_9110() {
        let t = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(format(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(parse("Sat, 01 Jan 2000 00:00:00 GMT"), Some(946_684_800));
        assert_eq!(parse("Thu, 29 Feb 2024 12:00:00 GMT"), Some(1_709_208_000));
    }

    #[test]
    fn anything_else_is_not_a_date() {
        for bad in [
            "",
            "not a date",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
            "Sun, 06 Nov 19x4 08:49:37 GMT",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_reads_back() {
        let mut t = -2_208_988_800; // 1900-01-01
        while t < 4_102_444_800 {
            assert_eq!(parse(&format(t)), Some(t), "{}", format(t));
            t += 86_400 + 3_661;
        }
    }
}
