//! Every server the tests run, each with one launcher here that every test
//! calls: the example host, PHP and puma take a [`Launch`]; nginx,
//! lighttpd and .NET a configuration of their own. Each returns a
//! [`Started`] server on a port of its own (`free_port`), waited for with
//! `wait_until_listening`.
//!
//! Library settings are given by key: each launcher writes them in its
//! host's own configuration language (nginx `pseudostream_<key>`, lighttpd
//! `pseudostream.<key>`, PHP and Ruby `PSEUDOSTREAM_<KEY>`, .NET
//! `pseudostream:<key>`, the example host `--<key>`), so a test that passes
//! the same settings to all of them also checks that the names map one to
//! one onto the library's.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::host::{
    host_media_dir, use_library_under_test, wait_until_listening, HostUnderTest, Process,
};
use super::{root, TempFile};

pub mod dotnet;
pub mod example;
pub mod lighttpd;
pub mod nginx;
pub mod php;
pub mod ruby;

/// A host serving `host_media_dir()` below `host.base`, stopped (and its
/// scratch files removed) when dropped.
pub struct RunningHost {
    pub host: HostUnderTest,
    /// What keeps it running: processes, configuration directories.
    pub keep: Vec<Box<dyn std::any::Any>>,
}

impl RunningHost {
    /// `server`, serving below `base`.
    fn new(server: Started, base: &str) -> RunningHost {
        RunningHost {
            host: server.host(base),
            keep: vec![Box::new(server)],
        }
    }

    /// A host process started by `launch` with only `settings`, serving at
    /// the root path.
    fn launched(launch: fn(Launch) -> Started, settings: Settings) -> RunningHost {
        let server = launch(Launch {
            settings,
            ..Launch::default()
        });
        RunningHost::new(server, "")
    }

    /// Keeps `dir` until the server has stopped.
    fn with_dir(mut self, dir: ScratchDir) -> RunningHost {
        self.keep.push(Box::new(dir));
        self
    }
}

/// Library settings as key/value pairs (the keys of `ps_options_set`).
pub type Settings<'a> = &'a [(&'a str, &'a str)];

/// Starts a host with these settings.
pub type Launcher = fn(Settings) -> RunningHost;

/// Every host, by name, with its launcher.
pub fn all() -> Vec<(&'static str, Launcher)> {
    vec![
        ("example", example::start as Launcher),
        ("nginx", nginx::start),
        ("lighttpd", lighttpd::start),
        ("php", php::start),
        ("ruby", ruby::start),
        ("dotnet", dotnet::start),
    ]
}

/// How a test starts a host process (the example host, PHP, puma): what it
/// needs, then `..Launch::default()`.
#[derive(Clone, Copy, Default)]
pub struct Launch<'a> {
    /// What failure messages and the shared checks call it (default: the
    /// server's name).
    pub name: Option<&'static str>,
    /// The media it serves (default: `host_media_dir()`).
    pub media: Option<&'a Path>,
    /// Library settings by key, which the launcher writes in its host's
    /// configuration language.
    pub settings: Settings<'a>,
    /// More environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// More command-line arguments: the example host's after its settings,
    /// PHP's and puma's before the script.
    pub args: &'a [&'a str],
    /// A file for its output, left there (default: a temporary file, shown
    /// when a test fails).
    pub log: Option<&'a Path>,
}

impl Launch<'_> {
    fn media(&self) -> &Path {
        self.media.unwrap_or_else(|| host_media_dir())
    }

    /// The launch's log, or a temporary file named after `name`.
    fn log_or(&self, name: &str) -> ServerLog {
        self.log
            .map_or_else(|| ServerLog::temporary(name), ServerLog::kept)
    }
}

/// A server a launcher started on its port; stopped when dropped.
pub struct Started {
    /// What failure messages and the shared checks call it.
    pub name: &'static str,
    pub port: u16,
    pub process: Process,
    /// Dropped after the process, so a failing test sees its whole output.
    pub log: ServerLog,
    /// Sent first when it stops, for a graceful end (nginx, lighttpd).
    graceful: Option<libc::c_int>,
    /// The line it logs once it has bound its port and is ready to serve
    /// (PHP, puma and the example host have one).
    ready_line: Option<String>,
}

