//! The PHP FFI binding: `php -S` with `bindings/php/examples/router.php`,
//! each setting as the environment variable `PSEUDOSTREAM_<KEY>`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::super::host::{
    free_port, host_media_dir, use_library_under_test, wait_until_listening, HostUnderTest, Process,
};
use super::super::root;
use super::{RunningHost, Settings};

/// The server's log: shown when a test fails while it runs, else removed.
struct Log(PathBuf);

impl Drop for Log {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = fs::read_to_string(&self.0).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !l.ends_with(" Accepted") && !l.ends_with(" Closing"))
                .collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("php -S log ({}):\n{tail}", self.0.display());
        } else {
            let _ = fs::remove_file(&self.0);
        }
    }
}

pub fn start(settings: Settings) -> RunningHost {
    let port = free_port();
    let log = root().join("target").join(format!("php-parity-{port}.log"));
    let mut command = Command::new("php");
    command
        .args(["-d", "ffi.enable=1", "-S", &format!("127.0.0.1:{port}")])
        .arg(root().join("bindings/php/examples/router.php"))
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap());
    // Only the settings given here reach the router.
    for (name, _) in std::env::vars() {
        if name.starts_with("PSEUDOSTREAM_") || name == "PHP_CLI_SERVER_WORKERS" {
            command.env_remove(name);
        }
    }
    command.env("PSEUDOSTREAM_MEDIA", host_media_dir());
    use_library_under_test(&mut command);
    for (key, value) in settings {
        command.env(format!("PSEUDOSTREAM_{}", key.to_ascii_uppercase()), value);
    }
    let mut server = Process(
        command
            .spawn()
            .expect("php not found: run scripts/setup-php.sh"),
    );
    wait_until_listening(&mut server, port, "php -S", Some(log.as_ref()));
    RunningHost {
        host: HostUnderTest {
            name: "php",
            port,
            base: String::new(),
            pid: server.0.id(),
        },
        // The server stops before its log goes.
        keep: vec![Box::new(server), Box::new(Log(log))],
    }
}
