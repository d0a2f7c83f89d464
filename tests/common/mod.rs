//! Shared integration-test harness: the generated media matrix, ffmpeg /
//! ffprobe oracles, a strict FLV tag reader of our own, and small helpers
//! (draining streams, temp files, a worker pool for subprocess checks).
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pseudostream::{Error, Fill, Media, MetadataMode, Options, Plan};

pub mod host;
pub mod hosts;
pub mod mp4;

// ------------------------------------------------------------------ setup --

/// The crate root (tests run from it, but do not rely on that).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the tools a test needs are installed. When one is missing, the
/// quick loop (`cargo test` on a machine without them) skips the test: this
/// prints one line naming `script`, which installs them, and returns false.
/// With `PSEUDOSTREAM_TEST_ALL=1` (set by `scripts/test.sh`) nothing is
/// skipped: the test goes on and fails on the missing tool.
pub fn have_tools(tools: &[&str], script: &str) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !tool_works(t)).collect();
    if missing.is_empty() || std::env::var_os("PSEUDOSTREAM_TEST_ALL").is_some_and(|v| v == "1") {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    // Straight to stderr: the harness captures eprintln! of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: needs {} (run {script})",
        missing.join(" and ")
    );
    false
}

/// Returns from the calling test, skipping it, when ffmpeg and ffprobe (which
/// make the test media and decode what is served) are missing; see
/// [`have_tools`].
#[allow(unused_macros)]
macro_rules! needs_ffmpeg {
    () => {
        if !$crate::common::have_tools(&["ffmpeg", "ffprobe"], "scripts/setup-deps.sh") {
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use needs_ffmpeg;

fn tool_works(name: &str) -> bool {
    Command::new(name)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails loudly when an external tool the suite depends on is missing.
pub fn require_tool(name: &str) {
    if !tool_works(name) {
        panic!("'{name}' is missing or broken: run scripts/setup-deps.sh");
    }
}

/// `target/test-media`, made by scripts/make-test-media.sh.
pub fn media_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_tool("ffmpeg");
        require_tool("ffprobe");
        let dir = root().join("target").join("test-media");
        make_media("make-test-media.sh", &[], &dir);
        dir
    })
}

/// Runs `scripts/<script> DIR` unless the media it makes is there already:
/// DIR/manifest.txt newer than the script and the `helpers` it runs, and
/// every file it lists present. scripts/test.sh makes the media once; each
/// test binary then only looks.
pub fn make_media(script: &str, helpers: &[&str], dir: &Path) {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let scripts = root().join("scripts");
    let made = modified(&dir.join("manifest.txt"));
    let current = made.is_some()
        && std::iter::once(script)
            .chain(helpers.iter().copied())
            .all(|s| modified(&scripts.join(s)) < made)
        && fs::read_to_string(dir.join("manifest.txt")).is_ok_and(|m| {
            m.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_whitespace().next())
                .all(|file| dir.join(file).is_file())
        });
    if current {
        return;
    }
    let out = Command::new("bash")
        .arg(scripts.join(script))
        .arg(dir)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script} ({e}): run scripts/setup-deps.sh"));
    if !out.status.success() {
        panic!(
            "{script} failed (run scripts/setup-deps.sh):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One line of `manifest.txt`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub file: String,
    pub path: PathBuf,
    pub kind: String,
    pub variant: String,
    pub has_audio: bool,
    pub has_video: bool,
    /// Entries in the onMetaData keyframes object; None when absent.
    pub meta_keyframes: Option<usize>,
}

pub fn manifest() -> &'static [Entry] {
    static LIST: OnceLock<Vec<Entry>> = OnceLock::new();
    LIST.get_or_init(|| {
        let dir = media_dir();
        let text = fs::read_to_string(dir.join("manifest.txt")).expect("manifest.txt");
        let list: Vec<Entry> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(f.len(), 6, "manifest line: {line}");
                Entry {
                    file: f[0].to_string(),
                    path: dir.join(f[0]),
                    kind: f[1].to_string(),
                    variant: f[2].to_string(),
                    has_audio: f[3] == "1",
                    has_video: f[4] == "1",
                    meta_keyframes: f[5].parse().ok(),
                }
            })
            .collect();
        assert_eq!(list.len(), 27, "manifest should list the whole matrix");
        list
    })
}

pub fn entry(file: &str) -> &'static Entry {
    manifest()
        .iter()
        .find(|e| e.file == file)
        .unwrap_or_else(|| panic!("{file} not in manifest"))
}

