//! The Ruby host: puma (single mode, 4 threads) on `bindings/ruby/config.ru`,
//! each setting as the environment variable `PSEUDOSTREAM_<KEY>`.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::super::host::{
    free_port, host_media_dir, use_library_under_test, HostUnderTest, Process,
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
    if let Err(why) = wait_until_serving(&mut server.0, port) {
        let output = fs::read_to_string(log.path()).unwrap_or_default();
        panic!("ruby host (puma): {why}\n{output}");
    }
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

/// Waits up to 30 s until puma answers an HTTP request on `port`. A port
/// that accepts is not enough: a client connecting to an ephemeral port
/// nobody listens on yet can be given that very port and connect to
/// itself, and the first real request is then refused.
pub fn wait_until_serving(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("exited ({status}) before serving on port {port}"));
        }
        if answers_http(port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no HTTP answer on port {port} within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a server on `port` answers a request with an HTTP status line.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    if s.local_addr().ok() == Some(addr) {
        return false;
    }
    let timeout = Some(Duration::from_secs(5));
    if s.set_read_timeout(timeout).is_err()
        || s.set_write_timeout(timeout).is_err()
        || s.write_all(b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
