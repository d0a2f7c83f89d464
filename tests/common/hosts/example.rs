//! The example host (`examples/pseudostream.rs serve`): `--<key> <value>`.

use std::process::Command;

use super::super::host::{example_exe, free_port};
use super::{spawn_server, Launch, RunningHost, Settings, Started};

/// `pseudostream serve MEDIA`, each setting as `--KEY VALUE`, then the
/// launch's arguments; its request log (stderr) to the launch's log.
pub fn launch(launch: Launch) -> Started {
    let port = free_port();
    let mut command = Command::new(example_exe());
    command
        .arg("serve")
        .arg(launch.media())
        .args(["--addr", &format!("127.0.0.1:{port}")]);
    for (key, value) in launch.settings {
        command.arg(format!("--{key}")).arg(value);
    }
    command.args(launch.args).envs(launch.env.iter().copied());
    let log = launch.log_or("example-host.log");
    let name = launch.name.unwrap_or("example host");
    spawn_server(
        name,
        &mut command,
        port,
        log,
        "cargo builds it with the tests",
    )
    .ready_when_logged(format!("on http://127.0.0.1:{port}/"))
    .listening()
}

pub fn start(settings: Settings) -> RunningHost {
    RunningHost::launched(launch, settings)
}