// --------------------------------------------------------------- ffprobe --

#[derive(Clone, Debug)]
pub struct StreamInfo {
    pub index: usize,
    pub codec_type: String,
    pub codec_name: String,
}

#[derive(Clone, Copy, Debug)]
pub struct Packet {
    pub stream: usize,
    pub video: bool,
    pub dts_ms: Option<i64>,
    pub pts_ms: Option<i64>,
    pub pos: Option<u64>,
    pub key: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub streams: Vec<StreamInfo>,
    pub packets: Vec<Packet>,
}

impl Probe {
    pub fn has(&self, codec_type: &str) -> bool {
        self.streams.iter().any(|s| s.codec_type == codec_type)
    }

    pub fn codec(&self, codec_type: &str) -> Option<&str> {
        self.streams
            .iter()
            .find(|s| s.codec_type == codec_type)
            .map(|s| s.codec_name.as_str())
    }
}

/// "12.345000" (or "-0.5") to whole milliseconds; None for "N/A".
pub fn seconds_to_ms(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole.parse().ok()?;
    let mut ms = 0i64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        ms += i64::from(b - b'0') * [100, 10, 1][i];
    }
    let v = whole * 1000 + ms;
    Some(if neg { -v } else { v })
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): run scripts/setup-deps.sh"))
}

/// Streams and every packet (demux order) of a file, by one ffprobe call.
/// The container's duration as ffprobe reports it, ms.
pub fn ffprobe_duration_ms(path: &Path) -> Result<f64, String> {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path));
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse::<f64>()
        .map(|s| s * 1000.0)
        .map_err(|_| format!("ffprobe gives no duration for {}: {text}", path.display()))
}

pub fn probe(path: &Path) -> Result<Probe, String> {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type,codec_name:packet=stream_index,pts_time,dts_time,pos,flags",
            "-of",
            "compact",
        ])
        .arg(path));
    if !out.status.success() {
        return Err(format!(
            "ffprobe failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut probe = Probe::default();
    let mut raw_packets = Vec::new();
    for line in text.lines() {
        let mut parts = line.split('|');
        let section = parts.next().unwrap_or("");
        let kv: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        match section {
            "stream" => probe.streams.push(StreamInfo {
                index: kv["index"].parse().unwrap(),
                codec_type: kv["codec_type"].to_string(),
                codec_name: kv["codec_name"].to_string(),
            }),
            "packet" => raw_packets.push((
                kv["stream_index"].parse::<usize>().unwrap(),
                kv.get("dts_time").and_then(|s| seconds_to_ms(s)),
                kv.get("pts_time").and_then(|s| seconds_to_ms(s)),
                kv.get("pos").and_then(|s| s.parse().ok()),
                kv.get("flags").is_some_and(|f| f.starts_with('K')),
            )),
            _ => {}
        }
    }
    let video: Vec<usize> = probe
        .streams
        .iter()
        .filter(|s| s.codec_type == "video")
        .map(|s| s.index)
        .collect();
    probe.packets = raw_packets
        .into_iter()
        .map(|(stream, dts_ms, pts_ms, pos, key)| Packet {
            stream,
            video: video.contains(&stream),
            dts_ms,
            pts_ms,
            pos,
            key,
        })
        .collect();
    Ok(probe)
}

/// `ffmpeg -v error -i F -f null -`: Ok when it exits 0 and prints nothing.
pub fn decode_clean(path: &Path) -> Result<(), String> {
    let out = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-threads", "1", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]));
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !err.trim().is_empty() {
        return Err(format!(
            "ffmpeg decode of {} (exit {:?}): {}",
            path.display(),
            out.status.code(),
            err.trim().chars().take(600).collect::<String>()
        ));
    }
    Ok(())
}

/// Whether the first decoded video frame is a key frame.
pub fn first_video_frame_is_key(path: &Path) -> Result<bool, String> {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "compact",
        ])
        .arg(path));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("frame|"))
        .ok_or_else(|| format!("no video frame decoded from {}", path.display()))?;
    Ok(line.split('|').any(|kv| kv == "key_frame=1"))
}

// ------------------------------------------------------- our FLV reader --

pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const SCRIPT: u8 = 18;

#[derive(Clone, Debug)]
pub struct Tag {
    pub pos: u64,
    pub kind: u8,
    pub size: u32,
    pub ts: u32,
    /// First two body bytes (0 where the body is shorter).
    pub b0: u8,
    pub b1: u8,
}

