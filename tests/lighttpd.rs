//! The lighttpd module, run for real: Debian's lighttpd on loopback with
//! mod_pseudostream loaded (`make lighttpd-module` builds it). Expected
//! bytes come from the library itself and from the file; ffmpeg decodes
//! every `init` response. lighttpd runs the request matrix every host
//! binding passes (`tests/common/host.rs`), pacing over HTTP/1.1 and over
//! HTTP/2 (h2c, driven by curl), and shows that neither memory nor
//! descriptors stay behind.
//!
//! Ignored by a plain `cargo test` because it needs lighttpd and the built
//! module; `scripts/test.sh` builds both and runs it with `--include-ignored`.

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::host::*;
use common::hosts::lighttpd::{self, check_config};
use common::hosts::{ScratchDir, Started};
use common::*;
use pseudostream::{PrefixMode, StartUnit};

/// One lighttpd process (no workers forked) with the test configuration.
struct Lighttpd {
    port: u16,
    // Stopped before its directory goes.
    server: Started,
    dir: ScratchDir,
}

impl Lighttpd {
    fn start() -> Lighttpd {
        let dir = ScratchDir::new("lighttpd-it");
        fs::create_dir_all(dir.join("swap")).unwrap();
        fs::create_dir_all(dir.join("tiny")).unwrap();
        fs::write(dir.join("tiny/ok.txt"), b"ok\n").unwrap();
        let long = long_media_dir().canonicalize().unwrap();
        let host_media = host_media_dir().canonicalize().unwrap();
        let media = media_dir().canonicalize().unwrap();
        let samples = root().join("samples").canonicalize().unwrap();
        let (hm, m, s, d, l) = (
            host_media.display(),
            media.display(),
            samples.display(),
            dir.display(),
            long.display(),
        );
        let extensions = r#"pseudostream.extensions = (".flv", ".mp4", ".m4v", ".m4a", ".mov")"#;
        let conf = format!(
            r#"server.document-root = "{d}"
server.max-keep-alive-requests = 1000
mimetype.assign = (".flv" => "video/x-flv", ".mp4" => "video/mp4", ".txt" => "text/plain")
alias.url = (
    "/media/" => "{hm}/",
    "/media-paced/" => "{hm}/",
    "/burst/" => "{hm}/",
    "/logged/" => "{hm}/",
    "/static/" => "{hm}/",
    "/bytes/" => "{m}/",
    "/renamed/" => "{m}/",
    "/paced/" => "{s}/",
    "/swap/" => "{d}/swap/",
    "/long/" => "{l}/",
)
$HTTP["url"] =^ "/media/" {{
    {extensions}
    pseudostream.start-unit = "seconds"
}}
$HTTP["url"] =^ "/media-paced/" {{
    {extensions}
    pseudostream.start-unit = "seconds"
    pseudostream.rate = "100000"
    pseudostream.burst = "0"
}}
$HTTP["url"] =^ "/paced/" {{
    {extensions}
    pseudostream.start-unit = "seconds"
    pseudostream.rate = "100000"
    pseudostream.burst = "0"
}}
$HTTP["url"] =^ "/burst/" {{
    {extensions}
    pseudostream.rate = "100000"
    pseudostream.burst = "50000"
}}
$HTTP["url"] =^ "/logged/" {{
    {extensions}
    debug.log-request-handling = "enable"
}}
$HTTP["url"] =^ "/bytes/" {{
    {extensions}
    pseudostream.metadata = "off"
}}
$HTTP["url"] =^ "/renamed/" {{
    {extensions}
    pseudostream.prefix = "header"
    pseudostream.params = ("start" => "pos", "end" => "")
    pseudostream.client-pacing = "disable"
}}
$HTTP["url"] =^ "/swap/" {{
    {extensions}
}}
$HTTP["url"] =^ "/long/" {{
    {extensions}
}}
"#
        );
        let server = lighttpd::Lighttpd {
            dir: &dir,
            conf: &conf,
            access_log: false,
        }
        .start();
        Lighttpd {
            port: server.port,
            server,
            dir,
        }
    }

    fn pid(&self) -> u32 {
        self.server.pid()
    }

