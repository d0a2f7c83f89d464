//! nginx with the module (`make nginx-module`): `pseudostream_<key> "<value>";`
//! in the location that serves the media.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::super::host::{built, free_port, host_media_dir};
use super::super::root;
use super::{spawn_server, RunningHost, ScratchDir, ServerLog, Settings, Started};

/// The module `make nginx-module` builds.
pub fn module() -> PathBuf {
    let module = root().join("target/nginx-build/objs/ngx_http_pseudostream_module.so");
    built(module, "run `make nginx-module`")
}

/// nginx for a test, everything under `dir` (its prefix): in the
/// foreground, one worker, its pid file, error log (level info) and temp
/// paths there, and one server on 127.0.0.1 and a port of its own.
pub struct Nginx<'a> {
    pub dir: &'a Path,
    /// Loads the module; false for nginx alone, in front of the .NET host
    /// (scripts/setup-dotnet.sh installs it).
    pub module: bool,
    /// More main-context lines.
    pub main: &'a str,
    /// More http-context lines.
    pub http: &'a str,
    /// The server's lines after its `listen`.
    pub server: &'a str,
}

impl Nginx<'_> {
    /// Writes DIR/nginx.conf, checks it (`nginx -t`) and starts nginx until
    /// it listens; stopped gracefully (SIGQUIT) when dropped.
    pub fn start(&self) -> Started {
        let port = free_port();
        let dir = self.dir;
        fs::create_dir_all(dir.join("tmp")).unwrap();
        let (load, setup) = if self.module {
            let load = format!("load_module {};\n", module().display());
            (load, "run scripts/setup-deps.sh / make nginx-module")
        } else {
            (String::new(), "run scripts/setup-dotnet.sh")
        };
        let d = dir.display();
        let conf = format!(
            "{load}\
             worker_processes 1;\n\
             daemon off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             {main}\
             http {{\n\
             client_body_temp_path {d}/tmp/body;\n\
             proxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fastcgi;\n\
             uwsgi_temp_path {d}/tmp/uwsgi;\n\
             scgi_temp_path {d}/tmp/scgi;\n\
             {http}\
             server {{\n\
             listen 127.0.0.1:{port};\n\
             {server}\n\
             }}\n\
             }}\n",
            main = self.main,
            http = self.http,
            server = self.server,
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let nginx = |args: &[&str]| {
            let mut c = Command::new("nginx");
            c.args(args).arg("-p").arg(dir).arg("-c").arg(&conf_path);
            c
        };
        let test = nginx(&["-t", "-q"])
            .output()
            .unwrap_or_else(|e| panic!("nginx ({e}): {setup}"));
        assert!(
            test.status.success(),
            "nginx -t failed: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let log = ServerLog::temporary("nginx.log");
        let mut nginx = spawn_server("nginx", &mut nginx(&[]), port, log, setup);
        nginx.graceful = Some(libc::SIGQUIT);
        nginx.listening()
    }
}

pub fn start(settings: Settings) -> RunningHost {
    let dir = ScratchDir::new("nginx-host");
    let media = host_media_dir().canonicalize().unwrap();
    let mut directives = String::new();
    for (key, value) in settings {
        directives += &format!("pseudostream_{key} \"{value}\"; ");
    }
    let server = format!(
        "location /media/ {{ alias {}/; pseudostream; {directives}}}",
        media.display()
    );
    let nginx = Nginx {
        dir: &dir,
        module: true,
        main: "",
        http: "access_log off;\nsendfile on;\n",
        server: &server,
    };
    RunningHost::new(nginx.start(), "/media").with_dir(dir)
}
