//! The players people use, in a real browser: mpegts.js 1.8.2 and flv.js
//! 1.6.2 in Debian's Chromium (headless, driven by playwright-core through
//! `tests/browser/seek.mjs`), against the example host, the nginx module and
//! the lighttpd module, all pacing their responses so that the seek targets are never buffered.
//!
//! Each case plays a 5-minute H.264/AAC FLV (straight from ffmpeg, or after
//! yamdi) and seeks to 60 %, 30 % and 85 % of it. For every seek:
//!
//! - the target was not buffered when the seek was asked;
//! - the page's first request after the seek asks for a byte offset
//!   (`Range: bytes=N-`, or `?bstart=N` with seekType 'param'), and the
//!   server's own log shows it answered that request with a 2xx;
//! - the served file holds a keyframe at N: read back through the same host,
//!   the bytes at N are a video tag header whose body starts with FrameType 1
//!   (and, for AVC, a picture, not a sequence header), preceded by a
//!   PreviousTagSize that leads back to a tag of that size; its timestamp is
//!   at most the target and at most 4 s (two GOPs) before it;
//! - currentTime stays within [target, target + 6 s], moves on after the seek
//!   and keeps moving; the element has not ended; no player or page error.
//!
//! A seek that fails is reported with what the page saw (web/harness.js):
//! each request after it, the bytes that reached the player read as FLV
//! tags (first tags, keyframes, where the chain broke), a lone tag the
//! player still held of the response before (flv.js and mpegts.js remux it
//! in front of the new position's media), the SourceBuffer appends and
//! removes, and the server's log line for the seek request.
//!
//! Prints the seek-to-playing latencies (medians per host, player and file).
//! `BROWSER_TEST_METADATA=off|missing|always` sets the hosts' metadata mode
//! (default: theirs, `missing`); `off` shows what players do with a plain
//! ffmpeg file whose onMetaData lists no keyframes.
//! Ignored by a plain `cargo test` because it needs Chromium, npm packages,
//! nginx and lighttpd with their modules: `scripts/test.sh` runs
//! `scripts/setup-web.sh`, `make nginx-module` and `make lighttpd-module`
//! first and then this with `--include-ignored`.

mod common;

#[path = "browser/json.rs"]
mod json;
#[path = "browser/servers.rs"]
mod servers;
#[path = "browser/support.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::host::http;
use common::hosts::{php, ruby, Launch, Started};
use common::root;
use json::{Json, Value};
use servers::{Logged, Server};
use support::{be, check_prerequisites, make_public, range_start, run_driver};

/// Player library and seekType of each case, per host and file.
const PLAYERS: [(&str, &str); 3] = [("mpegts", "range"), ("mpegts", "param"), ("flvjs", "range")];
const VARIANTS: [&str; 2] = ["plain", "yamdi"];
/// GStreamer's flvmux output, which flags a non-IDR I picture in the middle
/// of every GOP as a keyframe (scripts/make-browser-media.sh): a seek that
/// started there showed nothing and stalled in mpegts.js.
const GSTREAMER: &str = "gstreamer";
/// Seek targets, as fractions of the duration; the first is the one the
/// cases are about, the others give the latency medians more samples.
const SEEKS: &str = "0.6,0.3,0.85";
/// How long a seek may take to play again.
const SEEK_TIMEOUT_MS: u32 = 12_000;
/// How long playback is watched after it moved on.
const WATCH_MS: u32 = 1_500;
/// Where currentTime may be after a seek: [target, target + this].
const LANDING_WINDOW_S: f64 = 6.0;
/// How far before the target the served keyframe may be (GOP is 2 s).
const KEYFRAME_BEFORE_MS: u64 = 4_000;

// ------------------------------------------------------------ set-up --

/// The metadata mode asked of the hosts, if any.
fn metadata_mode() -> Option<String> {
    let mode = std::env::var("BROWSER_TEST_METADATA").ok()?;
    assert!(
        ["off", "missing", "always"].contains(&mode.as_str()),
        "BROWSER_TEST_METADATA: off, missing or always, not {mode:?}"
    );
    Some(mode)
}

