//! `serve --web DIR`: the example host serves the demo page, its assets
//! and the players from node_modules, lists the media as JSON, and nothing
//! else of DIR. Runs on a made-up DIR (no npm needed); the real page is
//! exercised in a browser by tests/browser_flv.rs.

mod common;

#[path = "browser/json.rs"]
mod json;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::host::{example_exe, free_port, http};
use common::hosts::{example, Launch, Started};
use common::root;
use json::Json;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// DIR/web (page, assets, fake players, things that must stay hidden) and
/// DIR/media (two FLVs, one in a subdirectory, and a `_web` directory).
fn fixture(name: &str) -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("web-page-it-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let web = dir.join("web");
    write(
        &web.join("index.html"),
        "<!doctype html><title>page</title>\n",
    );
    write(&web.join("app.js"), "export const app = 1;\n");
    write(&web.join("player.css"), "body{}\n");
    write(&web.join(".hidden.js"), "hidden\n");
    write(&web.join("notes.txt"), "not an asset type\n");
    write(&web.join("package.json"), "{}\n");
    write(&web.join("sub/inner.js"), "nested\n");
    write(
        &web.join("node_modules/mpegts.js/dist/mpegts.js"),
        "var mpegts = {};\n",
    );
    write(
        &web.join("node_modules/mpegts.js/package.json"),
        "{\"version\":\"x\"}\n",
    );
    write(
        &web.join("node_modules/flv.js/dist/flv.js"),
        "var flvjs = {};\n",
    );
    write(&dir.join("outside.js"), "outside the web directory\n");
    symlink(dir.join("outside.js"), web.join("escape.js")).unwrap();

    let media = dir.join("media");
    let sample = root().join("samples/sample.flv");
    fs::create_dir_all(media.join("sub dir")).unwrap();
    fs::create_dir_all(media.join("_web")).unwrap();
    fs::copy(&sample, media.join("a.flv")).unwrap();
    fs::copy(&sample, media.join("sub dir/b c.flv")).unwrap();
    fs::copy(&sample, media.join("_web/hidden.flv")).unwrap();
    write(&media.join("broken.flv"), "not an FLV\n");
    write(&media.join("readme.txt"), "not media\n");
    dir
}

/// The example host serving DIR/media, with `--web WEB` if given.
fn serve(dir: &Path, web: Option<&Path>) -> Started {
    let web = web.map(|w| ["--web", w.to_str().unwrap()]);
    example::launch(Launch {
        media: Some(&dir.join("media")),
        args: web.as_ref().map_or(&[], |args| args),
        ..Launch::default()
    })
}

#[test]
fn the_page_its_assets_and_the_media_list() {
    let dir = fixture("page");
    let web = dir.join("web");
    let server = serve(&dir, Some(&web));
    let port = server.port;
    let get = |target: &str| http(port, "GET", target, &[]);

    for (target, file, content_type) in [
        ("/", "index.html", "text/html; charset=utf-8"),
        (
            "/?lib=flvjs&seekType=param",
            "index.html",
            "text/html; charset=utf-8",
        ),
        ("/_web/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/_web/player.css", "player.css", "text/css; charset=utf-8"),
        (
            "/_web/lib/mpegts.js",
            "node_modules/mpegts.js/dist/mpegts.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/_web/lib/flv.js",
            "node_modules/flv.js/dist/flv.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let reply = get(target);
        assert_eq!(reply.status, 200, "{target}");
        assert_eq!(reply.header("Content-Type"), Some(content_type), "{target}");
        assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(reply.body, fs::read(web.join(file)).unwrap(), "{target}");
    }
    let head = http(port, "HEAD", "/_web/app.js", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("Content-Length"), Some("22"));

    // Only plain files of known types directly in DIR, and the two players.
    for (target, want) in [
        ("/_web/.hidden.js", 404),
        ("/_web/notes.txt", 404),
        ("/_web/package.json", 404),
        ("/_web/sub/inner.js", 404),
        ("/_web/node_modules/mpegts.js/package.json", 404),
        ("/_web/node_modules/mpegts.js/dist/mpegts.js", 404),
        ("/_web/lib/other.js", 404),
        ("/_web/lib/../app.js", 404),
        ("/_web/%2e%2e/outside.js", 404),
        ("/_web/..%2foutside.js", 404),
        ("/_web/escape.js", 403),
        ("/_web/missing.js", 404),
        ("/_web/hidden.flv", 404),
    ] {
        assert_eq!(get(target).status, want, "{target}");
    }

    // The seek-link listing stays at /?links; media are served as before.
    let links = get("/?links");
    assert_eq!(links.status, 200);
    let text = String::from_utf8_lossy(&links.body);
    assert!(
        text.contains("a.flv") && text.contains("Seek points"),
        "{text}"
    );
    let media = get("/a.flv");
    assert_eq!(media.status, 200);
    assert_eq!(media.header("Content-Type"), Some("video/x-flv"));

    // media.json: the FLVs below the root, sorted, with what the library
    // says of them; nothing from the shadowed _web directory.
    let list = get("/_web/media.json");
    assert_eq!(list.status, 200);
    assert_eq!(list.header("Content-Type"), Some("application/json"));
    let v = json::parse(&String::from_utf8_lossy(&list.body)).unwrap();
    let files = v.field("files").items();
    let paths: Vec<&str> = files.iter().filter_map(|f| f.field("path").str()).collect();
    assert_eq!(paths, ["a.flv", "broken.flv", "sub dir/b c.flv"]);
    let urls: Vec<&str> = files.iter().filter_map(|f| f.field("url").str()).collect();
    assert_eq!(urls, ["/a.flv", "/broken.flv", "/sub%20dir/b%20c.flv"]);
    let size = fs::metadata(root().join("samples/sample.flv"))
        .unwrap()
        .len();
    for f in [&files[0], &files[2]] {
        assert_eq!(f.field("type").str(), Some("flv"));
        assert_eq!(f.field("size").num(), Some(size as f64));
        assert!(f.field("duration_ms").num().unwrap() > 50_000.0, "{f}");
        assert!(f.field("keyframes").num().unwrap() > 10.0, "{f}");
        assert!(f.field("error").is_null());
    }
    assert!(files[1].field("error").str().is_some(), "{}", files[1]);
    assert_eq!(get(urls[2]).status, 200);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn without_web_the_root_is_the_listing_and_web_needs_the_players() {
    let dir = fixture("plain");
    let server = serve(&dir, None);
    let port = server.port;
    let root_page = http(port, "GET", "/", &[]);
    assert_eq!(root_page.status, 200);
    assert!(String::from_utf8_lossy(&root_page.body).contains("Seek points"));
    assert_eq!(http(port, "GET", "/_web/media.json", &[]).status, 404);
    drop(server);

    // A web directory without node_modules is refused at start-up.
    fs::remove_dir_all(dir.join("web/node_modules")).unwrap();
    let out = Command::new(example_exe())
        .arg("serve")
        .arg(dir.join("media"))
        .args(["--addr", &format!("127.0.0.1:{}", free_port())])
        .arg("--web")
        .arg(dir.join("web"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/setup-web.sh"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}
