//! lighttpd with mod_pseudostream from the build tree (`make
//! lighttpd-module`): `pseudostream.<key> = "<value>"` in its configuration.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::super::host::{built, free_port, host_media_dir};
use super::super::root;
use super::{spawn_server, RunningHost, ScratchDir, ServerLog, Settings, Started};

/// The module `make lighttpd-module` builds.
fn module() -> PathBuf {
    let module = root().join("target/lighttpd-build/mod_pseudostream.so");
    built(module, "run `make lighttpd-module`")
}

/// `lighttpd ARGS -m MODULES -f CONF`.
fn lighttpd(modules: &Path, conf: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("lighttpd");
    c.args(args).arg("-m").arg(modules).arg("-f").arg(conf);
    c
}

/// `lighttpd -tt` on `conf` with the module from the build tree.
pub fn check_config(conf: &Path) -> Output {
    lighttpd(module().parent().unwrap(), conf, &["-tt"])
        .output()
        .expect("lighttpd (run `make lighttpd-module`)")
}

/// lighttpd for a test, its files in `dir`: on 127.0.0.1 and a port of its
/// own with mod_alias and mod_pseudostream, its error log DIR/error.log.
pub struct Lighttpd<'a> {
    pub dir: &'a Path,
    /// The rest of its configuration: document root, aliases, blocks.
    pub conf: &'a str,
    /// Logs every request to DIR/access.log as `"REQUEST LINE" STATUS BYTES
    /// "RANGE"` (Debian's mod_accesslog).
    pub access_log: bool,
}

impl Lighttpd<'_> {
    /// Writes DIR/lighttpd.conf, checks it (`lighttpd -tt`) and runs it in
    /// the foreground (one process, no workers) until it listens; stopped
    /// with SIGINT (at once) when dropped.
    pub fn start(&self) -> Started {
        let port = free_port();
        let dir = self.dir;
        // `-m` replaces lighttpd's module directory: the build tree's module
        // and Debian's access log module, side by side.
        let modules = dir.join("modules");
        fs::create_dir_all(&modules).unwrap();
        for (link, to) in [
            ("mod_pseudostream.so", module()),
            (
                "mod_accesslog.so",
                PathBuf::from("/usr/lib/lighttpd/mod_accesslog.so"),
            ),
        ] {
            let _ = fs::remove_file(modules.join(link));
            symlink(to, modules.join(link)).unwrap();
        }
        let d = dir.display();
        let (access_module, access_log) = if self.access_log {
            let log = format!(
                "accesslog.filename = \"{d}/access.log\"\n\
                 accesslog.format = \"\\\"%r\\\" %>s %b \\\"%{{Range}}i\\\"\"\n"
            );
            ("\"mod_accesslog\", ", log)
        } else {
            ("", String::new())
        };
        let conf = format!(
            "server.bind = \"127.0.0.1\"\n\
             server.port = {port}\n\
             server.modules = (\"mod_alias\", {access_module}\"mod_pseudostream\")\n\
             server.errorlog = \"{d}/error.log\"\n\
             {access_log}\
             {}",
            self.conf
        );
        let conf_path = dir.join("lighttpd.conf");
        fs::write(&conf_path, conf).unwrap();
        let test = lighttpd(&modules, &conf_path, &["-tt"])
            .output()
            .expect("lighttpd (run `make lighttpd-module`)");
        assert!(
            test.status.success(),
            "lighttpd -tt failed: {}{}",
            String::from_utf8_lossy(&test.stdout),
            String::from_utf8_lossy(&test.stderr)
        );
        let mut command = lighttpd(&modules, &conf_path, &["-D"]);
        let log = ServerLog::kept(&dir.join("stderr.log"));
        let setup = "run `make lighttpd-module`";
        let mut lighttpd = spawn_server("lighttpd", &mut command, port, log, setup);
        lighttpd.graceful = Some(libc::SIGINT);
        lighttpd.listening()
    }
}

/// A lighttpd string literal.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn start(settings: Settings) -> RunningHost {
    let dir = ScratchDir::new("lighttpd-host");
    let media = host_media_dir().canonicalize().unwrap();
    let mut conf = format!(
        r#"server.document-root = "{d}"
alias.url = ("/media/" => "{m}/")
pseudostream.extensions = (".flv", ".mp4", ".m4v", ".m4a", ".mov")
"#,
        d = dir.display(),
        m = media.display()
    );
    for (key, value) in settings {
        conf.push_str(&format!("pseudostream.{key} = {}\n", quoted(value)));
    }
    let lighttpd = Lighttpd {
        dir: &dir,
        conf: &conf,
        access_log: false,
    };
    RunningHost::new(lighttpd.start(), "/media").with_dir(dir)
}
