//! Reading and checking an HTTP/1.x request head, and mapping its path onto
//! the served directory.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Largest request head accepted (request line and header fields).
pub const MAX_HEAD: usize = 16 * 1024;

/// A request head that passed the checks below.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The request target as sent (checked to be visible ASCII).
    pub target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// Every header as received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// A header's value; repeated fields are joined with ", " (RFC 9110 §5.3).
    pub fn header(&self, name: &str) -> Option<String> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next()?;
        Some(values.fold(first.to_string(), |acc, v| acc + ", " + v))
    }
}

/// Why no request head could be had.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed (or went quiet) before sending anything: no answer.
    Gone,
    /// An HTTP status to answer with (400, 408, 431, 505).
    Status(u16, &'static str),
}

/// Reads a request head, all of which must arrive before `deadline`.
/// Bytes after the head (a body, pipelined requests) are left unread: every
/// response closes the connection.
pub fn read_head(conn: &mut TcpStream, deadline: Instant) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(&buf));
        }
        if conn.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Gone);
        }
        let n = match conn.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(HeadError::Gone),
            Ok(0) => return Err(HeadError::Status(400, "incomplete request head")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out(&buf));
            }
            Err(_) => return Err(HeadError::Gone),
        };
        buf.extend_from_slice(&chunk[..n]);
        // Empty lines before the request line are ignored (RFC 9112 §2.2).
        let lead = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        buf.drain(..lead);
        if let Some(end) = head_end(&buf) {
            if end > MAX_HEAD {
                return Err(HeadError::Status(431, "request head over 16 KiB"));
            }
            return parse_head(&buf[..end]);
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::Status(431, "request head over 16 KiB"));
        }
    }
}

fn timed_out(buf: &[u8]) -> HeadError {
    if buf.is_empty() {
        HeadError::Gone
    } else {
        HeadError::Status(408, "request head not received in time")
    }
}

/// Length of the head including the empty line that ends it (CRLF or a
/// bare LF, which RFC 9112 §2.2 lets a server accept).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match &buf[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        }
    })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_head(raw: &[u8]) -> Result<Head, HeadError> {
    let bad = |why| HeadError::Status(400, why);
    let text = std::str::from_utf8(raw).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("malformed method"));
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("malformed request target"));
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        v if v.starts_with("HTTP/") => {
            return Err(HeadError::Status(505, "only HTTP/1.0 and HTTP/1.1"))
        }
        _ => return Err(bad("malformed HTTP version")),
    }
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Err(bad("obsolete line folding"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("header without ':'"))?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(bad("malformed header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad("control character in a header value"));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    })
}

/// Splits a request target into its path and its query (without the `?`).
/// Absolute-form targets (`http://host/path`) are accepted, as RFC 9112 asks.
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    let origin = if target.starts_with('/') {
        target
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let skip = if lower.starts_with("http://") {
            7
        } else if lower.starts_with("https://") {
            8
        } else {
            return None;
        };
        let rest = &target[skip..];
        rest.find(['/', '?']).map_or("/", |i| &rest[i..])
    };
    let origin = origin.split('#').next().unwrap_or("");
    let (path, query) = origin.split_once('?').unwrap_or((origin, ""));
    Some((if path.is_empty() { "/" } else { path }, query))
}

/// Percent-decodes a path; None for a malformed escape or a NUL byte.
pub fn decode_path(path: &str) -> Option<Vec<u8>> {
    let raw = path.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    (!out.contains(&0)).then_some(out)
}

/// What a decoded path names inside the served directory.
#[derive(Debug)]
pub struct Resolved {
    /// Canonical path, inside the root.
    pub path: PathBuf,
    /// The path's segments below the root, for building links.
    pub segments: Vec<Vec<u8>>,
}

/// Maps a decoded path onto `root` (canonical). `..` segments are refused
/// outright (404); the canonical result must stay inside `root`, so symbolic
/// links cannot lead out of it (403).
pub fn resolve(root: &Path, decoded: &[u8]) -> Result<Resolved, u16> {
    let mut rel = PathBuf::new();
    let mut segments = Vec::new();
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return Err(404),
            s => {
                rel.push(OsStr::from_bytes(s));
                segments.push(s.to_vec());
            }
        }
    }
    let path = fs::canonicalize(root.join(&rel)).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => 403u16,
        _ => 404,
    })?;
    if !path.starts_with(root) {
        return Err(403);
    }
    Ok(Resolved { path, segments })
}

/// Percent-encodes all but unreserved characters and `/`.
pub fn encode_path(raw: &[u8]) -> String {
    let mut s = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// An IMF-fixdate (RFC 9110 §5.6.7) for the Date header.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {hh:02}:{mm:02}:{ss:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = |s| http_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(t(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(t(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn targets_and_paths() {
        assert_eq!(split_target("/a.flv?start=1"), Some(("/a.flv", "start=1")));
        assert_eq!(split_target("http://h:1/x?y"), Some(("/x", "y")));
        assert_eq!(split_target("HTTP://h?q"), Some(("/", "q")));
        assert_eq!(split_target("*"), None);
        assert_eq!(decode_path("/a%20b+c").unwrap(), b"/a b+c");
        assert!(decode_path("/%2").is_none());
        assert!(decode_path("/%zz").is_none());
        assert!(decode_path("/a%00").is_none());
        assert_eq!(encode_path(b"/a b'.flv"), "/a%20b%27.flv");
    }

    #[test]
    fn heads() {
        let h = parse_head(b"GET / HTTP/1.1\r\nRange: bytes=0-1\r\nX:  a \r\nx: b\r\n").unwrap();
        assert_eq!(h.header("range").as_deref(), Some("bytes=0-1"));
        assert_eq!(h.header("X").as_deref(), Some("a, b"));
        for bad in [
            &b"GET  / HTTP/1.1\r\n"[..],
            b"GET / HTTP/1.1\r\n folded\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n",
            b"GET /\x01 HTTP/1.1\r\n",
        ] {
            assert!(matches!(parse_head(bad), Err(HeadError::Status(400, _))));
        }
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0\r\n"),
            Err(HeadError::Status(505, _))
        ));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nxx"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nxx"), Some(16));
    }
}
