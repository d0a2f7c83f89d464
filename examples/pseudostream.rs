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

use pseudostream::{Exchange, Media};

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
      a small HTTP/1.1 server for the .flv and .mp4 files under DIR
      serve-only: --web WEBDIR  the demo page (WEBDIR/index.html at /, players
                  from WEBDIR/node_modules at /_web/lib/; scripts/setup-web.sh)

      cut-only: --header 'Name: value'  any other request header

library options (cut and serve): --KEY VALUE for each KEY below, '-' or '_'
alike (--start-unit seconds, --rate auto:1.25, --cors '*'); the older
--unit, --burst-secs S, --param NAME=VALUE and --no-client-pacing still work.
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
            for line in pseudostream::Config::describe().lines() {
                println!("  --{line}");
            }
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

    let mut exchange = Exchange::new(b"GET", query);
    for (name, value) in &config.headers {
        exchange.header(name.as_bytes(), value.as_bytes());
    }
    exchange.open_path(Path::new(file));
    exchange.respond(&config.library);
    let (Ok(info), Ok(headers), Ok(detail)) =
        (exchange.info(), exchange.headers(), exchange.detail())
    else {
        return usage_error("the library gave no answer");
    };
    eprintln!("HTTP/1.1 {} {}", info.status, host::reason(info.status));
    for (name, value) in headers.iter() {
        eprintln!("{name}: {value}");
    }
    eprintln!();
    match info.status {
        200 | 206 => {}
        304 => return ExitCode::SUCCESS,
        _ => {
            eprintln!("pseudostream: {detail}");
            return ExitCode::FAILURE;
        }
    }
    if io::stdout().is_terminal() {
        return usage_error("refusing to write media to a terminal: redirect stdout");
    }
    // The library paces the response; `cut` honours that only with --paced.
    if !config.paced {
        exchange.set_pacing(0, 0);
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(host::BUF_SIZE, stdout.lock());
    match host::pump(&mut exchange, &mut out) {
        (_, None) => ExitCode::SUCCESS,
        (sent, Some(PumpError::Write(e))) if e.kind() == io::ErrorKind::BrokenPipe => {
            eprintln!(
                "pseudostream: output closed after {sent} of {} bytes",
                info.body_length
            );
            ExitCode::FAILURE
        }
        (sent, Some(e)) => {
            let _ = out.flush();
            eprintln!(
                "pseudostream: stopped after {sent} of {} bytes: {e}",
                info.body_length
            );
            ExitCode::FAILURE
        }
    }
}
