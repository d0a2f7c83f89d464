//! lighttpd with mod_pseudostream from the build tree (`make
//! lighttpd-module`): `pseudostream.<key> = "<value>"` in its configuration.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::super::host::{free_port, host_media_dir, wait_until_listening, HostUnderTest, Process};
use super::super::root;
use super::{RunningHost, Settings};

/// Where `make lighttpd-module` leaves the module (lighttpd's `-m`).
pub fn module_dir() -> PathBuf {
    let dir = root().join("target/lighttpd-build");
    assert!(
        dir.join("mod_pseudostream.so").exists(),
        "{} missing: run `make lighttpd-module`",
        dir.join("mod_pseudostream.so").display()
    );
    dir
}

/// `lighttpd ARGS -m <build tree> -f CONF`.
pub fn lighttpd(conf: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("lighttpd");
    c.args(args).arg("-m").arg(module_dir()).arg("-f").arg(conf);
    c
}

/// Checks `conf` with `lighttpd -tt`, then runs it in the foreground (one
/// process, no workers) until it listens on `port`.
pub fn run(conf: &Path, port: u16) -> Process {
    let test = lighttpd(conf, &["-tt"])
        .output()
        .expect("lighttpd (run `make lighttpd-module`)");
    assert!(
        test.status.success(),
        "lighttpd -tt failed: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    let child = lighttpd(conf, &["-D"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut process = Process(child);
    wait_until_listening(&mut process, port, "lighttpd", None);
    process
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A lighttpd string literal.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn start(settings: Settings) -> RunningHost {
    let port = free_port();
    let dir = root()
        .join("target")
        .join(format!("lighttpd-host-{}-{port}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let scratch = Scratch(dir.clone());
    let media = host_media_dir().canonicalize().unwrap();
    let mut conf = format!(
        r#"server.document-root = "{d}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_alias", "mod_pseudostream")
server.errorlog = "{d}/error.log"
alias.url = ("/media/" => "{m}/")
pseudostream.extensions = (".flv", ".mp4", ".m4v", ".m4a", ".mov")
"#,
        d = dir.display(),
        m = media.display()
    );
    for (key, value) in settings {
        conf.push_str(&format!("pseudostream.{key} = {}\n", quoted(value)));
    }
    let path = dir.join("lighttpd.conf");
    fs::write(&path, conf).unwrap();
    let server = run(&path, port);
    let pid = server.0.id();
    RunningHost {
        host: HostUnderTest {
            name: "lighttpd",
            port,
            base: "/media".into(),
            pid,
        },
        // Stopped before its directory goes.
        keep: vec![Box::new(server), Box::new(scratch)],
    }
}
