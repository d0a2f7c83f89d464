//! The servers the browser tests play from: the example host, and nginx and
//! lighttpd with the modules. Each logs every request, so a test can tell
//! what a player asked for and what it was answered.

#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::hosts::lighttpd::Lighttpd;
use crate::common::hosts::nginx::Nginx;
use crate::common::hosts::{example, Launch, Started};
use crate::support::make_public;

/// One request as a server logged it.
#[derive(Debug)]
pub struct Logged {
    /// Path and query as requested.
    pub target: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    pub range: Option<String>,
    /// The line as logged, for failure reports.
    pub line: String,
}

enum AccessLog {
    /// The example host's request log on stderr.
    Example(PathBuf),
    Nginx(PathBuf),
    Lighttpd(PathBuf),
}

/// A running server and its request log; stopped when dropped.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    log: AccessLog,
    _running: Started,
}

impl Server {
    fn new(name: &'static str, log: AccessLog, running: Started) -> Server {
        Server {
            name,
            port: running.port,
            log,
            _running: running,
        }
    }

    /// `pseudostream serve DIR/media ARGS…`, its request log in DIR/NAME.log.
    pub fn example(dir: &Path, name: &'static str, args: &[&str]) -> Server {
        let log = dir.join(format!("{name}.log"));
        let running = example::launch(Launch {
            name: Some(name),
            media: Some(&dir.join("media")),
            args,
            log: Some(&log),
            ..Launch::default()
        });
        Server::new(name, AccessLog::Example(log), running)
    }

    /// nginx with the module loaded, one worker, `types` and then
    /// `locations` in its one server, under DIR/nginx-NAME.
    pub fn nginx(dir: &Path, name: &'static str, types: &str, locations: &str) -> Server {
        let dir = dir.join(format!("nginx-{name}"));
        fs::create_dir_all(&dir).unwrap();
        make_public(&dir);
        let d = dir.display();
        let http = format!(
            "log_format ps '$request_method $request_uri $status $body_bytes_sent \"$http_range\" \
             sent $bytes_sent in ${{request_time}}s c$connection \"$sent_http_content_range\"';\n\
             access_log {d}/access.log ps;\n\
             types {{ {types} }}\n\
             default_type application/octet-stream;\n\
             sendfile on;\n"
        );
        let running = Nginx {
            dir: &dir,
            module: true,
            main: "",
            http: &http,
            server: locations,
        }
        .start();
        Server::new(name, AccessLog::Nginx(dir.join("access.log")), running)
    }

    /// lighttpd with mod_pseudostream and its access log, `conf` the rest of
    /// its configuration (document root, aliases, blocks), under DIR/NAME.
    pub fn lighttpd(dir: &Path, name: &'static str, conf: &str) -> Server {
        let dir = dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        let running = Lighttpd {
            dir: &dir,
            conf,
            access_log: true,
        }
        .start();
        Server::new(name, AccessLog::Lighttpd(dir.join("access.log")), running)
    }

    pub fn is_example(&self) -> bool {
        matches!(self.log, AccessLog::Example(_))
    }

    /// The requests logged so far.
    pub fn requests(&self) -> Vec<Logged> {
        let (path, parse): (&Path, fn(&str) -> Option<Logged>) = match &self.log {
            AccessLog::Example(p) => (p, example_line),
            AccessLog::Nginx(p) => (p, nginx_line),
            AccessLog::Lighttpd(p) => (p, lighttpd_line),
        };
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(parse)
            .collect()
    }
}

/// `PEER METHOD TARGET STATUS BYTES MSms [Range: R] (note)`.
fn example_line(line: &str) -> Option<Logged> {
    let f: Vec<&str> = line.splitn(7, ' ').collect();
    if f.len() < 6 || !f[0].contains(':') || !f[5].ends_with("ms") {
        return None;
    }
    let rest = f.get(6).copied().unwrap_or("");
    let range = rest.strip_prefix("[Range: ").and_then(|r| {
        let end = r.find(']')?;
        Some(r[..end].to_string())
    });
    Some(Logged {
        target: f[2].to_string(),
        status: f[3].parse().ok()?,
        bytes: f[4].parse().ok()?,
        range,
        line: line.to_string(),
    })
}

/// `METHOD URI STATUS BODY_BYTES "RANGE" sent BYTES in Ts cCONN
/// "CONTENT-RANGE"` (`"-"` for a header that is not there).
fn nginx_line(line: &str) -> Option<Logged> {
    let f: Vec<&str> = line.splitn(5, ' ').collect();
    if f.len() < 5 {
        return None;
    }
    let rest = f[4].strip_prefix('"')?;
    let range = &rest[..rest.find('"')?];
    Some(Logged {
        target: f[1].to_string(),
        status: f[2].parse().ok()?,
        bytes: f[3].parse().ok()?,
        range: (range != "-").then(|| range.to_string()),
        line: line.to_string(),
    })
}

/// `"REQUEST LINE" STATUS BYTES "RANGE"`, as `Lighttpd` with `access_log`
/// logs.
fn lighttpd_line(line: &str) -> Option<Logged> {
    let (request, rest) = line.strip_prefix('"')?.split_once("\" ")?;
    let target = request.split(' ').nth(1)?;
    let mut f = rest.splitn(3, ' ');
    let status = f.next()?.parse().ok()?;
    let bytes = f.next()?.parse().unwrap_or(0);
    let quoted = f.next()?.strip_prefix('"')?;
    let range = &quoted[..quoted.find('"')?];
    Some(Logged {
        target: target.to_string(),
        status,
        bytes,
        range: (range != "-").then(|| range.to_string()),
        line: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_log_reads() {
        let l =
            lighttpd_line(r#""GET /media/a.flv?start=3 HTTP/1.1" 206 1000 "bytes=5-""#).unwrap();
        assert_eq!(
            (l.target.as_str(), l.status, l.bytes),
            ("/media/a.flv?start=3", 206, 1000)
        );
        assert_eq!(l.range.as_deref(), Some("bytes=5-"));
        let n = nginx_line(r#"GET /media/b.mp4 200 77 "-" sent 300 in 0.001s c4 "-""#).unwrap();
        assert_eq!(
            (n.target.as_str(), n.status, n.bytes, n.range),
            ("/media/b.mp4", 200, 77, None)
        );
        let e = example_line("127.0.0.1:5000 GET /c.flv 206 10 3ms [Range: bytes=0-9] (paced)")
            .unwrap();
        assert_eq!(
            (e.status, e.bytes, e.range.as_deref()),
            (206, 10, Some("bytes=0-9"))
        );
        assert!(example_line("listening on 127.0.0.1:5000").is_none());
    }
}