impl Tag {
    pub fn span(&self) -> u64 {
        15 + u64::from(self.size)
    }
    pub fn end(&self) -> u64 {
        self.pos + self.span()
    }
    pub fn is_av(&self) -> bool {
        self.kind == AUDIO || self.kind == VIDEO
    }
    /// AVC/HEVC sequence header or AAC AudioSpecificConfig.
    pub fn is_config(&self) -> bool {
        match self.kind {
            VIDEO => matches!(self.b0 & 0x0f, 7 | 12) && self.b1 == 0,
            AUDIO => self.b0 >> 4 == 10 && self.b1 == 0,
            _ => false,
        }
    }
    /// A video tag carrying a key picture.
    pub fn is_key_picture(&self) -> bool {
        self.kind == VIDEO
            && self.b0 >> 4 == 1
            && (!matches!(self.b0 & 0x0f, 7 | 12) || self.b1 == 1)
    }
    pub fn body<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.pos as usize + 11..self.pos as usize + 11 + self.size as usize]
    }
    pub fn bytes<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.pos as usize..self.end() as usize]
    }
}

#[derive(Clone, Debug)]
pub struct Flv {
    pub flags: u8,
    pub data_start: u64,
    pub tags: Vec<Tag>,
}

impl Flv {
    pub fn tag_at(&self, pos: u64) -> Option<&Tag> {
        self.tags
            .binary_search_by_key(&pos, |t| t.pos)
            .ok()
            .map(|i| &self.tags[i])
    }
    /// The tag whose span (header, body, PreviousTagSize) holds `byte`.
    pub fn tag_containing(&self, byte: u64) -> Option<&Tag> {
        let i = self
            .tags
            .partition_point(|t| t.pos <= byte)
            .checked_sub(1)?;
        let t = &self.tags[i];
        (byte < t.end()).then_some(t)
    }
    pub fn media_start(&self) -> u64 {
        self.tags
            .iter()
            .find(|t| t.is_av())
            .map_or(u64::MAX, |t| t.pos)
    }
}

/// Reads a whole FLV strictly: valid header, PreviousTagSize0 = 0, only
/// audio/video/script tags, every PreviousTagSize right, and the last tag
/// ending exactly at the end of the bytes.
pub fn parse_flv(b: &[u8]) -> Result<Flv, String> {
    if b.len() < 13 || &b[..3] != b"FLV" {
        return Err("no FLV header".into());
    }
    let offset = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as u64;
    if offset != 9 || b[9..13] != [0, 0, 0, 0] {
        return Err(format!("odd data offset {offset} or PreviousTagSize0"));
    }
    let mut pos = 13u64;
    let mut tags = Vec::new();
    while (pos as usize) < b.len() {
        let p = pos as usize;
        if p + 11 > b.len() {
            return Err(format!("partial tag header at {pos}"));
        }
        let kind = b[p] & 0x1f;
        if !matches!(kind, AUDIO | VIDEO | SCRIPT) {
            return Err(format!("tag type {kind} at {pos}"));
        }
        let size = u32::from_be_bytes([0, b[p + 1], b[p + 2], b[p + 3]]);
        let ts = u32::from_be_bytes([b[p + 7], b[p + 4], b[p + 5], b[p + 6]]);
        let end = p + 11 + size as usize + 4;
        if end > b.len() {
            return Err(format!(
                "tag at {pos} runs past the end ({end} > {})",
                b.len()
            ));
        }
        let prev = u32::from_be_bytes([b[end - 4], b[end - 3], b[end - 2], b[end - 1]]);
        if prev != size + 11 {
            return Err(format!(
                "PreviousTagSize {prev} after tag at {pos} of size {size}"
            ));
        }
        let body = &b[p + 11..p + 11 + size as usize];
        tags.push(Tag {
            pos,
            kind,
            size,
            ts,
            b0: body.first().copied().unwrap_or(0),
            b1: body.get(1).copied().unwrap_or(0),
        });
        pos = end as u64;
    }
    Ok(Flv {
        flags: b[4],
        data_start: 13,
        tags,
    })
}

// ------------------------------------------------------ reference facts --

/// What the tests know about one media file, independently of the library.
pub struct Reference {
    pub entry: Entry,
    pub bytes: Vec<u8>,
    pub flv: Flv,
    pub probe: Probe,
    /// Where a stream may start, per ffprobe: video key packets, or audio
    /// packets about a second apart for files without video (time_ms, offset).
    pub seek_points: Vec<(u64, u64)>,
    /// Timestamp of the first and the largest audio/video packet.
    pub first_ms: u64,
    pub last_ms: u64,
}

