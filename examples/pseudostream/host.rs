//! What `cut` and `serve` share: the host's configuration (parsed from the
//! command line), the headers of a media response, and the loop that drains
//! a stream. None of it decides which bytes to send: that is the plan's job.

use std::ffi::OsString;
use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use pseudostream::{
    Burst, CutMode, Error, Fill, MetadataMode, Options, ParamNames, Plan, PrefixMode, Rate,
    Response, StartUnit, Stream,
};

/// Size of the buffer handed to `Stream::fill`.
pub const BUF_SIZE: usize = 64 * 1024;

/// Which subcommand's options are being parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Cut,
    Serve,
}

/// A host's configuration plus the per-command extras.
#[derive(Clone, Debug)]
pub struct Config {
    pub options: Options,
    /// cut: honour pacing with real sleeps.
    pub paced: bool,
    /// cut: request header values to apply.
    pub range: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_range: Option<String>,
    /// serve: listen address and worker count.
    pub addr: String,
    pub threads: usize,
    /// serve: the demo page's directory (`--web DIR`).
    pub web: Option<std::path::PathBuf>,
    /// `--mp4-max-moov-size`: the library's process-wide limit, set by
    /// `parse_args` (None: the library's default).
    pub mp4_max_moov_size: Option<u64>,
    /// Arguments that are not options, in order.
    pub positionals: Vec<OsString>,
}

/// Parses the options shared by `cut` and `serve` (and each one's own).
pub fn parse_args(args: &[OsString], command: Command) -> Result<Config, String> {
    let mut c = Config {
        options: Options::default(),
        paced: false,
        range: None,
        if_match: None,
        if_none_match: None,
        if_range: None,
        addr: "127.0.0.1:8080".to_string(),
        threads: 16,
        web: None,
        mp4_max_moov_size: None,
        positionals: Vec::new(),
    };
    let mut it = args.iter();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        let text = match arg.to_str() {
            Some(t) if !options_done && t.starts_with("--") => t,
            _ => {
                c.positionals.push(arg.clone());
                continue;
            }
        };
        if text == "--" {
            options_done = true;
            continue;
        }
        let (name, mut inline) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (text, None),
        };
        let flag = inline.is_none();
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.take() {
                return Ok(v);
            }
            match it.next().map(|v| v.to_str()) {
                Some(Some(v)) => Ok(v.to_string()),
                Some(None) => Err(format!("{name}: value is not UTF-8")),
                None => Err(format!("{name} needs a value")),
            }
        };
        match (name, command) {
            ("--prefix", _) => {
                let v = value()?;
                c.options.prefix = PrefixMode::parse(&v)
                    .ok_or_else(|| format!("--prefix: none, header, init or full, not '{v}'"))?;
            }
            ("--unit", _) => {
                c.options.start_unit = match value()?.as_str() {
                    "bytes" => StartUnit::Bytes,
                    "seconds" => StartUnit::Seconds,
                    v => return Err(format!("--unit: bytes or seconds, not '{v}'")),
                };
            }
            ("--metadata", _) => {
                let v = value()?;
                c.options.metadata = MetadataMode::parse(&v)
                    .ok_or_else(|| format!("--metadata: off, missing or always, not '{v}'"))?;
            }
            ("--cut", _) => {
                let v = value()?;
                c.options.cut = CutMode::parse(&v)
                    .ok_or_else(|| format!("--cut: exact or keyframe, not '{v}'"))?;
            }
            ("--mp4-max-moov-size", _) => {
                c.mp4_max_moov_size = Some(integer("--mp4-max-moov-size", &value()?)?);
            }
            ("--param", _) => set_param(&mut c.options.names, &value()?)?,
            ("--burst", _) => {
                c.options.pacing.burst = Burst::Bytes(integer("--burst", &value()?)?);
            }
            ("--burst-secs", _) => {
                let ms = thousandths("--burst-secs", &value()?)?;
                c.options.pacing.burst = Burst::MediaMillis(ms);
            }
            ("--rate", _) => c.options.pacing.rate = parse_rate(&value()?)?,
            ("--no-client-pacing", _) if flag => c.options.client_pacing = false,
            ("--paced", Command::Cut) if flag => c.paced = true,
            ("--range", Command::Cut) => c.range = Some(value()?),
            ("--if-match", Command::Cut) => c.if_match = Some(value()?),
            ("--if-none-match", Command::Cut) => c.if_none_match = Some(value()?),
            ("--if-range", Command::Cut) => c.if_range = Some(value()?),
            ("--addr", Command::Serve) => c.addr = value()?,
            ("--web", Command::Serve) => c.web = Some(value()?.into()),
            ("--threads", Command::Serve) => {
                let n = integer("--threads", &value()?)?;
                if !(1..=1024).contains(&n) {
                    return Err("--threads: between 1 and 1024".to_string());
                }
                c.threads = n as usize;
            }
            _ => return Err(format!("unknown option '{text}'")),
        }
    }
    // Process-wide in the library: set once, as the host starts.
    if let Some(bytes) = c.mp4_max_moov_size {
        pseudostream::index::mp4::set_moov_limit(bytes);
    }
    Ok(c)
}

