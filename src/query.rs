//! Query-string parsing into a `Request`. Strict: a value that is not a
//! plain non-negative number, overflows, or repeats is a bad request, never a
//! silent fallback to the whole file. Unknown parameters are ignored.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::plan::{Options, Output, Position, PrefixMode, Request, StartUnit};

/// Parses a query string (without the leading `?`) under `options`.
pub fn parse(query: &[u8], options: &Options) -> Result<Request> {
    let names = &options.names;
    let wanted = [
        &names.start,
        &names.end,
        &names.initial_bytes,
        &names.file_start,
        &names.byte_start,
        &names.byte_end,
        &names.burst,
        &names.rate,
        &names.format,
    ];
    let mut values: [Option<Cow<str>>; 9] = Default::default();
    for pair in query.split(|&b| b == b'&' || b == b';') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let key = percent_decode(key)?;
        let Some(slot) = wanted.iter().position(|n| !n.is_empty() && **n == key) else {
            continue;
        };
        if values[slot].is_some() {
            return Err(Error::bad_request(format!("parameter '{key}' given twice")));
        }
        values[slot] = Some(percent_decode(value)?);
    }
    let [start, end, ib, fs, bstart, bend, burst, rate, format] = values;
    fn field<'a>(v: &'a Option<Cow<str>>, name: &'a str) -> Option<(&'a str, &'a str)> {
        v.as_deref().map(|s| (name, s))
    }

    // Under the byte unit, a number is bytes for FLV but seconds for MP4,
    // which is only cut by time: both readings are kept until the format is
    // known, and a value neither reading accepts is refused now.
    let seek = |v: Option<(&str, &str)>| -> Result<Option<Position>> {
        v.map(|(name, s)| match options.start_unit {
            StartUnit::Bytes => match integer(name, s) {
                // Whole seconds, read again as milliseconds.
                Ok(b) => Ok(Position::Unitless {
                    bytes: Some(b),
                    millis: b.checked_mul(1000),
                }),
                Err(e) => match millis(name, s) {
                    Ok(m) => Ok(Position::Unitless {
                        bytes: None,
                        millis: Some(m),
                    }),
                    Err(_) => Err(e),
                },
            },
            StartUnit::Seconds => millis(name, s).map(Position::Millis),
        })
        .transpose()
    };
    let bytes = |v: Option<(&str, &str)>| v.map(|(n, s)| integer(n, s)).transpose();

    let classic = start.is_some() || end.is_some();
    let cdn = ib.is_some() || fs.is_some();
    let flvjs = bstart.is_some() || bend.is_some();
    if [classic, cdn, flvjs].iter().filter(|&&b| b).count() > 1 {
        return Err(Error::bad_request(
            "start/end, ib/fs and bstart/bend cannot be mixed",
        ));
    }

    let mut request = Request {
        burst_bytes: bytes(field(&burst, wanted[6]))?,
        rate_bytes_per_s: bytes(field(&rate, wanted[7]))?
            .map(|kbps| {
                kbps.checked_mul(1000)
                    .map(|b| b / 8)
                    .ok_or_else(|| Error::bad_request("rate overflows"))
            })
            .transpose()?,
        output: format
            .as_deref()
            .map(|v| {
                Output::parse(v).ok_or_else(|| {
                    Error::bad_request(format!(
                        "'{}' must be flv or mp4, got '{}'",
                        wanted[8],
                        shown(v)
                    ))
                })
            })
            .transpose()?,
        ..Request::default()
    };
    if classic {
        request.start = seek(field(&start, wanted[0]))?;
        request.end = seek(field(&end, wanted[1]))?;
    } else if cdn {
        request.initial_bytes = bytes(field(&ib, wanted[2]))?;
        request.start = bytes(field(&fs, wanted[3]))?.map(Position::Bytes);
    } else if flvjs {
        request.prefix = Some(PrefixMode::None);
        request.start = Some(Position::Bytes(
            bytes(field(&bstart, wanted[4]))?.unwrap_or(0),
        ));
        request.end = bytes(field(&bend, wanted[5]))?.map(Position::Bytes);
    }
    Ok(request)
}

/// A plain decimal integer: digits only, no sign, no spaces, fits in u64.
fn integer(name: &str, s: &str) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::bad_request(format!(
            "'{name}' must be a non-negative integer, got '{}'",
            shown(s)
        )));
    }
    s.parse()
        .map_err(|_| Error::bad_request(format!("'{name}' overflows: '{}'", shown(s))))
}

