//! A command-line host for libpseudostream.
//!
//! ```text
//! cargo run --release --example pseudostream -- info FILE
//! cargo run --release --example pseudostream -- cut FILE QUERY [OPTIONS] > out.flv
//! cargo run --release --example pseudostream -- serve DIR [--addr A] [--threads N] [OPTIONS]
//! ```
//!
//! The host only moves bytes: which bytes answer a query, a Range header or a
//! validator is decided by the library's plan and stream.

use std::ffi::OsString;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use pseudostream::{query, Conditions, Media};

#[path = "pseudostream/host.rs"]
mod host;
#[path = "pseudostream/index.rs"]
mod index;
#[path = "pseudostream/request.rs"]
mod request;
#[path = "pseudostream/serve.rs"]
mod serve;
#[path = "pseudostream/web.rs"]
mod web;

use host::{Command, PumpError};

const USAGE: &str = "\
usage:
  pseudostream info FILE
      media info and keyframe list as JSON
  pseudostream cut FILE QUERY [OPTIONS] > out.flv
      the body a host sends for ?QUERY on stdout, status and headers on stderr
      cut-only: --range 'bytes=A-B'  --if-match T  --if-none-match T  --if-range T
                --paced (honour pacing with real sleeps; default: full speed)
  pseudostream serve DIR [--addr 127.0.0.1:8080] [--threads 16] [OPTIONS]
      a small HTTP/1.1 server for the .flv files under DIR
      serve-only: --web WEBDIR  the demo page (WEBDIR/index.html at /, players
                  from WEBDIR/node_modules at /_web/lib/; scripts/setup-web.sh)

host options (cut and serve):
  --prefix none|header|init|full   what precedes a seek (default init)
  --unit bytes|seconds             unit of start/end (default bytes)
  --metadata off|missing|always    list keyframes in a rewritten onMetaData
                                   (default missing: when the file's own
                                   metadata has none or stale ones)
  --cut exact|keyframe             where an MP4 cut starts playing: exact (default:
                                   at the requested time, edit lists hide the
                                   pre-roll) or keyframe (at the keyframe, for
                                   players that ignore edit lists)
  --mp4-max-moov-size BYTES        largest MP4 moov read (default 64 MiB; 0: the
                                   default); files with a larger one get 415
  --param NAME=VALUE               rename a query parameter; NAME is one of
                                   start end ib fs bstart bend ri rs (empty VALUE disables)
  --burst BYTES | --burst-secs S   burst before the rate applies (default 3 s of media)
  --rate BYTES_PER_S|auto[:FACTOR] sustained rate (default off; auto = average bitrate)
  --no-client-pacing               ignore ri/rs in requests
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let command = args.first().and_then(|a| a.to_str());
    if command != Some("serve") {
        // A command whose output is piped ends quietly when the reader goes
        // (`pseudostream info big.flv | head`), killed by SIGPIPE like other
        // Unix tools (status 141 in a shell), instead of Rust's ignored
        // signal turning into a write error or a panic in println!. The
        // server keeps it ignored: a client that goes away is an error of
        // that connection only.
        // SAFETY: at start, before any thread; restores the default action.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match command {
        Some("info") => info(rest),
        Some("cut") => cut(rest),
        Some("serve") => serve::run(rest),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error("expected a subcommand: info, cut or serve"),
    }
}

/// Prints a usage error; exit status 2.
pub fn usage_error(msg: &str) -> ExitCode {
    eprintln!("pseudostream: {msg} (see 'pseudostream help')");
    ExitCode::from(2)
}

fn info(args: &[OsString]) -> ExitCode {
    let [file] = args else {
        return usage_error("info takes exactly one FILE");
    };
    match Media::open(file) {
        Ok(media) => {
            println!("{}", media.info_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pseudostream: {}: {e}", Path::new(file).display());
            ExitCode::FAILURE
        }
    }
}

/// Prints an error answer to stderr as a host would send it; exit status 1.
fn cut_error(status: u16, headers: &[(&str, String)], msg: &str) -> ExitCode {
    eprintln!("HTTP/1.1 {status} {}", host::reason(status));
    for (name, value) in headers {
        eprintln!("{name}: {value}");
    }
    eprintln!();
    eprintln!("pseudostream: {msg}");
    ExitCode::FAILURE
}

fn cut(args: &[OsString]) -> ExitCode {
    let config = match host::parse_args(args, Command::Cut) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let [file, query] = config.positionals.as_slice() else {
        return usage_error("cut takes FILE and QUERY (use '' for none)");
    };
    let query = query.as_bytes();
    let query = query.strip_prefix(b"?").unwrap_or(query);
    let options = &config.options;

    let media = match Media::open(file) {
        Ok(m) => m,
        Err(e) => return cut_error(e.http_status(), &[], &e.to_string()),
    };
    let planned = query::parse(query, options).and_then(|r| media.plan(options, &r));
    let plan = match planned {
        Ok(p) => p,
        Err(e) => {
            // The query itself asks for something outside the file: there is
            // no response length, so report the file's.
            let mut headers = Vec::new();
            if e.http_status() == 416 {
                headers.push(("Content-Range", format!("bytes */{}", media.info().size)));
            }
            return cut_error(e.http_status(), &headers, &e.to_string());
        }
    };
    let resp = plan.respond(&Conditions {
        range: config.range.as_deref(),
        if_match: config.if_match.as_deref(),
        if_none_match: config.if_none_match.as_deref(),
        if_range: config.if_range.as_deref(),
    });
    let headers = host::media_headers(&plan, &resp);
    match resp.status {
        200 | 206 => {}
        304 => {
            eprintln!("HTTP/1.1 304 {}", host::reason(304));
            for (name, value) in &headers {
                eprintln!("{name}: {value}");
            }
            return ExitCode::SUCCESS;
        }
        s => return cut_error(s, &headers, host::reason(s)),
    }

    if io::stdout().is_terminal() {
        return usage_error("refusing to write media to a terminal: redirect stdout");
    }
    let mut stream = match media.stream(&plan, resp.first, resp.len) {
        Ok(s) => s,
        Err(e) => return cut_error(e.http_status(), &[], &e.to_string()),
    };
    // The library paces the response; `cut` honours that only with --paced.
    if !config.paced {
        stream.set_pacing(0, 0);
    }
    eprintln!("HTTP/1.1 {} {}", resp.status, host::reason(resp.status));
    for (name, value) in &headers {
        eprintln!("{name}: {value}");
    }
    eprintln!();

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(host::BUF_SIZE, stdout.lock());
    match host::pump(&mut stream, &mut out) {
        (_, None) => ExitCode::SUCCESS,
        (sent, Some(PumpError::Write(e))) if e.kind() == io::ErrorKind::BrokenPipe => {
            eprintln!(
                "pseudostream: output closed after {sent} of {} bytes",
                resp.len
            );
            ExitCode::FAILURE
        }
        (sent, Some(e)) => {
            let _ = out.flush();
            eprintln!(
                "pseudostream: stopped after {sent} of {} bytes: {e}",
                resp.len
            );
            ExitCode::FAILURE
        }
    }
}
