//! A single HTTP byte range over a response of known length (RFC 9110 §14).

/// What a Range header means for a response of a given length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole response (no header, another unit, several ranges, or
    /// a header that does not parse: RFC 9110 lets a server ignore those).
    Full,
    /// Send `len` bytes from `first` with 206.
    Partial { first: u64, len: u64 },
    /// 416 with `Content-Range: bytes */length`.
    Unsatisfiable,
}

/// Resolves `header` (the Range field value, or None) against `length`.
pub fn resolve(header: Option<&str>, length: u64) -> RangeOutcome {
    let Some(spec) = header.map(str::trim) else {
        return RangeOutcome::Full;
    };
    let Some(set) = strip_prefix_ignore_case(spec, "bytes=") else {
        return RangeOutcome::Full;
    };
    let set = set.trim();
    if set.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((a, b)) = set.split_once('-') else {
        return RangeOutcome::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    match (digits(a), digits(b)) {
        // bytes=-n: the last n bytes.
        (None, Some(Some(n))) if a.is_empty() => {
            if n == 0 || length == 0 {
                RangeOutcome::Unsatisfiable
            } else {
                let len = n.min(length);
                RangeOutcome::Partial {
                    first: length - len,
                    len,
                }
            }
        }
        // bytes=a- and bytes=a-b.
        (Some(Some(first)), last) if last.is_some() || b.is_empty() => {
            let last = match last {
                Some(Some(l)) => l,
                Some(None) => return RangeOutcome::Full, // overflowing last: ignore
                None => u64::MAX,
            };
            if last < first {
                return RangeOutcome::Full;
            }
            if first >= length {
                return RangeOutcome::Unsatisfiable;
            }
            let last = last.min(length - 1);
            RangeOutcome::Partial {
                first,
                len: last - first + 1,
            }
        }
        _ => RangeOutcome::Full,
    }
}

/// The Content-Range value for a partial response.
pub fn content_range(first: u64, len: u64, length: u64) -> String {
    format!("bytes {}-{}/{}", first, first + len - 1, length)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// None: not all digits (or empty). Some(None): digits that overflow u64.
fn digits(s: &str) -> Option<Option<u64>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    #[test]
    fn rfc_9110_cases() {
        let l = 10_000;
        assert_eq!(resolve(None, l), Full);
        assert_eq!(
            resolve(Some("bytes=0-499"), l),
            Partial { first: 0, len: 500 }
        );
        assert_eq!(
            resolve(Some("bytes=500-999"), l),
            Partial {
                first: 500,
                len: 500
            }
        );
        assert_eq!(
            resolve(Some("bytes=-500"), l),
            Partial {
                first: 9500,
                len: 500
            }
        );
        assert_eq!(
            resolve(Some("bytes=9500-"), l),
            Partial {
                first: 9500,
                len: 500
            }
        );
        assert_eq!(resolve(Some("bytes=0-0"), l), Partial { first: 0, len: 1 });
        assert_eq!(
            resolve(Some("bytes=-1"), l),
            Partial {
                first: 9999,
                len: 1
            }
        );
        assert_eq!(
            resolve(Some("bytes=0-99999"), l),
            Partial { first: 0, len: l }
        );
        assert_eq!(
            resolve(Some("bytes=-99999"), l),
            Partial { first: 0, len: l }
        );
        assert_eq!(resolve(Some("Bytes = 5-"), l), Full); // space before '=' is not the grammar
        assert_eq!(
            resolve(Some("BYTES=5-"), l),
            Partial {
                first: 5,
                len: l - 5
            }
        );
        assert_eq!(resolve(Some("bytes=10000-"), l), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), l), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-"), 0), Unsatisfiable);
        // Ignored: other units, several ranges, garbage, reversed.
        assert_eq!(resolve(Some("items=0-5"), l), Full);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), l), Full);
        assert_eq!(resolve(Some("bytes=abc"), l), Full);
        assert_eq!(resolve(Some("bytes=5-1"), l), Full);
        assert_eq!(resolve(Some("bytes=--5"), l), Full);
        assert_eq!(resolve(Some("bytes=99999999999999999999-"), l), Full);
        assert_eq!(content_range(500, 500, l), "bytes 500-999/10000");
    }
}