/// `target/test-media/browser/long.{plain,yamdi}.flv`, made once.
fn browser_media() -> PathBuf {
    common::require_tool("ffmpeg");
    let dir = root().join("target/test-media/browser");
    let out = Command::new("bash")
        .arg(root().join("scripts/make-browser-media.sh"))
        .arg(&dir)
        .output()
        .expect("bash scripts/make-browser-media.sh");
    assert!(
        out.status.success(),
        "make-browser-media.sh failed (run scripts/setup-deps.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn case_file(host: &str, variant: &str, lib: &str, seek_type: &str) -> String {
    format!("{variant}-{host}-{lib}-{seek_type}.flv")
}

/// A fresh directory under target/ with one hard link per case, so that
/// every case has URLs (and server log lines) of its own.
fn served_dir(media: &Path) -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("browser-it-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("media")).unwrap();
    make_public(&dir);
    make_public(&dir.join("media"));
    for host in ["example", "nginx", "lighttpd", "php", "ruby"] {
        for variant in VARIANTS.iter().chain([&GSTREAMER]) {
            for (lib, seek_type) in PLAYERS {
                let src = media.join(format!("long.{variant}.flv"));
                let link = dir
                    .join("media")
                    .join(case_file(host, variant, lib, seek_type));
                if fs::hard_link(&src, &link).is_err() {
                    fs::copy(&src, &link).unwrap();
                }
            }
        }
    }
    dir
}

// ------------------------------------------------------------- hosts --

trait Host {
    fn name(&self) -> &'static str;
    fn port(&self) -> u16;
    /// The path of a media file's URL.
    fn media_path(&self, file: &str) -> String;
    /// The requests logged so far.
    fn logged(&self) -> Vec<Logged>;
    fn page(&self) -> String {
        format!("http://127.0.0.1:{}/_web/harness.html", self.port())
    }
}

impl Host for Server {
    fn name(&self) -> &'static str {
        self.name
    }
    fn port(&self) -> u16 {
        self.port
    }
    /// The example host serves the media at its root, the others below
    /// `/media/`.
    fn media_path(&self, file: &str) -> String {
        if self.is_example() {
            format!("/{file}")
        } else {
            format!("/media/{file}")
        }
    }
    fn logged(&self) -> Vec<Logged> {
        self.requests()
    }
}

/// `pseudostream serve DIR/media --rate auto:1.25 --web web`.
fn start_example(dir: &Path) -> Server {
    let web = root().join("web");
    let mut args = vec!["--rate", "auto:1.25", "--web", web.to_str().unwrap()];
    let metadata = metadata_mode();
    if let Some(m) = &metadata {
        args.extend(["--metadata", m]);
    }
    Server::example(dir, "example", &args)
}

/// An application host (PHP FFI under `php -S`, or the Rack app under
/// puma) serving DIR/media paced at `auto:1.25`, behind nginx.
fn start_app(dir: &Path, name: &'static str) -> (Started, u16) {
    let media = dir.join("media");
    let log = dir.join(format!("{name}.log"));
    let metadata = metadata_mode().unwrap_or_default();
    let settings = [("rate", "auto:1.25"), ("metadata", metadata.as_str())];
    let launch = Launch {
        name: Some(name),
        media: Some(&media),
        settings: &settings,
        log: Some(&log),
        ..Launch::default()
    };
    let app = match name {
        "php" => php::launch(Launch {
            // A player drops a paced response when it seeks: room for both.
            env: &[("PHP_CLI_SERVER_WORKERS", "4")],
            ..launch
        }),
        _ => ruby::launch(launch),
    };
    let port = app.port;
    (app, port)
}

/// What serves `/media/` behind nginx.
enum MediaBy {
    Module,
    /// An application host on this port, serving the media at its root.
    Proxy(u16),
}

