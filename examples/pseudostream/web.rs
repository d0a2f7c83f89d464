//! `serve --web DIR`: the demo page that plays the served media in a
//! browser. With it, `/` is `DIR/index.html`, and the reserved prefix
//! `/_web/` (which hides a `_web` entry of the served directory) holds:
//!
//! - `/_web/NAME`: a file directly in DIR (letters, digits, `.`, `-`, `_`;
//!   no dot files, no subdirectories) of a known type;
//! - `/_web/lib/mpegts.js`, `/_web/lib/flv.js` (and their source maps): the
//!   players npm installed under `DIR/node_modules` (`scripts/setup-web.sh`);
//! - `/_web/media.json`: the media files below the served root, for the page.
//!
//! Nothing else under DIR can be reached. Assets are small and read whole.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pseudostream::Media;

use crate::host;
use crate::request::encode_path;

/// The reserved path prefix.
pub const PREFIX: &str = "/_web/";

/// Players served from `node_modules`: URL name below `/_web/lib/`, path
/// below DIR.
const LIBS: &[(&str, &str)] = &[
    ("mpegts.js", "node_modules/mpegts.js/dist/mpegts.js"),
    ("mpegts.js.map", "node_modules/mpegts.js/dist/mpegts.js.map"),
    ("flv.js", "node_modules/flv.js/dist/flv.js"),
    ("flv.js.map", "node_modules/flv.js/dist/flv.js.map"),
];

/// File name extensions the listing offers to the page, which picks the
/// player by extension (FLV through a player library, MP4 natively).
const MEDIA_EXTENSIONS: &[&str] = crate::index::MEDIA_EXTENSIONS;

/// Largest asset served (the players are well under 1 MB).
const MAX_ASSET: u64 = 8 << 20;
/// Bounds of the media walk behind `media.json`.
const MAX_DEPTH: usize = 8;
const MAX_FILES: usize = 1000;

/// The page's directory, checked at start-up.
pub struct Web {
    dir: PathBuf,
}

/// An answer for the caller to send.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn error(status: u16) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{}\n", host::reason(status)).into_bytes(),
        }
    }
}

