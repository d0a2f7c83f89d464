//! MP4 (ISO BMFF) robustness: every valid file of the generated MP4 matrix
//! opens, and every hostile file (one fault each, modelled on the nginx mp4
//! module CVEs) is refused with a 415, quickly, without a panic or a hang.
//!
//! Media: `scripts/make-mp4-media.sh target/test-media/mp4` (valid files,
//! `manifest.txt`) and `scripts/mp4craft.py malformed` on the moov-at-end
//! file into `target/test-media/mp4/malformed` (`malformed.txt`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use common::{assert_no_failures, require_tool, root};
use pseudostream::Media;

/// The longest a hostile file may take to be refused.
const LIMIT: Duration = Duration::from_secs(2);
/// After this long an open counts as hung and its thread is abandoned, so
/// one runaway loop cannot stall the whole report.
const HANG: Duration = Duration::from_secs(20);

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): run scripts/setup-deps.sh"));
    if !out.status.success() {
        panic!(
            "{what} failed (run scripts/setup-deps.sh):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `target/test-media/mp4`, generated once per test binary.
fn mp4_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_tool("ffmpeg");
        require_tool("ffprobe");
        let dir = root().join("target").join("test-media").join("mp4");
        run(
            "make-mp4-media.sh",
            Command::new("bash")
                .arg(root().join("scripts").join("make-mp4-media.sh"))
                .arg(&dir),
        );
        dir
    })
}

/// `target/test-media/mp4/malformed`, rewritten once per test binary.
fn malformed_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = mp4_dir().join("h264_aac.moov_end.mp4");
        let dir = mp4_dir().join("malformed");
        run(
            "mp4craft.py malformed",
            Command::new("python3")
                .arg(root().join("scripts").join("mp4craft.py"))
                .arg("malformed")
                .arg(&src)
                .arg(&dir),
        );
        dir
    })
}

/// One line of the valid files' `manifest.txt`.
#[derive(Debug)]
struct Valid {
    file: String,
    path: PathBuf,
    notes: String,
}

fn valid_files() -> Vec<Valid> {
    let dir = mp4_dir();
    let text = fs::read_to_string(dir.join("manifest.txt")).expect("mp4 manifest.txt");
    let list: Vec<Valid> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 5, "manifest line: {line}");
            Valid {
                file: f[0].to_string(),
                path: dir.join(f[0]),
                notes: f[4].to_string(),
            }
        })
        .collect();
    assert!(
        list.len() >= 14,
        "the mp4 manifest lists only {} files",
        list.len()
    );
    list
}

/// One line of `malformed.txt`: file name, then what is wrong with it.
fn malformed_files() -> Vec<(String, PathBuf, String)> {
    let dir = malformed_dir();
    let text = fs::read_to_string(dir.join("malformed.txt")).expect("malformed.txt");
    let list: Vec<(String, PathBuf, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (file, what) = line.split_once(' ').unwrap_or((line, ""));
            (file.to_string(), dir.join(file), what.to_string())
        })
        .collect();
    assert!(!list.is_empty(), "malformed.txt lists no files");
    list
}

/// What `Media::open` did with one file.
enum Outcome {
    Opened,
    Refused { status: u16, message: String },
    Panicked(String),
    Hung,
}

impl Outcome {
    fn show(&self) -> String {
        match self {
            Outcome::Opened => "opened".to_string(),
            Outcome::Refused { status, message } => format!("{status} {message}"),
            Outcome::Panicked(m) => format!("PANIC {m}"),
            Outcome::Hung => format!("HUNG (no answer after {} s)", HANG.as_secs()),
        }
    }
}

/// Opens `path` on its own thread: a panic is caught and a hang abandoned.
fn open_guarded(path: &Path) -> (Outcome, Duration) {
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    let start = Instant::now();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| match Media::open(&owned) {
            Ok(_) => Outcome::Opened,
            Err(e) => Outcome::Refused {
                status: e.http_status(),
                message: e.to_string(),
            },
        });
        let outcome = r.unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Panicked(msg)
        });
        let _ = tx.send((outcome, start.elapsed()));
    });
    rx.recv_timeout(HANG).unwrap_or((Outcome::Hung, HANG))
}

#[test]
fn malformed_files_are_refused_with_415() {
    common::needs_ffmpeg!();
    let list = malformed_files();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (file, path, what) in &list {
        assert!(path.is_file(), "{file} is listed but missing");
        let (outcome, took) = open_guarded(path);
        println!(
            "{file:<32} {:>5} ms  {}  [{what}]",
            took.as_millis(),
            outcome.show()
        );
        if took > slowest.0 {
            slowest = (took, file.clone());
        }
        let problem = match &outcome {
            Outcome::Refused { status: 415, .. } if took <= LIMIT => None,
            Outcome::Refused { status: 415, .. } => {
                Some(format!("took {} ms (limit {LIMIT:?})", took.as_millis()))
            }
            Outcome::Refused { status, .. } => Some(format!("status {status}, not 415")),
            Outcome::Opened => Some("opened without an error".to_string()),
            Outcome::Panicked(_) | Outcome::Hung => Some(outcome.show()),
        };
        if let Some(p) = problem {
            failures.push(format!("{file} ({what}): {p}: {}", outcome.show()));
        }
    }
    println!(
        "{} malformed files; slowest {} at {} ms",
        list.len(),
        slowest.1,
        slowest.0.as_millis()
    );
    assert_no_failures("malformed MP4 files", &failures);
}

#[test]
fn valid_files_open() {
    common::needs_ffmpeg!();
    let mut failures = Vec::new();
    for v in valid_files() {
        let (outcome, took) = open_guarded(&v.path);
        println!(
            "{:<26} {:>5} ms  {}  [{}]",
            v.file,
            took.as_millis(),
            outcome.show(),
            v.notes
        );
        if !matches!(outcome, Outcome::Opened) {
            failures.push(format!("{} ({}): {}", v.file, v.notes, outcome.show()));
        }
    }
    assert_no_failures("valid MP4 files", &failures);
}
