//! One matrix of requests sent to all six hosts (the example host, nginx,
//! lighttpd, PHP, Ruby, .NET), each configured with the same settings in
//! its own configuration language. Every answer must have the status and
//! the header set the library decides for that request, computed here in
//! process with `Exchange`: the hosts only move bytes.
//!
//! Headers a host adds of its own are left out of the comparison: Date,
//! Server, Connection, Keep-Alive, Transfer-Encoding, X-Powered-By and Host
//! (PHP's built-in server echoes it). On answers of 400 and above the
//! server's own error page may decide Content-Type and Content-Length. A
//! path that leaves the media root must be refused (400, 403 or 404),
//! whichever the server gives before the library sees it.
//!
//! Ignored by a plain `cargo test`: it needs every host installed
//! (`scripts/test.sh` runs it with `--include-ignored`). `PARITY_HOSTS`
//! (comma-separated names) limits it to some hosts while developing.

mod common;

use std::path::Path;

use common::assert_no_failures;
use common::host::*;
use common::hosts::{self, RunningHost};
use pseudostream::{Config, Exchange};

/// What every host is configured with.
const SETTINGS: [(&str, &str); 3] = [
    ("start_unit", "seconds"),
    ("cors", "http://player.example"),
    ("cache_control", "max-age=60"),
];

const ORIGIN: &str = "http://player.example";

/// Headers a host may add of its own.
const HOST_HEADERS: [&str; 7] = [
    "date",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "x-powered-by",
    "host",
];

#[derive(Clone, Debug)]
struct Case {
    what: &'static str,
    method: &'static str,
    /// Below the host's base, with the query.
    target: String,
    headers: Vec<(&'static str, String)>,
    /// A path outside the media root: any refusal will do.
    traversal: bool,
}

fn case(what: &'static str, method: &'static str, target: &str) -> Case {
    Case {
        what,
        method,
        target: target.to_string(),
        headers: Vec::new(),
        traversal: false,
    }
}

impl Case {
    fn with(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }
}

fn config() -> Config {
    let mut c = Config::default();
    for (k, v) in SETTINGS {
        c.set(k, v).unwrap();
    }
    c
}

/// The library's answer: status and the header set a host must send.
fn library_answer(case: &Case) -> (u16, Vec<(String, String)>) {
    let (path, query) = case.target.split_once('?').unwrap_or((&case.target, ""));
    let mut x = Exchange::new(case.method.as_bytes(), query.as_bytes());
    for (n, v) in &case.headers {
        x.header(n.as_bytes(), v.as_bytes());
    }
    if x.wants_file() {
        let file = host_media_dir().join(path);
        if file.is_file() {
            x.open_path(&file);
        } else {
            x.open_failed(libc::ENOENT, None);
        }
    }
    x.respond(&config());
    let status = x.info().unwrap().status;
    let headers = x
        .headers()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, normalize(status, headers))
}

/// The headers compared: without the host's own, and on errors without
/// what an error page decides; sorted.
fn normalize(status: u16, headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .filter(|(n, _)| !HOST_HEADERS.contains(&n.as_str()))
        .filter(|(n, _)| status < 400 || (n != "content-type" && n != "content-length"))
        .collect();
    out.sort();
    out
}