impl Reference {
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    pub fn has_video(&self) -> bool {
        self.probe.has("video")
    }
    pub fn has_audio(&self) -> bool {
        self.probe.has("audio")
    }
    /// The header flags a new stream for this file must carry.
    pub fn stream_flags(&self) -> u8 {
        (u8::from(self.has_audio()) << 2) | u8::from(self.has_video())
    }
    /// Seek point for a time: the last at or before it, the first of equals.
    pub fn point_for_time(&self, t: u64) -> Option<usize> {
        let last = self.seek_points.iter().rposition(|p| p.0 <= t)?;
        let time = self.seek_points[last].0;
        self.seek_points.iter().position(|p| p.0 == time)
    }
    /// Seek point for a byte: the last starting at or before it.
    pub fn point_for_byte(&self, b: u64) -> Option<usize> {
        self.seek_points.iter().rposition(|p| p.1 <= b)
    }
    /// The last configuration tag of each kind that precedes `offset`.
    pub fn configs_before(&self, offset: u64) -> Vec<&Tag> {
        let mut out = Vec::new();
        for kind in [VIDEO, AUDIO] {
            if let Some(t) = self
                .flv
                .tags
                .iter()
                .rev()
                .find(|t| t.kind == kind && t.is_config() && t.pos < offset)
            {
                out.push(t);
            }
        }
        out
    }
}

fn build_reference(entry: &Entry) -> Reference {
    let bytes = fs::read(&entry.path).unwrap();
    let flv = parse_flv(&bytes).unwrap_or_else(|e| panic!("{}: {e}", entry.file));
    let probe = probe(&entry.path).unwrap();
    let has_video = probe.has("video");
    let mut seek_points = Vec::new();
    for p in &probe.packets {
        let (Some(dts), Some(pos)) = (p.dts_ms, p.pos) else {
            continue;
        };
        let dts = dts as u64;
        if has_video {
            if p.video && p.key {
                seek_points.push((dts, pos));
            }
        } else if seek_points
            .last()
            .map_or(true, |l: &(u64, u64)| dts >= l.0 + 1000)
        {
            seek_points.push((dts, pos));
        }
    }
    let dts: Vec<u64> = probe
        .packets
        .iter()
        .filter_map(|p| p.dts_ms)
        .map(|d| d as u64)
        .collect();
    Reference {
        entry: entry.clone(),
        first_ms: dts[0],
        last_ms: *dts.iter().max().unwrap(),
        bytes,
        flv,
        probe,
        seek_points,
    }
}

/// The reference of a manifest file, computed once per test binary.
pub fn reference(file: &str) -> Arc<Reference> {
    static MAP: OnceLock<Mutex<HashMap<String, Arc<Reference>>>> = OnceLock::new();
    let map = MAP.get_or_init(Default::default);
    if let Some(r) = map.lock().unwrap().get(file) {
        return Arc::clone(r);
    }
    let r = Arc::new(build_reference(entry(file)));
    map.lock()
        .unwrap()
        .entry(file.to_string())
        .or_insert(r)
        .clone()
}

/// References of the whole matrix, built in parallel.
pub fn all_references() -> Vec<Arc<Reference>> {
    let files: Vec<String> = manifest().iter().map(|e| e.file.clone()).collect();
    let out = par_map(files, |f| Ok(reference(&f)));
    out.into_iter().map(|r| r.unwrap()).collect()
}

// -------------------------------------------------------------- helpers --

/// Drains `len` bytes from `first` of a plan's response, unpaced.
pub fn drain(media: &Media, plan: &Plan, first: u64, len: u64) -> Result<Vec<u8>, Error> {
    let mut stream = media.stream(plan, first, len)?;
    let mut out = Vec::with_capacity(len as usize);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.fill(&mut buf, 0)? {
            Fill::Data(n) => out.extend_from_slice(&buf[..n]),
            Fill::Wait(us) => panic!("an unpaced stream asked to wait {us} us"),
            Fill::Done => break,
        }
    }
    assert_eq!(out.len() as u64, len, "stream delivered a different length");
    Ok(out)
}

/// The whole response of a plan.
pub fn body(media: &Media, plan: &Plan) -> Vec<u8> {
    drain(media, plan, 0, plan.len()).expect("draining a plan")
}

