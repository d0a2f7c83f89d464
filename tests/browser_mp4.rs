//! MP4 jump-to-time in a real browser: Debian's Chromium (headless, driven by
//! playwright-core through `tests/browser/mp4.mjs`) plays cuts
//! (`movie.mp4?start=S[&end=E]`) with its own `<video>` (muted, started by
//! `play()` once it shows its first frame), from the example host, the nginx
//! module and the lighttpd module, all pacing their responses (so that a
//! seek inside a cut lands past what is downloaded).
//!
//! The movie: 3 minutes of ffmpeg's testsrc2 (every frame differs; it shows
//! a frame counter), H.264 with B-frames, a keyframe every 2 s, 25 fps,
//! 426×240, and AAC; once with `+faststart`, once with the moov at the end.
//! For each host and file:
//!
//! - `?start=61` (not on a keyframe: the cut starts at the keyframe at 60 s
//!   and its edit lists hide the second before 61 s) plays: no `error`,
//!   currentTime passes 1 s with readyState ≥ 3, `video.duration` is
//!   180 − 61 within 0.1 s, and the first frame presented (drawn to a
//!   canvas from requestVideoFrameCallback, media time 0) is the movie's
//!   frame at 61 s as ffmpeg decodes it (`-ss 61`), not a neighbour;
//! - then a seek to 90 s of the cut, not yet buffered: Chromium asks for
//!   the cut with `Range: bytes=N-…`, N > 0, the server's log shows a 206
//!   for it, N is at most 256 KiB before the keyframe the seek needs (from
//!   ffprobe on the same cut made by `pseudostream cut`) and the bytes the
//!   host serves at N are that cut's; `seeked` comes at [90, 91] s, the
//!   first frame presented after it is at [90, 91] s and is the movie's
//!   frame 61 s later, and playback moves past the target and keeps moving;
//! - `?start=30&end=45` plays to the end: duration 15 s (± 0.1), `ended`;
//! - keyframe mode (nginx `pseudostream_mp4_cut keyframe`, lighttpd
//!   `pseudostream.mp4-cut = "keyframe"`, and a second
//!   example host with `--cut keyframe` when this build has the option):
//!   `?start=61` starts at the keyframe, duration 180 − 60, first frame the
//!   one at 60 s, plays past 1 s.
//!
//! - the moov-at-end movie with no query (served with its moov first):
//!   shows its first frame (the movie's at 0 s) and plays past 1 s, and
//!   neither Chromium's requests nor the server's log hold one for anything
//!   but byte 0 on: nothing asked the file's tail, where it keeps its moov.
//!
//! The movie remuxed to FLV is served as MP4 (`?format=mp4`) and played by
//! the same `<video>`: `format=mp4&start=61` plays and seeks as above,
//! `format=mp4&start=30&end=45` plays to its end, and `format=mp4` alone
//! shows its first frame after one request from byte 0.
//!
//! And the same movie fragmented by ffmpeg (a fragment per keyframe, no
//! edit list, so its video is presented 80 ms late): a cut from the
//! fragment of the keyframe at 60 s, and one from 30 s to 46 s, play from
//! 0 with the keyframe's picture first, and `video.duration` is end − start
//! within a frame. ffprobe reads them starting at 0 and lasting end − start
//! within a frame, with their packets ending where the source's do, less
//! the start (known from ffprobe's packets of the source and where its
//! `moof` boxes are).
//!
//! Frames are compared as 6×6-pixel block means (RGB), by mean absolute
//! difference. The bound is half the difference between the reference
//! frame and its nearer neighbour (40 ms away, itself measured each run):
//! a frame under it is, by the triangle inequality, closer to the reference
//! than to either neighbour. Chromium's decode and colour conversion differ
//! from ffmpeg's by about 0.8 (of 255); neighbouring frames of testsrc2 by
//! 3.7 to 7, so the bound is 1.85 or more.
//!
//! Prints the start and seek latencies. Ignored by a plain `cargo test`
//! because it needs Chromium, web/node_modules (scripts/setup-web.sh),
//! nginx and lighttpd with the modules (`make nginx-module lighttpd-module`)
//! and ffmpeg.

mod common;

#[path = "browser/json.rs"]
mod json;
#[path = "browser/servers.rs"]
mod servers;
#[path = "browser/support.rs"]
mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::host::{example_exe, http};
use common::root;
use json::{Json, Value};
use servers::{Logged, Server};
use support::{be, check_prerequisites, make_public, range_start, run_driver};

const MOVIE_S: f64 = 180.0;
const FPS: f64 = 25.0;
const WIDTH: usize = 426;
const HEIGHT: usize = 240;
/// Side of the pixel blocks frames are compared by (tests/browser/mp4.mjs
/// averages the same way).
const BLOCK: usize = 6;
/// The cut of the seek case: one second after a keyframe.
const START_S: f64 = 61.0;
/// The keyframe at or before it (GOP 2 s, no scene-cut keyframes).
const KEYFRAME_S: f64 = 60.0;
/// Seek target, in the cut's time.
const SEEK_TO_S: f64 = 90.0;
const END_CUT: (f64, f64) = (30.0, 45.0);
const DURATION_TOLERANCE_S: f64 = 0.1;
/// Where the seek lands: [target, target + this].
const LANDING_WINDOW_S: f64 = 1.0;
/// How far before the keyframe a seek's Range may start: Chromium reads in
/// 32 KiB blocks, and an audio sample or two is stored before the keyframe.
const RANGE_BEFORE_KEYFRAME: u64 = 256 * 1024;
const VARIANTS: [&str; 2] = ["faststart", "moov-at-end"];
/// The movie as FLV (remuxed from the faststart one), served as MP4
/// (`?format=mp4`): cut and seeked, cut to an end, and whole.
const FLV: &str = "flv";
const FLV_KINDS: [Kind; 3] = [Kind::Seek, Kind::End, Kind::Whole];

/// The file of a variant in `movies()`.
fn movie_file(variant: &str) -> String {
    if variant == FLV {
        "movie.flv".to_string()
    } else {
        format!("movie.{variant}.mp4")
    }
}

