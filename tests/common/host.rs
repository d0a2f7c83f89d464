//! Driving a real host over HTTP: a small HTTP/1.1 client, process and port
//! helpers, and the request matrix every host binding must pass (nginx, PHP,
//! ASP.NET, Rack). Expected bytes come from the library and the file; ffmpeg
//! decodes every `init` response.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;
use pseudostream::{query, CutMode, Media, Options, PrefixMode, StartUnit};

/// A port for a test server, never handed out twice while this process
/// lives, nor to another test process at the same time.
///
/// Ports come from just below the kernel's ephemeral range: a client's
/// `connect()` is never given one of them as its own source port, so a
/// probe can not connect to itself (TCP simultaneous open) while the
/// server is still starting. Each port is reserved by an exclusive lock on
/// `$TMPDIR/pseudostream-test-ports/<port>`, held until the process exits
/// (the kernel drops it even after a crash), so test binaries run in
/// parallel never share one.
pub fn free_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<fs::File>> = std::sync::Mutex::new(Vec::new());
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ports = server_ports();
    let span = u32::from(ports.end - ports.start);
    let dir = std::env::temp_dir().join("pseudostream-test-ports");
    fs::create_dir_all(&dir).unwrap();
    // Start at a place of this process's own, so parallel binaries seldom
    // try the same ports, and a port's last user has long let it go.
    let first = std::process::id().wrapping_mul(2_654_435_761) % span;
    for _ in 0..span {
        let at = (first + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) % span;
        let port = ports.start + at as u16;
        let Ok(lock) = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        // Held by nobody else's lock; skip it if something outside the
        // tests listens there.
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            return port;
        }
    }
    panic!("no free test port in {ports:?}");
}

/// 10,000 ports just below the ephemeral range (or above it, where it
/// starts too low to leave room).
fn server_ports() -> std::ops::Range<u16> {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut ends = range.split_whitespace().map(|p| p.parse::<u16>());
    let (low, high) = match (ends.next(), ends.next()) {
        (Some(Ok(low)), Some(Ok(high))) => (low, high),
        _ => (32768, 60999),
    };
    if low >= 11_024 {
        low - 10_000..low
    } else if high <= 55_535 {
        high + 1..high + 10_001
    } else {
        panic!("the ephemeral port range {low}-{high} leaves no room for test servers")
    }
}

/// Waits up to 30 s until `server` accepts connections on `port`. Fails at
/// once, with its exit status and the end of `log`, if it exits first. A
/// connection that turns out to be to itself (source port = `port`) does
/// not count.
pub fn wait_until_listening(server: &mut Process, port: u16, what: &str, log: Option<&Path>) {
    let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let log_tail = || match log.map(fs::read_to_string) {
        Some(Ok(text)) => text
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!(
                "{what} exited ({status}) before listening on port {port}\n{}",
                log_tail()
            );
        }
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            if s.local_addr().ok() != Some(addr) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 30 s\n{}",
            log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The example host and CLI, as cargo builds it beside the tests.
pub fn example_exe() -> PathBuf {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let exe = root()
        .join("target")
        .join(profile)
        .join("examples")
        .join("pseudostream");
    built(exe, "cargo builds examples with the tests")
}

/// `path`, a build output the tests need; fails saying `how` to make it
/// when it is missing.
pub fn built(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.exists(), "{} missing: {how}", path.display());
    path
}

/// A child process killed and reaped when dropped.
pub struct Process(pub Child);

impl Process {
    /// Sends `signal` (a graceful stop: nginx's SIGQUIT, lighttpd's SIGINT)
    /// and waits up to 5 s for the process to end; the drop kills what is
    /// left.
    pub fn stop(&mut self, signal: libc::c_int) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        // SAFETY: kill(2) on our own child, not yet reaped, so its pid is
        // still its own.
        unsafe { libc::kill(self.0.id() as libc::pid_t, signal) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A response as received.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a new connection; reads to the end (chunked
/// bodies are decoded). A Content-Length must match the body received.
pub fn http(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let started = Instant::now();
    let s = send_request(port, method, target, headers);
    read_reply(s, method, target, started)
}

/// Sends one HTTP/1.1 request (`Connection: close`) on a new connection.
pub fn send_request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    s
}

/// Reads the reply to the request sent on `s` to its end, as `http` does.
pub fn read_reply(mut s: TcpStream, method: &str, target: &str, started: Instant) -> Reply {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let elapsed = started.elapsed();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in the reply to {method} {target}"));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().to_string();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
        elapsed,
    };
    if reply
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(&reply.body);
    }
    if method != "HEAD" && ![204, 304].contains(&status) {
        if let Some(len) = reply.header("Content-Length") {
            assert_eq!(
                len.parse::<usize>().unwrap(),
                reply.body.len(),
                "{target}: Content-Length vs body"
            );
        }
    }
    reply
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
}

