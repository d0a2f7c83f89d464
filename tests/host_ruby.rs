//! The Ruby host (`bindings/ruby`: the `ffi` gem and a Rack app) run for
//! real under puma and put through the request matrix every host binding
//! passes, a leak check, and client disconnects in the middle of paced
//! responses.
//!
//! Ignored by a plain `cargo test` because it needs Ruby, ruby-ffi,
//! ruby-rack and puma; `scripts/test.sh` runs `scripts/setup-ruby.sh` and
//! then these tests with `--include-ignored`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::host::*;
use common::*;

/// Settings of the app that config.ru reads; cleared so that the caller's
/// environment cannot change what is tested.
const SETTINGS: [&str; 9] = [
    "PSEUDOSTREAM_MEDIA",
    "PSEUDOSTREAM_START_UNIT",
    "PSEUDOSTREAM_PREFIX",
    "PSEUDOSTREAM_BURST",
    "PSEUDOSTREAM_BURST_SECS",
    "PSEUDOSTREAM_RATE",
    "PSEUDOSTREAM_CLIENT_PACING",
    "PSEUDOSTREAM_PARAMS",
    "PSEUDOSTREAM_LIB",
];

/// puma in single mode (one process, so its pid is the one whose memory is
/// measured) with 4 threads, serving `host_media_dir()` at the root path.
fn start_puma(name: &'static str) -> (Process, HostUnderTest) {
    start_puma_with(name, &[])
}

fn start_puma_with(name: &'static str, env: &[(&str, &str)]) -> (Process, HostUnderTest) {
    let lib = root().join("target/release/libpseudostream.so");
    assert!(
        lib.exists(),
        "{} missing: run `cargo build --release`",
        lib.display()
    );
    let port = free_port();
    let mut cmd = Command::new("puma");
    for var in SETTINGS {
        cmd.env_remove(var);
    }
    let child = cmd
        .args(["-b", &format!("tcp://127.0.0.1:{port}")])
        .args(["-t", "4:4", "-e", "production"])
        .arg(root().join("bindings/ruby/config.ru"))
        .current_dir(root())
        .env("PSEUDOSTREAM_LIB", &lib)
        .env("PSEUDOSTREAM_MEDIA", host_media_dir())
        .env("PSEUDOSTREAM_START_UNIT", "seconds")
        .env("PSEUDOSTREAM_PREFIX", "init")
        .env("PSEUDOSTREAM_CLIENT_PACING", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot run puma: run scripts/setup-ruby.sh");
    let server = Process(child);
    wait_for_port(port, "puma");
    let host = HostUnderTest {
        name,
        port,
        base: String::new(),
        pid: server.0.id(),
    };
    (server, host)
}

#[test]
#[ignore = "needs ruby host packages: scripts/setup-ruby.sh"]
fn ruby_host_passes_the_host_matrix() {
    let (_server, host) = start_puma("ruby host");
    assert_no_failures("ruby host matrix", &run_matrix(&host));
    // Ruby's heap, malloc arenas of puma's 4 threads and the 64 KiB strings
    // handed to puma settle after the warm-up but not to the page: allow
    // 8 MB. A leaked stream, plan or media per request would be far more
    // (1000 requests × the plan's prefix and a 64 KiB buffer ≥ 64 MB).
    let (warm, end) = check_no_leak(&host, 8192);
    eprintln!(
        "ruby host: RSS grew by {} kB over 1000 requests (slack 8192 kB)",
        end.saturating_sub(warm)
    );
    let (_paced, host) = start_puma_with(
        "paced ruby host",
        &[("PSEUDOSTREAM_RATE", "100000"), ("PSEUDOSTREAM_BURST", "0")],
    );
    assert_no_failures("paced ruby host", &run_paced_location(&host));
}

/// A client that reads part of a paced response and hangs up must not keep
/// a puma thread: after more such clients than threads, the server still
/// answers at once.
#[test]
#[ignore = "needs ruby host packages: scripts/setup-ruby.sh"]
fn ruby_host_survives_clients_that_hang_up() {
    let (_server, host) = start_puma("ruby host (hang-ups)");
    let started = Instant::now();
    for i in 0..12 {
        // 800 kbit/s: the whole response would take over 4 s.
        let mut s = TcpStream::connect(("127.0.0.1", host.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /sample.flv?start=30&ri=0&rs=800 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut got = 0;
        let mut buf = [0u8; 16 * 1024];
        while got < 50_000 {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("hang-up client {i}: no data from the server ({e})"));
            assert!(n > 0, "hang-up client {i}: connection closed early");
            got += n;
        }
        drop(s);
    }
    let hung_up = started.elapsed();
    let after = Instant::now();
    let whole = host.get("h264_aac.yamdi.flv");
    assert_eq!(whole.status, 200);
    assert!(whole.body == reference("h264_aac.yamdi.flv").bytes);
    eprintln!(
        "ruby host: 12 hung-up paced clients in {:.2} s, then a whole file in {:.3} s",
        hung_up.as_secs_f64(),
        after.elapsed().as_secs_f64()
    );
    assert!(
        after.elapsed() < Duration::from_secs(5),
        "the server was slow to answer after clients hung up"
    );
}
