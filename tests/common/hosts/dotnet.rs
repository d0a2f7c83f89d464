//! The .NET host: `bindings/dotnet` built with `mcs`, hosted by
//! `fastcgi-mono-server4` behind nginx (`fastcgi_pass`), each setting an
//! `<add key="pseudostream:KEY" value="VALUE" />` in the application's
//! web.config. tests/host_dotnet.rs builds its applications with the same
//! pieces.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::host::{
    free_port, host_media_dir, http, nginx_main, nginx_temp_paths, use_library_under_test,
    wait_until_listening, HostUnderTest, Process,
};
use super::super::root;
use super::{RunningHost, Settings};

pub fn start(settings: Settings) -> RunningHost {
    require_tools();
    let port = free_port();
    let fcgi_port = free_port();
    let dir = scratch_dir("dotnet-host", port);
    let app = dir.join("app");
    build_into(&app);
    let media = host_media_dir().canonicalize().unwrap();
    let media = media.to_str().unwrap();
    let mut all = vec![("mediaRoot", media)];
    all.extend_from_slice(settings);
    set_app_settings(&app.join("web.config"), &all);

    let apps = [("/media/", app.as_path())];
    let mut mono = spawn_mono(&dir, &apps, fcgi_port);
    let mut nginx = spawn_nginx(&dir, &nginx_conf(&dir, &apps, port, fcgi_port));
    wait_until_listening(
        &mut mono,
        fcgi_port,
        "fastcgi-mono-server4",
        Some(&dir.join("mono.log")),
    );
    wait_until_listening(&mut nginx, port, "nginx", None);
    wait_until_serving(port, "/media", &dir);
    RunningHost {
        host: HostUnderTest {
            name: "dotnet host",
            port,
            base: "/media".into(),
            pid: mono.0.id(),
        },
        // Dropped in this order: nginx, Mono, then the directory.
        keep: vec![Box::new(nginx), Box::new(mono), Box::new(Scratch(dir))],
    }
}

/// Removes a host's directory when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A fresh `target/<what>-<pid>-<port>` with the nginx prefix inside.
pub fn scratch_dir(what: &str, port: u16) -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("{what}-{}-{port}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("nginx").join("tmp")).unwrap();
    dir
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
pub fn set_app_settings(web_config: &Path, settings: &[(&str, &str)]) {
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

/// fastcgi-mono-server4 serving each (path, application directory) on a
/// FastCGI TCP socket, logging to `dir/mono.log`.
pub fn spawn_mono(dir: &Path, apps: &[(&str, &Path)], fcgi_port: u16) -> Process {
    let log = fs::File::create(dir.join("mono.log")).unwrap();
    let applications: Vec<String> = apps
        .iter()
        .map(|(path, app)| format!("{}:{}/", path.trim_end_matches('/'), app.display()))
        .collect();
    let mut mono = Command::new("fastcgi-mono-server4");
    use_library_under_test(&mut mono);
    let mono = mono
        .arg(format!("/applications={}", applications.join(",")))
        .arg(format!("/socket=tcp:127.0.0.1:{fcgi_port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("fastcgi-mono-server4 (run scripts/setup-dotnet.sh)");
    Process(mono)
}

/// nginx (no master) with `conf`, its prefix `dir/nginx`.
pub fn spawn_nginx(dir: &Path, conf: &str) -> Process {
    let prefix = dir.join("nginx");
    let conf_path = prefix.join("nginx.conf");
    fs::write(&conf_path, conf).unwrap();
    let nginx = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (run scripts/setup-dotnet.sh)");
    Process(nginx)
}

/// One nginx process (no master) passing each application's path to Mono
/// over FastCGI, unbuffered, adding only its own Date, Server and
/// Connection.
pub fn nginx_conf(dir: &Path, apps: &[(&str, &Path)], port: u16, fcgi_port: u16) -> String {
    let prefix = dir.join("nginx");
    let (main, temps) = (nginx_main(&prefix), nginx_temp_paths(&prefix));
    let d = prefix.display();
    let locations: String = apps
        .iter()
        .map(|(path, app)| {
            let app = app.display();
            format!(
                "location {path} {{\n\
         fastcgi_pass 127.0.0.1:{fcgi_port};\n\
         fastcgi_buffering off;\n\
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
        })
        .collect();
    format!(
        "{main}\
         master_process off;\n\
         http {{\n\
         access_log off;\n\
         {temps}\
         server {{\n\
         listen 127.0.0.1:{port};\n\
         root {d}/empty;\n\
         {locations}\
         }}\n\
         }}\n"
    )
}

/// The last 30 lines of `dir/mono.log`.
pub fn log_tail(dir: &Path) -> String {
    let text = fs::read_to_string(dir.join("mono.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The first request starts ASP.NET and JITs the handler: waits up to 180 s
/// for the application under `base` to answer a request for a media file
/// with anything but a server error.
pub fn wait_until_serving(port: u16, base: &str, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let reply = http(
            port,
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
            log_tail(dir)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
