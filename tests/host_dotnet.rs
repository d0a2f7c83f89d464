//! The .NET binding (`bindings/dotnet/`), run for real: the ASP.NET handler
//! built with `mcs`, hosted by `fastcgi-mono-server4` behind nginx
//! (`fastcgi_pass`), put through the request matrix every host passes and
//! the 1,000-request memory check on the Mono process; and the P/Invoke
//! layer alone run 20,000 times in a console process with a tight memory
//! bound (the FastCGI server's own per-request retention hides small leaks
//! from the first check, see SLACK_KB).
//!
//! Ignored by a plain `cargo test`: it needs Mono, the FastCGI server and
//! nginx (`scripts/setup-dotnet.sh`) and `target/release/libpseudostream.so`
//! (`cargo build --release`).

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::host::*;
use common::hosts::dotnet::{build_into, require, Dotnet, RunningDotnet};
use common::hosts::Settings;
use common::*;
use pseudostream::{query, CutMode, Media, Options, PrefixMode, StartUnit};

/// fastcgi-mono-server4 (Mono.WebServer2 4.2) itself keeps about 13 kB of
/// managed objects per request (HttpContext, HttpRequest/Response, its
/// WorkerRequest and the remoting identity and lease around it): Mono log
/// profiler heapshots show them piling up with a handler that never calls
/// the library, and they were still there after 5 minutes idle. Over 1,000
/// requests that is 11-21 MB of RSS here, so this check only catches gross
/// leaks; `dotnet_binding_frees_every_handle` bounds the binding tightly.
const SLACK_KB: u64 = 40 * 1024;

/// Iterations of the console probe, and its bound: a single leaked
/// ps_request (the smallest handle) per iteration grows it by ~2 MB.
const PROBE_ITERATIONS: u32 = 20_000;
const PROBE_SLACK_KB: u64 = 1024;

/// The two tests build into separate directories but share the CPU: the
/// probe would disturb the matrix's pacing measurement.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test's settings, then `extra`: seconds, prefix init, client pacing
/// allowed.
fn app_settings<'a>(extra: Settings<'a>) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        ("prefix", "init"),
        ("startUnit", "seconds"),
        ("clientPacing", "true"),
    ];
    settings.extend_from_slice(extra);
    settings
}

/// The application under /media, /paced and /limited, in one Mono behind
/// nginx.
fn start_dotnet() -> RunningDotnet {
    let mut dotnet = Dotnet::new("dotnet-it");
    dotnet.app("media", host_media_dir(), &app_settings(&[]));
    // The same application under /paced, configured to pace and to cut MP4
    // at keyframes.
    dotnet.app(
        "paced",
        host_media_dir(),
        &app_settings(&[("rate", "100000"), ("burstBytes", "0"), ("cut", "keyframe")]),
    );
    // And under /limited with a tiny MP4 moov limit. The limit is the
    // process's, set when /limited loads its settings: the test asks it
    // last. It applies when a file is indexed, and the other applications
    // have the host media's indexes cached, so /limited serves a copy.
    let limited_media = dotnet.dir().join("limited-media");
    fs::create_dir_all(&limited_media).unwrap();
    for name in ["sample.flv", "h264_aac.moov_end.mp4"] {
        fs::copy(host_media_dir().join(name), limited_media.join(name)).unwrap();
    }
    let limited = dotnet.app(
        "limited",
        &limited_media,
        &app_settings(&[("mp4MaxMoovSize", "1000")]),
    );
    // /limited registers the handler by its old name, as a web.config
    // written before the rename does.
    let config = fs::read_to_string(limited.join("web.config")).unwrap();
    assert!(config.contains("Pseudostream.Web.PseudostreamHandler,"));
    fs::write(
        limited.join("web.config"),
        config.replace(
            "Pseudostream.Web.PseudostreamHandler,",
            "Pseudostream.Web.FlvStreamingHandler,",
        ),
    )
    .unwrap();
    dotnet.start()
}

/// The first requests start ASP.NET and JIT the handler: wait for them,
/// then touch every code path once.
fn warm_up(host: &HostUnderTest, server: &RunningDotnet) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let reply = host.get("sample.flv?start=1&end=2");
        if reply.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the .NET host never answered 200 (last {}):\n{}",
            reply.status,
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for target in [
        "sample.flv",
        "sample.flv?start=30",
        "sample.flv?start=abc",
        "missing.flv",
    ] {
        host.get(target);
    }
    host.request("GET", "sample.flv?start=3", &[("Range", "bytes=0-99")]);
    host.request("HEAD", "sample.flv?start=3", &[]);
}

