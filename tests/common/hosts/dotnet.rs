//! The .NET host: `bindings/dotnet` built with `mcs`, hosted by
//! `fastcgi-mono-server4` behind nginx (`fastcgi_pass`), each setting an
//! `<add key="pseudostream:KEY" value="VALUE" />` in the application's
//! web.config.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::host::{free_port, host_media_dir, http, use_library_under_test, HostUnderTest};
use super::super::root;
use super::nginx::Nginx;
use super::{spawn_server, RunningHost, ScratchDir, ServerLog, Settings, Started};

/// fastcgi-mono-server4 with a test's ASP.NET applications, nginx in front.
pub struct Dotnet {
    dir: ScratchDir,
    /// Each application's path and directory.
    apps: Vec<(String, PathBuf)>,
}

impl Dotnet {
    /// Checks for the tools; the applications go into a fresh
    /// `target/<what>-…`.
    pub fn new(what: &str) -> Dotnet {
        require_tools();
        Dotnet {
            dir: ScratchDir::new(what),
            apps: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// bindings/dotnet built into DIR/NAME and served below `/NAME/`, its
    /// appSettings `mediaRoot` = `media` and then `settings`. Returns its
    /// directory: its web.config may still change before `start`.
    pub fn app(&mut self, name: &str, media: &Path, settings: Settings) -> PathBuf {
        let app = self.dir.join(name);
        build_into(&app);
        let media = media.canonicalize().unwrap();
        let mut all = vec![("mediaRoot", media.to_str().unwrap())];
        all.extend_from_slice(settings);
        set_app_settings(&app.join("web.config"), &all);
        self.apps.push((format!("/{name}/"), app.clone()));
        app
    }

    /// Mono serving the applications on a FastCGI TCP socket, logging to
    /// DIR/mono.log, and nginx in front (one process, unbuffered, adding
    /// only its own Date, Server and Connection); waits until both listen.
    /// ASP.NET starts with the first request: see
    /// [`RunningDotnet::wait_until_serving`].
    pub fn start(self) -> RunningDotnet {
        let fcgi_port = free_port();
        let applications: Vec<String> = self
            .apps
            .iter()
            .map(|(path, app)| format!("{}:{}/", path.trim_end_matches('/'), app.display()))
            .collect();
        let mut mono = Command::new("fastcgi-mono-server4");
        use_library_under_test(&mut mono);
        mono.arg(format!("/applications={}", applications.join(",")))
            .arg(format!("/socket=tcp:127.0.0.1:{fcgi_port}"));
        let log = ServerLog::kept(&self.dir.join("mono.log"));
        let setup = "run scripts/setup-dotnet.sh";
        let mono = spawn_server("fastcgi-mono-server4", &mut mono, fcgi_port, log, setup);
        let locations: String = self
            .apps
            .iter()
            .map(|(path, app)| fastcgi_location(path, app, fcgi_port))
            .collect();
        let nginx = Nginx {
            dir: &self.dir.join("nginx"),
            module: false,
            main: "master_process off;\n",
            http: "access_log off;\n",
            server: &format!("root {}/nginx/empty;\n{locations}", self.dir.display()),
        }
        .start();
        RunningDotnet {
            port: nginx.port,
            nginx,
            mono: mono.listening(),
            dir: self.dir,
        }
    }
}

/// nginx passing `path` to Mono over FastCGI, unbuffered.
fn fastcgi_location(path: &str, app: &Path, fcgi_port: u16) -> String {
    let app = app.display();
    format!(
        "location {path} {{\n\
         fastcgi_pass 127.0.0.1:{fcgi_port};\n\
         fastcgi_buffering off;\n\
         fastcgi_buffer_size 64k;\n\
         fastcgi_buffers 4 64k;\n\
         fastcgi_read_timeout 300s;\n\
         fastcgi_param QUERY_STRING $query_string;\n\
         fastcgi_param REQUEST_METHOD $request_method;\n\
         fastcgi_param CONTENT_TYPE $content_type;\n\
         fastcgi_param CONTENT_LENGTH $content_length;\n\
         fastcgi_param REQUEST_URI $request_uri;\n\
         fastcgi_param DOCUMENT_URI $document_uri;\n\
         fastcgi_param DOCUMENT_ROOT {app};\n\
         fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n\
         fastcgi_param SCRIPT_FILENAME {app}$fastcgi_script_name;\n\
         fastcgi_param PATH_INFO \"\";\n\
         fastcgi_param SERVER_PROTOCOL $server_protocol;\n\
         fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n\
         fastcgi_param SERVER_SOFTWARE nginx;\n\
         fastcgi_param REMOTE_ADDR $remote_addr;\n\
         fastcgi_param REMOTE_PORT $remote_port;\n\
         fastcgi_param SERVER_ADDR $server_addr;\n\
         fastcgi_param SERVER_PORT $server_port;\n\
         fastcgi_param SERVER_NAME $server_name;\n\
         }}\n"
    )
}

/// The .NET host running: nginx on `port` in front of Mono.
pub struct RunningDotnet {
    pub port: u16,
    // Dropped in this order: nginx, Mono, then the directory.
    nginx: Started,
    mono: Started,
    pub dir: ScratchDir,
}

impl RunningDotnet {
    /// The shared checks' view of the application below `base`; its pid is
    /// Mono's, which runs the binding.
    pub fn host(&self, name: &'static str, base: &str) -> HostUnderTest {
        HostUnderTest {
            name,
            port: self.port,
            base: base.to_string(),
            pid: self.mono.pid(),
        }
    }

    /// The last 30 lines of Mono's log.
    pub fn log_tail(&self) -> String {
        let text = self.mono.log.text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The first request starts ASP.NET and JITs the handler: waits up to
    /// 180 s for the application under `base` to answer a request for a
    /// media file with anything but a server error.
    pub fn wait_until_serving(&self, base: &str) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let reply = http(
                self.port,
                "GET",
                &format!("{base}/sample.flv"),
                &[("Range", "bytes=0-0")],
            );
            if (200..500).contains(&reply.status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the .NET host never served {base}/sample.flv (last status {}):\n{}",
                reply.status,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

pub fn start(settings: Settings) -> RunningHost {
    let mut dotnet = Dotnet::new("dotnet-host");
    dotnet.app("media", host_media_dir(), settings);
    let dotnet = dotnet.start();
    dotnet.wait_until_serving("/media");
    RunningHost {
        host: dotnet.host("dotnet host", "/media"),
        keep: vec![Box::new(dotnet)],
    }
}

pub fn require_tools() {
    for cmd in ["mcs", "mono", "fastcgi-mono-server4", "nginx"] {
        require(cmd);
    }
}

pub fn require(cmd: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{cmd} not found: run scripts/setup-dotnet.sh");
}

/// Runs bindings/dotnet/build.sh into `out`: an application directory
/// (bin/ and the shipped web.config).
pub fn build_into(out: &Path) {
    let build = Command::new("bash")
        .arg(root().join("bindings/dotnet/build.sh"))
        .arg(out)
        .output()
        .expect("bash");
    assert!(
        build.status.success(),
        "bindings/dotnet/build.sh failed:\n{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
}

/// Replaces the appSettings of the shipped web.config with
/// `pseudostream:KEY` = VALUE for each pair, in order.
fn set_app_settings(web_config: &Path, settings: &[(&str, &str)]) {
    let text = fs::read_to_string(web_config).unwrap();
    let (open, close) = ("<appSettings>", "</appSettings>");
    let from = text.find(open).expect("web.config has <appSettings>") + open.len();
    let to = text.find(close).expect("web.config has </appSettings>");
    let mut adds = String::new();
    for (key, value) in settings {
        adds += &format!(
            "\n    <add key=\"pseudostream:{}\" value=\"{}\" />",
            xml_escape(key),
            xml_escape(value)
        );
    }
    fs::write(
        web_config,
        format!("{}{adds}\n  {}", &text[..from], &text[to..]),
    )
    .unwrap();
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