    fn host(&self, base: &str) -> HostUnderTest {
        HostUnderTest {
            name: "lighttpd",
            port: self.port,
            base: base.to_string(),
            pid: self.pid(),
        }
    }

    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        http(self.port, method, target, headers)
    }

    fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[])
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Still running, and nothing alarming logged.
    fn problems(&mut self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .error_log()
            .lines()
            .filter(|l| {
                l.contains("unexpected subrequest")
                    || l.contains("does not fit")
                    || l.contains("failed: ps_pacer")
                    || l.contains("timerfd")
                    || l.contains("assert")
            })
            .map(str::to_string)
            .collect();
        if let Ok(Some(status)) = self.server.process.0.try_wait() {
            problems.push(format!("lighttpd exited: {status}"));
        }
        problems
    }

    /// No failures of the test, then none of lighttpd's own.
    fn assert_passes(&mut self, what: &str, failures: &[String]) {
        assert_no_failures(what, failures);
        assert_no_failures("lighttpd", &self.problems());
    }

    /// Passes a check every host passes (`run_matrix`,
    /// `run_paced_location`) below `base`, and logs no problem.
    fn passes_a_shared_check(&mut self, what: &str, base: &str, check: SharedCheck) {
        let failures = check(&self.host(base));
        self.assert_passes(what, &failures);
    }

    fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Descriptors the process holds whose link reads `link`
    /// ("anon_inode:[timerfd]", ...).
    fn fds_to(&self, link: &str) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.flatten()
                    .filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == link))
                    .count()
            })
            .unwrap_or(0)
    }

    fn threads(&self) -> usize {
        fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The descriptor count once it has held still for four seconds. A
    /// connection its client just closed is counted until lighttpd reads its
    /// end, and the stat cache keeps a file it served open until its entry
    /// is two seconds old (swept once a second).
    fn settled_fds(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = self.open_fds();
        let mut since = Instant::now();
        while since.elapsed() < Duration::from_secs(4) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.open_fds();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
        last
    }
}

/// A transfer by curl: status, HTTP version, seconds, body.
struct CurlReply {
    status: u16,
    version: String,
    seconds: f64,
    body: Vec<u8>,
}