#[test]
#[ignore = "needs dotnet host packages: scripts/setup-dotnet.sh"]
fn dotnet_host_passes_the_host_matrix() {
    let _serial = serial();
    let started = Instant::now();
    let server = start_dotnet();
    let host = server.host("dotnet host", "/media");
    warm_up(&host, &server);
    eprintln!(
        "dotnet host: up and warm after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let failures = run_matrix(&host);
    assert_library_under_test(host.pid);
    if !failures.is_empty() {
        eprintln!("mono log:\n{}", server.log_tail());
    }
    assert_no_failures("dotnet host matrix", &failures);
    let (warm, end) = check_no_leak(&host, SLACK_KB);
    eprintln!(
        "dotnet host: RSS +{} kB over 1000 requests (slack {SLACK_KB} kB)",
        end.saturating_sub(warm)
    );
    let paced = server.host("paced dotnet host", "/paced");
    warm_up(&paced, &server);
    assert_no_failures("paced dotnet host", &run_paced_location(&paced));

    // pseudostream:cut reaches the library: /paced starts MP4 cuts at the
    // keyframe (HEAD, so nothing is paced).
    let (file, q) = ("h264_aac.moov_end.mp4", "start=5.5");
    let start_ms = |cut: CutMode| {
        let options = Options {
            start_unit: StartUnit::Seconds,
            cut,
            ..Options::default()
        };
        let media = Media::open(host_media_dir().join(file)).unwrap();
        let request = query::parse(q.as_bytes(), &options).unwrap();
        media.plan(&options, &request).unwrap().start_ms.to_string()
    };
    let keyframe = start_ms(CutMode::Keyframe);
    assert_ne!(
        keyframe,
        start_ms(CutMode::Exact),
        "{file}?{q} starts on a keyframe: exact and keyframe cuts agree, nothing to tell apart"
    );
    let r = paced.request("HEAD", &format!("{file}?{q}"), &[]);
    assert!(
        r.status == 200 && r.header("X-Pseudostream-Start-Ms") == Some(keyframe.as_str()),
        "pseudostream:cut keyframe: HEAD {file}?{q}: status {}, start {:?} (want {keyframe})",
        r.status,
        r.header("X-Pseudostream-Start-Ms")
    );
    // pseudostream:mp4MaxMoovSize reaches the library: 1000 bytes refuse the file.
    let limited = server.host("limited dotnet host", "/limited");
    warm_up(&limited, &server);
    let r = limited.get(&format!("{file}?{q}"));
    assert_eq!(
        r.status, 415,
        "pseudostream:mp4MaxMoovSize 1000: {file}?{q}"
    );
    // FlvStreamingHandler, the handler's old name, serves as it did.
    let flv = server.dir.join("limited-media/sample.flv");
    let r = limited.get("sample.flv?start=20");
    assert_eq!(r.status, 200, "FlvStreamingHandler: sample.flv?start=20");
    assert!(
        r.body == expected(&flv, "start=20", PrefixMode::Init, StartUnit::Seconds),
        "FlvStreamingHandler: sample.flv?start=20 differs from the library's"
    );
}

#[test]
#[ignore = "needs dotnet host packages: scripts/setup-dotnet.sh"]
fn dotnet_binding_frees_every_handle() {
    let _serial = serial();
    require("mcs");
    require("mono");
    let out = root()
        .join("target")
        .join(format!("dotnet-probe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    build_into(&out);
    let file = host_media_dir().join("h264_aac.plain.flv");
    let mut run = Command::new("mono");
    use_library_under_test(&mut run);
    let run = run
        .arg(out.join("probe").join("HandleProbe.exe"))
        .arg(&file)
        .arg(PROBE_ITERATIONS.to_string())
        .output()
        .expect("mono");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "HandleProbe failed:\n{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // "iterations N bytes B rss_warm_kb W rss_end_kb E"
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let field = |name: &str| -> u64 {
        let at = words.iter().position(|w| *w == name).unwrap_or_else(|| {
            panic!("HandleProbe printed no {name}: {stdout}");
        });
        words[at + 1].parse().unwrap()
    };
    let (warm, end) = (field("rss_warm_kb"), field("rss_end_kb"));
    eprintln!(
        "dotnet binding: RSS {warm} kB after warm-up, {end} kB after {} more iterations \
         (slack {PROBE_SLACK_KB} kB)",
        PROBE_ITERATIONS * 4 / 5
    );
    assert!(field("bytes") > 0 && warm > 0, "{stdout}");
    assert!(
        end <= warm + PROBE_SLACK_KB,
        "the P/Invoke layer grew from {warm} kB to {end} kB"
    );
    let _ = fs::remove_dir_all(out);
}