/// nginx serving the page and the players statically from web/, and
/// `/media/` either with the module (paced by `pseudostream_rate auto 1.25`)
/// or by proxying to an application host that paces itself; its access log
/// records what was answered either way.
fn start_nginx(dir: &Path, name: &'static str, media_by: MediaBy) -> Server {
    let web = root().join("web");
    let media = dir.join("media");
    let w = web.display();
    let location = match media_by {
        MediaBy::Module => {
            let metadata = metadata_mode()
                .map(|m| format!(" pseudostream_metadata {m};"))
                .unwrap_or_default();
            format!(
                "alias {}/; pseudostream; pseudostream_rate auto 1.25;{metadata}",
                media.display()
            )
        }
        // proxy_buffers go unused with buffering off, but nginx refuses a
        // proxy_buffer_size larger than they leave for its busy buffers.
        MediaBy::Proxy(app) => format!(
            "proxy_pass http://127.0.0.1:{app}/; proxy_buffering off; \
             proxy_buffer_size 64k; proxy_buffers 4 64k; proxy_read_timeout 300s;"
        ),
    };
    let locations = format!(
        "location = /_web/lib/mpegts.js {{ alias {w}/node_modules/mpegts.js/dist/mpegts.js; }}\n\
         location = /_web/lib/flv.js {{ alias {w}/node_modules/flv.js/dist/flv.js; }}\n\
         location ~ ^/_web/([A-Za-z0-9_-]+\\.(?:html|js|css))$ {{ alias {w}/$1; }}\n\
         location /media/ {{ {location} }}"
    );
    Server::nginx(
        dir,
        name,
        "video/x-flv flv; text/html html; text/javascript js; text/css css;",
        &locations,
    )
}

/// lighttpd with mod_pseudostream serving `/media/` (paced by
/// `pseudostream.rate = "auto 1.25"`) and the page and the players from
/// web/; mod_accesslog records what was answered.
fn start_lighttpd(dir: &Path) -> Server {
    let web = root().join("web");
    let media = dir.join("media");
    let metadata = metadata_mode()
        .map(|m| format!("pseudostream.metadata = \"{m}\""))
        .unwrap_or_default();
    let (w, m, d) = (
        web.display(),
        media.display(),
        dir.join("lighttpd").display().to_string(),
    );
    let conf = format!(
        r#"server.document-root = "{d}"
mimetype.assign = (".flv" => "video/x-flv", ".html" => "text/html", ".js" => "text/javascript", ".css" => "text/css")
alias.url = (
    "/_web/lib/mpegts.js" => "{w}/node_modules/mpegts.js/dist/mpegts.js",
    "/_web/lib/flv.js" => "{w}/node_modules/flv.js/dist/flv.js",
    "/_web/" => "{w}/",
    "/media/" => "{m}/",
)
$HTTP["url"] =^ "/media/" {{
    pseudostream.extensions = (".flv")
    pseudostream.rate = "auto 1.25"
    {metadata}
}}
"#
    );
    Server::lighttpd(dir, "lighttpd", &conf)
}

// ------------------------------------------------------------ checks --

fn query_param(target: &str, name: &str) -> Option<String> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Reads `len` bytes at `at` of the file the host serves at `path`.
fn read_served(host: &dyn Host, path: &str, at: u64, len: u64) -> Result<Vec<u8>, String> {
    let range = format!("bytes={at}-{}", at + len - 1);
    let reply = http(host.port(), "GET", path, &[("Range", &range)]);
    if reply.status != 206 || reply.body.len() as u64 != len {
        return Err(format!(
            "{path} with Range {range}: status {}, {} bytes",
            reply.status,
            reply.body.len()
        ));
    }
    Ok(reply.body)
}

/// Checks that the file served at `path` has a keyframe video tag at
/// `offset`; returns the tag's timestamp (ms).
fn keyframe_at(host: &dyn Host, path: &str, offset: u64) -> Result<u64, String> {
    if offset < 13 + 4 {
        return Err(format!("offset {offset} is inside the FLV header"));
    }
    // PreviousTagSize, the 11-byte tag header, two body bytes.
    let b = read_served(host, path, offset - 4, 4 + 11 + 2)?;
    let prev = be(&b[0..4]);
    let tag = &b[4..];
    let (kind, ts) = (tag[0] & 0x1f, be(&tag[4..7]) | u64::from(tag[7]) << 24);
    let (frame_type, codec, packet_type) = (tag[11] >> 4, tag[11] & 0x0f, tag[12]);
    if kind != 9 {
        return Err(format!("offset {offset}: tag type {kind}, not video (9)"));
    }
    if frame_type != 1 {
        return Err(format!(
            "offset {offset}: video FrameType {frame_type}, not a keyframe"
        ));
    }
    if matches!(codec, 7 | 12) && packet_type != 1 {
        return Err(format!(
            "offset {offset}: AVC/HEVC packet type {packet_type}, not a picture"
        ));
    }
    // The previous tag must start after the 13 header bytes.
    if prev < 11 || prev > offset - 17 {
        return Err(format!(
            "offset {offset}: PreviousTagSize {prev} impossible"
        ));
    }
    let before = offset - 4 - prev;
    let p = read_served(host, path, before, 4)?;
    let (pkind, psize) = (p[0] & 0x1f, be(&p[1..4]));
    if !matches!(pkind, 8 | 9 | 18) || psize + 11 != prev {
        return Err(format!(
            "offset {offset}: PreviousTagSize {prev} leads to byte {before}, where a tag of type {pkind} and size {psize} starts"
        ));
    }
    Ok(ts)
}