// ------------------------------------------------------------ set-up --

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run scripts/setup-deps.sh)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Top-level box types of an MP4 file, in order.
fn top_level_boxes(path: &Path) -> Vec<String> {
    top_level_box_offsets(path)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn top_level_box_offsets(path: &Path) -> Vec<(String, u64)> {
    let b = fs::read(path).unwrap();
    let mut at = 0usize;
    let mut out = Vec::new();
    while at + 8 <= b.len() {
        let mut size = be(&b[at..at + 4]) as usize;
        let kind = String::from_utf8_lossy(&b[at + 4..at + 8]).to_string();
        if size == 1 && at + 16 <= b.len() {
            size = be(&b[at + 8..at + 16]) as usize;
        } else if size == 0 {
            size = b.len() - at;
        }
        out.push((kind, at as u64));
        if size < 8 {
            break;
        }
        at += size;
    }
    out
}

/// `target/browser-mp4/movie.{faststart,moov-at-end}.mp4`, made once.
fn movies() -> PathBuf {
    let dir = root().join("target/browser-mp4");
    fs::create_dir_all(&dir).unwrap();
    let end = dir.join("movie.moov-at-end.mp4");
    let fast = dir.join("movie.faststart.mp4");
    if !end.exists() {
        let tmp = dir.join(format!("movie.{}.tmp.mp4", std::process::id()));
        let duration = MOVIE_S.to_string();
        run(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y"])
                .args(["-f", "lavfi", "-i"])
                .arg(format!(
                    "testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={duration}"
                ))
                .args(["-f", "lavfi", "-i"])
                .arg(format!(
                    "sine=frequency=440:sample_rate=48000:duration={duration}"
                ))
                .args([
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                ])
                // A keyframe every 2 s exactly, three B-frames.
                .args([
                    "-g",
                    "50",
                    "-keyint_min",
                    "50",
                    "-sc_threshold",
                    "0",
                    "-bf",
                    "3",
                ])
                .args(["-c:a", "aac", "-b:a", "64k", "-ac", "1", "-shortest"])
                .arg(&tmp),
            "ffmpeg (making the test movie)",
        );
        fs::rename(&tmp, &end).unwrap();
        let _ = fs::remove_file(&fast);
    }
    if !fast.exists() {
        let tmp = dir.join(format!("movie.{}.tmp.mp4", std::process::id()));
        run(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(&end)
                .args(["-c", "copy", "-movflags", "+faststart"])
                .arg(&tmp),
            "ffmpeg (faststart remux)",
        );
        fs::rename(&tmp, &fast).unwrap();
    }
    let flv = dir.join("movie.flv");
    if !flv.exists() {
        let tmp = dir.join(format!("movie.{}.tmp.flv", std::process::id()));
        run(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(&fast)
                .args(["-c", "copy", "-f", "flv"])
                .arg(&tmp),
            "ffmpeg (FLV remux)",
        );
        fs::rename(&tmp, &flv).unwrap();
    }
    let frag = dir.join("movie.fragmented.mp4");
    if !frag.exists() {
        let tmp = dir.join(format!("movie.{}.tmp.mp4", std::process::id()));
        run(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(&fast)
                .args([
                    "-c",
                    "copy",
                    "-movflags",
                    "frag_keyframe+empty_moov+default_base_moof",
                ])
                .arg(&tmp),
            "ffmpeg (fragmented remux)",
        );
        fs::rename(&tmp, &frag).unwrap();
    }
    assert!(top_level_boxes(&frag).iter().any(|b| b == "moof"));
    let (f, e) = (top_level_boxes(&fast), top_level_boxes(&end));
    assert!(
        f.iter().position(|b| b == "moov") < f.iter().position(|b| b == "mdat"),
        "{}: boxes {f:?}",
        fast.display()
    );
    assert!(
        e.iter().position(|b| b == "moov") > e.iter().position(|b| b == "mdat"),
        "{}: boxes {e:?}",
        end.display()
    );
    dir
}

/// What a case does in the browser (tests/browser/mp4.mjs `kind`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `?start=61`, then a seek to 90 s of the cut.
    Seek,
    /// `?start=30&end=45` to the end.
    End,
    /// `?start=61` in keyframe mode: plays past 1 s.
    Keyframe,
    /// A fragmented movie `?start=60`: plays from 0, lasting 120 s.
    FragmentStart,
    /// A fragmented movie `?start=30&end=46`: plays to the end, 16 s.
    FragmentEnd,
    /// The moov-at-end movie with no query: served moov-first, it shows its
    /// first frame and plays past 1 s after one request from byte 0.
    Whole,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Seek => "seek",
            Kind::End => "end",
            Kind::Keyframe => "keyframe",
            Kind::FragmentStart => "fragment-start",
            Kind::FragmentEnd => "fragment-end",
            Kind::Whole => "whole",
        }
    }
    fn query(self) -> String {
        match self {
            Kind::Seek | Kind::Keyframe => format!("start={START_S}"),
            Kind::End => format!("start={}&end={}", END_CUT.0, END_CUT.1),
            Kind::FragmentStart => format!("start={:.3}", KEYFRAME_S + fragment_delay()),
            Kind::FragmentEnd => format!(
                "start={:.3}&end={:.3}",
                FRAGMENT_CUT.0 + fragment_delay(),
                FRAGMENT_CUT.1 + fragment_delay()
            ),
            Kind::Whole => String::new(),
        }
    }
    /// The faststart movie's time at the cut's 0, to compare frames by
    /// (the fragmented movie's keyframe at k + its B-frame delay is the
    /// faststart movie's at k).
    fn cut_start(self) -> f64 {
        match self {
            Kind::Seek => START_S,
            Kind::End => END_CUT.0,
            Kind::Keyframe | Kind::FragmentStart => KEYFRAME_S,
            Kind::FragmentEnd => FRAGMENT_CUT.0,
            Kind::Whole => 0.0,
        }
    }
    fn duration(self) -> f64 {
        match self {
            Kind::Seek => MOVIE_S - START_S,
            Kind::End => END_CUT.1 - END_CUT.0,
            Kind::Keyframe | Kind::FragmentStart => MOVIE_S - KEYFRAME_S,
            Kind::FragmentEnd => FRAGMENT_CUT.1 - FRAGMENT_CUT.0,
            Kind::Whole => MOVIE_S,
        }
    }
    /// How far Chromium's `video.duration` may be from `duration()`: a
    /// frame for fragmented cuts, whose length the cut states.
    fn duration_tolerance(self) -> f64 {
        match self {
            Kind::FragmentStart | Kind::FragmentEnd => 1.0 / FPS,
            _ => DURATION_TOLERANCE_S,
        }
    }
}

