//! The Ruby host: puma (single mode, 4 threads) on `bindings/ruby/config.ru`,
//! each setting as the environment variable `PSEUDOSTREAM_<KEY>`.

use super::super::host::free_port;
use super::super::root;
use super::{app_command, spawn_server, Launch, RunningHost, Settings, Started};

/// puma serving the launch's media through the Rack app: single mode (one
/// process, so its pid is the one whose memory is measured), 4 threads.
pub fn launch(launch: Launch) -> Started {
    // Logged once the app is loaded and the port bound.
    spawn(launch)
        .ready_when_logged("Use Ctrl-C to stop".into())
        .listening()
}

/// puma as [`launch`] starts it, not waited for: for a test that expects it
/// to stop at boot.
pub fn spawn(launch: Launch) -> Started {
    let port = free_port();
    let mut command = app_command("puma", &launch);
    command
        .envs(launch.env.iter().copied())
        .args(launch.args)
        .args(["-b", &format!("tcp://127.0.0.1:{port}")])
        .args(["-t", "4:4", "-e", "production"])
        .arg(root().join("bindings/ruby/config.ru"));
    let log = launch.log_or("puma.log");
    let name = launch.name.unwrap_or("ruby");
    spawn_server(name, &mut command, port, log, "run scripts/setup-ruby.sh")
}

pub fn start(settings: Settings) -> RunningHost {
    RunningHost::launched(launch, settings)
}
