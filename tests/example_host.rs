//! The example host (`examples/pseudostream.rs serve`) run for real and put
//! through the request matrix every host binding passes.

mod common;

use std::process::{Command, Stdio};

use common::host::*;
use common::*;

#[test]
fn example_host_passes_the_host_matrix() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let exe = root()
        .join("target")
        .join(profile)
        .join("examples")
        .join("pseudostream");
    assert!(
        exe.exists(),
        "{} missing: cargo builds examples with the tests",
        exe.display()
    );
    let port = free_port();
    let child = Command::new(&exe)
        .arg("serve")
        .arg(host_media_dir())
        .args(["--addr", &format!("127.0.0.1:{port}"), "--unit", "seconds"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Process(child);
    wait_for_port(port, "example host");
    let host = HostUnderTest {
        name: "example host",
        port,
        base: String::new(),
        pid: server.0.id(),
    };
    assert_no_failures("example host matrix", &run_matrix(&host));
    check_no_leak(&host, 4096);
}