/// Seconds as `12`, `12.5` or `.5`, kept to the millisecond (finer digits are
/// dropped).
fn millis(name: &str, s: &str) -> Result<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_only(whole) || !digits_only(frac) {
        return Err(Error::bad_request(format!(
            "'{name}' must be non-negative seconds, got '{}'",
            shown(s)
        )));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| Error::bad_request(format!("'{name}' overflows")))?
    };
    let mut ms = 0;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * [100, 10, 1][i];
    }
    whole
        .checked_mul(1000)
        .and_then(|w| w.checked_add(ms))
        .ok_or_else(|| Error::bad_request(format!("'{name}' overflows")))
}

/// Decodes `%XX` and `+`; malformed escapes or invalid UTF-8 are bad
/// requests. Plain text (the usual case) is borrowed, not copied.
fn percent_decode(raw: &[u8]) -> Result<Cow<'_, str>> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| Error::bad_request("query is not UTF-8"));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::bad_request("malformed percent escape in query"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| Error::bad_request("query is not UTF-8"))
}

/// A value clipped for error messages.
fn shown(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ParamNames;

    fn q(s: &str) -> Result<Request> {
        parse(s.as_bytes(), &Options::default())
    }

    fn seconds() -> Options {
        Options {
            start_unit: StartUnit::Seconds,
            ..Options::default()
        }
    }

    #[test]
    fn classic_bytes() {
        let r = q("start=1234&end=99999&other=x").unwrap();
        let unitless = |b, ms| {
            Some(Position::Unitless {
                bytes: b,
                millis: ms,
            })
        };
        assert_eq!(r.start, unitless(Some(1234), Some(1_234_000)));
        assert_eq!(r.end, unitless(Some(99999), Some(99_999_000)));
        // Not bytes, but seconds to a format cut by time.
        assert_eq!(q("start=12.5").unwrap().start, unitless(None, Some(12_500)));
        // Bytes, but too many seconds.
        assert_eq!(
            q("start=18446744073709551615").unwrap().start,
            unitless(Some(u64::MAX), None)
        );
        assert_eq!(r.prefix, None);
        assert_eq!(q("").unwrap(), Request::default());
        assert_eq!(q("foo&bar=1").unwrap(), Request::default());
    }

    #[test]
    fn seconds_unit() {
        let o = seconds();
        let r = parse(b"start=12.5&end=20", &o).unwrap();
        assert_eq!(r.start, Some(Position::Millis(12_500)));
        assert_eq!(r.end, Some(Position::Millis(20_000)));
        let r = parse(b"start=.25", &o).unwrap();
        assert_eq!(r.start, Some(Position::Millis(250)));
        let r = parse(b"start=1.23456", &o).unwrap();
        assert_eq!(r.start, Some(Position::Millis(1234)));
        for bad in [
            "start=-1",
            "start=1e3",
            "start=.",
            "start=1.2.3",
            "start=",
            "start=99999999999999999999",
        ] {
            assert!(
                matches!(parse(bad.as_bytes(), &o), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cdn_and_flvjs_and_pacing() {
        let r = q("ib=4096&fs=500000&ri=100000&rs=800").unwrap();
        assert_eq!(r.initial_bytes, Some(4096));
        assert_eq!(r.start, Some(Position::Bytes(500_000)));
        assert_eq!(r.burst_bytes, Some(100_000));
        assert_eq!(r.rate_bytes_per_s, Some(100_000));
        let r = q("bstart=100&bend=199").unwrap();
        assert_eq!(r.prefix, Some(PrefixMode::None));
        assert_eq!(r.start, Some(Position::Bytes(100)));
        assert_eq!(r.end, Some(Position::Bytes(199)));
        let r = q("bend=10").unwrap();
        assert_eq!(r.start, Some(Position::Bytes(0)));
    }

    #[test]
    fn garbage_is_a_bad_request() {
        for bad in [
            "start=abc",
            "start=-5",
            "start=+5",
            "start= 5",
            "start=5&start=6",
            "start=",
            "start",
            "start=18446744073709551616",
            "start=0x10",
            "start=%zz",
            "start=1&bstart=2",
            "ib=1&start=3",
            "rs=18446744073709551615",
            "bend=-1",
            "start=%FF",
        ] {
            assert!(
                matches!(q(bad), Err(Error::BadRequest(_))),
                "{bad}: {:?}",
                q(bad)
            );
        }
    }

    #[test]
    fn percent_encoded_names_and_custom_names() {
        let ten = Some(Position::Unitless {
            bytes: Some(10),
            millis: Some(10_000),
        });
        assert_eq!(q("st%61rt=1%30").unwrap().start, ten);
        let o = Options {
            names: ParamNames {
                start: "pos".into(),
                ..ParamNames::default()
            },
            ..Options::default()
        };
        assert_eq!(
            parse(b"pos=7&start=x", &o).unwrap().start,
            Some(Position::Unitless {
                bytes: Some(7),
                millis: Some(7000)
            })
        );
    }
}
