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
use std::time::{Duration, Instant};

use common::host::*;
use common::hosts::{ruby, Launch, Settings, Started};
use common::*;

/// puma serving `host_media_dir()` at the root path: start in seconds,
/// prefix init, client pacing allowed, then `settings`.
fn start_puma(name: &'static str, settings: Settings) -> Started {
    let mut all = vec![
        ("start_unit", "seconds"),
        ("prefix", "init"),
        ("client_pacing", "1"),
    ];
    all.extend_from_slice(settings);
    ruby::launch(Launch {
        name: Some(name),
        settings: &all,
        ..Launch::default()
    })
}

#[test]
#[ignore = "needs ruby host packages: scripts/setup-ruby.sh"]
fn ruby_host_passes_the_host_matrix() {
    let puma = start_puma("ruby host", &[]);
    let host = puma.host("");
    assert_no_failures("ruby host matrix", &run_matrix(&host));
    assert_library_under_test(host.pid);
    // Ruby's heap, malloc arenas of puma's 4 threads and the 64 KiB strings
    // handed to puma settle after the warm-up but not to the page: allow
    // 8 MB. A leaked stream, plan or media per request would be far more
    // (1000 requests × the plan's prefix and a 64 KiB buffer ≥ 64 MB).
    let (warm, end) = check_no_leak(&host, 8192);
    eprintln!(
        "ruby host: RSS grew by {} kB over 1000 requests (slack 8192 kB)",
        end.saturating_sub(warm)
    );
    let paced = start_puma("paced ruby host", &[("rate", "100000"), ("burst", "0")]);
    assert_no_failures("paced ruby host", &run_paced_location(&paced.host("")));
}

/// A client that reads part of a paced response and hangs up must not keep
/// a puma thread: after more such clients than threads, the server still
/// answers at once.
#[test]
#[ignore = "needs ruby host packages: scripts/setup-ruby.sh"]
fn ruby_host_survives_clients_that_hang_up() {
    let puma = start_puma("ruby host (hang-ups)", &[]);
    let host = puma.host("");
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

/// config.ru's MP4 settings reach the library: PSEUDOSTREAM_CUT=keyframe
/// serves the library's keyframe cut, a tiny PSEUDOSTREAM_MP4_MAX_MOOV_SIZE
/// refuses the file (415), and a bad cut mode stops puma at boot with the
/// reason.
#[test]
#[ignore = "needs ruby host packages: scripts/setup-ruby.sh"]
fn ruby_host_mp4_settings() {
    let (file, q) = ("h264_aac.moov_end.mp4", "start=5.5");
    let target = format!("{file}?{q}");
    let keyframe = keyframe_cut(file, q);

    let puma = start_puma("ruby cut keyframe", &[("cut", "keyframe")]);
    let r = puma.host("").get(&target);
    assert!(
        r.status == 200 && r.body == keyframe,
        "cut keyframe: {target}: status {}, not the keyframe cut",
        r.status
    );
    drop(puma);

    let puma = start_puma("ruby moov limit", &[("mp4_max_moov_size", "1000")]);
    let r = puma.host("").get(&target);
    assert_eq!(r.status, 415, "moov limit 1000: {target}");
    drop(puma);

    let mut puma = ruby::spawn(Launch {
        settings: &[("cut", "sideways")],
        ..Launch::default()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = puma.process.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "puma started with PSEUDOSTREAM_CUT=sideways"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = puma.log.text();
    assert!(
        !status.success() && output.contains("option 'cut' = 'sideways'"),
        "puma with PSEUDOSTREAM_CUT=sideways: {status}\n{output}"
    );
}
