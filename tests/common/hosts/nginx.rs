//! nginx with the module (`make nginx-module`): `pseudostream_<key> "<value>";`
//! in the location that serves the media.

use std::fs;
use std::path::PathBuf;

use super::super::host::{
    free_port, host_media_dir, nginx_main, nginx_temp_paths, HostUnderTest, NginxMaster,
};
use super::super::root;
use super::{RunningHost, Settings};

/// The configuration directory, removed when the host stops.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

pub fn start(settings: Settings) -> RunningHost {
    let module = root().join("target/nginx-build/objs/ngx_http_pseudostream_module.so");
    assert!(
        module.exists(),
        "{} missing: run `make nginx-module`",
        module.display()
    );
    let port = free_port();
    let dir = root()
        .join("target")
        .join(format!("nginx-host-{}-{port}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("tmp")).unwrap();
    let media = host_media_dir().canonicalize().unwrap();
    let mut directives = String::new();
    for (key, value) in settings {
        directives += &format!("pseudostream_{key} \"{value}\"; ");
    }
    let conf = format!(
        "load_module {module};\n\
         worker_processes 1;\n\
         {main}\
         http {{\n\
         access_log off;\n\
         {temps}\
         sendfile on;\n\
         server {{\n\
         listen 127.0.0.1:{port};\n\
         location /media/ {{ alias {m}/; pseudostream; {directives}}}\n\
         }}\n\
         }}\n",
        module = module.display(),
        m = media.display(),
        main = nginx_main(&dir),
        temps = nginx_temp_paths(&dir),
    );
    let master = NginxMaster::start(&dir, &conf, port);
    RunningHost {
        host: HostUnderTest {
            name: "nginx",
            port,
            base: "/media".to_string(),
            pid: master.pid(),
        },
        keep: vec![Box::new(master), Box::new(Scratch(dir))],
    }
}