/// The kinds of the top-level boxes of MP4 bytes, in order.
fn top_level_kinds(mut b: &[u8]) -> Vec<String> {
    let mut kinds = Vec::new();
    while b.len() >= 8 {
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        kinds.push(String::from_utf8_lossy(&b[4..8]).into_owned());
        if size < 8 || size > b.len() {
            break;
        }
        b = &b[size..];
    }
    kinds
}

/// `bytes=a-b` or `bytes=a-` of a `len`-byte body as a slice range.
fn parse_range(range: &str, len: usize) -> (usize, usize) {
    let (a, b) = range["bytes=".len()..].split_once('-').unwrap();
    let a: usize = a.parse().unwrap();
    let b = if b.is_empty() {
        len
    } else {
        b.parse::<usize>().unwrap() + 1
    };
    (a, b.min(len))
}

/// What the library plans for `query` on `file` under these options.
pub fn expected(file: &Path, query_str: &str, prefix: PrefixMode, unit: StartUnit) -> Vec<u8> {
    let options = Options {
        prefix,
        start_unit: unit,
        ..Options::default()
    };
    served_bytes(file, query_str, &options)
}

/// The body the library serves for `query_str` ("" = no query) on `file`
/// under `options`, drained unpaced (the bytes, not their timing).
pub fn served_bytes(file: &Path, query_str: &str, options: &Options) -> Vec<u8> {
    let media = Media::open(file).unwrap();
    let request = query::parse(query_str.as_bytes(), options).unwrap();
    let mut plan = media.plan(options, &request).unwrap();
    plan.rate_bytes_per_s = 0;
    body(&media, &plan)
}

/// The library's keyframe cut of `file` (in `host_media_dir()`) for
/// `query_str` (start in seconds): what a host set to cut MP4 at keyframes
/// serves. Fails when the start is on a keyframe, where the exact cut is the
/// same and the setting could not be told apart.
pub fn keyframe_cut(file: &str, query_str: &str) -> Vec<u8> {
    let path = host_media_dir().join(file);
    let options = Options {
        start_unit: StartUnit::Seconds,
        cut: CutMode::Keyframe,
        ..Options::default()
    };
    let keyframe = served_bytes(&path, query_str, &options);
    assert_ne!(
        keyframe,
        expected(&path, query_str, PrefixMode::Init, StartUnit::Seconds),
        "{file}?{query_str} starts on a keyframe: exact and keyframe cuts agree, \
         nothing to tell apart"
    );
    keyframe
}

/// ffmpeg decodes the bytes cleanly and the first video frame is a key frame.
pub fn decode_bytes(bytes: &[u8], what: &str) -> Result<(), String> {
    let t = TempFile::with_bytes("host.flv", bytes);
    decode_clean(t.path()).map_err(|e| format!("{what}: {e}"))?;
    if !first_video_frame_is_key(t.path())? {
        return Err(format!("{what}: first video frame is not a key frame"));
    }
    Ok(())
}

/// `target/host-media/`: the test media and the sample (hard links), plus a
/// file that is not FLV (`not-video.flv`). Every app-server host serves it.
pub fn host_media_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = root().join("target").join("host-media");
        fs::create_dir_all(&dir).unwrap();
        let mut sources: Vec<(PathBuf, String)> = manifest()
            .iter()
            .map(|e| (e.path.clone(), e.file.clone()))
            .collect();
        sources.push((
            root().join("samples").join("sample.flv"),
            "sample.flv".into(),
        ));
        let mp4 = super::mp4::mp4_media_dir();
        for (file, name) in MP4_HOST_FILES {
            sources.push((mp4.join(file), name.to_string()));
        }
        for (src, name) in sources {
            // Hard links (or copies): hosts rightly refuse symlinks that
            // lead out of their root.
            let link = dir.join(&name);
            let fresh = fs::metadata(&link)
                .and_then(|l| Ok((l, fs::metadata(&src)?)))
                .is_ok_and(|(l, s)| l.len() == s.len() && l.modified().ok() == s.modified().ok());
            if !fresh {
                // Made aside and renamed over: test binaries run in
                // parallel, and another one's host may be serving the file.
                let aside = dir.join(format!(".{name}.{}", std::process::id()));
                let _ = fs::remove_file(&aside);
                if fs::hard_link(&src, &aside).is_err() {
                    fs::copy(&src, &aside).unwrap();
                }
                fs::rename(&aside, &link).unwrap();
                // Still there when `link` was already the same file.
                let _ = fs::remove_file(&aside);
            }
        }
        write_if_changed(&dir.join("not-video.flv"), b"this is not an FLV file\n");
        // An MP4 whose moov is cut short.
        let whole = fs::read(mp4.join("h264_aac.faststart.mp4")).unwrap();
        write_if_changed(&dir.join("broken.mp4"), &whole[..2000]);
        dir
    })
}

/// Writes `bytes` to `path` unless it holds them already, through a file
/// aside and a rename, so a host reading it meanwhile sees old or new.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|b| b == bytes) {
        return;
    }
    let aside = path.with_extension(format!("new.{}", std::process::id()));
    fs::write(&aside, bytes).unwrap();
    fs::rename(&aside, path).unwrap();
}