/// `--param NAME=VALUE`: renames one query parameter (an empty VALUE
/// disables it).
fn set_param(names: &mut ParamNames, spec: &str) -> Result<(), String> {
    let (name, value) = spec
        .split_once('=')
        .ok_or_else(|| format!("--param: NAME=VALUE, not '{spec}'"))?;
    let slot = match name {
        "start" => &mut names.start,
        "end" => &mut names.end,
        "ib" => &mut names.initial_bytes,
        "fs" => &mut names.file_start,
        "bstart" => &mut names.byte_start,
        "bend" => &mut names.byte_end,
        "ri" => &mut names.burst,
        "rs" => &mut names.rate,
        _ => {
            return Err(format!(
                "--param: NAME is one of start, end, ib, fs, bstart, bend, ri, rs; not '{name}'"
            ))
        }
    };
    *slot = value.to_string();
    Ok(())
}

/// `--rate`: bytes per second (0 = off), `auto` (the media's average bitrate)
/// or `auto:FACTOR` (that times FACTOR, e.g. 1.25).
fn parse_rate(v: &str) -> Result<Rate, String> {
    if v == "auto" {
        return Ok(Rate::Auto { permille: 1000 });
    }
    if let Some(factor) = v.strip_prefix("auto:") {
        let permille = thousandths("--rate auto:FACTOR", factor)?;
        return match u32::try_from(permille) {
            Ok(p) if p > 0 => Ok(Rate::Auto { permille: p }),
            _ => Err("--rate auto:FACTOR: FACTOR must be above 0 and sane".to_string()),
        };
    }
    match integer("--rate", v)? {
        0 => Ok(Rate::Off),
        n => Ok(Rate::BytesPerSecond(n)),
    }
}

fn integer(what: &str, v: &str) -> Result<u64, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what}: not a non-negative integer: '{v}'"));
    }
    v.parse().map_err(|_| format!("{what}: too large: '{v}'"))
}

/// A decimal like `3`, `2.5` or `.25` in thousandths (finer digits rejected).
fn thousandths(what: &str, v: &str) -> Result<u64, String> {
    let bad = || format!("{what}: not a non-negative decimal (up to 3 places): '{v}'");
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || frac.len() > 3 || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Headers for an answer from `Plan::respond` (the status line, Date and
/// Connection are the caller's).
pub fn media_headers(plan: &Plan, resp: &Response) -> Vec<(&'static str, String)> {
    let mut h = Vec::new();
    match resp.status {
        200 | 206 => {
            h.push(("Content-Type", plan.content_type().to_string()));
            h.push(("Content-Length", resp.len.to_string()));
            h.push(("ETag", plan.etag.clone()));
            h.push(("Accept-Ranges", "bytes".to_string()));
            if let Some(cr) = plan.content_range(resp) {
                h.push(("Content-Range", cr));
            }
            h.push(("X-Pseudostream-Start-Ms", plan.start_ms.to_string()));
            h.push(("X-Pseudostream-End-Ms", plan.end_ms.to_string()));
        }
        304 => h.push(("ETag", plan.etag.clone())),
        _ => {
            h.push(("Accept-Ranges", "bytes".to_string()));
            if let Some(cr) = plan.content_range(resp) {
                h.push(("Content-Range", cr));
            }
        }
    }
    h
}

/// The reason phrase for the statuses this host sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// What may be shown to a client about a library error: messages about the
/// request or the media, but no file system paths or I/O details.
pub fn public_message(e: &Error) -> String {
    match e {
        Error::BadRequest(_)
        | Error::RangeNotSatisfiable(_)
        | Error::UnsupportedFormat(_)
        | Error::Malformed(_) => e.to_string(),
        _ => reason(e.http_status()).to_string(),
    }
}

/// Why a stream stopped before `Fill::Done`.
#[derive(Debug)]
pub enum PumpError {
    /// The library failed (e.g. the file shrank while served).
    Media(Error),
    /// The sink failed (client went away, broken pipe, timeout).
    Write(io::Error),
}

impl std::fmt::Display for PumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PumpError::Media(e) => write!(f, "{e}"),
            PumpError::Write(e) => write!(f, "write failed: {e}"),
        }
    }
}

/// Drains `stream` into `out`, sleeping whenever the pacer says to wait.
/// Returns the bytes written and, if it stopped early, why.
pub fn pump(stream: &mut Stream, out: &mut dyn Write) -> (u64, Option<PumpError>) {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut sent = 0u64;
    let clock = Instant::now();
    loop {
        let now_us = u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX);
        match stream.fill(&mut buf, now_us) {
            Ok(Fill::Data(n)) => {
                if let Err(e) = out.write_all(&buf[..n]) {
                    return (sent, Some(PumpError::Write(e)));
                }
                sent += n as u64;
            }
            Ok(Fill::Wait(us)) => {
                // Let what is buffered go out before sleeping.
                if let Err(e) = out.flush() {
                    return (sent, Some(PumpError::Write(e)));
                }
                thread::sleep(Duration::from_micros(us));
            }
            Ok(Fill::Done) => {
                return (sent, out.flush().err().map(PumpError::Write));
            }
            Err(e) => return (sent, Some(PumpError::Media(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(thousandths("x", "2.5"), Ok(2500));
        assert_eq!(thousandths("x", ".25"), Ok(250));
        assert_eq!(thousandths("x", "3"), Ok(3000));
        assert!(thousandths("x", "1.2345").is_err());
        assert!(thousandths("x", ".").is_err());
        assert!(thousandths("x", "-1").is_err());
        assert_eq!(parse_rate("auto:1.25"), Ok(Rate::Auto { permille: 1250 }));
        assert_eq!(parse_rate("0"), Ok(Rate::Off));
        assert!(parse_rate("auto:0").is_err());
    }
}
