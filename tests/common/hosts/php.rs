//! The PHP FFI binding: `php -S` with `bindings/php/examples/router.php`,
//! each setting as the environment variable `PSEUDOSTREAM_<KEY>`.

use std::path::Path;
use std::process::Command;

use super::super::host::free_port;
use super::super::root;
use super::{app_command, spawn_server, Launch, RunningHost, ServerLog, Settings, Started};

/// `php -S` with the router serving the launch's media through the binding
/// (FFI on, the library under test). One process unless the launch's env
/// sets PHP_CLI_SERVER_WORKERS: a memory check needs the pid that runs the
/// binding.
pub fn launch(launch: Launch) -> Started {
    let port = free_port();
    let mut command = app_command("php", &launch);
    command
        .env_remove("PHP_CLI_SERVER_WORKERS")
        .envs(launch.env.iter().copied())
        .args(["-d", "ffi.enable=1"])
        .args(launch.args)
        .args(["-S", &format!("127.0.0.1:{port}")])
        .arg(root().join("bindings/php/examples/router.php"));
    let log = launch.log_or("php.log");
    let name = launch.name.unwrap_or("php");
    spawn_server(name, &mut command, port, log, "run scripts/setup-php.sh")
        .ready_when_logged(ready_line(port))
        .listening()
}

/// What `php -S` logs once it has bound its port.
fn ready_line(port: u16) -> String {
    format!("Development Server (http://127.0.0.1:{port}) started")
}

/// `php -S` running a test's own `script`, without the binding (the
/// X-Accel-Redirect backend of tests/nginx.rs).
pub fn launch_script(script: &Path) -> Started {
    let port = free_port();
    let mut command = Command::new("php");
    command
        .args(["-S", &format!("127.0.0.1:{port}")])
        .arg(script);
    let log = ServerLog::temporary("php-script.log");
    spawn_server(
        "php -S",
        &mut command,
        port,
        log,
        "run scripts/setup-deps.sh",
    )
    .ready_when_logged(ready_line(port))
    .listening()
}

pub fn start(settings: Settings) -> RunningHost {
    RunningHost::launched(launch, settings)
}
