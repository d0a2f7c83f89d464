//! The example host (`examples/pseudostream.rs serve`) run for real and put
//! through the request matrix every host binding passes.

mod common;

use std::process::{Command, Stdio};

use common::host::*;
use common::*;
use pseudostream::{CutMode, Options, PrefixMode, StartUnit};

#[test]
fn example_host_passes_the_host_matrix() {
    let exe = example_exe();
    let port = free_port();
    let child = Command::new(&exe)
        .arg("serve")
        .arg(host_media_dir())
        .args(["--addr", &format!("127.0.0.1:{port}"), "--unit", "seconds"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Process(child);
    wait_for_port(port, "example host");
    let host = HostUnderTest {
        name: "example host",
        port,
        base: String::new(),
        pid: server.0.id(),
    };
    assert_no_failures("example host matrix", &run_matrix(&host));
    check_no_leak(&host, 4096);

    // Configured pacing applies to every body, Range included.
    let port = free_port();
    let child = Command::new(&exe)
        .arg("serve")
        .arg(host_media_dir())
        .args(["--addr", &format!("127.0.0.1:{port}"), "--unit", "seconds"])
        .args(["--rate", "100000", "--burst", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let paced = Process(child);
    wait_for_port(port, "paced example host");
    let host = HostUnderTest {
        name: "paced example host",
        port,
        base: String::new(),
        pid: paced.0.id(),
    };
    assert_no_failures("paced example host", &run_paced_location(&host));
}

/// `--cut` and `--mp4-max-moov-size` reach the library: a keyframe cut is
/// the library's keyframe cut, a tiny moov limit refuses the file (415), and
/// bad values are usage errors before anything is opened.
#[test]
fn example_host_mp4_settings() {
    let exe = example_exe();
    let file = host_media_dir().join("h264_aac.moov_end.mp4");
    let q = "start=5.5";
    let keyframe_options = Options {
        start_unit: StartUnit::Seconds,
        cut: CutMode::Keyframe,
        ..Options::default()
    };
    let keyframe = served_bytes(&file, q, &keyframe_options);
    assert_ne!(
        keyframe,
        expected(&file, q, PrefixMode::Init, StartUnit::Seconds),
        "{q} is on a keyframe: exact and keyframe cuts agree, nothing to tell apart"
    );
    let cut = |extra: &[&str]| {
        Command::new(&exe)
            .arg("cut")
            .arg(&file)
            .args([q, "--unit", "seconds"])
            .args(extra)
            .output()
            .unwrap()
    };

    let out = cut(&["--cut", "keyframe"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == keyframe,
        "--cut keyframe: not the library's keyframe cut"
    );

    let out = cut(&["--mp4-max-moov-size", "1000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && stderr.starts_with("HTTP/1.1 415 "),
        "--mp4-max-moov-size 1000: {:?}\n{stderr}",
        out.status
    );

    for (args, message) in [
        (
            ["--cut", "sideways"],
            "--cut: exact or keyframe, not 'sideways'",
        ),
        (
            ["--mp4-max-moov-size", "12k"],
            "--mp4-max-moov-size: not a non-negative integer: '12k'",
        ),
    ] {
        let out = cut(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2) && stderr.contains(message) && out.stdout.is_empty(),
            "{}: {:?}\n{stderr}",
            args.join(" "),
            out.status
        );
    }
}