const KINDS: [Kind; 3] = [Kind::Seek, Kind::End, Kind::Keyframe];

/// The fragmented movie (a fragment per keyframe, every 2 s): cuts from a
/// fragment's start, and to one, which is where fragmented cuts begin and
/// end. Its timeline starts at 0 because every decode time is rewritten.
const FRAGMENTED: &str = "fragmented";
const FRAGMENT_KINDS: [Kind; 2] = [Kind::FragmentStart, Kind::FragmentEnd];
const FRAGMENT_CUT: (f64, f64) = (30.0, 46.0);

/// Where the fragmented movie presents its first frame: a B-frame delay
/// late, as it has neither an edit list nor negative composition offsets
/// (a fragment starting at keyframe k is presented from k + this). Cuts ask
/// for those times.
fn fragment_delay() -> f64 {
    static DELAY: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        let out = run(
            Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v"])
                .args(["-show_entries", "stream=start_time", "-of", "csv=p=0"])
                .arg(movies().join(format!("movie.{FRAGMENTED}.mp4"))),
            "ffprobe (the fragmented movie's start)",
        );
        String::from_utf8_lossy(&out).trim().parse().unwrap_or(0.0)
    })
}

/// A fragmented cut's timeline, from ffprobe's packets of the source and
/// where its `moof` boxes lie: the cut is the fragments from the one that
/// starts with the keyframe asked for to the one presented from the end
/// asked for; its 0 is that keyframe (what other streams present before it
/// is dropped).
#[derive(Clone, Copy, Debug)]
struct FragmentedCut {
    /// When the cut presents its first video frame.
    first_frame: f64,
    /// When its last sample (of any track) ends.
    end: f64,
}

fn fragmented_cut(kind: Kind) -> FragmentedCut {
    // (video, pts, dts, end, pos, key) of every packet, and the moof offsets.
    type Packets = (Vec<(bool, f64, f64, f64, u64, bool)>, Vec<u64>);
    static SOURCE: std::sync::OnceLock<Packets> = std::sync::OnceLock::new();
    let (packets, moofs) = SOURCE.get_or_init(|| {
        let movie = movies().join(format!("movie.{FRAGMENTED}.mp4"));
        let csv = run(
            Command::new("ffprobe")
                .args(["-v", "error", "-show_entries"])
                .args(["packet=codec_type,pts_time,dts_time,duration_time,pos,flags"])
                .args(["-of", "csv=p=0"])
                .arg(&movie),
            "ffprobe (the fragmented movie's packets)",
        );
        let packets = String::from_utf8_lossy(&csv)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let num = |i: usize| f.get(i)?.parse::<f64>().ok();
                let (pts, dts, dur) = (num(1)?, num(2)?, num(3)?);
                let pos = f.get(4)?.parse().ok()?;
                Some((
                    f[0] == "video",
                    pts,
                    dts,
                    pts + dur,
                    pos,
                    f.get(5)?.contains('K'),
                ))
            })
            .collect();
        let moofs = top_level_box_offsets(&movie)
            .into_iter()
            .filter(|(name, _)| name == "moof")
            .map(|(_, at)| at)
            .collect();
        (packets, moofs)
    });
    let (start, end) = match kind {
        Kind::FragmentStart => (KEYFRAME_S, None),
        Kind::FragmentEnd => (FRAGMENT_CUT.0, Some(FRAGMENT_CUT.1)),
        _ => unreachable!("not a fragmented case"),
    };
    // The moof before the video keyframe presented at `t`.
    let fragment_of = |t: f64| -> u64 {
        let t = t + fragment_delay();
        let &(.., pos, _) = packets
            .iter()
            .find(|p| p.0 && p.5 && (p.1 - t).abs() < 0.001)
            .unwrap_or_else(|| panic!("no video keyframe at {t} s in the fragmented movie"));
        *moofs.iter().rev().find(|&&m| m < pos).expect("a moof")
    };
    let from = fragment_of(start);
    let to = end.map_or(u64::MAX, fragment_of);
    let inside: Vec<_> = packets.iter().filter(|p| p.4 > from && p.4 < to).collect();
    let zero = start + fragment_delay();
    let first_video = inside.iter().filter(|p| p.0).map(|p| p.1);
    FragmentedCut {
        first_frame: first_video.fold(f64::INFINITY, f64::min) - zero,
        end: inside.iter().map(|p| p.3).fold(0.0, f64::max) - zero,
    }
}

/// Every (variant, kind) a host is asked for.
fn variant_kinds() -> Vec<(&'static str, Kind)> {
    let mut out = Vec::new();
    for variant in VARIANTS {
        for kind in KINDS {
            out.push((variant, kind));
        }
    }
    for kind in FRAGMENT_KINDS {
        out.push((FRAGMENTED, kind));
    }
    out.push(("moov-at-end", Kind::Whole));
    for kind in FLV_KINDS {
        out.push((FLV, kind));
    }
    out
}

fn case_file(host: &str, variant: &str, kind: Kind) -> String {
    let ext = if variant == FLV { "flv" } else { "mp4" };
    format!("{variant}-{host}-{}.{ext}", kind.name())
}

/// A fresh directory under target/ with one hard link per case, so that
/// every case has URLs (and server log lines) of its own.
fn served_dir(movies: &Path) -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("browser-mp4-it-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("media")).unwrap();
    make_public(&dir);
    make_public(&dir.join("media"));
    for host in ["example", "example-kf", "nginx", "lighttpd"] {
        for (variant, kind) in variant_kinds() {
            let src = movies.join(movie_file(variant));
            let link = dir.join("media").join(case_file(host, variant, kind));
            if fs::hard_link(&src, &link).is_err() {
                fs::copy(&src, &link).unwrap();
            }
        }
    }
    dir
}

// ------------------------------------------------------------- hosts --

/// The example host that cuts at keyframes (`--cut keyframe`); it serves
/// only the keyframe cases, and the other example host only the others.
const KEYFRAME_EXAMPLE: &str = "example-kf";

trait Host {
    fn name(&self) -> &'static str;
    fn port(&self) -> u16;
    /// Path and query of a case's cut, or None when the host cannot serve
    /// that kind.
    fn cut_target(&self, file: &str, kind: Kind) -> Option<String>;
    /// The requests logged so far.
    fn logged(&self) -> Vec<Logged>;
    /// A same-origin HTML page (the driver writes its page over it).
    fn page(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }
}