/// What one seek gave, for the latency table.
struct SeekFigures {
    playing_ms: f64,
    moving_ms: f64,
}

/// Checks one seek of a report; pushes what is wrong onto `fail`.
fn check_seek(
    host: &dyn Host,
    path: &str,
    seek_type: &str,
    seek: &Value,
    fail: &mut Vec<String>,
) -> Option<(u64, SeekFigures)> {
    let target = seek.field("target").num().unwrap_or(f64::NAN);
    let at = format!("seek to {target} s");
    let before = fail.len();
    if seek.field("targetBuffered").bool() != Some(false) {
        fail.push(format!(
            "{at}: the target was already buffered ({}): the response was not paced",
            seek.field("bufferedBefore")
        ));
    }
    // The first request after the seek: the seek request.
    let first = seek.field("requests").items().first();
    let offset = match (first, seek_type) {
        (None, _) => {
            fail.push(format!(
                "{at}: the player made no request for the seek (no keyframes in onMetaData?)"
            ));
            None
        }
        (Some(r), "param") => {
            let url = r.field("url").str().unwrap_or("");
            let n = query_param(url, "bstart").and_then(|v| v.parse::<u64>().ok());
            if n.is_none() {
                fail.push(format!("{at}: first request {url} has no bstart"));
            }
            n
        }
        (Some(r), _) => {
            let n = r.field("range").str().and_then(range_start);
            if n.is_none() {
                fail.push(format!(
                    "{at}: first request {} has no Range bytes=N- (Range: {})",
                    r.field("url"),
                    r.field("range")
                ));
            }
            n
        }
    };
    if let Some(n) = offset {
        if !server_answered(host, path, seek_type, n) {
            fail.push(format!(
                "{at}: the server logged no 2xx answer to the seek request for byte {n}"
            ));
        }
        match keyframe_at(host, path, n) {
            Ok(ts) => {
                let target_ms = (target * 1000.0).round() as u64;
                if ts > target_ms || ts + KEYFRAME_BEFORE_MS < target_ms {
                    fail.push(format!(
                        "{at}: the keyframe at byte {n} is at {ts} ms, not within {KEYFRAME_BEFORE_MS} ms before the target"
                    ));
                }
            }
            Err(e) => fail.push(format!("{at}: {e}")),
        }
    }
    // What the viewer sees.
    if seek.field("timedOut").bool() != Some(false) {
        fail.push(format!(
            "{at}: did not play again within {SEEK_TIMEOUT_MS} ms (currentTime {}, buffered {}, \
             last samples [ms, t, readyState, paused, seeking] {:?})",
            seek.field("currentTime"),
            seek.field("bufferedAfter"),
            seek.field("samples")
                .items()
                .iter()
                .rev()
                .take(3)
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        ));
    }
    let samples: Vec<(f64, f64)> = seek
        .field("samples")
        .items()
        .iter()
        .filter_map(|s| Some((s.items().first()?.num()?, s.items().get(1)?.num()?)))
        .collect();
    if let Some(&(_, t)) = samples
        .iter()
        .find(|&&(_, t)| t < target - 0.001 || t > target + LANDING_WINDOW_S)
    {
        fail.push(format!(
            "{at}: currentTime {t} outside [{target}, {target} + {LANDING_WINDOW_S}]"
        ));
    }
    let moving_ms = seek.field("advanceMs").num();
    if let Some(adv) = moving_ms {
        let after: Vec<&(f64, f64)> = samples.iter().filter(|s| s.0 >= adv).collect();
        let (Some(a), Some(b)) = (after.first(), after.last()) else {
            fail.push(format!("{at}: no samples after it moved on"));
            return None;
        };
        let (wall, media) = ((b.0 - a.0) / 1000.0, b.1 - a.1);
        if wall < 1.0 || media < 0.5 * wall {
            fail.push(format!(
                "{at}: currentTime went from {} to {} in {wall:.2} s of watching: not playing on",
                a.1, b.1
            ));
        }
    }
    if seek.field("ended").bool() != Some(false) {
        fail.push(format!("{at}: the element has ended"));
    }
    for e in seek.field("errors").items() {
        fail.push(format!("{at}: player error {e}"));
    }
    if fail.len() > before {
        let report = explain_seek(host, path, seek_type, offset, seek);
        if let Some(last) = fail.last_mut() {
            for line in report {
                last.push_str("\n        ");
                last.push_str(&line);
            }
        }
        return None;
    }
    Some((
        offset?,
        SeekFigures {
            playing_ms: seek.field("playingMs").num()?,
            moving_ms: moving_ms?,
        },
    ))
}

