//! What the browser tests share: the prerequisites, the Node.js driver run
//! under a time limit, and small byte and header helpers.

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

/// A lighttpd logging every request as `"REQUEST LINE" STATUS BYTES
/// "RANGE"` (see `lighttpd_access`) to DIR/access.log: `conf` is the rest
/// of its configuration (document root, port, aliases, blocks), DIR holds
/// its modules (mod_pseudostream and Debian's mod_accesslog) and logs.
pub fn start_lighttpd(dir: &Path, port: u16, conf: &str) -> crate::common::host::Process {
    let module = root().join("target/lighttpd-build/mod_pseudostream.so");
    assert!(
        module.exists(),
        "{} missing: run `make lighttpd-module`",
        module.display()
    );
    let modules = dir.join("modules");
    fs::create_dir_all(&modules).unwrap();
    for (link, to) in [
        ("mod_pseudostream.so", module.as_path()),
        (
            "mod_accesslog.so",
            Path::new("/usr/lib/lighttpd/mod_accesslog.so"),
        ),
    ] {
        let _ = fs::remove_file(modules.join(link));
        std::os::unix::fs::symlink(to, modules.join(link)).unwrap();
    }
    let d = dir.display();
    let conf = format!(
        "server.modules = (\"mod_alias\", \"mod_accesslog\", \"mod_pseudostream\")\n\
         server.errorlog = \"{d}/error.log\"\n\
         accesslog.filename = \"{d}/access.log\"\n\
         accesslog.format = \"\\\"%r\\\" %>s %b \\\"%{{Range}}i\\\"\"\n\
         {conf}"
    );
    let conf_path = dir.join("lighttpd.conf");
    fs::write(&conf_path, conf).unwrap();
    let child = Command::new("lighttpd")
        .arg("-D")
        .arg("-m")
        .arg(&modules)
        .arg("-f")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("lighttpd (make lighttpd-module installs it)");
    let mut process = crate::common::host::Process(child);
    crate::common::host::wait_until_listening(
        &mut process,
        port,
        "lighttpd",
        Some(&dir.join("stderr.log")),
    );
    process
}

/// One line of `start_lighttpd`'s access log: (target, status, body bytes,
/// Range header or None).
pub fn lighttpd_access(line: &str) -> Option<(String, u16, u64, Option<String>)> {
    let (request, rest) = line.strip_prefix('"')?.split_once("\" ")?;
    let target = request.split(' ').nth(1)?;
    let mut f = rest.splitn(3, ' ');
    let status = f.next()?.parse().ok()?;
    let bytes = f.next()?.parse().unwrap_or(0);
    let quoted = f.next()?.strip_prefix('"')?;
    let range = &quoted[..quoted.find('"')?];
    Some((
        target.to_string(),
        status,
        bytes,
        (range != "-").then(|| range.to_string()),
    ))
}