/// MP4 files every host serves, from the MP4 media, under these names.
const MP4_HOST_FILES: [(&str, &str); 4] = [
    ("h264_aac.moov_end.mp4", "h264_aac.moov_end.mp4"),
    ("h264_aac.faststart.mp4", "clip.m4v"),
    ("audio_only.m4a", "audio_only.m4a"),
    ("pcm.mov", "pcm.mov"),
];

/// A host under test: serves `host_media_dir()` below `base` (e.g.
/// "/media") on `port`, with `start`/`end` in seconds, prefix `init`, and
/// client pacing (`ri`/`rs`) allowed.
pub struct HostUnderTest {
    pub name: &'static str,
    pub port: u16,
    pub base: String,
    /// The process whose memory must stay flat over many requests.
    pub pid: u32,
}

impl HostUnderTest {
    pub fn get(&self, path_query: &str) -> Reply {
        self.request("GET", path_query, &[])
    }

    pub fn request(&self, method: &str, path_query: &str, headers: &[(&str, &str)]) -> Reply {
        http(
            self.port,
            method,
            &format!("{}/{path_query}", self.base),
            headers,
        )
    }
}

/// Resident memory of a process, kB (VmRSS).
pub fn rss_kb(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A check every host passes below a base path, such as [`run_matrix`]:
/// the failures.
pub type SharedCheck = fn(&HostUnderTest) -> Vec<String>;

/// The request matrix: time, byte (fs), end, bstart/bend, ib/fs seeks equal
/// the library's bytes and decode; Range, HEAD, If-None-Match; bad inputs get
/// their status; client pacing takes the planned time (±5 %). Returns the
/// failures (empty: all passed).
pub fn run_matrix(host: &HostUnderTest) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |m: String| failures.push(format!("{}: {m}", host.name));
    let media = host_media_dir();
    let seconds =
        |q: &str, file: &str| expected(&media.join(file), q, PrefixMode::Init, StartUnit::Seconds);

    // Seeks that must equal the library's plan and decode.
    for file in [
        "h264_aac.yamdi.flv",
        "bframes.plain.flv",
        "flv1_mp3.flvmeta.flv",
    ] {
        let r = reference(file);
        let p = &r.seek_points;
        let queries = [
            format!("start={}", secs(p[p.len() / 2].0 + 300)),
            format!("fs={}", p[1].1 + 5),
            format!("start={}&end={}", secs(p[1].0), secs(p[p.len() - 2].0)),
            format!("ib=3000&fs={}", p[2].1),
        ];
        for q in &queries {
            let reply = host.get(&format!("{file}?{q}"));
            if reply.status != 200 {
                fail(format!("{file}?{q}: status {}", reply.status));
                continue;
            }
            let want = seconds(q, file);
            if reply.body != want {
                fail(format!(
                    "{file}?{q}: {} bytes, the library plans {}",
                    reply.body.len(),
                    want.len()
                ));
                continue;
            }
            if !q.starts_with("ib=") {
                if let Err(e) = decode_bytes(&reply.body, &format!("{file}?{q}")) {
                    fail(e);
                }
            }
        }
        // No parameter: the served file, which is the stored file when its
        // metadata lists valid keyframes, and otherwise the virtual file
        // with keyframes listed (the library's default).
        let served = seconds("", file);
        let whole = host.get(file);
        if whole.status != 200 || whole.body != served {
            fail(format!("{file}: whole file, status {}", whole.status));
        }
        let rewritten = r.entry.meta_keyframes.is_none();
        if rewritten == (served == r.bytes) {
            fail(format!(
                "{file}: served file rewritten {}, metadata keyframes {:?}",
                served != r.bytes,
                r.entry.meta_keyframes
            ));
        }
        // flv.js raw bytes, in the served file's coordinates.
        let (a, b) = (1000usize, 20_000usize);
        let raw = host.get(&format!("{file}?bstart={a}&bend={b}"));
        if raw.status != 200 || raw.body != served[a..=b] {
            fail(format!("{file}?bstart={a}&bend={b}: status {}", raw.status));
        }
        let ranged = host.request("GET", file, &[("Range", "bytes=1000-")]);
        if ranged.status != 206 || ranged.body != served[1000..] {
            fail(format!("{file} Range 1000-: status {}", ranged.status));
        }
    }

    // Range, HEAD and validators on a seeked response.
    let file = "h264_aac.ffidx.flv";
    let q = format!("{file}?start=6.5");
    let full = host.get(&q);
    let len = full.body.len();
    let etag = full.header("ETag").unwrap_or_default().to_string();
    if full.status != 200 || etag.is_empty() {
        fail(format!("{q}: status {}, ETag {etag:?}", full.status));
    } else {
        let part = host.request("GET", &q, &[("Range", "bytes=5-1004")]);
        if part.status != 206 || part.body != full.body[5..1005] {
            fail(format!("{q} Range 5-1004: status {}", part.status));
        }
        let want_cr = format!("bytes 5-1004/{len}");
        if part.header("Content-Range") != Some(want_cr.as_str()) {
            fail(format!(
                "{q}: Content-Range {:?}",
                part.header("Content-Range")
            ));
        }
        let tail = host.request("GET", &q, &[("Range", "bytes=-100")]);
        if tail.status != 206 || tail.body != full.body[len - 100..] {
            fail(format!("{q} Range -100: status {}", tail.status));
        }
        let over = host.request("GET", &q, &[("Range", &format!("bytes={}-", len + 1))]);
        if over.status != 416 {
            fail(format!("{q} Range past the end: status {}", over.status));
        }
        let head = host.request("HEAD", &q, &[]);
        let head_len = head.header("Content-Length").unwrap_or_default();
        if head.status != 200 || !head.body.is_empty() || head_len != len.to_string() {
            fail(format!(
                "HEAD {q}: status {} length {head_len}",
                head.status
            ));
        }
        let cached = host.request("GET", &q, &[("If-None-Match", &etag)]);
        if cached.status != 304 {
            fail(format!("{q} If-None-Match: status {}", cached.status));
        }
        let other = host.get(&format!("{file}?start=2"));
        if other.header("ETag") == Some(etag.as_str()) {
            fail("two seeks share an ETag".into());
        }
    }

    // Bad inputs.
    for (target, want) in [
        (format!("{file}?start=abc"), 400),
        (format!("{file}?start=-1"), 400),
        (format!("{file}?start=1&start=2"), 400),
        (format!("{file}?bstart=1&start=2"), 400),
        (format!("{file}?start=99999"), 416),
        (format!("{file}?start=5&end=2"), 416),
        ("not-video.flv?start=1".to_string(), 415),
        ("missing.flv?start=1".to_string(), 404),
    ] {
        let reply = host.get(&target);
        if reply.status != want {
            fail(format!("{target}: status {} (want {want})", reply.status));
        }
    }
    for target in [
        "../Cargo.toml?start=1",
        "..%2fCargo.toml?start=1",
        "%2e%2e/Cargo.toml",
    ] {
        let reply = host.get(target);
        if ![400, 403, 404].contains(&reply.status) {
            fail(format!("{target}: traversal answered {}", reply.status));
        }
    }

    for m in run_mp4_cases(host) {
        fail(m);
    }
    for m in run_flv_as_mp4_cases(host) {
        fail(m);
    }

    // Pacing requested by the client (burst 0): the library's policy paces
    // every body alike, a seek, the whole file and an open-ended Range.
    let whole = seconds("", "sample.flv");
    let tail_from = whole.len() - 471_040;
    for (q, range, bytes_per_s) in [
        ("start=40&ri=0&rs=800", None, 100_000.0),
        ("ri=0&rs=2400", None, 300_000.0),
        ("ri=0&rs=800", Some(tail_from), 100_000.0),
    ] {
        let mut want = seconds(q, "sample.flv");
        let range_header = range.map(|from| format!("bytes={from}-"));
        let headers: Vec<(&str, &str)> =
            range_header.iter().map(|h| ("Range", h.as_str())).collect();
        let reply = host.request("GET", &format!("sample.flv?{q}"), &headers);
        let mut what = format!("sample.flv?{q}");
        if let Some(from) = range {
            want.drain(..from);
            what += &format!(" Range bytes={from}-");
            let content_range = format!("bytes {from}-{}/{}", whole.len() - 1, whole.len());
            if reply.status != 206 || reply.header("Content-Range") != Some(&content_range) {
                fail(format!(
                    "{what}: status {}, Content-Range {:?}",
                    reply.status,
                    reply.header("Content-Range")
                ));
            }
        }
        let target_s = want.len() as f64 / bytes_per_s;
        let took = reply.elapsed.as_secs_f64();
        eprintln!(
            "{}: {what}: paced {} bytes in {took:.3} s (target {target_s:.3} s)",
            host.name,
            want.len()
        );
        if reply.body != want {
            fail(format!("{what}: paced body differs"));
        } else if (took - target_s).abs() / target_s > 0.05 {
            fail(format!("{what}: took {took:.3} s, target {target_s:.3} s"));
        }
    }
    failures
}