impl Started {
    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// The shared checks' view of it, serving `host_media_dir()` below
    /// `base`.
    pub fn host(&self, base: &str) -> HostUnderTest {
        HostUnderTest {
            name: self.name,
            port: self.port,
            base: base.to_string(),
            pid: self.pid(),
        }
    }

    /// Says that it logs a line containing `line` when it is ready.
    fn ready_when_logged(mut self, line: String) -> Started {
        self.ready_line = Some(line);
        self
    }

    /// Waits until it has logged its ready line, if it has one, and accepts
    /// connections: fails when it exits first, with the end of its log.
    pub fn listening(mut self) -> Started {
        let log = self.log.path.clone();
        if let Some(line) = &self.ready_line {
            wait_until_logged(&mut self.process, &log, line, self.name);
        }
        wait_until_listening(&mut self.process, self.port, self.name, Some(&log));
        self
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(signal) = self.graceful {
            self.process.stop(signal);
        }
    }
}

/// Runs `command`, a server told to listen on `port`, its stdout and
/// stderr to `log`; `setup` says what installs the program when it does
/// not start. [`Started::listening`] waits for it.
fn spawn_server(
    name: &'static str,
    command: &mut Command,
    port: u16,
    log: ServerLog,
    setup: &str,
) -> Started {
    let out = fs::File::create(&log.path).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            let program = command.get_program().to_string_lossy();
            panic!("{name}: cannot run {program} ({e}): {setup}")
        });
    Started {
        name,
        port,
        process: Process(child),
        log,
        graceful: None,
        ready_line: None,
    }
}

/// Waits up to 30 s until `log` holds `line`; fails at once if `server`
/// exits first.
fn wait_until_logged(server: &mut Process, log: &Path, line: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(line) {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("{what} exited ({status}) before it was ready:\n{text}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not log {line:?} within 30 s:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `program` from the crate root for an application binding: the library
/// under test, the media and each setting as `PSEUDOSTREAM_<KEY>`. None of
/// the caller's own `PSEUDOSTREAM_*` variables: the apps read one for each
/// library key, so any would change what is tested.
fn app_command(program: &str, launch: &Launch) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PSEUDOSTREAM_") {
            command.env_remove(name);
        }
    }
    use_library_under_test(&mut command);
    command
        .current_dir(root())
        .env("PSEUDOSTREAM_MEDIA", launch.media());
    for (key, value) in launch.settings {
        command.env(format!("PSEUDOSTREAM_{}", key.to_ascii_uppercase()), value);
    }
    command
}

/// A server's output file.
pub struct ServerLog {
    path: PathBuf,
    /// The launcher's own file, removed with it; else the test's, kept.
    temporary: Option<TempFile>,
}

impl ServerLog {
    /// A file the test names, kept.
    fn kept(path: &Path) -> ServerLog {
        ServerLog {
            path: path.to_path_buf(),
            temporary: None,
        }
    }

    /// A temporary file named after `name`.
    fn temporary(name: &str) -> ServerLog {
        let file = TempFile::new(name);
        ServerLog {
            path: file.path().to_path_buf(),
            temporary: Some(file),
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }
}

impl Drop for ServerLog {
    /// A failing test shows the end of a temporary log before it goes.
    fn drop(&mut self) {
        if self.temporary.is_none() || !std::thread::panicking() {
            return;
        }
        let text = self.text();
        // php -S logs every connection's opening and closing.
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.ends_with(" Accepted") && !l.ends_with(" Closing"))
            .collect();
        if !lines.is_empty() {
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("{}:\n{tail}", self.path.display());
        }
    }
}

/// A fresh directory `target/<what>-<pid>-<n>` for a server's files;
/// removed when dropped, unless the test failed (kept for its logs).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(what: &str) -> ScratchDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = root()
            .join("target")
            .join(format!("{what}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