/// A tag as the page's scan saw it: `[ts, byte]`.
fn tag_at(v: &Value) -> String {
    match (
        v.items().first().and_then(Value::num),
        v.items().get(1).and_then(Value::num),
    ) {
        (Some(ts), Some(at)) => format!("{ts} ms at byte {at}"),
        _ => "none".to_string(),
    }
}

/// One response as the page saw it reach the player (web/harness.js):
/// what it asked for, what came back, the tags it started with, the
/// keyframes it held and where its tag chain broke.
fn explain_response(r: &Value) -> String {
    let asked = match r.field("range").str() {
        Some(range) => format!("Range {range}"),
        None => format!("{} (no Range)", r.field("url").str().unwrap_or("?")),
    };
    let flv = r.field("flv");
    let first: Vec<String> = flv
        .field("first")
        .items()
        .iter()
        .take(3)
        .map(|t| {
            let kind = match t.field("type").num().map(|k| k as u32) {
                Some(8) => "audio".to_string(),
                Some(9) => format!(
                    "video FrameType {} packet {}",
                    t.field("frame"),
                    t.field("packet")
                ),
                Some(18) => "script".to_string(),
                _ => "?".to_string(),
            };
            format!("{kind} {} ms at byte {}", t.field("ts"), t.field("at"))
        })
        .collect();
    let keyframes: Vec<String> = flv
        .field("keyframes")
        .items()
        .iter()
        .take(4)
        .map(tag_at)
        .collect();
    let chunks: Vec<String> = r
        .field("firstChunks")
        .items()
        .iter()
        .take(6)
        .map(|c| {
            format!(
                "{}@{}ms",
                c.items().get(1).map_or(String::new(), |v| v.to_string()),
                c.items().first().map_or(String::new(), |v| v.to_string())
            )
        })
        .collect();
    format!(
        "{asked} at {} ms: {} (Content-Range {}), {} bytes in {} reads [{}], ended {}; \
         starts with {}: {}; keyframes {}{}; tag chain {}",
        r.field("at"),
        r.field("status"),
        r.field("contentRange"),
        r.field("received"),
        r.field("chunks"),
        chunks.join(", "),
        r.field("end"),
        flv.field("startsWith"),
        first.join(", "),
        keyframes.join(", "),
        if flv.field("keyframes").items().len() > 4 {
            ", …"
        } else {
            ""
        },
        if flv.field("broken").is_null() {
            "whole".to_string()
        } else {
            format!("broken: {}", flv.field("broken"))
        }
    )
}

