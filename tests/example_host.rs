//! The example host (`examples/pseudostream.rs serve`) run for real and put
//! through the request matrix every host binding passes.

mod common;

use std::process::{Command, Stdio};

use common::host::*;
use common::hosts::{example, Launch};
use common::*;

#[test]
fn example_host_passes_the_host_matrix() {
    common::needs_ffmpeg!();
    let server = example::launch(Launch {
        settings: &[("unit", "seconds")],
        ..Launch::default()
    });
    let host = server.host("");
    assert_no_failures("example host matrix", &run_matrix(&host));
    check_no_leak(&host, 4096);

    // Configured pacing applies to every body, Range included.
    let paced = example::launch(Launch {
        name: Some("paced example host"),
        settings: &[("unit", "seconds"), ("rate", "100000"), ("burst", "0")],
        ..Launch::default()
    });
    assert_no_failures("paced example host", &run_paced_location(&paced.host("")));
}

/// `--cut` and `--mp4-max-moov-size` reach the library: a keyframe cut is
/// the library's keyframe cut, a tiny moov limit refuses the file (415), and
/// bad values are usage errors before anything is opened.
#[test]
fn example_host_mp4_settings() {
    common::needs_ffmpeg!();
    let exe = example_exe();
    let (name, q) = ("h264_aac.moov_end.mp4", "start=5.5");
    let keyframe = keyframe_cut(name, q);
    let file = host_media_dir().join(name);
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
            "--cut: option 'cut' = 'sideways': 'sideways' is not one of exact, keyframe",
        ),
        (
            ["--mp4-max-moov-size", "12q"],
            "--mp4-max-moov-size: option 'mp4_max_moov_size' = '12q': '12q' is not a size",
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

/// `pseudostream info FILE | head` and `pseudostream cut … | head`: the CLI
/// ends quietly when its reader has gone, killed by SIGPIPE as other Unix
/// tools are (a shell shows status 141), with nothing on stderr.
#[test]
fn the_cli_ends_quietly_on_a_closed_pipe() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;

    let sample = root().join("samples/sample.flv");
    let sample = sample.to_str().unwrap();
    for args in [vec!["info", sample], vec!["cut", sample, "start=10"]] {
        // A pipe whose reader has gone before anything is written.
        let mut fds = [0; 2];
        // SAFETY: a two-element array for pipe2(2) to fill (close-on-exec:
        // other tests' children must not inherit it).
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2(2) returned two descriptors that nothing else owns.
        let (reader, writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(reader);
        let mut child = Command::new(example_exe())
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {status:?}, stderr {stderr:?}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("pseudostream:"),
            "{args:?} wrote to stderr: {stderr}"
        );
    }
    // The whole output still goes to a reader that stays.
    let out = Command::new(example_exe())
        .args(["info", sample])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.starts_with(b"{"));
}