/// GETs each URL with curl over HTTP/2 without TLS (prior knowledge), all
/// at once on one connection.
fn curl_h2(urls: &[String]) -> Vec<CurlReply> {
    let outs: Vec<TempFile> = urls.iter().map(|_| TempFile::new("h2.body")).collect();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--http2-prior-knowledge",
        "--parallel",
        "--parallel-immediate",
    ]);
    cmd.args([
        "-w",
        "%{http_code} %{http_version} %{time_total} %{url_effective}\\n",
    ]);
    for (url, out) in urls.iter().zip(&outs) {
        cmd.arg(url).arg("-o").arg(out.path());
    }
    let output = cmd
        .output()
        .expect("curl (scripts/setup-deps.sh installs it)");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    urls.iter()
        .zip(&outs)
        .map(|(url, out)| {
            let line = report
                .lines()
                .find(|l| l.ends_with(url.as_str()))
                .unwrap_or_else(|| panic!("curl wrote nothing for {url}: {report}"));
            let mut f = line.split(' ');
            CurlReply {
                status: f.next().unwrap().parse().unwrap(),
                version: f.next().unwrap().to_string(),
                seconds: f.next().unwrap().parse().unwrap(),
                body: fs::read(out.path()).unwrap_or_default(),
            }
        })
        .collect()
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn lighttpd_passes_the_host_matrix() {
    Lighttpd::start().passes_a_shared_check("lighttpd host matrix", "/media", run_matrix);
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn byte_seeks_equal_the_library_and_decode() {
    let mut lighttpd = Lighttpd::start();
    let mut failures = Vec::new();
    for file in [
        "h264_aac.plain.flv",
        "bframes.yamdi.flv",
        "flv1_mp3.flvmeta.flv",
    ] {
        let r = reference(file);
        let path = media_dir().join(file);
        let p = &r.seek_points;
        let options = stored_options();
        for q in [
            format!("start={}", p[p.len() / 2].1 + 7),
            format!("start={}&end={}", p[1].1, p[p.len() - 2].1),
            format!("bstart={}&bend={}", p[2].1, p[3].1 + 999),
            format!("ib=2000&fs={}", p[3].1),
        ] {
            let reply = lighttpd.get(&format!("/bytes/{file}?{q}"));
            let want = served_bytes(&path, &q, &options);
            if reply.status != 200 || reply.body != want {
                failures.push(format!(
                    "{file}?{q}: status {}, {} bytes, the library plans {}",
                    reply.status,
                    reply.body.len(),
                    want.len()
                ));
            } else if q.starts_with("start=") {
                if let Err(e) = decode_bytes(&reply.body, &format!("{file}?{q}")) {
                    failures.push(e);
                }
            }
        }
    }
    // Renamed parameters, another prefix, client pacing refused: `pos` is
    // `start`, `end` means nothing, `ri`/`rs` are ignored.
    let file = "h264_aac.yamdi.flv";
    let r = reference(file);
    let kf = r.seek_points[r.seek_points.len() / 2].1;
    let reply = lighttpd.get(&format!("/renamed/{file}?pos={kf}&end=1&ri=0&rs=800"));
    let want = expected(
        &media_dir().join(file),
        &format!("start={kf}"),
        PrefixMode::Header,
        StartUnit::Bytes,
    );
    if reply.status != 200 || reply.body != want {
        failures.push(format!(
            "/renamed/{file}?pos={kf}: status {}, {} bytes",
            reply.status,
            reply.body.len()
        ));
    }
    if reply.elapsed > Duration::from_secs(2) {
        failures.push(format!(
            "/renamed/: ri/rs obeyed though refused ({:?})",
            reply.elapsed
        ));
    }
    // No query, metadata off: lighttpd's own static serving, untouched.
    let file = "h264_aac.plain.flv";
    let reply = lighttpd.get(&format!("/bytes/{file}"));
    assert_eq!(reply.body, fs::read(media_dir().join(file)).unwrap());
    lighttpd.assert_passes("byte seeks", &failures);
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn validators_dates_and_if_range_on_a_seek() {
    let mut lighttpd = Lighttpd::start();
    let q = "/media/h264_aac.ffidx.flv?start=6.5";
    let full = lighttpd.get(q);
    assert_eq!(full.status, 200);
    let etag = full.header("ETag").unwrap().to_string();
    let modified = full.header("Last-Modified").unwrap().to_string();
    assert_eq!(full.header("Accept-Ranges"), Some("bytes"));

    let same = lighttpd.request("GET", q, &[("If-Range", &etag), ("Range", "bytes=10-19")]);
    assert_eq!(same.status, 206);
    assert_eq!(same.body, full.body[10..20]);
    let stale = lighttpd.request(
        "GET",
        q,
        &[("If-Range", "\"something-else\""), ("Range", "bytes=10-19")],
    );
    assert_eq!(stale.status, 200, "If-Range with another ETag");
    assert_eq!(stale.body, full.body);

    let not_modified = lighttpd.request("GET", q, &[("If-Modified-Since", &modified)]);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("ETag"), Some(etag.as_str()));
    let old = "Sat, 01 Jan 2000 00:00:00 GMT";
    assert_eq!(
        lighttpd
            .request("GET", q, &[("If-Modified-Since", old)])
            .status,
        200
    );
    assert_eq!(
        lighttpd
            .request("GET", q, &[("If-Unmodified-Since", old)])
            .status,
        412
    );
    assert_eq!(
        lighttpd
            .request("GET", q, &[("If-Unmodified-Since", "not a date")])
            .status,
        200
    );
    assert_eq!(
        lighttpd
            .request("GET", q, &[("If-Match", "\"nope\"")])
            .status,
        412
    );
    let post = lighttpd.request("POST", q, &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn a_pacing_location_paces_plain_gets_and_ranges() {
    Lighttpd::start().passes_a_shared_check(
        "lighttpd paced location",
        "/media-paced",
        run_paced_location,
    );
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn paced_responses_share_one_timer_and_keep_their_own_schedules() {
    let mut lighttpd = Lighttpd::start();
    let sample = root().join("samples/sample.flv");
    assert_eq!(
        lighttpd.fds_to("anon_inode:[timerfd]"),
        0,
        "a timer before any paced response"
    );
    // Twelve paced downloads (100 000 B/s, burst 0; 470 to 940 kB each),
    // started 37 ms apart so that their pieces fall due at different times.
    let queries: Vec<String> = (0..12).map(|i| format!("start={}", 20 + 3 * i)).collect();
    let port = lighttpd.port;
    let (timed, most_timers) = std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(37 * i as u64));
                    let sent = Instant::now();
                    let reply = http(port, "GET", &format!("/paced/sample.flv?{q}"), &[]);
                    (reply, sent.elapsed().as_secs_f64())
                })
            })
            .collect();
        let mut most_timers = 0;
        while !handles.iter().all(|h| h.is_finished()) {
            most_timers = most_timers.max(lighttpd.fds_to("anon_inode:[timerfd]"));
            std::thread::sleep(Duration::from_millis(50));
        }
        let timed: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (timed, most_timers)
    });
    let mut failures = Vec::new();
    for (q, (reply, seconds)) in queries.iter().zip(&timed) {
        let want = expected(&sample, q, PrefixMode::Init, StartUnit::Seconds);
        let target_s = want.len() as f64 / 100_000.0;
        if reply.status != 200 || reply.body != want {
            failures.push(format!("{q}: status {}, body differs", reply.status));
        } else if (seconds - target_s).abs() / target_s >= 0.05 {
            failures.push(format!("{q}: {seconds:.3} s, target {target_s:.3} s"));
        }
    }
    eprintln!(
        "lighttpd: 12 paced responses at once, {} timerfd(s) at most; took/target: {}",
        most_timers,
        timed
            .iter()
            .map(|(r, s)| format!("{:.3}", s / (r.body.len() as f64 / 100_000.0)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_no_failures("lighttpd paced at once", &failures);
    assert_eq!(most_timers, 1, "paced responses waiting, timerfds");
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn pacing_over_http2_takes_the_planned_time() {
    let mut lighttpd = Lighttpd::start();
    let sample = root().join("samples/sample.flv");
    let base = format!("http://127.0.0.1:{}", lighttpd.port);
    // Alone, then two streams at once on one connection (about 470 kB and
    // 940 kB at 100 000 B/s: each keeps its own schedule).
    for queries in [vec!["start=40"], vec!["start=40", "start=20"]] {
        let urls: Vec<String> = queries
            .iter()
            .map(|q| format!("{base}/paced/sample.flv?{q}"))
            .collect();
        let replies = curl_h2(&urls);
        for (q, reply) in queries.iter().zip(&replies) {
            let want = expected(&sample, q, PrefixMode::Init, StartUnit::Seconds);
            let target_s = want.len() as f64 / 100_000.0;
            eprintln!(
                "lighttpd h2c pacing ({} stream(s)): {q}: {} bytes in {:.3} s (target {target_s:.3} s)",
                queries.len(),
                reply.body.len(),
                reply.seconds
            );
            assert_eq!(reply.version, "2", "{q}: not HTTP/2");
            assert_eq!(reply.status, 200, "{q}");
            assert!(reply.body == want, "{q}: body differs from the library's");
            let err = (reply.seconds - target_s).abs() / target_s;
            assert!(
                err < 0.05,
                "{q}: {:.3} s over h2c, target {target_s:.3} s",
                reply.seconds
            );
        }
    }
    // A Range over HTTP/2 is paced too (the last 200 000 bytes: 2 s).
    let out = TempFile::new("h2-range.body");
    let output = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "-r", "-200000", "-o"])
        .arg(out.path())
        .args(["-w", "%{http_code} %{http_version} %{time_total}"])
        .arg(format!("{base}/paced/sample.flv"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    let f: Vec<&str> = report.split(' ').collect();
    let whole = expected(&sample, "", PrefixMode::Init, StartUnit::Seconds);
    assert_eq!(&f[..2], &["206", "2"], "{report}");
    assert!(fs::read(out.path()).unwrap() == whole[whole.len() - 200_000..]);
    let took: f64 = f[2].parse().unwrap();
    eprintln!("lighttpd h2c pacing: Range -200000 in {took:.3} s (target 2.000 s)");
    assert!(
        (took - 2.0).abs() / 2.0 < 0.05,
        "h2c Range took {took:.3} s"
    );
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn memory_stays_flat_over_a_thousand_requests() {
    let mut lighttpd = Lighttpd::start();
    let (warm, end) = check_no_leak(&lighttpd.host("/media"), 1024);
    eprintln!("lighttpd RSS: {warm} kB -> {end} kB");
    assert_no_failures("lighttpd", &lighttpd.problems());
}

/// Sends a GET and reads the response header, then `body_bytes` of body.
fn start_download(port: u16, target: &str, body_bytes: usize) -> TcpStream {
    let (mut s, head) = get_head(port, target);
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{target}: {}",
        String::from_utf8_lossy(&head)
    );
    let mut body = vec![0u8; body_bytes];
    s.read_exact(&mut body).unwrap();
    s
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn aborted_paced_downloads_leave_no_descriptor_behind() {
    let mut lighttpd = Lighttpd::start();
    // One whole paced request first, so lighttpd's lazily opened files
    // (stat cache, logs) are counted in the baseline.
    let warm = lighttpd.get("/burst/h264_aac.plain.flv?start=50");
    assert_eq!(warm.status, 200);
    let before = lighttpd.settled_fds();

    // 200 paced downloads, 20 open at a time, abandoned: half right after
    // the header (waiting in the queue of deadlines for their first piece),
    // half in the middle of their burst of 50 000 bytes.
    for batch in 0..10 {
        let streams: Vec<TcpStream> = (0..20)
            .map(|i| {
                let n = batch * 20 + i;
                if n % 2 == 0 {
                    start_download(
                        lighttpd.port,
                        &format!("/media-paced/h264_aac.plain.flv?start={}", n % 9),
                        0,
                    )
                } else {
                    start_download(
                        lighttpd.port,
                        &format!("/burst/h264_aac.plain.flv?start={}", n % 9),
                        10_000,
                    )
                }
            })
            .collect();
        let during = lighttpd.open_fds();
        assert!(
            during >= before + 20,
            "20 paced downloads open, yet {during} descriptors (baseline {before})"
        );
        drop(streams);
    }

    // A connection is closed when lighttpd next writes to it (a piece is at
    // most 2 s away) or reads its end: give it a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = lighttpd.open_fds();
    while now > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now = lighttpd.open_fds();
    }
    eprintln!("lighttpd descriptors: {before} before, {now} after 200 aborted paced downloads");
    assert_eq!(now, before, "descriptors left behind");
    // And it still serves.
    let after = lighttpd.get("/media/h264_aac.plain.flv?start=3");
    assert_eq!(after.status, 200);
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn a_file_replaced_on_disk_is_indexed_again() {
    let mut lighttpd = Lighttpd::start();
    // lighttpd's stat cache notices a rename through inotify, or within a
    // second with its "simple" engine.
    check_replaced_files(
        &lighttpd.dir.join("swap"),
        lighttpd.port,
        Duration::from_secs(3),
    );
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn refusals_are_logged_with_the_library_reason() {
    let mut lighttpd = Lighttpd::start();
    // 415 is the administrator's business: always logged.
    assert_eq!(lighttpd.get("/media/not-video.flv?start=1").status, 415);
    assert_eq!(lighttpd.get("/media/broken.mp4?start=1").status, 415);
    // A client's mistake only with debug.log-request-handling.
    assert_eq!(lighttpd.get("/media/sample.flv?start=abc").status, 400);
    assert_eq!(lighttpd.get("/logged/sample.flv?start=zzz").status, 400);
    let past = lighttpd.get("/logged/sample.flv?start=99999999999");
    assert_eq!(past.status, 416);
    let size = fs::metadata(host_media_dir().join("sample.flv"))
        .unwrap()
        .len();
    assert_eq!(
        past.header("Content-Range"),
        Some(format!("bytes */{size}").as_str())
    );
    let over = lighttpd.request(
        "GET",
        "/media/sample.flv?start=3",
        &[("Range", "bytes=99999999-")],
    );
    assert_eq!(over.status, 416);
    assert!(over
        .header("Content-Range")
        .is_some_and(|v| v.starts_with("bytes */")));
    // Without a query a file that is not media is served as stored.
    let plain = lighttpd.get("/media/not-video.flv");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, b"this is not an FLV file\n");

    let log = lighttpd.error_log();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert!(
        lines("not-video.flv failed (415)") == 1,
        "no 415 line for not-video.flv:\n{log}"
    );
    assert!(
        lines("broken.mp4 failed (415)") == 1,
        "no 415 line for broken.mp4:\n{log}"
    );
    assert!(lines("(400)") == 1, "400s logged where not asked:\n{log}");
    assert!(lines("(416)") == 1, "no 416 line:\n{log}");
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn bad_settings_are_refused_at_startup() {
    let dir = root()
        .join("target")
        .join(format!("lighttpd-conf-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    for (setting, message) in [
        (r#"pseudostream.rate = "fast""#, "pseudostream.rate"),
        (r#"pseudostream.rate = "auto 0""#, "pseudostream.rate"),
        (r#"pseudostream.burst = "3 s""#, "pseudostream.burst"),
        (r#"pseudostream.prefix = "all""#, "is not one of"),
        (
            r#"pseudostream.params = ("begin" => "t")"#,
            "unknown parameter",
        ),
        (
            r#"pseudostream.params = ("start" => "a&b")"#,
            "invalid query parameter",
        ),
        (
            r#"pseudostream.index-cache = "lots""#,
            "pseudostream.index-cache",
        ),
    ] {
        let conf = dir.join("bad.conf");
        fs::write(
            &conf,
            format!(
                "server.document-root = \"{}\"\nserver.port = 1\n\
                 server.modules = (\"mod_pseudostream\")\n{setting}\n",
                dir.display()
            ),
        )
        .unwrap();
        let out = check_config(&conf);
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{setting}: accepted");
        assert!(text.contains(message), "{setting}: {text}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn seeks_into_a_file_being_indexed_share_one_build_thread() {
    let mut lighttpd = Lighttpd::start();
    assert_eq!(lighttpd.get("/tiny/ok.txt").status, 200);
    let before = lighttpd.settled_fds();
    // Eight seeks at once into one cold file: one thread (and one eventfd)
    // builds its index, the other seven wait for that build.
    let long = long_flv();
    let backs: Vec<u64> = (0..8).map(|i| 200_000 + 100_000 * i).collect();
    let (queries, targets) = long_seeks("/long", &backs);
    drop_from_page_cache(&long);
    let sampling = std::sync::atomic::AtomicBool::new(true);
    let (seeks, (threads, eventfds)) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut most = (0, 0);
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let (t, e) = (lighttpd.threads(), lighttpd.fds_to("anon_inode:[eventfd]"));
                most = (most.0.max(t), most.1.max(e));
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        });
        let seeks = serve_during_cold_seeks(
            "lighttpd, eight cold seeks into one file",
            lighttpd.port,
            &targets,
            "/tiny/ok.txt",
        );
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        (seeks, sampler.join().unwrap())
    });
    assert_no_failures(
        "lighttpd, seeks that waited for one build",
        &long_seek_failures(&seeks, &queries),
    );
    eprintln!(
        "lighttpd: 8 cold seeks into one file: at most {threads} threads, {eventfds} eventfd(s)"
    );
    assert_eq!(
        (threads, eventfds),
        (2, 1),
        "lighttpd's threads (its own and one build) and eventfds while eight seeks waited"
    );

    // A new version: one request builds, a second waits and its client
    // goes away; the first is answered and nothing is left behind.
    new_cold_version(&long);
    let reply = seek_while_a_waiter_leaves(lighttpd.port, &targets[0], &targets[1]);
    assert_eq!(reply.status, 200, "{}", targets[0]);
    assert!(reply.body == seeks[0].body, "{}: differs", targets[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = lighttpd.open_fds();
    while now > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now = lighttpd.open_fds();
    }
    assert_eq!(now, before, "descriptors left behind by index builds");
    assert_eq!(lighttpd.get(&targets[2]).status, 200);
    assert_no_failures("lighttpd", &lighttpd.problems());
}

#[test]
#[ignore = "needs lighttpd and the module: make lighttpd-module"]
fn a_cold_index_build_leaves_lighttpd_serving() {
    let mut lighttpd = Lighttpd::start();
    // Three seeks at once walk 800 MB from disk on index threads (one
    // build, the others wait for it) while lighttpd serves a static file;
    // the descriptors of the builds, the abandoned one's too, are gone once
    // they end.
    assert_eq!(lighttpd.get("/tiny/ok.txt").status, 200);
    let before = lighttpd.settled_fds();
    check_cold_index_builds("lighttpd", lighttpd.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = lighttpd.open_fds();
    while now > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now = lighttpd.open_fds();
    }
    assert_eq!(now, before, "descriptors left behind by index builds");
    assert_no_failures("lighttpd", &lighttpd.problems());
}
