//! The nginx module, run for real: nginx on loopback with the module loaded
//! (`make nginx-module` builds it), its built-in `flv` module beside it, and
//! `php -S` as an application backend for X-Accel-Redirect. Expected bytes
//! come from the library itself and from the file; ffmpeg decodes every
//! `init` response. nginx also runs the request matrix every host binding
//! passes (`tests/common/host.rs`).
//!
//! Locations with `aio threads` index a file the worker has not indexed yet
//! in nginx's thread pool; the tests request files cold there, several at
//! once, and check that the worker answers other requests while a long
//! file is indexed.
//!
//! Ignored by a plain `cargo test` because it needs nginx and the built
//! module; `scripts/test.sh` builds both and runs it with `--include-ignored`.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::host::*;
use common::hosts::{self, php, ScratchDir, Started};
use common::mp4::{probe_packets, tracks_ending_apart};
use common::*;
use pseudostream::{MetadataMode, Options, PrefixMode, StartUnit};

/// An nginx master + one worker with the test configuration.
struct Nginx {
    port: u16,
    // Dropped in this order: nginx, its backend, then the directory.
    server: Started,
    _backend: Started,
    dir: ScratchDir,
}

impl Nginx {
    fn start() -> Nginx {
        let media = media_dir().canonicalize().unwrap();
        let sample_dir = root().join("samples").canonicalize().unwrap();
        let dir = ScratchDir::new("nginx-it");
        fs::create_dir_all(dir.join("junk")).unwrap();
        fs::write(dir.join("junk/not-video.flv"), b"this is not an FLV file\n").unwrap();
        fs::create_dir_all(dir.join("tiny")).unwrap();
        fs::write(dir.join("tiny/ok.txt"), b"ok\n").unwrap();
        fs::create_dir_all(dir.join("ssi")).unwrap();

        let backend = php::launch_script(&root().join("tests/nginx/backend.php"));
        let backend_port = backend.port;

        let m = media.display();
        let d = dir.display();
        let location = |path: &str, extra: &str| {
            format!("location {path} {{ alias {m}/; pseudostream; {extra} }}\n")
        };
        let mut locations = String::new();
        locations += &format!("location /flv/ {{ alias {m}/; flv; }}\n");
        locations += &location("/ps/", "");
        locations += &location("/ps-sec/", "pseudostream_start_unit seconds;");
        locations += &location("/ps-header/", "pseudostream_prefix header;");
        locations += &location("/ps-full/", "pseudostream_prefix full;");
        locations += &location("/ps-none/", "pseudostream_prefix none;");
        locations += &location("/ps-meta-off/", "pseudostream_metadata off;");
        locations += &location("/ps-meta-always/", "pseudostream_metadata always;");
        locations += &location(
            "/paced-meta-off/",
            "pseudostream_metadata off; pseudostream_rate 100000; pseudostream_burst 0;",
        );
        // Paced pieces through the copy filter: read into small buffers by
        // the thread pool instead of sendfile.
        locations += &location(
            "/paced-copied/",
            "pseudostream_rate 100000; pseudostream_burst 50000; sendfile off; \
             aio threads; output_buffers 2 16k;",
        );
        // The shared host matrix: host_media_dir(), start in seconds.
        let hm = host_media_dir().canonicalize().unwrap();
        let hm = hm.display();
        locations += &format!(
            "location /media/ {{ alias {hm}/; pseudostream; pseudostream_start_unit seconds; }}\n"
        );
        locations += &format!(
            "location /media-paced/ {{ alias {hm}/; pseudostream; \
             pseudostream_start_unit seconds; pseudostream_rate 100000; \
             pseudostream_burst 0; }}\n"
        );
        locations += &format!(
            "location /paced/ {{ alias {}/; pseudostream; pseudostream_start_unit seconds; \
             pseudostream_rate 100000; pseudostream_burst 0; }}\n",
            sample_dir.display()
        );
        locations += &format!("location /junk/ {{ alias {d}/junk/; pseudostream; }}\n");
        // Indexing in the thread pool: the default pool, with O_DIRECT on
        // the served descriptor, and a pool named by a variable.
        locations += &location("/threads/", "aio threads;");
        locations += &location("/threads-directio/", "aio threads; directio 4k;");
        locations += &location(
            "/threads-pool/",
            "set $index_pool pseudostream_index; aio threads=$index_pool;",
        );
        locations += &format!(
            "location /media-threads/ {{ alias {hm}/; pseudostream; \
             pseudostream_start_unit seconds; aio threads; }}\n"
        );
        locations +=
            &format!("location /junk-threads/ {{ alias {d}/junk/; pseudostream; aio threads; }}\n");
        locations += &format!(
            "location /long/ {{ alias {}/; pseudostream; aio threads; }}\n",
            long_media_dir().display()
        );
        locations += &format!("location /tiny/ {{ alias {d}/tiny/; }}\n");
        // The long file and a static one in the same pool of two threads;
        // the static file is read in the pool (sendfile off).
        locations += &format!(
            "location /long-pool/ {{ alias {}/; pseudostream; aio threads=pseudostream_index; }}\n",
            long_media_dir().display()
        );
        locations += &format!(
            "location /tiny-pool/ {{ alias {d}/tiny/; sendfile off; aio threads=pseudostream_index; }}\n"
        );
        locations += &format!("location /ssi/ {{ alias {d}/ssi/; ssi on; ssi_types *; }}\n");
        fs::create_dir_all(dir.join("swap")).unwrap();
        locations += &format!("location /swap/ {{ alias {d}/swap/; pseudostream; }}\n");
        locations += &format!(
            "location /internal/ {{ internal; alias {m}/; pseudostream; \
             pseudostream_start_unit seconds; }}\n"
        );
        locations += &format!("location /app/ {{ proxy_pass http://127.0.0.1:{backend_port}; }}\n");
        // Tracks that end apart, through nginx's mp4 module and ours.
        let tracks = tracks_ending_apart().0;
        let tracks = tracks.parent().unwrap().canonicalize().unwrap();
        let tracks = tracks.display();
        locations += &format!("location /mp4-tracks/ {{ alias {tracks}/; mp4; }}\n");
        locations += &format!(
            "location /ps-tracks/ {{ alias {tracks}/; pseudostream; \
             pseudostream_start_unit seconds; }}\n"
        );
        let http = format!(
            "access_log {d}/access.log;\n\
             types {{ video/x-flv flv; }}\n\
             default_type application/octet-stream;\n\
             sendfile on;\n"
        );
        let server = hosts::nginx::Nginx {
            dir: &dir,
            module: true,
            main: "thread_pool pseudostream_index threads=2;\n",
            http: &http,
            server: &locations,
        }
        .start();
        Nginx {
            port: server.port,
            server,
            _backend: backend,
            dir,
        }
    }

    fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[])
    }

    /// The shared host matrix's view of this nginx below `base`.
    fn host(&self, base: &str) -> HostUnderTest {
        self.server.host(base)
    }

    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        http(self.port, method, target, headers)
    }

    /// Waits up to 30 s for the access log to show the GET of `target` as
    /// closed by its client (499).
    fn wait_until_logged_gone(&self, target: &str) {
        let gone = format!("GET {target} HTTP/1.1\" 499 ");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .contains(&gone)
        {
            assert!(
                Instant::now() < deadline,
                "no 499 logged for {target}, whose client went away"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// No failures of the test, then no worker crash or alert logged.
    fn assert_passes(&self, what: &str, failures: &[String]) {
        assert_no_failures(what, failures);
        assert_no_failures("nginx error.log", &self.log_problems());
    }

    /// Passes a check every host passes (`run_matrix`,
    /// `run_paced_location`) below `base`, and logs no problem.
    fn passes_a_shared_check(&self, what: &str, base: &str, check: SharedCheck) {
        let failures = check(&self.host(base));
        self.assert_passes(what, &failures);
    }

    /// Worker crashes and alerts logged so far.
    fn log_problems(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("error.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("[alert]")
                    || l.contains("[emerg]")
                    || l.contains("[crit]")
                    || l.contains("exited on signal")
            })
            .map(str::to_string)
            .collect()
    }
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn seeks_through_nginx_match_the_library_and_decode() {
    let nginx = Nginx::start();
    let refs = all_references();
    let mut jobs = Vec::new();
    for r in &refs {
        let file = &r.entry.file;
        let points = &r.seek_points;
        if points.len() < 3 {
            continue;
        }
        let mid = points[points.len() / 2];
        let late = points[points.len() - 2];
        // Byte seek into the middle of a group of pictures, time seeks, ends.
        let byte_q = format!("start={}", mid.1 + 7);
        let time_q = format!("start={}", secs(late.0 + 250));
        let end_q = format!("start={}&end={}", secs(points[1].0), secs(mid.0 + 500));
        jobs.push((
            file.clone(),
            "ps",
            byte_q.clone(),
            PrefixMode::Init,
            StartUnit::Bytes,
        ));
        jobs.push((
            file.clone(),
            "ps-sec",
            time_q,
            PrefixMode::Init,
            StartUnit::Seconds,
        ));
        jobs.push((
            file.clone(),
            "ps-sec",
            end_q,
            PrefixMode::Init,
            StartUnit::Seconds,
        ));
        jobs.push((
            file.clone(),
            "ps-full",
            byte_q,
            PrefixMode::Full,
            StartUnit::Bytes,
        ));
    }
    let media_dir = media_dir().to_path_buf();
    let results = par_map(jobs, |(file, loc, q, prefix, unit)| {
        let reply = nginx.get(&format!("/{loc}/{file}?{q}"));
        let what = format!("/{loc}/{file}?{q}");
        if reply.status != 200 {
            return Err(format!("{what}: status {}", reply.status));
        }
        if reply.header("Content-Type") != Some("video/x-flv") {
            return Err(format!(
                "{what}: content type {:?}",
                reply.header("Content-Type")
            ));
        }
        let want = expected(&media_dir.join(&file), &q, prefix, unit);
        if reply.body != want {
            return Err(format!(
                "{what}: {} bytes differ from the library's {}",
                reply.body.len(),
                want.len()
            ));
        }
        let has_video = entry(&file).has_video;
        if has_video {
            decode_bytes(&reply.body, &what)?;
        } else {
            let t = TempFile::with_bytes("nginx-audio.flv", &reply.body);
            decode_clean(t.path())?;
        }
        Ok(())
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    eprintln!("nginx: {} seek responses checked", refs.len() * 4);
    nginx.assert_passes("nginx seeks", &failures);
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn raw_forms_equal_file_bytes_and_header_mode_equals_nginx_flv() {
    let nginx = Nginx::start();
    let r = reference("h264_aac.yamdi.flv");
    let file = &r.entry.file;
    let size = r.size();
    let kf = r.seek_points[r.seek_points.len() / 2].1;

    // No parameter: the file as it is, Range included.
    let whole = nginx.get(&format!("/ps/{file}"));
    assert_eq!(whole.status, 200);
    assert!(whole.body == r.bytes, "whole file differs");
    let part = nginx.request("GET", &format!("/ps/{file}"), &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert!(part.body == r.bytes[100..200]);

    // flv.js: raw bytes bstart..=bend, and bend past the end.
    let a = 12_345;
    let b = 67_890;
    let raw = nginx.get(&format!("/ps/{file}?bstart={a}&bend={b}"));
    assert_eq!(raw.status, 200);
    assert!(raw.body == r.bytes[a..=b], "bstart/bend bytes differ");
    let tail = nginx.get(&format!("/ps/{file}?bstart={a}&bend={}", size + 1000));
    assert!(tail.body == r.bytes[a..], "bend past EOF");
    let none = nginx.get(&format!("/ps-none/{file}?start={}", kf + 3));
    assert!(none.body == r.bytes[kf as usize + 3..], "prefix none");

    // Prefix header equals nginx's own flv module at a keyframe.
    let ours = nginx.get(&format!("/ps-header/{file}?start={kf}"));
    let theirs = nginx.get(&format!("/flv/{file}?start={kf}"));
    assert_eq!(ours.status, 200);
    assert_eq!(theirs.status, 200);
    assert!(
        ours.body == theirs.body,
        "header mode differs from nginx flv"
    );
    let mut want = flv_header(r.stream_flags());
    want.extend_from_slice(&r.bytes[kf as usize..]);
    assert!(ours.body == want);

    // CDN jump-to-byte: ib bytes, then from the keyframe at or before fs.
    let ib = 2000usize;
    let cdn = nginx.get(&format!("/ps/{file}?ib={ib}&fs={}", kf + 11));
    let mut want = r.bytes[..ib].to_vec();
    want.extend_from_slice(&r.bytes[kf as usize..]);
    assert_eq!(cdn.status, 200);
    assert!(cdn.body == want, "ib/fs");
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn ranges_head_and_validators_on_seeked_responses() {
    let nginx = Nginx::start();
    let r = reference("bframes.ffidx.flv");
    let file = &r.entry.file;
    let kf = r.seek_points[2].1;
    let target = format!("/ps/{file}?start={}", kf + 100);
    let full = nginx.get(&target);
    assert_eq!(full.status, 200);
    let len = full.body.len();
    let etag = full.header("ETag").expect("ETag").to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );
    assert!(full.header("Last-Modified").is_some());

    // Ranges over the planned stream, across the prefix boundary too.
    for (range, first, last) in [
        ("bytes=0-99", 0, 99),
        ("bytes=10-5000", 10, 5000),
        (&format!("bytes={}-", len - 10) as &str, len - 10, len - 1),
        ("bytes=-500", len - 500, len - 1),
    ] {
        let part = nginx.request("GET", &target, &[("Range", range)]);
        assert_eq!(part.status, 206, "{range}");
        assert!(part.body == full.body[first..=last], "{range} bytes");
        assert_eq!(
            part.header("Content-Range"),
            Some(format!("bytes {first}-{last}/{len}").as_str()),
            "{range}"
        );
    }
    let bad = nginx.request("GET", &target, &[("Range", &format!("bytes={}-", len + 5))]);
    assert_eq!(bad.status, 416);

    // HEAD: headers only, same length.
    let head = nginx.request("HEAD", &target, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Length"),
        Some(len.to_string().as_str())
    );

    // Validators: 304 for the same plan, not for another seek.
    let same = nginx.request("GET", &target, &[("If-None-Match", &etag)]);
    assert_eq!(same.status, 304);
    let other = nginx.get(&format!("/ps/{file}?start={}", r.seek_points[3].1));
    assert_ne!(
        other.header("ETag"),
        Some(etag.as_str()),
        "ETag differs per plan"
    );
    let stale = nginx.request(
        "GET",
        &format!("/ps/{file}?start={}", r.seek_points[3].1),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(stale.status, 200);
    let failed = nginx.request("GET", &target, &[("If-Match", "\"nope\"")]);
    assert_eq!(failed.status, 412);
    // If-Range with another validator sends the whole response.
    let if_range = nginx.request(
        "GET",
        &target,
        &[("Range", "bytes=0-9"), ("If-Range", "\"nope\"")],
    );
    assert_eq!(if_range.status, 200);
    assert_eq!(if_range.body.len(), len);
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn bad_inputs_get_their_status_and_the_worker_keeps_serving() {
    let nginx = Nginx::start();
    let file = "h264_aac.plain.flv";
    // Byte positions refer to the served (virtual) file.
    let size = served(&media_dir().join(file), "", MetadataMode::Missing).len() as u64;
    assert!(
        size > reference(file).size(),
        "a plain file is served rewritten"
    );
    let cases: Vec<(String, u16)> = vec![
        (format!("/ps/{file}?start=abc"), 400),
        (format!("/ps/{file}?start=-5"), 400),
        (format!("/ps/{file}?start=1&start=2"), 400),
        (format!("/ps/{file}?start=99999999999999999999999"), 400),
        (format!("/ps/{file}?start=%zz"), 400),
        (format!("/ps/{file}?start=1&bstart=2"), 400),
        (format!("/ps-sec/{file}?start=1.2.3"), 400),
        (format!("/ps/{file}?start={}", size + 10), 416),
        (format!("/ps-sec/{file}?start=9999"), 416),
        (format!("/ps-sec/{file}?start=5&end=2"), 416),
        (format!("/ps/{file}?bstart={}", size), 416),
        ("/junk/not-video.flv?start=100".to_string(), 415),
        ("/ps/missing.flv?start=10".to_string(), 404),
        ("/ps/../../etc/passwd?start=1".to_string(), 400),
        ("/ps/%2e%2e/%2e%2e/etc/passwd?start=1".to_string(), 400),
    ];
    for (target, want) in &cases {
        let reply = nginx.get(target);
        assert_eq!(reply.status, *want, "{target}");
        // And the same worker still serves a good request.
        let ok = nginx.get(&format!("/ps/{file}?start=0"));
        assert_eq!(ok.status, 200, "after {target}");
        assert_eq!(ok.body.len() as u64, size);
    }
    // Without a query, a file the library cannot read is served as stored.
    let junk = nginx.get("/junk/not-video.flv");
    assert_eq!(junk.status, 200);
    assert_eq!(junk.body, b"this is not an FLV file\n");
    let post = nginx.request(
        "POST",
        &format!("/ps/{file}?start=1"),
        &[("Content-Length", "0")],
    );
    assert_eq!(post.status, 405);
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn x_accel_redirect_from_a_backend_carries_the_query() {
    let nginx = Nginx::start();
    let r = reference("h264_aac.ffidx.flv");
    let file = &r.entry.file;
    let t = r.seek_points[r.seek_points.len() / 2].0 + 300;
    let q = format!("start={}", secs(t));
    let reply = nginx.get(&format!("/app/{file}?{q}"));
    assert_eq!(reply.status, 200);
    let want = expected(
        &media_dir().join(file),
        &q,
        PrefixMode::Init,
        StartUnit::Seconds,
    );
    assert!(reply.body == want, "X-Accel-Redirect response differs");
    decode_bytes(&reply.body, "X-Accel-Redirect").unwrap();
    // The internal location is not reachable directly.
    assert_eq!(nginx.get(&format!("/internal/{file}?{q}")).status, 404);
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn paced_responses_take_the_planned_time() {
    let nginx = Nginx::start();
    // The shipped sample: 1.4 MB; a cut of about 470 kB at 100 000 B/s.
    let sample = root().join("samples/sample.flv");
    let q = "start=40";
    let want = expected(&sample, q, PrefixMode::Init, StartUnit::Seconds);
    let reply = nginx.get(&format!("/paced/sample.flv?{q}"));
    assert!(reply.body == want);
    let expected_s = want.len() as f64 / 100_000.0;
    let took = reply.elapsed.as_secs_f64();
    let err = (took - expected_s).abs() / expected_s;
    eprintln!(
        "nginx pacing: {} bytes in {took:.3} s, target {expected_s:.3} s ({:.2} %)",
        want.len(),
        err * 100.0
    );
    assert!(
        err < 0.05,
        "paced transfer {took:.3} s vs {expected_s:.3} s"
    );
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn a_file_replaced_on_disk_is_indexed_again() {
    let nginx = Nginx::start();
    check_replaced_files(&nginx.dir.join("swap"), nginx.port, Duration::ZERO);
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

/// The body the library serves for `query_str` ("" = no query) on `file`
/// with default options and this metadata mode, drained unpaced.
fn served(file: &Path, query_str: &str, metadata: MetadataMode) -> Vec<u8> {
    let options = Options {
        metadata,
        ..Options::default()
    };
    served_bytes(file, query_str, &options)
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn nginx_passes_the_host_matrix() {
    Nginx::start().passes_a_shared_check("nginx host matrix", "/media", run_matrix);
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn a_pacing_location_paces_plain_gets_and_ranges() {
    Nginx::start().passes_a_shared_check(
        "nginx paced location",
        "/media-paced",
        run_paced_location,
    );
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn no_query_serves_the_file_or_its_virtual_rewrite() {
    let nginx = Nginx::start();
    let plain = "h264_aac.plain.flv";
    let valid = "h264_aac.yamdi.flv";
    let plain_path = media_dir().join(plain);
    let valid_path = media_dir().join(valid);
    let stored_plain = fs::read(&plain_path).unwrap();
    let stored_valid = fs::read(&valid_path).unwrap();
    let static_etag = |file: &str| {
        let reply = nginx.request("HEAD", &format!("/flv/{file}"), &[]);
        reply.header("ETag").expect("flv ETag").to_string()
    };

    // Default (`missing`): no keyframes in the metadata, so the library's
    // virtual file, with its own validator.
    let virtual_file = served(&plain_path, "", MetadataMode::Missing);
    assert!(virtual_file != stored_plain, "the plain file is rewritten");
    let reply = nginx.get(&format!("/ps/{plain}"));
    assert_eq!(reply.status, 200);
    assert!(
        reply.body == virtual_file,
        "virtual file differs from the library's"
    );
    assert_eq!(reply.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(reply.header("Content-Type"), Some("video/x-flv"));
    assert_ne!(reply.header("ETag"), Some(static_etag(plain).as_str()));
    decode_bytes(&reply.body, "virtual file").unwrap();
    // Byte positions refer to the virtual file.
    let q = format!("start={}", virtual_file.len() / 2);
    let seek = nginx.get(&format!("/ps/{plain}?{q}"));
    assert_eq!(seek.status, 200);
    assert!(seek.body == served(&plain_path, &q, MetadataMode::Missing));
    let q = "bstart=1000&bend=20000";
    assert!(nginx.get(&format!("/ps/{plain}?{q}")).body == virtual_file[1000..=20000]);

    // Valid keyframes in the metadata: the file as stored, on the static
    // path (nginx's own validator).
    let reply = nginx.get(&format!("/ps/{valid}"));
    assert_eq!(reply.status, 200);
    assert!(
        reply.body == stored_valid,
        "a file with valid metadata is served as stored"
    );
    assert_eq!(reply.header("ETag"), Some(static_etag(valid).as_str()));

    // `pseudostream_metadata off`: the static path, and byte positions in
    // the stored file.
    let reply = nginx.get(&format!("/ps-meta-off/{plain}"));
    assert_eq!(reply.status, 200);
    assert!(
        reply.body == stored_plain,
        "metadata off serves the stored file"
    );
    assert_eq!(reply.header("ETag"), Some(static_etag(plain).as_str()));
    let r = reference(plain);
    let q = format!("start={}", r.seek_points[r.seek_points.len() / 2].1 + 7);
    let seek = nginx.get(&format!("/ps-meta-off/{plain}?{q}"));
    assert!(seek.body == served(&plain_path, &q, MetadataMode::Off));

    // `always`: even valid metadata is rewritten, as the library does it.
    let reply = nginx.get(&format!("/ps-meta-always/{valid}"));
    assert_eq!(reply.status, 200);
    assert!(reply.body == served(&valid_path, "", MetadataMode::Always));
    decode_bytes(&reply.body, "metadata always").unwrap();
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn validators_and_ranges_on_the_virtual_file() {
    let nginx = Nginx::start();
    let plain = "h264_aac.plain.flv";
    let target = format!("/ps/{plain}");
    let full = nginx.get(&target);
    assert_eq!(full.status, 200);
    let len = full.body.len();
    let etag = full.header("ETag").expect("ETag").to_string();
    let modified = full
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    let get = |headers: &[(&str, &str)]| nginx.request("GET", &target, headers);

    for (range, first, last) in [
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=0-0", 0, 0),
        ("bytes=-100", len - 100, len - 1),
        (&format!("bytes={}-", len - 10) as &str, len - 10, len - 1),
    ] {
        let part = get(&[("Range", range)]);
        assert_eq!(part.status, 206, "{range}");
        assert!(part.body == full.body[first..=last], "{range} bytes");
        assert_eq!(
            part.header("Content-Range"),
            Some(format!("bytes {first}-{last}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(part.header("ETag"), Some(etag.as_str()), "{range}");
    }
    let over = get(&[("Range", &format!("bytes={}-", len + 5))]);
    assert_eq!(over.status, 416);
    assert_eq!(
        over.header("Content-Range"),
        Some(format!("bytes */{len}").as_str())
    );
    // Several ranges: the whole response.
    let several = get(&[("Range", "bytes=0-9,20-29")]);
    assert_eq!(several.status, 200);
    assert_eq!(several.body.len(), len);

    let head = nginx.request("HEAD", &target, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(head.header("ETag"), Some(etag.as_str()));
    let head_range = nginx.request("HEAD", &target, &[("Range", "bytes=10-19")]);
    assert_eq!(head_range.status, 206);
    assert_eq!(head_range.header("Content-Length"), Some("10"));

    // Entity tags (the library) and dates (the module), in RFC 9110 order.
    let range = ("Range", "bytes=10-19");
    for (headers, want) in [
        (vec![("If-None-Match", etag.as_str())], 304),
        (vec![("If-None-Match", etag.as_str()), range], 304),
        (vec![("If-None-Match", "\"other\"")], 200),
        (vec![("If-Match", "\"nope\"")], 412),
        (vec![("If-Match", etag.as_str()), range], 206),
        (vec![("If-Range", "\"old\""), range], 200),
        (vec![("If-Range", etag.as_str()), range], 206),
        (vec![("If-Modified-Since", modified.as_str())], 304),
        (vec![("If-Modified-Since", modified.as_str()), range], 304),
        (
            vec![
                ("If-Modified-Since", modified.as_str()),
                ("If-None-Match", "\"other\""),
            ],
            200,
        ),
        (
            vec![("If-Modified-Since", "Thu, 01 Jan 1970 00:00:01 GMT")],
            200,
        ),
        (
            vec![
                ("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:01 GMT"),
                range,
            ],
            412,
        ),
        (vec![("If-Unmodified-Since", modified.as_str()), range], 206),
        (vec![("If-Unmodified-Since", "garbage"), range], 206),
    ] {
        let reply = get(&headers);
        assert_eq!(reply.status, want, "{headers:?}");
        if want == 304 {
            assert!(reply.body.is_empty(), "{headers:?}: 304 with a body");
            assert_eq!(reply.header("ETag"), Some(etag.as_str()), "{headers:?}");
        }
    }
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn pacing_covers_bodies_and_answers_bodyless_requests_at_once() {
    let nginx = Nginx::start();
    let plain = "h264_aac.plain.flv";
    let valid = "h264_aac.yamdi.flv";
    let target = format!("/media-paced/{plain}");
    let quick = Duration::from_millis(500);

    // Bodyless answers are not paced.
    let head = nginx.request("HEAD", &target, &[]);
    assert_eq!(head.status, 200);
    assert!(head.elapsed < quick, "HEAD took {:?}", head.elapsed);
    let etag = head.header("ETag").expect("ETag").to_string();
    let len: usize = head.header("Content-Length").unwrap().parse().unwrap();
    let cached = nginx.request("GET", &target, &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304);
    assert!(cached.elapsed < quick, "304 took {:?}", cached.elapsed);
    let over = nginx.request("GET", &target, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(over.status, 416);
    assert!(over.elapsed < quick, "416 took {:?}", over.elapsed);

    // Without a burst, the header still goes at once; the first piece of
    // the body (64k at 100000 B/s, sent when the schedule reaches its
    // middle) follows at 0.33 s.
    let started = Instant::now();
    let (mut s, _) = get_head(nginx.port, &target);
    let header_after = started.elapsed();
    s.read_exact(&mut [0u8; 1]).unwrap();
    let body_after = started.elapsed();
    assert!(
        header_after < Duration::from_millis(200) && body_after > Duration::from_millis(300),
        "header after {header_after:?}, body after {body_after:?}"
    );
    drop(s);

    // Bodies are, whatever path serves them: a suffix Range of a file with
    // valid metadata, a file on a location that does not rewrite, and one
    // read by the thread pool into small buffers (200000 bytes, no burst:
    // 2 s; with a burst of 50000: 1.5 s).
    let cases = [
        (
            format!("/media-paced/{valid}"),
            media_dir().join(valid),
            2.0,
        ),
        (
            format!("/paced-meta-off/{plain}"),
            media_dir().join(plain),
            2.0,
        ),
        (
            format!("/paced-copied/{valid}"),
            media_dir().join(valid),
            1.5,
        ),
    ];
    let results = par_map(cases.to_vec(), |(target, path, want_s)| {
        let stored = fs::read(&path).unwrap();
        let from = stored.len() - 200_000;
        let reply = nginx.request("GET", &target, &[("Range", "bytes=-200000")]);
        let content_range = format!("bytes {from}-{}/{}", stored.len() - 1, stored.len());
        if reply.status != 206 || reply.header("Content-Range") != Some(content_range.as_str()) {
            return Err(format!(
                "{target}: status {}, Content-Range {:?}",
                reply.status,
                reply.header("Content-Range")
            ));
        }
        if reply.body != stored[from..] {
            return Err(format!("{target}: paced range bytes differ"));
        }
        let took = reply.elapsed.as_secs_f64();
        eprintln!("nginx pacing: {target} last 200000 bytes in {took:.3} s (target {want_s:.3} s)");
        if (took - want_s).abs() / want_s > 0.05 {
            return Err(format!("{target}: {took:.3} s, target {want_s:.3} s"));
        }
        Ok(())
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    nginx.assert_passes("paced bodies", &failures);
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn seeks_indexed_in_the_thread_pool_match_the_library_and_decode() {
    let nginx = Nginx::start();
    let refs = all_references();
    let locations = ["threads", "threads-directio", "threads-pool"];
    // Three seeks per file, every file cold and all requests at once: each
    // file is indexed once in the pool while its three requests wait.
    let mut jobs = Vec::new();
    for (n, r) in refs.iter().enumerate() {
        let p = &r.seek_points;
        if p.len() < 3 {
            continue;
        }
        for point in [p[1], p[p.len() / 2], p[p.len() - 2]] {
            let q = format!("start={}", point.1 + 5);
            jobs.push((r.entry.file.clone(), locations[n % locations.len()], q));
        }
    }
    let start = Barrier::new(jobs.len());
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(file, loc, q)| {
                let start = &start;
                let nginx = &nginx;
                s.spawn(move || {
                    start.wait();
                    nginx.get(&format!("/{loc}/{file}?{q}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let media_dir = media_dir().to_path_buf();
    let checks: Vec<_> = jobs.into_iter().zip(replies).collect();
    let count = checks.len();
    let results = par_map(checks, |((file, loc, q), reply)| {
        let what = format!("/{loc}/{file}?{q}");
        if reply.status != 200 || reply.header("Content-Type") != Some("video/x-flv") {
            return Err(format!(
                "{what}: status {}, type {:?}",
                reply.status,
                reply.header("Content-Type")
            ));
        }
        let want = expected(
            &media_dir.join(&file),
            &q,
            PrefixMode::Init,
            StartUnit::Bytes,
        );
        if reply.body != want {
            return Err(format!(
                "{what}: {} bytes differ from the library's {}",
                reply.body.len(),
                want.len()
            ));
        }
        if entry(&file).has_video {
            decode_bytes(&reply.body, &what)
        } else {
            let t = TempFile::with_bytes("nginx-threads-audio.flv", &reply.body);
            decode_clean(t.path())
        }
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    eprintln!("nginx aio threads: {count} cold seek responses checked");
    nginx.assert_passes("seeks indexed in the thread pool", &failures);
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn cold_requests_of_every_kind_resume_after_indexing_in_the_pool() {
    let nginx = Nginx::start();
    let plain = "h264_aac.plain.flv";
    let valid = "h264_aac.yamdi.flv";

    // Each request below is the first for its file: indexed in the pool.
    // No query, no keyframes in the metadata: the virtual file.
    let reply = nginx.get(&format!("/threads/{plain}"));
    assert_eq!(reply.status, 200);
    assert!(reply.body == served(&media_dir().join(plain), "", MetadataMode::Missing));
    // No query, valid keyframes: the static path, nginx's own ETag.
    let reply = nginx.get(&format!("/threads/{valid}"));
    assert_eq!(reply.status, 200);
    assert!(reply.body == fs::read(media_dir().join(valid)).unwrap());
    let static_etag = nginx.request("HEAD", &format!("/flv/{valid}"), &[]);
    assert_eq!(reply.header("ETag"), static_etag.header("ETag"));
    // A Range of a virtual file, HEAD of a seek, a start past the end.
    let file = "flv1_mp3.plain.flv";
    let virtual_file = served(&media_dir().join(file), "", MetadataMode::Missing);
    let part = nginx.request(
        "GET",
        &format!("/threads/{file}"),
        &[("Range", "bytes=100-199")],
    );
    assert_eq!(part.status, 206);
    assert!(part.body == virtual_file[100..200]);
    let file = "bframes.plain.flv";
    let q = "start=100000";
    let head = nginx.request("HEAD", &format!("/threads/{file}?{q}"), &[]);
    assert_eq!(head.status, 200);
    let want = expected(
        &media_dir().join(file),
        q,
        PrefixMode::Init,
        StartUnit::Bytes,
    );
    assert_eq!(
        head.header("Content-Length"),
        Some(want.len().to_string().as_str())
    );
    let file = "audio_only.plain.flv";
    let size = served(&media_dir().join(file), "", MetadataMode::Missing).len();
    let over = nginx.get(&format!("/threads/{file}?start={}", size + 10));
    assert_eq!(over.status, 416);
    // An MP4 cut.
    let cut = nginx.get("/media-threads/clip.m4v?start=3");
    assert_eq!(cut.status, 200);
    let want = expected(
        &host_media_dir().join("clip.m4v"),
        "start=3",
        PrefixMode::Init,
        StartUnit::Seconds,
    );
    assert!(cut.body == want, "MP4 cut differs");
    // A file the library cannot read: 415 with a query, as stored without
    // (a failed build is not cached: both go to the pool).
    assert_eq!(nginx.get("/junk-threads/not-video.flv?start=1").status, 415);
    let junk = nginx.get("/junk-threads/not-video.flv");
    assert_eq!(junk.status, 200);
    assert_eq!(junk.body, b"this is not an FLV file\n");
    // A subrequest: an SSI include of a seek.
    let file = "h264_aac.ffidx.flv";
    let q = format!("start={}", reference(file).seek_points[2].1);
    fs::write(
        nginx.dir.join("ssi/page.html"),
        format!("before<!--# include virtual=\"/threads/{file}?{q}\" -->after"),
    )
    .unwrap();
    let page = nginx.get("/ssi/page.html");
    assert_eq!(page.status, 200);
    let mut want = b"before".to_vec();
    want.extend(expected(
        &media_dir().join(file),
        &q,
        PrefixMode::Init,
        StartUnit::Bytes,
    ));
    want.extend(b"after");
    assert!(page.body == want, "the included seek differs");
    // A bad query is answered before any indexing.
    assert_eq!(
        nginx.get(&format!("/threads/{plain}?start=abc")).status,
        400
    );
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn requests_waiting_for_a_build_leave_the_pool_its_other_threads() {
    let nginx = Nginx::start();
    // Four seeks at once into one cold file, in a pool of two threads: one
    // thread builds the index and the other three requests wait for that
    // build without a thread, so the pool's second thread still reads
    // files for the worker meanwhile. Were each request to hold a thread
    // while it waits, the static file's read would queue behind them.
    let long = long_flv();
    let (queries, targets) = long_seeks("/long-pool", &[250_000, 450_000, 650_000, 850_000]);
    drop_from_page_cache(&long);
    let seeks = serve_during_cold_seeks(
        "nginx, four cold seeks in a pool of two threads",
        nginx.port,
        &targets,
        "/tiny-pool/ok.txt",
    );
    assert_no_failures(
        "nginx, seeks that waited for one build",
        &long_seek_failures(&seeks, &queries),
    );

    // A new version of the file: one request builds its index, a second
    // waits for that build and its client goes away meanwhile. The first
    // is answered, the second is logged as closed (499), nothing leaks.
    new_cold_version(&long);
    let (builder, waiter) = (&targets[0], &targets[1]);
    let reply = seek_while_a_waiter_leaves(nginx.port, builder, waiter);
    assert_eq!(reply.status, 200, "{builder}");
    assert!(
        reply.body == seeks[0].body,
        "{builder}: differs after the new version"
    );
    nginx.wait_until_logged_gone(waiter);
    assert_eq!(http(nginx.port, "GET", &targets[2], &[]).status, 200);
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn a_cold_index_build_in_the_thread_pool_leaves_the_worker_serving() {
    let nginx = Nginx::start();
    // Three seeks at once walk 800 MB from disk (the library builds the
    // index once, two pool threads wait for it); the worker serves a static
    // file meanwhile. The request whose client went away during the next
    // build is logged as closed.
    let gone_q = check_cold_index_builds("nginx aio threads", nginx.port);
    nginx.wait_until_logged_gone(&format!("/long/long.flv?{gone_q}"));
    assert_no_failures("nginx error.log", &nginx.log_problems());
}

/// nginx's own test file for its mp4 module has a 10 s and a 20 s track:
/// a start after the short one ends is answered by nginx with the long
/// one from the start, and so by us (exact mode, the default), and with 10 s
/// of video and 10.5 s of AAC a start at 10.2 s gets the audio. Both cuts
/// hold the same streams, decode, and last as long within a frame.
#[test]
#[ignore = "needs nginx and the module: make nginx-module"]
fn a_start_after_a_track_ends_is_answered_as_nginx_mp4_does() {
    let nginx = Nginx::start();
    let duration = |bytes: &[u8], what: &str| {
        let t = TempFile::with_bytes("tracks.mp4", bytes);
        decode_clean(t.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let probe = probe_packets(t.path()).unwrap();
        let streams: Vec<String> = probe
            .streams
            .iter()
            .filter(|s| !probe.stream_packets(s.index).is_empty())
            .map(|s| s.codec_type.clone())
            .collect();
        (streams, ffprobe_duration_ms(t.path()).unwrap())
    };
    for (file, start) in [
        ("two_video.mp4", "11"),
        ("two_video.mp4", "19.9"),
        ("short_video.mp4", "10.2"),
    ] {
        let q = format!("{file}?start={start}");
        let theirs = nginx.get(&format!("/mp4-tracks/{q}"));
        let ours = nginx.get(&format!("/ps-tracks/{q}"));
        assert_eq!(theirs.status, 200, "nginx mp4 {q}");
        assert_eq!(ours.status, 200, "pseudostream {q}");
        let (their_streams, their_ms) = duration(&theirs.body, &format!("nginx mp4 {q}"));
        let (our_streams, our_ms) = duration(&ours.body, &format!("pseudostream {q}"));
        eprintln!(
            "{q}: nginx mp4 {their_streams:?} {their_ms} ms, ours {our_streams:?} {our_ms} ms"
        );
        assert_eq!(our_streams, their_streams, "{q}: streams");
        assert!(
            (our_ms - their_ms).abs() <= 67.0,
            "{q}: {our_ms} ms against nginx's {their_ms}"
        );
    }
    // At or past the end: 416 from us (nginx's module answers 500).
    for q in ["two_video.mp4?start=20", "short_video.mp4?start=10.5"] {
        assert_eq!(nginx.get(&format!("/ps-tracks/{q}")).status, 416, "{q}");
    }
    assert_no_failures("nginx error.log", &nginx.log_problems());
}