impl Web {
    /// Checks that DIR holds the page and the players.
    pub fn open(dir: &Path) -> Result<Web, String> {
        let dir = fs::canonicalize(dir).map_err(|e| format!("--web {}: {e}", dir.display()))?;
        if !dir.join("index.html").is_file() {
            return Err(format!("--web {}: no index.html", dir.display()));
        }
        for (_, rel) in LIBS.iter().filter(|(name, _)| name.ends_with(".js")) {
            if !dir.join(rel).is_file() {
                return Err(format!(
                    "--web {}: {rel} missing: run scripts/setup-web.sh",
                    dir.display()
                ));
            }
        }
        Ok(Web { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The answer for a decoded request path, or None when the path is not
    /// the page's (then the caller serves media and listings as usual). `/`
    /// is the page whatever its query (the page reads its settings from it),
    /// except `/?links`, the seek-link listing.
    pub fn route(&self, root: &Path, decoded: &[u8], query: &str) -> Option<Reply> {
        if decoded == b"/" && query != "links" {
            return Some(self.file(&self.dir.join("index.html")));
        }
        let rest = decoded.strip_prefix(PREFIX.as_bytes())?;
        Some(match rest {
            b"media.json" => Reply {
                status: 200,
                content_type: "application/json",
                body: media_json(root).into_bytes(),
            },
            _ => match rest.strip_prefix(b"lib/") {
                Some(name) => match LIBS.iter().find(|(n, _)| n.as_bytes() == name) {
                    Some((_, rel)) => self.file(&self.dir.join(rel)),
                    None => Reply::error(404),
                },
                None if plain_name(rest) => {
                    self.file(&self.dir.join(std::ffi::OsStr::from_bytes(rest)))
                }
                None => Reply::error(404),
            },
        })
    }

    /// A regular file inside DIR, of a known type, not too large.
    fn file(&self, path: &Path) -> Reply {
        let Some(content_type) = content_type(path) else {
            return Reply::error(404);
        };
        let Ok(real) = fs::canonicalize(path) else {
            return Reply::error(404);
        };
        if !real.starts_with(&self.dir) {
            return Reply::error(403);
        }
        match fs::metadata(&real) {
            Ok(m) if m.is_file() && m.len() <= MAX_ASSET => {}
            Ok(m) if m.is_file() => return Reply::error(500),
            _ => return Reply::error(404),
        }
        match fs::read(&real) {
            Ok(body) => Reply {
                status: 200,
                content_type,
                body,
            },
            Err(_) => Reply::error(404),
        }
    }
}

/// One path segment of safe characters, not starting with a dot.
fn plain_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name[0] != b'.'
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn content_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{"files":[{"path","url","type","size",…}]}` for the media below `root`
/// (sorted by path; links leading out of the root are not followed).
fn media_json(root: &Path) -> String {
    let mut found = Vec::new();
    walk(root, root, &mut Vec::new(), &mut found);
    found.sort();
    let mut s = String::from("{\"files\":[");
    for (n, (segments, real)) in found.iter().enumerate() {
        let mut url = String::new();
        let mut shown = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            url.push('/');
            url.push_str(&encode_path(seg));
            if i > 0 {
                shown.push(b'/');
            }
            shown.extend_from_slice(seg);
        }
        let ext = Path::new(std::ffi::OsStr::from_bytes(segments.last().unwrap()))
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let _ = write!(
            s,
            "{}{{\"path\":{},\"url\":{},\"type\":{}",
            if n == 0 { "" } else { "," },
            json_str(&String::from_utf8_lossy(&shown)),
            json_str(&url),
            json_str(&ext)
        );
        match Media::open(real) {
            Ok(media) => {
                let i = media.info();
                let _ = write!(
                    s,
                    ",\"size\":{},\"duration_ms\":{},\"bitrate_bps\":{},\"keyframes\":{},\
                     \"index\":{}",
                    i.size,
                    i.duration_ms,
                    i.bitrate_bps,
                    i.keyframe_count,
                    json_str(i.origin.name())
                );
                if let (Some(w), Some(h)) = (i.width, i.height) {
                    let _ = write!(s, ",\"width\":{w},\"height\":{h}");
                }
            }
            Err(e) => {
                let _ = write!(s, ",\"error\":{}", json_str(&host::public_message(&e)));
            }
        }
        s.push('}');
    }
    s.push_str("]}\n");
    s
}

/// Collects (segments below root, canonical path) of media files.
fn walk(
    root: &Path,
    dir: &Path,
    segments: &mut Vec<Vec<u8>>,
    found: &mut Vec<(Vec<Vec<u8>>, PathBuf)>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if found.len() >= MAX_FILES {
            return;
        }
        let name = entry.file_name();
        let bytes = name.as_bytes();
        if bytes.starts_with(b".") || (segments.is_empty() && bytes == b"_web") {
            continue;
        }
        let Ok(real) = fs::canonicalize(entry.path()) else {
            continue;
        };
        if !real.starts_with(root) {
            continue;
        }
        segments.push(bytes.to_vec());
        if real.is_dir() {
            if segments.len() < MAX_DEPTH {
                walk(root, &real, segments, found);
            }
        } else if real.is_file()
            && Path::new(&name)
                .extension()
                .is_some_and(|e| MEDIA_EXTENSIONS.iter().any(|m| e.eq_ignore_ascii_case(m)))
        {
            found.push((segments.clone(), real));
        }
        segments.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert!(plain_name(b"player.js"));
        assert!(!plain_name(b".hidden"));
        assert!(!plain_name(b"a/b.js"));
        assert!(!plain_name(b"..%2f"));
        assert!(!plain_name(b""));
        assert_eq!(
            content_type(Path::new("x/index.HTML")),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(content_type(Path::new("package-lock.json")), None);
        assert_eq!(content_type(Path::new("a.sh")), None);
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
