//! Every host, started for a test with library settings given by key: each
//! launcher writes them in its host's own configuration language (nginx
//! `pseudostream_<key>`, lighttpd `pseudostream.<key>`, PHP and Ruby
//! `PSEUDOSTREAM_<KEY>`, .NET `pseudostream:<key>`, the example host
//! `--<key>`), so a test that passes the same settings to all of them also
//! checks that the names map one to one onto the library's.

use super::host::HostUnderTest;

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
