//! The HTML index page: the media files (FLV, MP4) of a directory, each with
//! example seek links. What each link returns is asked of the library (parse and
//! plan), so the page shows real results rather than guesses.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use pseudostream::format::Format;
use pseudostream::{query, Keyframe, Media, Options, PrefixMode, StartUnit};

use crate::host;
use crate::request::{encode_path, Resolved};

/// File name extensions listed (and offered to the demo page).
pub const MEDIA_EXTENSIONS: &[&str] = &["flv", "mp4", "m4v", "m4a", "mov"];

/// Whether a Host header is safe and sensible to echo into example commands.
pub fn plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds as seconds: `12`, `12.5`, `12.345`.
fn secs(ms: u64) -> String {
    let s = format!("{}.{:03}", ms / 1000, ms % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

fn video_codec(id: u32) -> String {
    match id {
        2 => "Sorenson H.263".into(),
        4 | 5 => "VP6".into(),
        7 => "H.264".into(),
        12 => "HEVC".into(),
        id if id > 0xFF => String::from_utf8_lossy(&id.to_be_bytes()).into_owned(),
        id => format!("codec {id}"),
    }
}

fn audio_codec(id: u32) -> String {
    match id {
        2 | 14 => "MP3".into(),
        10 => "AAC".into(),
        11 => "Speex".into(),
        id if id > 0xFF => String::from_utf8_lossy(&id.to_be_bytes()).into_owned(),
        id => format!("codec {id}"),
    }
}

/// `name=value` with the host's (possibly renamed) parameter, or None when
/// the host has disabled that parameter.
fn param(name: &str, value: impl std::fmt::Display) -> Option<String> {
    (!name.is_empty()).then(|| format!("{}={value}", encode_path(name.as_bytes())))
}

/// Example queries for one file: (what it shows, query).
fn examples(format: Format, kfs: &[Keyframe], o: &Options) -> Vec<(String, String)> {
    let n = &o.names;
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let (Some(a), Some(b)) = (kfs.get(kfs.len() / 3), kfs.get(kfs.len() * 2 / 3)) else {
        return Vec::new();
    };
    let (ta, tb) = (secs(a.time_ms), secs(b.time_ms));
    let join = |x: Option<String>, y: Option<String>| Some(format!("{}&{}", x?, y?));
    if format == Format::Mp4 {
        // MP4 is cut by time whatever the host's unit.
        let mid = secs(a.time_ms + 500);
        out.push((
            format!("from {mid} s (video from the keyframe at {ta} s, shown from {mid} s)"),
            param(&n.start, &mid),
        ));
        out.push((
            format!("from {mid} s to {tb} s"),
            join(param(&n.start, &mid), param(&n.end, &tb)),
        ));
        return out
            .into_iter()
            .filter_map(|(label, q)| Some((label, q?)))
            .collect();
    }
    match o.start_unit {
        StartUnit::Bytes => {
            out.push((
                format!("byte seek to the keyframe at {ta} s"),
                param(&n.start, a.offset),
            ));
            out.push((
                "byte seek between keyframes (snaps back to the one before)".into(),
                param(&n.start, a.offset + 1000),
            ));
            out.push((
                format!("from {ta} s up to the keyframe at {tb} s (end is an inclusive byte)"),
                join(param(&n.start, a.offset), param(&n.end, b.offset - 1)),
            ));
            out.push((
                format!("only the beginning, up to {ta} s"),
                param(&n.end, a.offset - 1),
            ));
        }
        StartUnit::Seconds => {
            let mid = a.time_ms + 500;
            out.push((
                format!(
                    "time seek to {} s (snaps back to the keyframe at {ta} s)",
                    secs(mid)
                ),
                param(&n.start, secs(mid)),
            ));
            out.push((
                format!("from {ta} s to {tb} s"),
                join(param(&n.start, &ta), param(&n.end, &tb)),
            ));
            out.push((
                format!("only the beginning, up to {ta} s"),
                param(&n.end, &ta),
            ));
            out.push((
                format!("byte seek (CDN style) to the keyframe at {ta} s"),
                param(&n.file_start, a.offset),
            ));
        }
    }
    out.push((
        "raw bytes for flv.js (seekType 'param'): no header, no snapping".into(),
        join(
            param(&n.byte_start, a.offset),
            param(&n.byte_end, b.offset - 1),
        ),
    ));
    out.into_iter()
        .filter_map(|(label, q)| Some((label, q?)))
        .collect()
}

/// What the library answers for `query`, in a few words.
fn outcome(media: &Media, options: &Options, q: &str) -> String {
    match query::parse(q.as_bytes(), options).and_then(|r| media.plan(options, &r)) {
        Ok(p) => format!(
            "200, {} ({} prefix + file bytes {}..{}), media {}–{} s",
            size(p.len()),
            p.prefix.len(),
            p.file_from,
            p.file_to,
            secs(p.start_ms),
            secs(p.end_ms)
        ),
        Err(e) => format!("{}: {}", e.http_status(), host::public_message(&e)),
    }
}

/// The page for directory `dir` (inside `root`).
pub fn page(root: &Path, dir: &Resolved, host_name: &str, options: &Options) -> String {
    let mut url_dir = String::from("/");
    for seg in &dir.segments {
        url_dir.push_str(&encode_path(seg));
        url_dir.push('/');
    }
    let shown_dir = String::from_utf8_lossy(&percent_free(&dir.segments)).into_owned();

    let mut subdirs = Vec::new();
    let mut files = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir.path) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let bytes = name.as_bytes();
            if bytes.starts_with(b".") {
                continue;
            }
            // Follow links only when they stay inside the root.
            let Ok(real) = fs::canonicalize(entry.path()) else {
                continue;
            };
            if !real.starts_with(root) {
                continue;
            }
            if real.is_dir() {
                subdirs.push(bytes.to_vec());
            } else if real.is_file()
                && Path::new(&name)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| MEDIA_EXTENSIONS.iter().any(|m| e.eq_ignore_ascii_case(m)))
            {
                files.push((bytes.to_vec(), real));
            }
        }
    }
    subdirs.sort();
    files.sort();

    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <title>pseudostream: {title}</title>\n<style>\
         body{{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}}\
         code,pre{{background:#f3f3f3;padding:0 .2em}}pre{{padding:.5em;overflow-x:auto}}\
         td{{padding:.15em .6em;vertical-align:top}}small{{color:#555}}\
         </style></head><body>\n<h1>{title}</h1>\n",
        title = esc(&format!("/{shown_dir}"))
    );
    let prefix = match options.prefix {
        PrefixMode::None => "none: raw bytes from the keyframe",
        PrefixMode::Header => "header: FLV header, then the keyframe",
        PrefixMode::Init => "init: FLV header and codec configuration, then the keyframe",
        PrefixMode::Full => "full: header, fresh onMetaData and codec configuration",
    };
    let unit = match options.start_unit {
        StartUnit::Bytes => "byte offsets (restart with --unit seconds for time seeks)",
        StartUnit::Seconds => "seconds",
    };
    let _ = write!(
        h,
        "<p>Browsers cannot play FLV natively, so there is no player here. Open a link in \
         VLC, ffplay or mpv, e.g. <code>ffplay 'http://{host}/file.flv?start=…'</code> or \
         <code>mpv 'http://{host}/file.flv?start=…'</code>; or save a cut with curl.</p>\n\
         <p><small>Seeks start at a keyframe. Prefix mode: {prefix}. \
         <code>start</code>/<code>end</code> are {unit}.</small></p>\n",
        host = esc(host_name),
        prefix = esc(prefix),
        unit = esc(unit),
    );

    if !dir.segments.is_empty() {
        h.push_str("<p><a href=\"../\">../</a></p>\n");
    }
    if !subdirs.is_empty() {
        h.push_str("<ul>\n");
        for d in &subdirs {
            let _ = writeln!(
                h,
                "<li><a href=\"{}/\">{}/</a></li>",
                esc(&format!("{url_dir}{}", encode_path(d))),
                esc(&String::from_utf8_lossy(d))
            );
        }
        h.push_str("</ul>\n");
    }
    if files.is_empty() {
        h.push_str("<p>No FLV or MP4 files here.</p>\n");
    }
    for (name, real) in &files {
        let url = format!("{url_dir}{}", encode_path(name));
        file_section(
            &mut h,
            &String::from_utf8_lossy(name),
            &url,
            real,
            host_name,
            options,
        );
    }
    h.push_str("</body></html>\n");
    h
}

fn file_section(h: &mut String, name: &str, url: &str, real: &Path, host: &str, o: &Options) {
    let _ = writeln!(h, "<h2><a href=\"{}\">{}</a></h2>", esc(url), esc(name));
    let media = match Media::open(real) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(
                h,
                "<p>Cannot be served: {}</p>",
                esc(&host::public_message(&e))
            );
            return;
        }
    };
    let i = media.info();
    let mut facts = vec![secs(i.duration_ms) + " s", size(i.size)];
    if let (Some(w), Some(hh)) = (i.width, i.height) {
        facts.push(format!("{w}×{hh}"));
    }
    facts.extend(i.video_codec.map(video_codec));
    facts.extend(i.audio_codec.map(audio_codec));
    facts.push(format!(
        "{} keyframes (index: {})",
        i.keyframe_count,
        i.origin.name()
    ));
    if i.keyframe_flags_overruled > 0 {
        facts.push(format!(
            "{} keyframe flags on pictures a decoder cannot start from, set aside",
            i.keyframe_flags_overruled
        ));
    }
    let _ = writeln!(h, "<p>{}</p>", esc(&facts.join(", ")));

    let kfs = media.keyframes();
    let examples = examples(i.format, kfs, o);
    if !examples.is_empty() {
        h.push_str("<table>\n");
        for (label, q) in &examples {
            let link = format!("{url}?{q}");
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><a href=\"{}\"><code>?{}</code></a></td>\
                 <td><small>{}</small></td></tr>",
                esc(label),
                esc(&link),
                esc(q),
                esc(&outcome(&media, o, q)),
            );
        }
        h.push_str("</table>\n");
        let _ = writeln!(
            h,
            "<pre>ffplay '{}'</pre>",
            esc(&format!("http://{host}{url}?{}", examples[0].1))
        );
    }

    // A dozen evenly spaced seek points.
    let step = kfs.len().div_ceil(12).max(1);
    let points: Vec<String> = kfs
        .iter()
        .step_by(step)
        .filter_map(|k| {
            let q = match (o.start_unit, i.format) {
                (StartUnit::Bytes, Format::Flv) => param(&o.names.start, k.offset)?,
                _ => param(&o.names.start, secs(k.time_ms))?,
            };
            Some(format!(
                "<a href=\"{}\">{} s</a>",
                esc(&format!("{url}?{q}")),
                secs(k.time_ms)
            ))
        })
        .collect();
    if !points.is_empty() {
        let _ = writeln!(
            h,
            "<p><small>Seek points: {}</small></p>",
            points.join(" · ")
        );
    }
}

/// Path segments joined with `/`, undecoded, for display.
fn percent_free(segments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segments {
        out.extend_from_slice(s);
        out.push(b'/');
    }
    out
}