/// FLV as MP4 (`?format=mp4`) through a host: whole and cut, equal to
/// the library's and decoding cleanly, with Range, HEAD, the Content-Type
/// of each kind, and the statuses of what cannot be done.
fn run_flv_as_mp4_cases(host: &HostUnderTest) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |m: String| failures.push(m);
    let media = host_media_dir();
    let seconds =
        |q: &str, file: &str| expected(&media.join(file), q, PrefixMode::Init, StartUnit::Seconds);
    for (target, content_type) in [
        ("bframes.plain.flv?format=mp4", "video/mp4"),
        ("h264_aac.yamdi.flv?format=mp4&start=3.5&end=8", "video/mp4"),
        ("audio_only.yamdi.flv?format=mp4", "audio/mp4"),
    ] {
        let (name, q) = target.split_once('?').unwrap();
        let reply = host.get(target);
        if reply.status != 200 || reply.header("Content-Type") != Some(content_type) {
            fail(format!(
                "{target}: status {}, Content-Type {:?}",
                reply.status,
                reply.header("Content-Type")
            ));
            continue;
        }
        let want = seconds(q, name);
        if reply.body != want {
            fail(format!(
                "{target}: {} bytes differ from the library's {}",
                reply.body.len(),
                want.len()
            ));
            continue;
        }
        let t = TempFile::with_bytes("host-flv.mp4", &reply.body);
        if let Err(e) = decode_clean(t.path()) {
            fail(format!("{target}: {e}"));
        }
        let part = host.request("GET", target, &[("Range", "bytes=1000-1999")]);
        if part.status != 206 || part.body != want[1000..2000] {
            fail(format!("{target} Range 1000-1999: status {}", part.status));
        }
        let head = host.request("HEAD", target, &[]);
        if head.status != 200 || head.header("Content-Length") != Some(&want.len().to_string()) {
            fail(format!("HEAD {target}: status {}", head.status));
        }
    }
    for (target, want) in [
        ("flv1_mp3.flvmeta.flv?format=mp4", 415),
        ("bframes.plain.flv?format=avi", 400),
        ("bframes.plain.flv?format=mp4&start=999", 416),
        ("bframes.plain.flv?format=mp4&bstart=100", 400),
    ] {
        let reply = host.get(target);
        if reply.status != want {
            fail(format!("{target}: status {} (want {want})", reply.status));
        }
    }
    failures
}

