//! The example host (`examples/pseudostream.rs serve`): `--<key> <value>`.

use std::process::{Command, Stdio};

use super::super::host::{
    example_exe, free_port, host_media_dir, wait_until_listening, HostUnderTest, Process,
};
use super::{RunningHost, Settings};

pub fn start(settings: Settings) -> RunningHost {
    let port = free_port();
    let mut command = Command::new(example_exe());
    command
        .arg("serve")
        .arg(host_media_dir())
        .args(["--addr", &format!("127.0.0.1:{port}")]);
    for (key, value) in settings {
        command.arg(format!("--{key}")).arg(value);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Process(child);
    wait_until_listening(&mut server, port, "example host", None);
    RunningHost {
        host: HostUnderTest {
            name: "example host",
            port,
            base: String::new(),
            pid: server.0.id(),
        },
        keep: vec![Box::new(server)],
    }
}
