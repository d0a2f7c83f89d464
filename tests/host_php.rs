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
use std::time::{Duration, Instant};

use common::host::*;
use common::hosts::{php, Launch, Settings, Started};
use common::*;
use pseudostream::{PrefixMode, StartUnit};

/// PHP's memory stays flat request after request (each request starts from
/// a clean heap); the slack covers allocator noise in PHP and the library.
const SLACK_KB: u64 = 4096;

/// `php -S` serving `media` through the router: one process, no workers.
fn start_php(name: &'static str, media: &Path, settings: Settings) -> Started {
    php::launch(Launch {
        name: Some(name),
        media: Some(media),
        settings,
        ..Launch::default()
    })
}

#[test]
#[ignore = "needs php host packages: scripts/setup-php.sh"]
fn php_host_passes_the_host_matrix() {
    let started = Instant::now();
    let php = start_php(
        "php host",
        host_media_dir(),
        &[
            ("start_unit", "seconds"),
            ("prefix", "init"),
            ("client_pacing", "1"),
        ],
    );
    let host = php.host("");
    assert_no_failures("php host matrix", &run_matrix(&host));
    assert_library_under_test(host.pid);
    let (warm, end) = check_no_leak(&host, SLACK_KB);
    eprintln!(
        "php host: RSS {warm} kB -> {end} kB (slack {SLACK_KB} kB), {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    drop(php);
    let paced = start_php(
        "paced php host",
        host_media_dir(),
        &[
            ("start_unit", "seconds"),
            ("rate", "100000"),
            ("burst", "0"),
        ],
    );
    let host = paced.host("");
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
    let php = start_php(
        "php router",
        &media,
        &[("prefix", "header"), ("params", "start=t")],
    );
    let host = php.host("");
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
    let keyframe = keyframe_cut(file, q);
    let seconds = ("start_unit", "seconds");
    let mut failures = Vec::new();

    let php = start_php("php cut keyframe", media, &[seconds, ("cut", "keyframe")]);
    let r = php.host("").get(&target);
    if r.status != 200 || r.body != keyframe {
        failures.push(format!(
            "cut keyframe: {target}: status {}, not the keyframe cut",
            r.status
        ));
    }
    drop(php);

    let php = start_php(
        "php moov limit",
        media,
        &[seconds, ("mp4_max_moov_size", "1000")],
    );
    let r = php.host("").get(&target);
    if r.status != 415 {
        failures.push(format!(
            "moov limit 1000: {target}: status {} (want 415)",
            r.status
        ));
    }
    drop(php);

    let php = start_php("php bad cut", media, &[seconds, ("cut", "sideways")]);
    let r = php.host("").get(&target);
    let log = php.log.text();
    if r.status != 500 || !log.contains("option 'cut' = 'sideways'") {
        failures.push(format!(
            "cut sideways: status {} (want 500 and the reason logged)",
            r.status
        ));
    }
    drop(php);

    assert_no_failures("php router mp4 settings", &failures);
}
