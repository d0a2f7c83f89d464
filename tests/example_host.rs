//! The example host (`examples/pseudostream.rs serve`) run for real and put
//! through the request matrix every host binding passes.

mod common;

use std::process::{Command, Stdio};

use common::host::*;
use common::*;

#[test]
fn example_host_passes_the_host_matrix() {
    let exe = example_exe();
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

    // Configured pacing applies to every body, Range included.
    let port = free_port();
    let child = Command::new(&exe)
        .arg("serve")
        .arg(host_media_dir())
        .args(["--addr", &format!("127.0.0.1:{port}"), "--unit", "seconds"])
        .args(["--rate", "100000", "--burst", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let paced = Process(child);
    wait_for_port(port, "paced example host");
    let host = HostUnderTest {
        name: "paced example host",
        port,
        base: String::new(),
        pid: paced.0.id(),
    };
    assert_no_failures("paced example host", &run_paced_location(&host));
}