/// What happened around a seek that failed, from the page's diagnostics
/// and the server's log: the requests and what reached the player, what
/// the player still held of the response before, the SourceBuffer appends
/// and removes, and the server's log line for the seek request.
fn explain_seek(
    host: &dyn Host,
    path: &str,
    seek_type: &str,
    offset: Option<u64>,
    seek: &Value,
) -> Vec<String> {
    let d = seek.field("diagnostics");
    if d.is_null() {
        return vec!["(no diagnostics from the page)".to_string()];
    }
    let mut out = Vec::new();
    for r in d.field("responses").items() {
        out.push(format!("response: {}", explain_response(r)));
    }
    let held = d.field("heldAtSeek");
    if !held.is_null() {
        let (a, v) = (held.field("audio"), held.field("video"));
        if a.is_null() && v.is_null() {
            out.push("held back at the seek: nothing".to_string());
        } else {
            out.push(format!(
                "held back at the seek: audio {}, video {} — a lone tag of the response before \
                 ({}), kept in flv.js/mpegts.js's demuxer queue and remuxed in front of the new \
                 position's media",
                tag_at(a),
                tag_at(v),
                held.field("range")
            ));
        }
    }
    let mut appends = Vec::new();
    let mut others = Vec::new();
    for e in d.field("mse").items() {
        let f = e.items();
        let (ms, kind, what) = (
            f.first().map(|v| v.to_string()).unwrap_or_default(),
            f.get(1).and_then(Value::str).unwrap_or("?"),
            f.get(2).and_then(Value::str).unwrap_or("?"),
        );
        let arg = f.get(3).map(|v| v.to_string()).unwrap_or_default();
        match what {
            "append" if appends.len() < 8 => appends.push(format!("{ms} ms {kind} {arg}")),
            "remove" | "abort" | "error" | "seeking" | "seeked" if others.len() < 12 => {
                others.push(format!("{ms} ms {kind} {what} {arg}"));
            }
            _ => {}
        }
    }
    out.push(format!("appends: {}", appends.join("; ")));
    out.push(format!(
        "removes, aborts, element seeks: {}",
        others.join("; ")
    ));
    out.push(format!(
        "SourceBuffers at the end: {}",
        d.field("sourceBuffers")
    ));
    if let Some(n) = offset {
        let lines: Vec<String> = host
            .logged()
            .into_iter()
            .filter(|l| {
                let ours = l.target == path || l.target.starts_with(&format!("{path}?"));
                let asked = match seek_type {
                    "param" => query_param(&l.target, "bstart").and_then(|v| v.parse().ok()),
                    _ => l.range.as_deref().and_then(range_start),
                };
                ours && asked == Some(n)
            })
            .map(|l| l.line)
            .collect();
        out.push(format!("server log for byte {n}: {}", lines.join(" | ")));
    }
    out
}

/// Runs the driver for one case; returns its JSON report.
fn drive(host: &dyn Host, path: &str, lib: &str, seek_type: &str) -> Result<Value, String> {
    let media = format!("http://127.0.0.1:{}{path}", host.port());
    let args = [
        "--page",
        &host.page(),
        "--media",
        &media,
        "--lib",
        lib,
        "--seek-type",
        seek_type,
        "--seeks",
        SEEKS,
        "--timeout-ms",
        &SEEK_TIMEOUT_MS.to_string(),
        "--watch-ms",
        &WATCH_MS.to_string(),
    ];
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run_driver("seek.mjs", &args, Duration::from_secs(120))
}