fn matrix() -> Vec<Case> {
    let plain = "h264_aac.plain.flv";
    let valid = "h264_aac.yamdi.flv";
    let mp4 = "h264_aac.moov_end.mp4";
    let seek = format!("{plain}?start=5");
    // Validators of the seek, as the library states them.
    let (_, h) = library_answer(&case("", "GET", &seek));
    let etag = h.iter().find(|(n, _)| n == "etag").unwrap().1.clone();
    let modified = h
        .iter()
        .find(|(n, _)| n == "last-modified")
        .unwrap()
        .1
        .clone();
    let mtime = std::fs::metadata(host_media_dir().join(plain))
        .unwrap()
        .modified()
        .unwrap();
    let date = |t: std::time::SystemTime| {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        pseudostream::httpdate::format(secs)
    };
    let before = date(mtime - std::time::Duration::from_secs(3600));
    let after = date(mtime + std::time::Duration::from_secs(3600));
    let mut traversal = case("traversal", "GET", "../Cargo.toml?start=1");
    traversal.traversal = true;
    let mut encoded = case("encoded traversal", "GET", "%2e%2e/Cargo.toml");
    encoded.traversal = true;
    vec![
        case("FLV as stored", "GET", valid),
        case("FLV virtual file", "GET", plain),
        case("FLV time seek", "GET", &seek),
        case("FLV seek and end", "GET", &format!("{plain}?start=3&end=7")),
        case(
            "FLV raw bytes (flv.js)",
            "GET",
            &format!("{plain}?bstart=1000&bend=20000"),
        ),
        case(
            "FLV jump to byte",
            "GET",
            &format!("{valid}?ib=3000&fs=90000"),
        ),
        case("MP4 as stored", "GET", mp4),
        case("MP4 cut", "GET", &format!("{mp4}?start=2.5&end=6")),
        case("MP4 cut of a .m4v", "GET", "clip.m4v?start=3"),
        case(
            "audio-only MP4 cut",
            "GET",
            "audio_only.m4a?start=3.3&end=7",
        ),
        case("HEAD of a seek", "HEAD", &seek),
        case("HEAD of an MP4 cut", "HEAD", &format!("{mp4}?start=4")),
        case("Range", "GET", &seek).with("Range", "bytes=100-199"),
        case("suffix Range", "GET", &seek).with("Range", "bytes=-100"),
        case("open Range", "GET", plain).with("Range", "bytes=1000-"),
        case("Range past the end", "GET", &seek).with("Range", "bytes=999999999-"),
        case("several ranges (ignored)", "GET", &seek).with("Range", "bytes=0-1,5-6"),
        case("If-Range that holds", "GET", &seek)
            .with("Range", "bytes=10-19")
            .with("If-Range", etag.clone()),
        case("If-Range that no longer holds", "GET", &seek)
            .with("Range", "bytes=10-19")
            .with("If-Range", "\"stale\""),
        case("If-Range by date", "GET", &seek)
            .with("Range", "bytes=10-19")
            .with("If-Range", modified.clone()),
        case("If-None-Match", "GET", &seek).with("If-None-Match", etag.clone()),
        case("If-None-Match, another tag", "GET", &seek).with("If-None-Match", "\"other\""),
        case("If-Match that fails", "GET", &seek).with("If-Match", "\"other\""),
        case("If-Match that holds", "GET", &seek).with("If-Match", etag.clone()),
        case("If-Modified-Since, exact", "GET", &seek).with("If-Modified-Since", modified),
        case("If-Modified-Since after", "GET", &seek).with("If-Modified-Since", after.clone()),
        case("If-Modified-Since before", "GET", &seek).with("If-Modified-Since", before.clone()),
        case("If-Unmodified-Since before", "GET", &seek).with("If-Unmodified-Since", before),
        case("If-Unmodified-Since after", "GET", &seek).with("If-Unmodified-Since", after),
        case("HEAD If-None-Match", "HEAD", &seek).with("If-None-Match", etag),
        case("CORS simple request", "GET", &seek).with("Origin", ORIGIN),
        case("CORS, another origin", "GET", &seek).with("Origin", "http://elsewhere.example"),
        case("CORS preflight", "OPTIONS", &seek)
            .with("Origin", ORIGIN)
            .with("Access-Control-Request-Method", "GET")
            .with("Access-Control-Request-Headers", "range"),
        case("CORS on an error", "GET", &format!("{plain}?start=abc")).with("Origin", ORIGIN),
        case("bad query", "GET", &format!("{plain}?start=abc")),
        case(
            "repeated parameter",
            "GET",
            &format!("{plain}?start=1&start=2"),
        ),
        case("start past the end", "GET", &format!("{plain}?start=99999")),
        case(
            "MP4 end before start",
            "GET",
            &format!("{mp4}?start=6&end=5"),
        ),
        case("not media, with a query", "GET", "not-video.flv?start=1"),
        case("broken MP4", "GET", "broken.mp4?start=1"),
        case("missing file", "GET", "missing.flv?start=1"),
        case("missing file, no query", "GET", "missing.flv"),
        case("POST", "POST", &seek).with("Content-Length", "0"),
        traversal,
        encoded,
    ]
}