/// A 13-byte FLV header with these flags.
pub fn flv_header(flags: u8) -> Vec<u8> {
    vec![b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Seconds with millisecond precision, as a query value.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A file under `target/tmp-it/<pid>/` removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        let dir = DIR.get_or_init(|| {
            let base = root().join("target").join("tmp-it");
            // Empty folders left by earlier runs go (non-empty ones stay);
            // a running test binary's stays even when empty, since it may be
            // about to write a file there.
            if let Ok(entries) = fs::read_dir(&base) {
                for e in entries.flatten() {
                    let name = e.file_name();
                    let alive = Path::new("/proc").join(&name).exists();
                    if !alive {
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
            let dir = base.join(std::process::id().to_string());
            fs::create_dir_all(&dir).unwrap();
            dir
        });
        // Again each time: a concurrent run may have swept it while empty.
        fs::create_dir_all(dir).unwrap();
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempFile(dir.join(format!("{n}-{name}")))
    }
    pub fn with_bytes(name: &str, bytes: &[u8]) -> TempFile {
        let t = TempFile::new(name);
        fs::write(&t.0, bytes).unwrap();
        t
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Workers for subprocess checks: 2 to 4.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

/// Runs `f` over `items` on a few threads; results keep the input order.
pub fn par_map<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<R, String> + Sync,
) -> Vec<Result<R, String>> {
    let n = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<Result<R, String>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers().min(n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let item = slots[i].lock().unwrap().take().unwrap();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)))
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Err(format!("panicked: {msg}"))
                    });
                *results[i].lock().unwrap() = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap())
        .collect()
}

/// Panics listing every failure (a report is more useful than the first).
pub fn assert_no_failures(what: &str, failures: &[String]) {
    if !failures.is_empty() {
        panic!(
            "{what}: {} failure(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

/// Options that serve every file as stored (no rewritten metadata), for
/// tests whose byte positions are the stored file's.
pub fn stored_options() -> Options {
    Options {
        metadata: MetadataMode::Off,
        ..Options::default()
    }
}

/// Where `long_flv()` lives.
pub fn long_media_dir() -> PathBuf {
    let dir = root().join("target").join("long-media");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// About 800 MB, 3.5 hours, of h264_aac.plain.flv's tags repeated with
/// shifted timestamps: an FLV without keyframe metadata that takes a
/// noticeable time to index when it is not in the page cache. Made once and
/// kept between runs.
pub fn long_flv() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = long_media_dir().join("long.flv");
        let source = reference("h264_aac.plain.flv");
        let b = &source.bytes;
        let (head, media): (Vec<&Tag>, Vec<&Tag>) = source
            .flv
            .tags
            .iter()
            .partition(|t| t.kind == SCRIPT || t.is_config());
        let block: Vec<u8> = media.iter().flat_map(|t| t.bytes(b)).copied().collect();
        let period = media.iter().map(|t| t.ts).max().unwrap() + 100;
        let copies = 800_000_000 / block.len() as u64;
        let size = 13 + head.iter().map(|t| t.span()).sum::<u64>() + copies * block.len() as u64;
        if fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            return path;
        }
        let aside = path.with_extension("flv.tmp");
        let mut out = std::io::BufWriter::new(fs::File::create(&aside).unwrap());
        use std::io::Write;
        out.write_all(&b[..13]).unwrap();
        for t in &head {
            out.write_all(t.bytes(b)).unwrap();
        }
        let mut copy = block.clone();
        for k in 0..copies {
            let mut at = 0;
            for t in &media {
                let ts = t.ts + k as u32 * period;
                let [hi, b2, b1, b0] = ts.to_be_bytes();
                copy[at + 4..at + 8].copy_from_slice(&[b2, b1, b0, hi]);
                at += t.span() as usize;
            }
            out.write_all(&copy).unwrap();
        }
        let file = out.into_inner().unwrap();
        file.sync_all().unwrap();
        fs::rename(&aside, &path).unwrap();
        path
    })
    .clone()
}

/// Writes the file's pages out and drops them from the page cache, so the
/// next read comes from the disk.
pub fn drop_from_page_cache(path: &Path) {
    let file = fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: a valid descriptor; posix_fadvise only advises the kernel.
    let rc = unsafe {
        libc::posix_fadvise(
            std::os::unix::io::AsRawFd::as_raw_fd(&file),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(rc, 0, "posix_fadvise");
}