/// MP4 through a host: the file as stored, cuts equal to the library's and
/// decoding cleanly, the Content-Type of each kind, Range and HEAD on a cut,
/// and the statuses of bad requests.
fn run_mp4_cases(host: &HostUnderTest) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |m: String| failures.push(m);
    let media = host_media_dir();
    let seconds =
        |q: &str, file: &str| expected(&media.join(file), q, PrefixMode::Init, StartUnit::Seconds);

    let file = "h264_aac.moov_end.mp4";
    // Stored with its moov last: served whole with the moov first.
    let whole = host.get(file);
    let laid_out = seconds("", file);
    let order = top_level_kinds(&whole.body);
    if whole.status != 200 || whole.body != laid_out {
        fail(format!(
            "{file}: whole file, status {}, {} bytes differ from the library's moov-first layout",
            whole.status,
            whole.body.len()
        ));
    } else if order.iter().position(|k| k == "moov") > order.iter().position(|k| k == "mdat") {
        fail(format!(
            "{file}: whole file has boxes {order:?}, moov not first"
        ));
    }
    // Range across the head and both file pieces.
    let n = laid_out.len();
    let tail = format!("bytes={}-", n - 100);
    for range in ["bytes=0-99", "bytes=3000-99999", tail.as_str()] {
        let reply = host.request("GET", file, &[("Range", range)]);
        let (a, b) = parse_range(range, n);
        if reply.status != 206 || reply.body != laid_out[a..b] {
            fail(format!("{file} {range}: status {}", reply.status));
        }
    }
    // Stored with its moov first: the file as it is.
    let stored = fs::read(media.join("clip.m4v")).unwrap();
    let whole = host.get("clip.m4v");
    if whole.status != 200 || whole.body != stored {
        fail(format!("clip.m4v: whole file, status {}", whole.status));
    }
    for (target, content_type) in [
        ("h264_aac.moov_end.mp4?start=5.5&end=9", "video/mp4"),
        ("h264_aac.moov_end.mp4?start=0", "video/mp4"),
        ("clip.m4v?start=3", "video/mp4"),
        ("audio_only.m4a?start=3.3&end=7", "audio/mp4"),
        ("pcm.mov?start=3", "video/quicktime"),
    ] {
        let (name, q) = target.split_once('?').unwrap();
        let reply = host.get(target);
        if reply.status != 200 {
            fail(format!("{target}: status {}", reply.status));
            continue;
        }
        if reply.header("Content-Type") != Some(content_type) {
            fail(format!(
                "{target}: Content-Type {:?}, want {content_type}",
                reply.header("Content-Type")
            ));
        }
        if reply.body != seconds(q, name) {
            fail(format!(
                "{target}: {} bytes differ from the library's cut",
                reply.body.len()
            ));
            continue;
        }
        let t = TempFile::with_bytes("host-cut.mp4", &reply.body);
        if let Err(e) = decode_clean(t.path()) {
            fail(format!("{target}: {e}"));
        }
    }

    // A browser plays a cut by Range: bytes=0- first, then seeks by Range.
    let q = format!("{file}?start=4");
    let full = host.get(&q);
    let len = full.body.len();
    let first = host.request("GET", &q, &[("Range", "bytes=0-")]);
    if first.status != 206 || first.body != full.body {
        fail(format!("{q} Range 0-: status {}", first.status));
    }
    if len > 2000 {
        let part = host.request("GET", &q, &[("Range", "bytes=1000-1999")]);
        if part.status != 206 || part.body != full.body[1000..2000] {
            fail(format!("{q} Range 1000-1999: status {}", part.status));
        }
    }
    let head = host.request("HEAD", &q, &[]);
    if head.status != 200 || head.header("Content-Length") != Some(&len.to_string()) {
        fail(format!(
            "HEAD {q}: status {} length {:?}",
            head.status,
            head.header("Content-Length")
        ));
    }

    for (target, want) in [
        (format!("{file}?start=999"), 416),
        (format!("{file}?start=6&end=5"), 400),
        (format!("{file}?fs=1000"), 400),
        (format!("{file}?start=x"), 400),
        ("broken.mp4?start=1".to_string(), 415),
    ] {
        let reply = host.get(&target);
        if reply.status != want {
            fail(format!("{target}: status {} (want {want})", reply.status));
        }
    }
    failures
}