fn selected() -> Vec<(&'static str, hosts::Launcher)> {
    let only = std::env::var("PARITY_HOSTS").unwrap_or_default();
    let only: Vec<&str> = only.split(',').filter(|s| !s.is_empty()).collect();
    hosts::all()
        .into_iter()
        .filter(|(name, _)| only.is_empty() || only.contains(name))
        .collect()
}

#[test]
#[ignore = "needs every host: scripts/test.sh runs it"]
fn every_host_answers_as_the_library_decides() {
    let cases = matrix();
    let wanted: Vec<_> = cases.iter().map(library_answer).collect();
    let hosts = selected();
    let mut failures = Vec::new();
    let started: Vec<RunningHost> = hosts.iter().map(|(_, start)| start(&SETTINGS)).collect();
    for running in &started {
        let host = &running.host;
        for (case, (status, headers)) in cases.iter().zip(&wanted) {
            let head: Vec<(&str, &str)> =
                case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let reply = host.request(case.method, &case.target, &head);
            let what = format!(
                "{}: {} ({} {})",
                host.name, case.what, case.method, case.target
            );
            if case.traversal {
                if ![400, 403, 404].contains(&reply.status) {
                    failures.push(format!("{what}: answered {}", reply.status));
                }
                continue;
            }
            let got = normalize(reply.status, reply.headers.clone());
            if reply.status != *status {
                failures.push(format!(
                    "{what}: status {}, the library says {status}",
                    reply.status
                ));
            }
            if &got != headers {
                let missing: Vec<_> = headers.iter().filter(|h| !got.contains(h)).collect();
                let extra: Vec<_> = got.iter().filter(|h| !headers.contains(h)).collect();
                failures.push(format!(
                    "{what}: headers differ; missing {missing:?}, extra {extra:?}"
                ));
            }
        }
    }
    eprintln!(
        "parity: {} requests to each of {} hosts ({})",
        cases.len(),
        started.len(),
        hosts.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    );
    assert_no_failures("parity", &failures);
}

/// The served bytes are the library's for every 2xx case (a host that moves
/// bytes wrongly fails here even with the right headers).
#[test]
#[ignore = "needs every host: scripts/test.sh runs it"]
fn every_host_sends_the_library_bytes() {
    let cases: Vec<Case> = matrix()
        .into_iter()
        .filter(|c| c.method == "GET" && !c.traversal)
        .collect();
    let mut failures = Vec::new();
    for (name, start) in selected() {
        let running = start(&SETTINGS);
        for case in &cases {
            let want = library_body(case);
            let head: Vec<(&str, &str)> =
                case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let reply = running.host.request("GET", &case.target, &head);
            if let Some(want) = want {
                if reply.body != want {
                    failures.push(format!(
                        "{name}: {}: {} bytes, the library sends {}",
                        case.what,
                        reply.body.len(),
                        want.len()
                    ));
                }
            }
        }
    }
    assert_no_failures("parity bytes", &failures);
}

/// The body the library sends for a 2xx answer (None otherwise).
fn library_body(case: &Case) -> Option<Vec<u8>> {
    let (path, query) = case.target.split_once('?').unwrap_or((&case.target, ""));
    let file = host_media_dir().join(path);
    if !Path::new(&file).is_file() {
        return None;
    }
    let mut x = Exchange::new(b"GET", query.as_bytes());
    for (n, v) in &case.headers {
        x.header(n.as_bytes(), v.as_bytes());
    }
    x.open_path(&file);
    x.respond(&config());
    if !(200..300).contains(&x.info().unwrap().status) {
        return None;
    }
    x.set_pacing(0, 0);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match x.fill(&mut buf, 0).unwrap() {
            pseudostream::Fill::Data(n) => out.extend_from_slice(&buf[..n]),
            pseudostream::Fill::Wait(_) => unreachable!("unpaced"),
            pseudostream::Fill::Done => return Some(out),
        }
    }
}