impl Host for Server {
    fn name(&self) -> &'static str {
        self.name
    }
    fn port(&self) -> u16 {
        self.port
    }
    /// The example hosts serve at their root; the server modules cut at
    /// keyframes below `/kf/` and exactly below `/media/`.
    fn cut_target(&self, file: &str, kind: Kind) -> Option<String> {
        // An FLV is asked for as MP4.
        let query = match (file.ends_with(".flv"), kind.query()) {
            (true, q) if q.is_empty() => "?format=mp4".to_string(),
            (true, q) => format!("?format=mp4&{q}"),
            (false, q) if q.is_empty() => q,
            (false, q) => format!("?{q}"),
        };
        if self.is_example() {
            let keyframe_host = self.name == KEYFRAME_EXAMPLE;
            return ((kind == Kind::Keyframe) == keyframe_host).then(|| format!("/{file}{query}"));
        }
        let location = if kind == Kind::Keyframe {
            "kf"
        } else {
            "media"
        };
        Some(format!("/{location}/{file}{query}"))
    }
    fn logged(&self) -> Vec<Logged> {
        self.requests()
    }
}

/// `pseudostream serve DIR/media --rate auto:1.25 [--cut keyframe]`; `/`
/// is its HTML listing.
fn start_example(dir: &Path, keyframe: bool) -> Server {
    if keyframe {
        Server::example(
            dir,
            KEYFRAME_EXAMPLE,
            &["--rate", "auto:1.25", "--cut", "keyframe"],
        )
    } else {
        Server::example(dir, "example", &["--rate", "auto:1.25"])
    }
}

/// nginx with the module: `/media/` cuts exactly (the default), `/kf/` at
/// keyframes, both paced by `pseudostream_rate auto 1.25`; `/` is a tiny
/// page.
fn start_nginx(dir: &Path) -> Server {
    let m = dir.join("media");
    let m = m.display();
    let locations = format!(
        "location = / {{ default_type text/html; return 200 '<!doctype html><title>MP4 cuts</title>'; }}\n\
         location /media/ {{ alias {m}/; pseudostream; pseudostream_rate auto 1.25; }}\n\
         location /kf/ {{ alias {m}/; pseudostream; pseudostream_rate auto 1.25; \
         pseudostream_mp4_cut keyframe; }}"
    );
    Server::nginx(
        dir,
        "nginx",
        "video/mp4 mp4; video/x-flv flv; text/html html;",
        &locations,
    )
}

/// lighttpd with the module: `/media/` cuts exactly (the default), `/kf/` at
/// keyframes, both paced by `pseudostream.rate = "auto 1.25"`; `/` is a
/// tiny page.
fn start_lighttpd(dir: &Path) -> Server {
    let root_dir = dir.join("lighttpd-root");
    fs::create_dir_all(&root_dir).unwrap();
    fs::write(
        root_dir.join("index.html"),
        "<!doctype html><title>MP4 cuts</title>",
    )
    .unwrap();
    let (m, r) = (dir.join("media"), root_dir.display());
    let m = m.display();
    let conf = format!(
        r#"server.document-root = "{r}"
index-file.names = ("index.html")
mimetype.assign = (".mp4" => "video/mp4", ".flv" => "video/x-flv", ".html" => "text/html")
alias.url = ("/media/" => "{m}/", "/kf/" => "{m}/")
pseudostream.extensions = (".mp4", ".flv")
pseudostream.rate = "auto 1.25"
$HTTP["url"] =^ "/kf/" {{
    pseudostream.mp4-cut = "keyframe"
}}
"#
    );
    Server::lighttpd(dir, "lighttpd", &conf)
}

// ---------------------------------------------------------- the cuts --

/// The exact cut of the seek case as the library makes it
/// (`pseudostream cut`), and where its video keyframes are.
struct Cut {
    bytes: Vec<u8>,
    /// (presentation time in the cut, byte position) of each keyframe.
    keyframes: Vec<(f64, u64)>,
}

impl Cut {
    fn make(movie: &Path, query: &str, dir: &Path, name: &str) -> Cut {
        let bytes = run(
            Command::new(example_exe()).arg("cut").arg(movie).arg(query),
            "pseudostream cut",
        );
        let path = dir.join(name);
        fs::write(&path, &bytes).unwrap();
        let csv = run(
            Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v"])
                .args([
                    "-show_entries",
                    "packet=pts_time,pos,flags",
                    "-of",
                    "csv=p=0",
                ])
                .arg(&path),
            "ffprobe (the cut's packets)",
        );
        let keyframes = String::from_utf8_lossy(&csv)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let (pts, pos, flags) = (f.first()?, f.get(1)?, f.get(2)?);
                flags
                    .contains('K')
                    .then(|| Some((pts.parse().ok()?, pos.parse().ok()?)))
                    .flatten()
            })
            .collect();
        let _ = fs::remove_file(&path);
        Cut { bytes, keyframes }
    }

    /// The keyframe a seek to `t` decodes from.
    fn keyframe_for(&self, t: f64) -> Option<(f64, u64)> {
        self.keyframes
            .iter()
            .filter(|k| k.0 <= t + 1e-6)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .copied()
    }
}

/// When the video of `movie` served as MP4 (`format=mp4`) starts, by
/// ffprobe.
fn video_start(movie: &Path, dir: &Path) -> f64 {
    let bytes = run(
        Command::new(example_exe())
            .arg("cut")
            .arg(movie)
            .arg("format=mp4"),
        "pseudostream cut format=mp4",
    );
    let path = dir.join("flv-as-mp4.mp4");
    fs::write(&path, bytes).unwrap();
    let out = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=start_time", "-of", "csv=p=0"])
            .arg(&path),
        "ffprobe (the FLV as MP4)",
    );
    let _ = fs::remove_file(&path);
    let t: f64 = String::from_utf8_lossy(&out).trim().parse().unwrap();
    assert!((0.0..0.2).contains(&t), "video starts at {t} s");
    t
}

// ------------------------------------------------------------ frames --

/// Frames as block means, decoded by ffmpeg from the movie, by frame number.
struct References {
    movie: PathBuf,
    cache: HashMap<i64, Vec<f64>>,
}

