//! What `cut` and `serve` share: the host's configuration (parsed from the
//! command line into the library's vocabulary) and the loop that drains an
//! answer's body. None of it decides what to answer: that is the
//! library's exchange.

use std::ffi::OsString;
use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use pseudostream::{Error, Exchange, Fill};

/// Size of the buffer handed to `Exchange::fill`.
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
    /// The library's configuration: every `--KEY VALUE` that is not one of
    /// this host's own goes to `pseudostream::Config::set`.
    pub library: pseudostream::Config,
    /// cut: honour pacing with real sleeps.
    pub paced: bool,
    /// cut: request headers to send with the query.
    pub headers: Vec<(String, String)>,
    /// serve: listen address and worker count.
    pub addr: String,
    pub threads: usize,
    /// serve: the demo page's directory (`--web DIR`).
    pub web: Option<std::path::PathBuf>,
    /// Arguments that are not options, in order.
    pub positionals: Vec<OsString>,
}

/// Parses the options shared by `cut` and `serve` (and each one's own).
/// Library options are `--KEY VALUE` (or `--KEY=VALUE`) with the library's
/// keys (`--rate auto:1.25`, `--start-unit seconds`, `--cors '*'`); the
/// older spellings `--unit`, `--burst-secs`, `--param NAME=VALUE` and
/// `--no-client-pacing` are aliases.
pub fn parse_args(args: &[OsString], command: Command) -> Result<Config, String> {
    let mut c = Config {
        library: pseudostream::Config::default(),
        paced: false,
        headers: Vec::new(),
        addr: "127.0.0.1:8080".to_string(),
        threads: 16,
        web: None,
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
        let header = |n: &str, v: String| (n.to_string(), v);
        match (name, command) {
            ("--no-client-pacing", _) if flag => library(&mut c, name, "client_pacing", "off")?,
            ("--burst-secs", _) => library(&mut c, name, "burst_seconds", &value()?)?,
            ("--paced", Command::Cut) if flag => c.paced = true,
            ("--range", Command::Cut) => c.headers.push(header("Range", value()?)),
            ("--if-match", Command::Cut) => c.headers.push(header("If-Match", value()?)),
            ("--if-none-match", Command::Cut) => c.headers.push(header("If-None-Match", value()?)),
            ("--if-range", Command::Cut) => c.headers.push(header("If-Range", value()?)),
            ("--header", Command::Cut) => {
                let v = value()?;
                let (n, v) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--header: 'Name: value', not '{v}'"))?;
                c.headers.push(header(n.trim(), v.trim().to_string()));
            }
            ("--addr", Command::Serve) => c.addr = value()?,
            ("--web", Command::Serve) => c.web = Some(value()?.into()),
            ("--threads", Command::Serve) => {
                let n = value()?;
                match n.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => c.threads = n,
                    _ => return Err(format!("--threads: between 1 and 1024, not '{n}'")),
                }
            }
            _ => {
                let key = name.trim_start_matches('-');
                let v = value()?;
                library(&mut c, name, key, &v)?;
            }
        }
    }
    Ok(c)
}

/// One library option; its error names the option as typed.
fn library(c: &mut Config, typed: &str, key: &str, value: &str) -> Result<(), String> {
    c.library.set(key, value).map_err(|e| {
        let text = match e {
            Error::InvalidArgument(m) => m,
            other => other.to_string(),
        };
        format!("{typed}: {text}")
    })
}

/// The reason phrase for the statuses this host sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
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

/// Drains an answered exchange's body into `out`, sleeping whenever the
/// pacer says to wait. Returns the bytes written and, if it stopped early,
/// why.
pub fn pump(stream: &mut Exchange, out: &mut dyn Write) -> (u64, Option<PumpError>) {
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