/// A host configured to pace (rate 100 000 B/s, burst 0, no client pacing
/// needed): a plain GET and an open-ended Range take the paced time (±5 %)
/// with exactly the served bytes. Returns the failures.
pub fn run_paced_location(host: &HostUnderTest) -> Vec<String> {
    let mut failures = Vec::new();
    let file = "h264_aac.plain.flv";
    let options = Options {
        start_unit: StartUnit::Seconds,
        ..Options::default()
    };
    let served = served_bytes(&host_media_dir().join(file), "", &options);
    let from = served.len() / 3;
    for range in [None, Some(from)] {
        let header = range.map(|f| format!("bytes={f}-"));
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Range", h.as_str())).collect();
        let reply = host.request("GET", file, &headers);
        let want = &served[range.unwrap_or(0)..];
        let target_s = want.len() as f64 / 100_000.0;
        let took = reply.elapsed.as_secs_f64();
        let what = format!(
            "{}: paced {file} {}",
            host.name,
            header.as_deref().unwrap_or("(no query)")
        );
        eprintln!(
            "{what}: {} bytes in {took:.3} s (target {target_s:.3} s)",
            want.len()
        );
        if reply.body != want {
            failures.push(format!("{what}: status {}, body differs", reply.status));
        } else if (took - target_s).abs() / target_s > 0.05 {
            failures.push(format!("{what}: took {took:.3} s, target {target_s:.3} s"));
        }
    }
    failures
}

/// Sequential seek requests: after a warm-up, two windows of 1,000 each.
/// A leak grows the host process's resident memory in both windows; a
/// runtime that grows its heap once (Ruby's, Mono's GC) grows it in one.
/// So the smaller of the two windows' growths must stay within `slack_kb`.
/// Returns (rss after warm-up, rss at the end) in kB.
pub fn check_no_leak(host: &HostUnderTest, slack_kb: u64) -> (u64, u64) {
    let file = "h264_aac.plain.flv";
    let request = |i: usize| {
        let q = format!("{file}?start={}.{}&end=12", i % 9, i % 10);
        let reply = host.get(&q);
        assert_eq!(reply.status, 200, "{q}");
    };
    for i in 0..200 {
        request(i);
    }
    let warm = rss_kb(host.pid);
    assert!(
        warm > 0,
        "{}: cannot read the RSS of pid {}",
        host.name,
        host.pid
    );
    let mut after = [0u64; 2];
    for rss in &mut after {
        for i in 0..1000 {
            request(i);
        }
        *rss = rss_kb(host.pid);
    }
    let [first, end] = after;
    eprintln!(
        "{}: RSS {warm} kB after warm-up, {first} kB after 1000 more requests, {end} kB after 2000",
        host.name
    );
    let growth = first.saturating_sub(warm).min(end.saturating_sub(first));
    assert!(
        growth <= slack_kb,
        "{}: RSS grew in both windows of 1000 requests: {warm} -> {first} -> {end} kB",
        host.name
    );
    (warm, end)
}

/// The build tree's shared library.
pub fn build_tree_library() -> PathBuf {
    let lib = root().join("target/release/libpseudostream.so");
    built(lib, "run `cargo build --release`")
}