impl References {
    /// The frame at `n / FPS` s (decoded with its neighbours, which the
    /// bound needs).
    fn frame(&mut self, n: i64) -> Vec<f64> {
        if let Some(f) = self.cache.get(&n) {
            return f.clone();
        }
        // From the frame before (none before the first).
        let first = (n - 1).max(0);
        let from = (first as f64 / FPS - 0.005).max(0.0);
        let raw = run(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-ss"])
                .arg(format!("{from:.3}"))
                .arg("-i")
                .arg(&self.movie)
                .args(["-frames:v", "3", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
            "ffmpeg (reference frames)",
        );
        let size = WIDTH * HEIGHT * 3;
        assert_eq!(raw.len(), 3 * size, "ffmpeg gave {} bytes", raw.len());
        for (i, frame) in raw.chunks(size).enumerate() {
            self.cache.insert(first + i as i64, block_means(frame));
        }
        self.cache[&n].clone()
    }

    /// How far the shown frame is from the movie's frame at `t` s, and the
    /// bound (half the distance from that frame to its nearer neighbour).
    fn compare(&mut self, shown: &[f64], t: f64) -> (f64, f64) {
        let n = ((t * FPS).round() as i64).max(0);
        let (reference, next) = (self.frame(n), self.frame(n + 1));
        // The first frame has one neighbour.
        let nearest = match n {
            0 => mad(&reference, &next),
            _ => mad(&reference, &self.frame(n - 1)).min(mad(&reference, &next)),
        };
        let bound = nearest / 2.0;
        (mad(shown, &reference), bound)
    }
}

/// RGB means over BLOCK×BLOCK blocks of an rgb24 frame.
fn block_means(rgb: &[u8]) -> Vec<f64> {
    let (bw, bh) = (WIDTH / BLOCK, HEIGHT / BLOCK);
    let mut out = Vec::with_capacity(bw * bh * 3);
    for by in 0..bh {
        for bx in 0..bw {
            for c in 0..3 {
                let mut sum = 0u32;
                for y in by * BLOCK..(by + 1) * BLOCK {
                    for x in bx * BLOCK..(bx + 1) * BLOCK {
                        sum += u32::from(rgb[(y * WIDTH + x) * 3 + c]);
                    }
                }
                out.push(f64::from(sum) / (BLOCK * BLOCK) as f64);
            }
        }
    }
    out
}

/// Mean absolute difference.
fn mad(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
}

/// Checks a frame of the report (`frames.first` or `frames.seek`) against
/// the movie's frame at `cut_start` + its media time.
fn check_frame(
    refs: &mut References,
    frame: &Value,
    cut_start: f64,
    what: &str,
    fail: &mut Vec<String>,
) -> Option<f64> {
    if frame.is_null() {
        fail.push(format!("{what}: no frame was presented"));
        return None;
    }
    if let Some(e) = frame.field("error").str() {
        fail.push(format!("{what}: cannot draw the frame: {e}"));
        return None;
    }
    let media_time = frame.field("mediaTime").num()?;
    let shown: Vec<f64> = frame
        .field("pixels")
        .items()
        .iter()
        .filter_map(Value::num)
        .collect();
    let size = (frame.field("width").num(), frame.field("height").num());
    if size != (Some(WIDTH as f64), Some(HEIGHT as f64)) {
        fail.push(format!(
            "{what}: the video is {size:?}, not {WIDTH}×{HEIGHT}"
        ));
        return None;
    }
    let t = cut_start + media_time;
    let (d, bound) = refs.compare(&shown, t);
    if d >= bound {
        fail.push(format!(
            "{what} (media time {media_time} s): differs from the movie's frame at {t:.2} s by \
             {d:.2} (bound {bound:.2}: it is not that frame)"
        ));
    }
    Some(d)
}

// ------------------------------------------------------------- cases --

#[derive(Clone)]
struct Case {
    id: String,
    host: &'static str,
    variant: &'static str,
    kind: Kind,
    /// Path and query.
    target: String,
    port: u16,
    /// Where the movie's 0 is on the case's timeline, s: the FLV's video
    /// starts after its audio's priming, which an FLV shows and so the MP4
    /// made from it shows too.
    shift: f64,
}

/// What one case measured, for the table.
#[derive(Default)]
struct Figures {
    start_playing_ms: Option<f64>,
    duration: Option<f64>,
    first_frame_mad: Option<f64>,
    seek_frame_mad: Option<f64>,
    seek_range: Option<u64>,
    seeked_ms: Option<f64>,
    seek_playing_ms: Option<f64>,
    advance_ms: Option<f64>,
    landed_at: Option<f64>,
    ended_ms: Option<f64>,
    ok: bool,
}

/// Runs the driver over every case at once; returns its JSON report.
fn drive(cases: &[Case], hosts: &[&dyn Host], dir: &Path) -> Result<Value, String> {
    let mut list = String::from("[");
    for (i, c) in cases.iter().enumerate() {
        let host = hosts.iter().find(|h| h.name() == c.host).unwrap();
        let kind = match c.kind {
            Kind::Seek => "seek",
            Kind::End | Kind::FragmentEnd => "end",
            Kind::Keyframe | Kind::FragmentStart | Kind::Whole => "play",
        };
        list += &format!(
            "{}{{\"id\":\"{}\",\"page\":\"{}\",\"media\":\"http://127.0.0.1:{}{}\",\
             \"kind\":\"{kind}\",\"target\":{SEEK_TO_S},\"parallel\":{}}}",
            if i == 0 { "" } else { "," },
            c.id,
            host.page(),
            c.port,
            c.target,
            // Only the seeks are timed: the others watch side by side.
            c.kind != Kind::Seek,
        );
    }
    list.push(']');
    let cases_file = dir.join("cases.json");
    fs::write(&cases_file, list).unwrap();

    let args = ["--cases".to_string(), cases_file.display().to_string()];
    run_driver("mp4.mjs", &args, Duration::from_secs(240))
}

/// Waits (up to 10 s: servers log a response when it ends, and the driver
/// has closed the browser) for a logged 206 to a request for `target` whose
/// Range starts at `n`; returns it.
fn server_answered(host: &dyn Host, target: &str, n: u64) -> Option<Logged> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = host.logged().into_iter().find(|l| {
            l.target == target
                && l.status == 206
                && l.bytes > 0
                && l.range.as_deref().and_then(range_start) == Some(n)
        });
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The seek: Range asked and answered, bytes, landing, playing on.
fn check_seek(
    case: &Case,
    host: &dyn Host,
    report: &Value,
    cut: &Cut,
    refs: &mut References,
    figures: &mut Figures,
    fail: &mut Vec<String>,
) {
    let seek = report.field("seek");
    if seek.is_null() {
        fail.push("no seek was tried (did not start playing)".into());
        return;
    }
    let target = SEEK_TO_S;
    let at = format!("seek to {target} s");
    if seek.field("targetBuffered").bool() != Some(false) {
        fail.push(format!(
            "{at}: the target was already buffered ({}): the response was not paced",
            seek.field("bufferedBefore")
        ));
    }
    // Chromium's request for the seek (the page cannot see it; the driver's
    // network log can), and the server's answer to it.
    let before = report.field("requestsBeforeSeek").num().unwrap_or(0.0) as usize;
    let after: Vec<&Value> = report
        .field("requests")
        .items()
        .iter()
        .skip(before)
        .collect();
    let asked = after.iter().find_map(|r| {
        r.field("range")
            .str()
            .and_then(range_start)
            .filter(|&n| n > 0)
    });
    match asked {
        None => fail.push(format!(
            "{at}: Chromium made no Range request past byte 0 after the seek (requests: {})",
            after
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(n) => {
            figures.seek_range = Some(n);
            match server_answered(host, &case.target, n) {
                None => fail.push(format!(
                    "{at}: the server logged no 206 to Range bytes={n}- for {} (logged: {:?})",
                    case.target,
                    host.logged()
                        .into_iter()
                        .filter(|l| l.target == case.target)
                        .collect::<Vec<_>>()
                )),
                Some(line) => {
                    if !line.range.as_deref().unwrap_or("").starts_with("bytes=") {
                        fail.push(format!("{at}: odd Range {:?}", line.range));
                    }
                }
            }
            match cut.keyframe_for(target) {
                None => fail.push(format!("{at}: the cut has no keyframe before it")),
                Some((kt, kpos)) => {
                    if n > kpos || kpos - n > RANGE_BEFORE_KEYFRAME {
                        fail.push(format!(
                            "{at}: Range starts at byte {n}, but the keyframe at {kt} s of the cut \
                             is at byte {kpos}"
                        ));
                    }
                }
            }
            // The host serves the library's cut at N.
            let len = 65536.min(cut.bytes.len() as u64 - n);
            let range = format!("bytes={n}-{}", n + len - 1);
            let reply = http(host.port(), "GET", &case.target, &[("Range", &range)]);
            let total = reply
                .header("Content-Range")
                .and_then(|v| v.rsplit('/').next())
                .and_then(|v| v.parse::<usize>().ok());
            if reply.status != 206
                || total != Some(cut.bytes.len())
                || reply.body[..] != cut.bytes[n as usize..(n + len) as usize]
            {
                fail.push(format!(
                    "{at}: {} with Range {range}: status {}, Content-Range {:?}, {} bytes, \
                     not the bytes of `pseudostream cut` ({} bytes in all)",
                    case.target,
                    reply.status,
                    reply.header("Content-Range"),
                    reply.body.len(),
                    cut.bytes.len()
                ));
            }
        }
    }

    // What the viewer sees.
    figures.seeked_ms = seek.field("seekedMs").num();
    figures.seek_playing_ms = seek.field("playingMs").num();
    figures.advance_ms = seek.field("advanceMs").num();
    figures.landed_at = seek.field("seekedAt").num();
    if seek.field("timedOut").bool() != Some(false) {
        fail.push(format!(
            "{at}: did not play past it (currentTime {}, buffered {}, last samples \
             [ms, t, readyState, paused, seeking] {})",
            seek.field("samples")
                .items()
                .last()
                .map_or(Value::Null, |v| v.clone()),
            seek.field("bufferedAfter"),
            seek.field("samples")
        ));
    }
    match seek.field("seekedAt").num() {
        Some(t) if t >= target - 0.001 && t <= target + LANDING_WINDOW_S => {}
        t => fail.push(format!(
            "{at}: `seeked` at currentTime {t:?}, not within [{target}, {target} + {LANDING_WINDOW_S}]"
        )),
    }
    let frame = report.field("frames").field("seek");
    if let Some(mt) = frame.field("mediaTime").num() {
        if mt < target - 0.001 || mt > target + LANDING_WINDOW_S {
            fail.push(format!(
                "{at}: the first frame after it is at {mt} s, not within [{target}, {target} + {LANDING_WINDOW_S}]"
            ));
        }
    }
    figures.seek_frame_mad = check_frame(
        refs,
        frame,
        case.kind.cut_start() - case.shift,
        &format!("{at}: first frame after it"),
        fail,
    );
    let samples: Vec<(f64, f64)> = seek
        .field("samples")
        .items()
        .iter()
        .filter_map(|s| Some((s.items().first()?.num()?, s.items().get(1)?.num()?)))
        .collect();
    if let Some(&(ms, t)) = samples.iter().find(|&&(_, t)| t < target - 0.001) {
        fail.push(format!(
            "{at}: currentTime {t} at {ms} ms, before the target"
        ));
    }
    if let Some(adv) = figures.advance_ms {
        let watched: Vec<&(f64, f64)> = samples.iter().filter(|s| s.0 >= adv).collect();
        if let (Some(a), Some(b)) = (watched.first(), watched.last()) {
            let (wall, media) = ((b.0 - a.0) / 1000.0, b.1 - a.1);
            if wall < 1.0 || media < 0.5 * wall {
                fail.push(format!(
                    "{at}: currentTime went from {} to {} in {wall:.2} s: not playing on",
                    a.1, b.1
                ));
            }
        }
    }
}

/// The whole moov-at-end file: Chromium asked only from byte 0, and the
/// server was asked for nothing else (no request for the file's tail,
/// where the stored file keeps its moov).
fn check_one_request(case: &Case, host: &dyn Host, report: &Value, fail: &mut Vec<String>) {
    let asked: Vec<Option<u64>> = report
        .field("requests")
        .items()
        .iter()
        .map(|r| r.field("range").str().map_or(Some(0), range_start))
        .collect();
    if asked.iter().any(|&n| n != Some(0)) {
        fail.push(format!(
            "Chromium asked past byte 0 (requests: {})",
            report.field("requests")
        ));
    }
    // Servers log a response when it ends: Chromium closed it when the
    // driver closed the browser.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let logged: Vec<Logged> = host
            .logged()
            .into_iter()
            .filter(|l| l.target == case.target)
            .collect();
        if !logged.is_empty() || Instant::now() > deadline {
            break logged;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let tail: Vec<&Logged> = logged
        .iter()
        .filter(|l| {
            l.range
                .as_deref()
                .is_some_and(|r| range_start(r) != Some(0))
        })
        .collect();
    if logged.is_empty() || !tail.is_empty() {
        fail.push(format!(
            "the server logged {} request(s) for {}, {} of them past byte 0: {tail:?}",
            logged.len(),
            case.target,
            tail.len()
        ));
    }
}

fn check_case(
    case: &Case,
    host: &dyn Host,
    report: &Value,
    cut: Option<&Cut>,
    refs: &mut References,
) -> (Figures, Vec<String>) {
    let mut figures = Figures::default();
    let mut fail = Vec::new();
    if let Some(e) = report.field("driverError").str() {
        fail.push(format!("driver: {e}"));
    }
    for e in report.field("errors").items() {
        fail.push(format!("<video> error event: {e}"));
    }
    if let Some(e) = report.field("state").field("error").str() {
        fail.push(format!("video.error: {e}"));
    }
    for e in report.field("pageErrors").items() {
        fail.push(format!("page error: {e}"));
    }
    if report.field("requests").items().is_empty() {
        fail.push("Chromium made no request for the cut".into());
    }
    figures.start_playing_ms = report.field("firstPlayingMs").num();
    figures.duration = report.field("state").field("duration").num();
    let want = case.kind.duration();
    let tolerance = case.kind.duration_tolerance();
    match figures.duration {
        Some(d) if (d - want).abs() <= tolerance => {}
        d => fail.push(format!("video.duration {d:?}, not {want} ± {tolerance} s")),
    }
    let first = report.field("frames").field("first");
    match first.field("mediaTime").num() {
        // An FLV's video may start a little after its audio (AAC priming
        // shows in an FLV): its first frame is then the first one after 0.
        Some(t) if t.abs() <= 0.001 || (case.shift > 0.0 && t.abs() < 1.0 / FPS) => {}
        t => fail.push(format!(
            "the first frame presented is at media time {t:?}, not 0"
        )),
    }
    figures.first_frame_mad = check_frame(
        refs,
        first,
        case.kind.cut_start() - case.shift,
        "first frame",
        &mut fail,
    );

    match case.kind {
        Kind::End | Kind::FragmentEnd => {
            let end = report.field("end");
            figures.ended_ms = end.field("endedMs").num();
            if end.field("ok").bool() != Some(true) {
                fail.push(format!("no `ended` ({end})"));
            }
            match end.field("currentTime").num() {
                Some(t) if (t - want).abs() <= DURATION_TOLERANCE_S => {}
                t => fail.push(format!(
                    "ended at currentTime {t:?}, not {want} ± {DURATION_TOLERANCE_S} s"
                )),
            }
        }
        Kind::Seek | Kind::Keyframe | Kind::FragmentStart | Kind::Whole => {
            let start = report.field("start");
            if start.field("ok").bool() != Some(true) {
                fail.push(format!(
                    "did not play past 1 s with readyState ≥ 3 ({start}; events {})",
                    report.field("events")
                ));
            }
            if case.kind == Kind::Whole {
                check_one_request(case, host, report, &mut fail);
            }
            if case.kind == Kind::Seek {
                check_seek(
                    case,
                    host,
                    report,
                    cut.expect("the seek case's cut"),
                    refs,
                    &mut figures,
                    &mut fail,
                );
            }
        }
    }
    if !fail.is_empty() && !report.field("console").items().is_empty() {
        fail.push(format!("(console: {})", report.field("console")));
    }
    figures.ok = fail.is_empty();
    (figures, fail)
}

fn print_table(cases: &[Case], figures: &[Figures]) {
    let dash = || "–".to_string();
    let ms = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.0}"));
    let two = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.2}"));
    println!();
    println!(
        "| host | file | cut | ok | start → `playing`, ms | duration, s | first frame MAD | \
         seek: Range from byte | seek → `seeked`, ms | seek → `playing`, ms | \
         seek → past target + 0.1 s, ms | frame after seek MAD | `ended` after, ms |"
    );
    println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (c, f) in cases.iter().zip(figures) {
        let file = c.target.rsplit('/').next().unwrap_or("");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.host,
            c.variant,
            file.replace(&format!("{}-{}-", c.variant, c.host), ""),
            if f.ok { "yes" } else { "**no**" },
            ms(f.start_playing_ms),
            f.duration.map_or_else(dash, |v| format!("{v:.3}")),
            two(f.first_frame_mad),
            f.seek_range.map_or_else(dash, |v| v.to_string()),
            ms(f.seeked_ms),
            ms(f.seek_playing_ms),
            ms(f.advance_ms),
            two(f.seek_frame_mad),
            ms(f.ended_ms),
        );
    }
    println!();
}

#[test]
#[ignore = "needs Chromium and web/node_modules (scripts/setup-web.sh), nginx and lighttpd with the modules (make nginx-module lighttpd-module), ffmpeg"]
fn mp4_cuts_play_and_seek_in_chromium() {
    check_prerequisites(&[]);
    common::require_tool("ffmpeg");
    common::require_tool("ffprobe");
    let started = Instant::now();
    let movies = movies();
    let made = started.elapsed();
    let dir = served_dir(&movies);
    let example = start_example(&dir, false);
    // The keyframe mode is a host option: a second example host, when this
    // build has it.
    let example_kf = Some(start_example(&dir, true));
    if example_kf.is_none() {
        eprintln!("browser-mp4: the example host has no --cut option: its keyframe cases skipped");
    }
    let nginx = start_nginx(&dir);
    let lighttpd = start_lighttpd(&dir);
    let mut hosts: Vec<&dyn Host> = vec![&example];
    if let Some(kf) = &example_kf {
        hosts.push(kf);
    }
    hosts.push(&nginx);
    hosts.push(&lighttpd);

    let flv_shift = video_start(&movies.join(movie_file(FLV)), &dir);
    eprintln!("browser-mp4: the FLV served as MP4 starts its video at {flv_shift} s");
    let mut cases = Vec::new();
    for host in &hosts {
        for (variant, kind) in variant_kinds() {
            let file = case_file(host.name(), variant, kind);
            if let Some(target) = host.cut_target(&file, kind) {
                cases.push(Case {
                    id: format!("{}-{variant}-{}", host.name(), kind.name()),
                    host: host.name(),
                    variant,
                    kind,
                    target,
                    port: host.port(),
                    shift: if variant == FLV { flv_shift } else { 0.0 },
                });
            }
        }
    }
    // ffprobe's view of the library's fragmented cuts: they start at 0 and
    // last end − start (within a frame); their first frame is at 0 and their
    // packets end where the source's, less the start, do.
    for kind in FRAGMENT_KINDS {
        let movie = movies.join(format!("movie.{FRAGMENTED}.mp4"));
        let cut = Cut::make(&movie, &kind.query(), &dir, "fragment-cut.mp4");
        let path = dir.join("fragment-cut.mp4");
        fs::write(&path, &cut.bytes).unwrap();
        let csv = run(
            Command::new("ffprobe")
                .args(["-v", "error", "-show_entries"])
                .args(["packet=codec_type,pts_time,duration_time"])
                .args(["-show_entries", "format=start_time,duration"])
                .args(["-of", "csv=p=0"])
                .arg(&path),
            "ffprobe (a fragmented cut)",
        );
        let (mut first_video, mut end) = (f64::INFINITY, 0f64);
        let mut format = None;
        for l in String::from_utf8_lossy(&csv).lines() {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            match (f[0], num(0), num(1), num(2)) {
                ("video" | "audio", _, Some(pts), Some(dur)) => {
                    if f[0] == "video" {
                        first_video = first_video.min(pts);
                    }
                    end = end.max(pts + dur);
                }
                (_, Some(start), Some(duration), None) => format = Some((start, duration)),
                _ => {}
            }
        }
        let want = fragmented_cut(kind);
        eprintln!(
            "browser-mp4: ffprobe on the fragmented cut {}: start, duration {format:?}, \
             first frame {first_video}, end {end} (source: first frame {}, end {})",
            kind.query(),
            want.first_frame,
            want.end
        );
        let near = |a: f64, b: f64, by: f64| (a - b).abs() <= by;
        assert!(
            format.is_some_and(|(start, duration)| near(start, 0.0, 0.001)
                && near(duration, kind.duration(), 1.0 / FPS))
                && near(first_video, 0.0, 0.001)
                && near(want.first_frame, 0.0, 0.001)
                && near(end, want.end, 0.002),
            "ffprobe on the fragmented cut {}: start, duration {format:?}, first frame \
             {first_video}, end {end}; want 0, {} ± 1 frame, 0, {}",
            kind.query(),
            kind.duration(),
            want.end
        );
        let _ = fs::remove_file(&path);
    }
    // The library's own cut of each file, for the seeks' byte checks.
    let cuts: HashMap<&str, Cut> = VARIANTS
        .iter()
        .chain([&FLV])
        .map(|&v| {
            let movie = movies.join(movie_file(v));
            let query = match v {
                FLV => format!("format=mp4&{}", Kind::Seek.query()),
                _ => Kind::Seek.query(),
            };
            (v, Cut::make(&movie, &query, &dir, &format!("cut.{v}.mp4")))
        })
        .collect();
    let mut refs = References {
        movie: movies.join("movie.faststart.mp4"),
        cache: HashMap::new(),
    };

    // Batches run one after another, not beside each other: many videos
    // decoding at once on two cores make Chromium skip frames and time out.
    let browser_started = Instant::now();
    let mut failures = Vec::new();
    let mut figures = Vec::new();
    // Batches of cases that play side by side: the cuts of the MP4s, the
    // whole files and the FLV as MP4, then the fragmented movie.
    let batch_of = |c: &Case| match (c.variant, c.kind) {
        (FRAGMENTED, _) => 2,
        (FLV, _) | (_, Kind::Whole) => 1,
        _ => 0,
    };
    let batches: Vec<Vec<&Case>> = (0..3)
        .map(|b| cases.iter().filter(|c| batch_of(c) == b).collect())
        .collect();
    for batch in batches {
        let batch: Vec<Case> = batch.into_iter().cloned().collect();
        match drive(&batch, &hosts, &dir) {
            Err(e) => failures.push(e),
            Ok(report) => {
                eprintln!("browser-mp4: {}", report.field("browser"));
                for case in &batch {
                    let found = report
                        .field("cases")
                        .items()
                        .iter()
                        .find(|r| r.field("id").str() == Some(case.id.as_str()));
                    let host = *hosts.iter().find(|h| h.name() == case.host).unwrap();
                    let (f, fail) = match found {
                        None => (Figures::default(), vec!["no report".to_string()]),
                        Some(r) => check_case(case, host, r, cuts.get(case.variant), &mut refs),
                    };
                    eprintln!(
                        "browser-mp4: {}: {}",
                        case.id,
                        if fail.is_empty() { "ok" } else { "FAILED" }
                    );
                    for line in &fail {
                        eprintln!("    {line}");
                    }
                    failures.extend(fail.into_iter().map(|l| format!("{}: {l}", case.id)));
                    figures.push((case.clone(), f));
                }
            }
        }
    }
    let browser_time = browser_started.elapsed();
    let (cases, figures): (Vec<Case>, Vec<Figures>) = figures.into_iter().unzip();
    if !figures.is_empty() {
        print_table(&cases, &figures);
    }
    eprintln!(
        "browser-mp4: {} cases; movie ready in {:.1} s, browser {:.1} s, {:.1} s in all",
        cases.len(),
        made.as_secs_f64(),
        browser_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(hosts);
    drop((example, example_kf, nginx, lighttpd));
    support::finish(&dir, &failures);
}

#[test]
fn frame_and_range_arithmetic() {
    assert_eq!(mad(&[1.0, 2.0], &[2.0, 0.0]), 1.5);
    assert_eq!(mad(&[1.0], &[]), f64::INFINITY);
    let flat = vec![7u8; WIDTH * HEIGHT * 3];
    let means = block_means(&flat);
    assert_eq!(means.len(), (WIDTH / BLOCK) * (HEIGHT / BLOCK) * 3);
    assert!(means.iter().all(|&m| m == 7.0));
    let cut = Cut {
        bytes: Vec::new(),
        keyframes: vec![(-1.0, 10), (1.0, 20), (89.0, 30), (91.0, 40)],
    };
    assert_eq!(cut.keyframe_for(90.0), Some((89.0, 30)));
    assert_eq!(cut.keyframe_for(89.0), Some((89.0, 30)));
    assert_eq!(Kind::Seek.duration(), 119.0);
    assert_eq!(Kind::End.query(), "start=30&end=45");
}
