//! The PHP FFI binding (`bindings/php/`), run for real: PHP's built-in web
//! server with `bindings/php/examples/router.php`, put through the request
//! matrix every host passes and the 1,000-request memory check, plus the
//! router's own configuration, path safety and client-abort handling.
//!
//! Ignored by a plain `cargo test` because it needs php-cli with FFI;
//! `scripts/test.sh` runs `scripts/setup-php.sh` and then these with
//! `--include-ignored`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::host::*;
use common::*;
use pseudostream::{CutMode, Options, PrefixMode, StartUnit};

/// PHP's memory stays flat request after request (each request starts from
/// a clean heap); the slack covers allocator noise in PHP and the library.
const SLACK_KB: u64 = 4096;

/// `php -S` serving `media` through the router: one process, no workers.
struct PhpHost {
    port: u16,
    log: PathBuf,
    server: Process,
}

impl PhpHost {
    fn start(media: &Path, env: &[(&str, &str)]) -> PhpHost {
        let port = free_port();
        let log = root().join("target").join(format!("php-host-{port}.log"));
        let mut command = Command::new("php");
        command
            .args(["-d", "ffi.enable=1", "-S", &format!("127.0.0.1:{port}")])
            .arg(root().join("bindings/php/examples/router.php"))
            .current_dir(root())
            // One process: the memory check needs the pid that runs the binding.
            .env_remove("PHP_CLI_SERVER_WORKERS")
            .env("PSEUDOSTREAM_MEDIA", media)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        use_library_under_test(&mut command);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .expect("php not found: run scripts/setup-php.sh");
        let mut server = Process(child);
        wait_until_listening(&mut server, port, "php -S", Some(log.as_ref()));
        PhpHost { port, log, server }
    }

    fn under_test(&self, name: &'static str) -> HostUnderTest {
        HostUnderTest {
            name,
            port: self.port,
            base: String::new(),
            pid: self.server.0.id(),
        }
    }
}

impl Drop for PhpHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.ends_with(" Accepted")).collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("php -S log ({}):\n{tail}", self.log.display());
        } else {
            let _ = fs::remove_file(&self.log);
        }
    }
}