/// The prefix of an installed library the hosts must use instead of the
/// build tree's (`PSEUDOSTREAM_TEST_INSTALLED=PREFIX`, set by
/// scripts/test-install.sh after `make install PREFIX=…`).
pub fn installed_prefix() -> Option<PathBuf> {
    std::env::var_os("PSEUDOSTREAM_TEST_INSTALLED")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Points a host process at the library under test: the build tree's
/// through PSEUDOSTREAM_LIB, or the installed one, which the bindings then
/// load by its SONAME through the dynamic loader (its directory on
/// LD_LIBRARY_PATH, as ld.so.conf would have it for a system prefix).
pub fn use_library_under_test(cmd: &mut std::process::Command) -> &mut std::process::Command {
    match installed_prefix() {
        Some(prefix) => cmd
            .env_remove("PSEUDOSTREAM_LIB")
            .env("LD_LIBRARY_PATH", prefix.join("lib"))
            .env(
                "PSEUDOSTREAM_HEADER",
                prefix.join("include/pseudostream/pseudostream_ffi.h"),
            ),
        None => cmd.env("PSEUDOSTREAM_LIB", build_tree_library()),
    }
}

/// Checks that process `pid` runs the library under test: the file mapped
/// into it is the build tree's, or the installed `libpseudostream.so.X.Y.Z`.
pub fn assert_library_under_test(pid: u32) {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mapped: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("libpseudostream"))
        .map(PathBuf::from)
        .collect();
    let want = match installed_prefix() {
        Some(prefix) => prefix
            .join("lib")
            .join(format!("libpseudostream.so.{}", env!("CARGO_PKG_VERSION"))),
        None => build_tree_library(),
    };
    let want = want.canonicalize().unwrap_or(want);
    assert!(
        !mapped.is_empty() && mapped.iter().all(|p| *p == want),
        "pid {pid} maps {mapped:?}, not {}",
        want.display()
    );
    eprintln!("pid {pid} runs {}", want.display());
}

/// One GET on a new connection: the reply, when the request was sent and
/// when the first byte of the answer came.
pub fn get_timed(port: u16, target: &str) -> (Reply, Instant, Instant) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let sent = Instant::now();
    let mut raw = vec![0u8];
    s.read_exact(&mut raw).unwrap();
    let first_byte = Instant::now();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
        elapsed: first_byte - sent,
    };
    (reply, sent, first_byte)
}

/// Sends a GET of `target` on a new connection and reads the response
/// header, byte by byte so that nothing of the body is read: the connection
/// and the header.
pub fn get_head(port: u16, target: &str) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    (s, head)
}

/// Sends `seeks` at once (cold seeks into a long file whose index the
/// host must build) and, until they are answered, asks for `small` (a
/// static file whose body is "ok\n") one request after another. Some small
/// requests must be answered while the seeks waited: sent 50 ms after the
/// last seek was sent and done 50 ms before the first byte of any; a host
/// that indexed in its event loop answers none. Returns the seeks' replies.
pub fn serve_during_cold_seeks(what: &str, port: u16, seeks: &[String], small: &str) -> Vec<Reply> {
    let (timed, small_times) = std::thread::scope(|s| {
        let handles: Vec<_> = seeks
            .iter()
            .map(|t| s.spawn(move || get_timed(port, t)))
            .collect();
        let mut small_times = Vec::new();
        while !handles.iter().all(|h| h.is_finished()) {
            let sent = Instant::now();
            let reply = http(port, "GET", small, &[]);
            assert_eq!(reply.body, b"ok\n", "{what}: {small}");
            small_times.push((sent, Instant::now()));
        }
        let timed: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (timed, small_times)
    });
    let sent = timed.iter().map(|(_, sent, _)| *sent).max().unwrap();
    let first_byte = timed.iter().map(|(_, _, first)| *first).min().unwrap();
    let margin = Duration::from_millis(50);
    let meanwhile: Vec<Duration> = small_times
        .iter()
        .filter(|(s, d)| *s >= sent + margin && *d + margin <= first_byte)
        .map(|(s, d)| *d - *s)
        .collect();
    let slowest = meanwhile.iter().max().copied().unwrap_or_default();
    let waited = first_byte.saturating_duration_since(sent).as_secs_f64();
    eprintln!(
        "{what}: cold seeks waited {waited:.3} s for a first byte; \
         {} small requests answered meanwhile, the slowest in {:.1} ms",
        meanwhile.len(),
        slowest.as_secs_f64() * 1000.0
    );
    assert!(
        !meanwhile.is_empty(),
        "{what}: no request was answered while the file was indexed ({waited:.3} s)"
    );
    timed.into_iter().map(|(reply, _, _)| reply).collect()
}

