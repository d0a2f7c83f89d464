//! The Ruby host: puma (single mode, 4 threads) on `bindings/ruby/config.ru`,
//! each setting as the environment variable `PSEUDOSTREAM_<KEY>`.

use std::fs;
use std::process::{Command, Stdio};

use super::super::host::{
    free_port, host_media_dir, use_library_under_test, wait_until_listening, HostUnderTest, Process,
};
use super::super::{root, TempFile};
use super::{RunningHost, Settings};

pub fn start(settings: Settings) -> RunningHost {
    let port = free_port();
    let log = TempFile::new("puma.log");
    let mut command = Command::new("puma");
    clear_settings(&mut command);
    use_library_under_test(&mut command);
    command
        .args(["-b", &format!("tcp://127.0.0.1:{port}")])
        .args(["-t", "4:4", "-e", "production"])
        .arg(root().join("bindings/ruby/config.ru"))
        .current_dir(root())
        .env("PSEUDOSTREAM_MEDIA", host_media_dir());
    for (key, value) in settings {
        command.env(format!("PSEUDOSTREAM_{}", key.to_ascii_uppercase()), value);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log.path()).unwrap())
        .spawn()
        .expect("cannot run puma: run scripts/setup-ruby.sh");
    let mut server = Process(child);
    wait_until_listening(&mut server, port, "ruby host (puma)", Some(log.path()));
    let pid = server.0.id();
    RunningHost {
        host: HostUnderTest {
            name: "ruby",
            port,
            base: String::new(),
            pid,
        },
        // The server stops before its log goes.
        keep: vec![Box::new(server), Box::new(log)],
    }
}

/// Leaves out every `PSEUDOSTREAM_*` variable of the caller's environment:
/// the app reads one for each library key, so any would change what is
/// tested.
pub fn clear_settings(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PSEUDOSTREAM_") {
            command.env_remove(name);
        }
    }
    command
}