#[test]
#[ignore = "needs php host packages: scripts/setup-php.sh"]
fn php_host_passes_the_host_matrix() {
    let started = Instant::now();
    let php = PhpHost::start(
        host_media_dir(),
        &[
            ("PSEUDOSTREAM_START_UNIT", "seconds"),
            ("PSEUDOSTREAM_PREFIX", "init"),
            ("PSEUDOSTREAM_CLIENT_PACING", "1"),
        ],
    );
    let host = php.under_test("php host");
    assert_no_failures("php host matrix", &run_matrix(&host));
    assert_library_under_test(host.pid);
    let (warm, end) = check_no_leak(&host, SLACK_KB);
    eprintln!(
        "php host: RSS {warm} kB -> {end} kB (slack {SLACK_KB} kB), {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    drop(php);
    let paced = PhpHost::start(
        host_media_dir(),
        &[
            ("PSEUDOSTREAM_START_UNIT", "seconds"),
            ("PSEUDOSTREAM_RATE", "100000"),
            ("PSEUDOSTREAM_BURST", "0"),
        ],
    );
    let host = paced.under_test("paced php host");
    assert_no_failures("paced php host", &run_paced_location(&host));
}

/// A media folder with a subfolder, a symlink inside and one leading out.
fn paths_media_dir() -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("php-host-paths-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("sub")).unwrap();
    let sample = root().join("samples").join("sample.flv");
    for link in [dir.join("sample.flv"), dir.join("sub").join("sample.flv")] {
        if fs::hard_link(&sample, &link).is_err() {
            fs::copy(&sample, &link).unwrap();
        }
    }
    std::os::unix::fs::symlink("sample.flv", dir.join("inside.flv")).unwrap();
    std::os::unix::fs::symlink(root().join("Cargo.toml"), dir.join("escape.flv")).unwrap();
    dir
}

#[test]
#[ignore = "needs php host packages: scripts/setup-php.sh"]
fn php_router_configuration_paths_and_aborts() {
    let media = paths_media_dir();
    let php = PhpHost::start(
        &media,
        &[
            ("PSEUDOSTREAM_PREFIX", "header"),
            ("PSEUDOSTREAM_PARAMS", "start=t"),
        ],
    );
    let host = php.under_test("php router");
    let sample = media.join("sample.flv");
    let whole = fs::read(&sample).unwrap();
    let mut failures = Vec::new();

    // Prefix mode and the renamed parameter (start unit: bytes, the default).
    let want = expected(
        &sample,
        "start=500000",
        PrefixMode::Header,
        StartUnit::Bytes,
    );
    for target in ["sample.flv?t=500000", "sub/sample.flv?t=500000"] {
        let r = host.get(target);
        if r.status != 200 || r.body != want {
            failures.push(format!(
                "{target}: status {}, {} bytes",
                r.status,
                r.body.len()
            ));
        }
    }
    // `start` is no longer a parameter: ignored, the whole file.
    let r = host.get("sample.flv?start=500000");
    if r.status != 200 || r.body != whole {
        failures.push(format!("renamed start: status {}", r.status));
    }

    // Paths.
    for (target, want) in [
        ("inside.flv", 200),
        ("escape.flv", 403),
        ("sub", 404),
        ("sub/", 404),
        ("", 404),
        ("sample.flv%00.txt", 404),
        ("sub/..%2f..%2fCargo.toml", 403),
        ("sub%2fsample.flv", 200),
        ("nothing/here.flv", 404),
    ] {
        let r = host.get(target);
        if r.status != want {
            failures.push(format!("/{target}: status {} (want {want})", r.status));
        }
    }
    let r = host.request("POST", "sample.flv", &[]);
    if r.status != 405 || r.header("Allow") != Some("GET, HEAD") {
        failures.push(format!("POST: status {}", r.status));
    }
    let r = host.request("HEAD", "missing.flv", &[]);
    if r.status != 404 || !r.body.is_empty() {
        failures.push(format!("HEAD missing: status {}", r.status));
    }

    // A client that leaves a paced response (10 kB/s: 140 s for the file)
    // frees the single-process server for the next request at once.
    let mut s = TcpStream::connect(("127.0.0.1", host.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /sample.flv?ri=20000&rs=80 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut first = [0u8; 4096];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0, "no reply to the paced request");
    drop(s);
    let started = Instant::now();
    let r = host.get("sample.flv?t=500000");
    let waited = started.elapsed();
    eprintln!(
        "php router: next request answered {:.3} s after the client left",
        waited.as_secs_f64()
    );
    if r.status != 200 || waited > Duration::from_secs(5) {
        failures.push(format!(
            "after an abort: status {} in {:.1} s",
            r.status,
            waited.as_secs_f64()
        ));
    }

    drop(php);
    let _ = fs::remove_dir_all(&media);
    assert_no_failures("php router", &failures);
}

/// The router's MP4 settings reach the library: PSEUDOSTREAM_CUT=keyframe
/// serves the library's keyframe cut, a tiny PSEUDOSTREAM_MP4_MAX_MOOV_SIZE
/// refuses the file (415), and a bad cut mode is refused with its reason in
/// the log.
#[test]
#[ignore = "needs php host packages: scripts/setup-php.sh"]
fn php_router_mp4_settings() {
    let media = host_media_dir();
    let (file, q) = ("h264_aac.moov_end.mp4", "start=5.5");
    let target = format!("{file}?{q}");
    let keyframe_options = Options {
        start_unit: StartUnit::Seconds,
        cut: CutMode::Keyframe,
        ..Options::default()
    };
    let keyframe = served_bytes(&media.join(file), q, &keyframe_options);
    assert_ne!(
        keyframe,
        expected(&media.join(file), q, PrefixMode::Init, StartUnit::Seconds),
        "{target} starts on a keyframe: exact and keyframe cuts agree, nothing to tell apart"
    );
    let seconds = ("PSEUDOSTREAM_START_UNIT", "seconds");
    let mut failures = Vec::new();

    let php = PhpHost::start(media, &[seconds, ("PSEUDOSTREAM_CUT", "keyframe")]);
    let r = php.under_test("php cut keyframe").get(&target);
    if r.status != 200 || r.body != keyframe {
        failures.push(format!(
            "cut keyframe: {target}: status {}, not the keyframe cut",
            r.status
        ));
    }
    drop(php);

    let php = PhpHost::start(
        media,
        &[seconds, ("PSEUDOSTREAM_MP4_MAX_MOOV_SIZE", "1000")],
    );
    let r = php.under_test("php moov limit").get(&target);
    if r.status != 415 {
        failures.push(format!(
            "moov limit 1000: {target}: status {} (want 415)",
            r.status
        ));
    }
    drop(php);

    let php = PhpHost::start(media, &[seconds, ("PSEUDOSTREAM_CUT", "sideways")]);
    let r = php.under_test("php bad cut").get(&target);
    let log = fs::read_to_string(&php.log).unwrap_or_default();
    if r.status != 500 || !log.contains("option 'cut' = 'sideways'") {
        failures.push(format!(
            "cut sideways: status {} (want 500 and the reason logged)",
            r.status
        ));
    }
    drop(php);

    assert_no_failures("php router mp4 settings", &failures);
}