/// Replaces `dir/video.flv` (served as `/swap/video.flv`) with three
/// files in turn, the way deployments do (written aside, renamed over),
/// and asks for a seek into each: the host must serve the new file's
/// bytes within `within` (0: at once).
pub fn check_replaced_files(dir: &Path, port: u16, within: Duration) {
    let target = dir.join("video.flv");
    for file in [
        "h264_aac.plain.flv",
        "bframes.plain.flv",
        "flv1_mp3.yamdi.flv",
    ] {
        let aside = dir.join("video.flv.new");
        fs::copy(media_dir().join(file), &aside).unwrap();
        fs::rename(&aside, &target).unwrap();
        let r = reference(file);
        let kf = r.seek_points[r.seek_points.len() / 2].1;
        let q = format!("start={}", kf + 1);
        let want = expected(&target, &q, PrefixMode::Init, StartUnit::Bytes);
        let deadline = Instant::now() + within;
        loop {
            let reply = http(port, "GET", &format!("/swap/video.flv?{q}"), &[]);
            if reply.status == 200 && reply.body == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{file}: stale index served after replace (status {})",
                reply.status
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Seeks into `long_flv()` served below `location`, each `back` bytes
/// before its end: (queries, targets).
pub fn long_seeks(location: &str, backs: &[u64]) -> (Vec<String>, Vec<String>) {
    let size = fs::metadata(long_flv()).unwrap().len();
    let queries: Vec<String> = backs
        .iter()
        .map(|back| format!("start={}", size - back))
        .collect();
    let targets = queries
        .iter()
        .map(|q| format!("{location}/long.flv?{q}"))
        .collect();
    (queries, targets)
}

/// What is wrong with replies to seeks into `long_flv()`: a status other
/// than 200, a body unlike the library's, a body ffmpeg cannot decode.
pub fn long_seek_failures(replies: &[Reply], queries: &[String]) -> Vec<String> {
    let long = long_flv();
    let mut failures = Vec::new();
    for (reply, q) in replies.iter().zip(queries) {
        let want = expected(&long, q, PrefixMode::Init, StartUnit::Bytes);
        if reply.status != 200 || reply.body != want {
            failures.push(format!("{q}: status {}, body differs", reply.status));
        } else if let Err(e) = decode_bytes(&reply.body, q) {
            failures.push(e);
        }
    }
    failures
}

/// Makes `file` a new version to a host (a later modification time) and
/// drops it from the page cache: the next request indexes it cold.
pub fn new_cold_version(file: &Path) {
    let modified = fs::metadata(file).unwrap().modified().unwrap();
    fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(modified + Duration::from_secs(10))
        .unwrap();
    drop_from_page_cache(file);
}

/// Asks for `builder` (a cold seek) and, while its index is being built,
/// for `waiter` from a client that goes away before it is answered.
/// Returns the builder's reply.
pub fn seek_while_a_waiter_leaves(port: u16, builder: &str, waiter: &str) -> Reply {
    let started = Instant::now();
    let building = send_request(port, "GET", builder, &[]);
    // Read by the host: the index build has begun (a cold one takes seconds).
    wait_until_read_by_server(port, &building);
    let gone = send_request(port, "GET", waiter, &[]);
    wait_until_read_by_server(port, &gone);
    drop(gone);
    read_reply(building, "GET", builder, started)
}

/// Waits until the server on `port` has read all that was sent on `client`:
/// the kernel's table of TCP sockets (/proc/net/tcp) shows the client's
/// bytes acknowledged and nothing left to read in the server's end of the
/// connection. A request read is a request the host has begun to handle.
pub fn wait_until_read_by_server(port: u16, client: &TcpStream) {
    let client_port = client.local_addr().unwrap().port();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = fs::read_to_string("/proc/net/tcp").unwrap();
        let queues = |local: u16, remote: u16| tcp_queues(&table, local, remote);
        let unacked = queues(client_port, port).map(|(tx, _)| tx);
        let unread = queues(port, client_port).map(|(_, rx)| rx);
        if unacked == Some(0) && unread == Some(0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} has not read the request from port {client_port} \
             (unacknowledged {unacked:?}, unread {unread:?})"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// (send queue, receive queue) of the IPv4 connection from `local` to
/// `remote` in a /proc/net/tcp table.
fn tcp_queues(table: &str, local: u16, remote: u16) -> Option<(u64, u64)> {
    let port_of = |address: &str| {
        let hex = address.rsplit(':').next()?;
        u16::from_str_radix(hex, 16).ok()
    };
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || port_of(fields[1])? != local || port_of(fields[2])? != remote {
            return None;
        }
        let (tx, rx) = fields[4].split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

/// Cold index builds of `long_flv()`, served below `/long/`, while the host
/// serves `/tiny/ok.txt` (see `serve_during_cold_seeks`): three seeks at
/// once, each equal to the library's and decoded; then a new version of
/// the file is indexed while its client goes away, the host still serves,
/// and the next seek is right. Returns the query whose client went away.
pub fn check_cold_index_builds(what: &str, port: u16) -> String {
    let long = long_flv();
    let size = fs::metadata(&long).unwrap().len();
    let (queries, targets) = long_seeks("/long", &[300_000, 500_000, 700_000]);

    drop_from_page_cache(&long);
    let seeks = serve_during_cold_seeks(what, port, &targets, "/tiny/ok.txt");
    assert_no_failures(
        &format!("{what}: concurrent cold seeks"),
        &long_seek_failures(&seeks, &queries),
    );

    new_cold_version(&long);
    let gone_q = format!("start={}", size - 400_000);
    let gone = send_request(port, "GET", &format!("/long/long.flv?{gone_q}"), &[]);
    wait_until_read_by_server(port, &gone);
    drop(gone);
    assert_eq!(http(port, "GET", "/tiny/ok.txt", &[]).status, 200, "{what}");
    let again = http(port, "GET", &targets[0], &[]);
    assert_eq!(again.status, 200, "{what}");
    assert!(
        again.body == seeks[0].body,
        "{what}: the seek after the new version differs"
    );
    gone_q
}