/// Whether the server logged a 2xx answer to a request for `path` that
/// asked for byte `n` (by `bstart` or Range). Servers write a line when the
/// response ends; the driver has closed the browser, so the paced responses
/// end soon: wait for the line up to 10 s.
fn server_answered(host: &dyn Host, path: &str, seek_type: &str, n: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = host.logged().into_iter().any(|l| {
            let ours = l.target == path || l.target.starts_with(&format!("{path}?"));
            let asked = match seek_type {
                "param" => query_param(&l.target, "bstart").and_then(|v| v.parse().ok()) == Some(n),
                _ => l.range.as_deref().and_then(range_start) == Some(n),
            };
            ours && asked && (200..300).contains(&l.status)
        });
        if found || Instant::now() > deadline {
            return found;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

struct CaseResult {
    host: &'static str,
    variant: &'static str,
    lib: &'static str,
    seek_type: &'static str,
    seeks: usize,
    figures: Vec<SeekFigures>,
}

fn run_case(
    host: &dyn Host,
    variant: &'static str,
    lib: &'static str,
    seek_type: &'static str,
    failures: &mut Vec<String>,
) -> CaseResult {
    let file = case_file(host.name(), variant, lib, seek_type);
    let path = host.media_path(&file);
    let started = Instant::now();
    let mut result = CaseResult {
        host: host.name(),
        variant,
        lib,
        seek_type,
        seeks: SEEKS.split(',').count(),
        figures: Vec::new(),
    };
    let mut fail = Vec::new();
    match drive(host, &path, lib, seek_type) {
        Err(e) => fail.push(e),
        Ok(report) => {
            let start = report.field("start");
            if start.field("ok").bool() != Some(true) {
                fail.push(format!("did not start playing: {start}"));
            }
            let seeks = report.field("seeks").items();
            for seek in seeks {
                if let Some((_, figures)) = check_seek(host, &path, seek_type, seek, &mut fail) {
                    result.figures.push(figures);
                }
            }
            if start.field("ok").bool() == Some(true) && seeks.len() < result.seeks {
                fail.push(format!(
                    "only {} of {} seeks were tried (the run stops at the first that fails)",
                    seeks.len(),
                    result.seeks
                ));
            }
            let state = report.field("state");
            for e in state.field("errors").items() {
                fail.push(format!("player error: {e}"));
            }
            for e in report.field("pageErrors").items() {
                fail.push(format!("page error: {e}"));
            }
            if state.field("metadataKeyframes").is_null() {
                eprintln!("  (onMetaData as the player saw it has no keyframes)");
            }
        }
    }
    eprintln!(
        "browser: {} {variant} {lib}/{seek_type}: {} of {} seeks ok, {:.1} s{}",
        host.name(),
        result.figures.len(),
        result.seeks,
        started.elapsed().as_secs_f64(),
        if fail.is_empty() { "" } else { " — FAILED" }
    );
    for f in &fail {
        eprintln!("    {f}");
    }
    failures.extend(
        fail.into_iter()
            .map(|f| format!("{} {variant} {lib}/{seek_type}: {f}", host.name())),
    );
    result
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn print_table(results: &[CaseResult]) {
    let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    println!();
    println!(
        "| host | file | player | seekType | seeks played | seek → `playing`, ms (median) | seek → currentTime past target + 0.1 s, ms (median) |"
    );
    println!("|---|---|---|---|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {} | {}/{} | {} | {} |",
            r.host,
            r.variant,
            if r.lib == "flvjs" {
                "flv.js 1.6.2"
            } else {
                "mpegts.js 1.8.2"
            },
            r.seek_type,
            r.figures.len(),
            r.seeks,
            ms(median(r.figures.iter().map(|f| f.playing_ms).collect())),
            ms(median(r.figures.iter().map(|f| f.moving_ms).collect())),
        );
    }
    println!();
}

#[test]
#[ignore = "needs Chromium and web/node_modules (scripts/setup-web.sh), nginx and lighttpd with the modules (make nginx-module lighttpd-module)"]
fn players_seek_past_the_download_in_chromium() {
    check_prerequisites(&[
        "node_modules/mpegts.js/dist/mpegts.js",
        "node_modules/flv.js/dist/flv.js",
    ]);
    let media = browser_media();
    let dir = served_dir(&media);
    let example = start_example(&dir);
    let nginx = start_nginx(&dir, "nginx", MediaBy::Module);
    let lighttpd = start_lighttpd(&dir);
    let (_php, php_port) = start_app(&dir, "php");
    let php = start_nginx(&dir, "php", MediaBy::Proxy(php_port));
    let (_ruby, ruby_port) = start_app(&dir, "ruby");
    let ruby = start_nginx(&dir, "ruby", MediaBy::Proxy(ruby_port));

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut results = Vec::new();
    // Every case on the hosts built for seeking; on the application hosts
    // (the same library calls, paced by their own loops) the file without
    // keyframe metadata with mpegts.js seeking both ways.
    for host in [&example as &dyn Host, &nginx, &lighttpd] {
        for variant in VARIANTS {
            for (lib, seek_type) in PLAYERS {
                results.push(run_case(host, variant, lib, seek_type, &mut failures));
            }
        }
    }
    for host in [&php, &ruby] {
        for (lib, seek_type) in &PLAYERS[..2] {
            results.push(run_case(host, "plain", lib, seek_type, &mut failures));
        }
    }
    // Another muxer's keyframe flags, on the module and the example host.
    for host in [&nginx as &dyn Host, &example] {
        results.push(run_case(host, GSTREAMER, "mpegts", "param", &mut failures));
    }
    print_table(&results);
    eprintln!(
        "browser: {} cases in {:.0} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    drop((php, ruby, lighttpd, nginx, example));
    support::finish(&dir, &failures);
}

#[test]
fn log_and_range_parsing() {
    assert_eq!(
        query_param("/a.flv?x=1&bstart=77", "bstart").as_deref(),
        Some("77")
    );
    assert_eq!(query_param("/a.flv", "bstart"), None);
    assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
}
