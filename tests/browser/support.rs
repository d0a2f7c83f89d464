//! What the browser tests share: the prerequisites, the Node.js driver run
//! under a time limit, how a test ends, and small byte and header helpers.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::root;
use crate::json::{self, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium, playwright-core, Node.js and `web_files` (below web/) are there.
pub fn check_prerequisites(web_files: &[&str]) {
    let web = root().join("web");
    let mut needs = vec![
        PathBuf::from(CHROMIUM),
        web.join("node_modules/playwright-core/index.mjs"),
    ];
    needs.extend(web_files.iter().map(|f| web.join(f)));
    for need in needs {
        assert!(
            need.exists(),
            "{} missing: run scripts/setup-web.sh",
            need.display()
        );
    }
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js 20"
    );
}

/// World-readable (nginx's workers run as nobody).
pub fn make_public(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A big-endian number.
pub fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// The first byte position of `bytes=N-` or `bytes=N-M`.
pub fn range_start(range: &str) -> Option<u64> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let (first, _) = spec.split_once('-')?;
    first.parse().ok()
}

#[test]
fn range_start_is_the_first_position_asked_for() {
    assert_eq!(range_start("bytes=8912634-"), Some(8912634));
    assert_eq!(range_start("bytes=10-20"), Some(10));
    assert_eq!(range_start("bytes=4685824-6239806"), Some(4685824));
    assert_eq!(range_start("bytes=-20"), None);
}

/// The end of a browser test, its servers stopped: the served directory
/// goes when every case passed (it stays to look into otherwise), then the
/// test fails with every problem found.
pub fn finish(dir: &Path, failures: &[String]) {
    if failures.is_empty() {
        let _ = fs::remove_dir_all(dir);
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs a driver script (tests/browser/SCRIPT with `args`, Chromium added)
/// for at most `limit`; returns the JSON report it prints.
pub fn run_driver(script: &str, args: &[String], limit: Duration) -> Result<Value, String> {
    let mut child = Command::new("node")
        .arg(root().join("tests/browser").join(script))
        .args(args)
        .args(["--chromium", CHROMIUM])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the driver ran over {} s", limit.as_secs()));
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    if !status.success() {
        return Err(format!("the driver failed ({status}): {}", stderr.trim()));
    }
    json::parse(stdout.trim()).map_err(|e| format!("{e} in the driver's output {stdout:?}"))
}
