//! The MP4 side of the harness: the generated MP4 matrix
//! (`scripts/make-mp4-media.sh`), ffprobe packets with data hashes, ffmpeg
//! frame checksums, a walker over top-level boxes, and a small seeded PRNG.
//!
//! Everything here judges the library from the outside: timestamps and
//! pictures come from ffmpeg/ffprobe, never from `pseudostream`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{make_media, require_tool, root};

// ------------------------------------------------------------------ media --

/// `target/test-media/mp4`, made by
/// `scripts/make-mp4-media.sh`. `PSEUDOSTREAM_MP4_MEDIA=DIR` points at an
/// already generated directory instead (it must hold `manifest.txt`).
pub fn mp4_media_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_tool("ffmpeg");
        require_tool("ffprobe");
        if let Some(dir) = std::env::var_os("PSEUDOSTREAM_MP4_MEDIA") {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("manifest.txt").is_file(),
                "PSEUDOSTREAM_MP4_MEDIA={} has no manifest.txt",
                dir.display()
            );
            return dir;
        }
        let dir = root().join("target").join("test-media").join("mp4");
        make_media("make-mp4-media.sh", &["mp4craft.py"], &dir);
        dir
    })
}

/// One line of the MP4 `manifest.txt`:
/// `file has_audio has_video audio_tracks notes...`.
#[derive(Clone, Debug)]
pub struct Mp4Entry {
    pub file: String,
    pub path: PathBuf,
    pub has_audio: bool,
    pub has_video: bool,
    pub audio_tracks: usize,
    /// The rest of the line (free text; may be empty or "-").
    pub notes: String,
}

fn flag(s: &str, line: &str) -> bool {
    match s {
        "1" | "yes" | "true" => true,
        "0" | "no" | "false" => false,
        _ => panic!("manifest line {line:?}: {s:?} is not a 0/1 flag"),
    }
}

pub fn mp4_manifest() -> &'static [Mp4Entry] {
    static LIST: OnceLock<Vec<Mp4Entry>> = OnceLock::new();
    LIST.get_or_init(|| {
        let dir = mp4_media_dir();
        let text = fs::read_to_string(dir.join("manifest.txt")).expect("mp4 manifest.txt");
        let list: Vec<Mp4Entry> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                assert!(f.len() >= 4, "mp4 manifest line: {line}");
                let path = dir.join(f[0]);
                assert!(path.is_file(), "manifest lists {} but it is missing", f[0]);
                Mp4Entry {
                    file: f[0].to_string(),
                    path,
                    has_audio: flag(f[1], line),
                    has_video: flag(f[2], line),
                    audio_tracks: f[3]
                        .parse()
                        .unwrap_or_else(|_| panic!("manifest line {line:?}: audio_tracks")),
                    notes: f[4..].join(" "),
                }
            })
            .collect();
        assert!(!list.is_empty(), "the MP4 manifest lists no files");
        list
    })
}

pub fn mp4_entry(file: &str) -> &'static Mp4Entry {
    mp4_manifest()
        .iter()
        .find(|e| e.file == file)
        .unwrap_or_else(|| panic!("{file} not in the MP4 manifest"))
}

// ---------------------------------------------------------------- ffprobe --

#[derive(Clone, Debug)]
pub struct Mp4Stream {
    pub index: usize,
    pub codec_type: String,
    pub codec_name: String,
    pub sample_rate: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Mp4Packet {
    pub stream: usize,
    pub pts_ms: Option<f64>,
    pub dts_ms: Option<f64>,
    pub dur_ms: Option<f64>,
    pub pos: Option<u64>,
    pub size: Option<u64>,
    pub key: bool,
    /// ffprobe's `D` flag: the demuxer marks the packet to be dropped.
    pub discard: bool,
    /// "CRC32:xxxxxxxx" of the payload.
    pub hash: String,
}

#[derive(Clone, Debug, Default)]
pub struct PacketProbe {
    pub streams: Vec<Mp4Stream>,
    pub packets: Vec<Mp4Packet>,
}

impl PacketProbe {
    /// Stream indices of one codec type, in file order.
    pub fn of_type(&self, codec_type: &str) -> Vec<usize> {
        self.streams
            .iter()
            .filter(|s| s.codec_type == codec_type)
            .map(|s| s.index)
            .collect()
    }

    /// Packets of one stream, in demux order.
    pub fn stream_packets(&self, stream: usize) -> Vec<&Mp4Packet> {
        self.packets.iter().filter(|p| p.stream == stream).collect()
    }

    pub fn stream(&self, index: usize) -> Option<&Mp4Stream> {
        self.streams.iter().find(|s| s.index == index)
    }
}

fn seconds(s: Option<&&str>) -> Option<f64> {
    s.and_then(|v| v.parse::<f64>().ok()).map(|v| v * 1000.0)
}

/// Streams and every packet of a file with a CRC32 of each payload, by one
/// ffprobe call.
///
/// ffprobe's packet timestamps already include the edit list and the
/// composition offsets (ctts). `-advanced_editlist 0` makes the mov demuxer
/// apply the edit list as a plain time offset (an empty edit delays, the
/// media edit's start is subtracted) and keep every packet: the timestamps
/// are then exact to the media tick. With the default (advanced) handling
/// ffmpeg instead re-anchors each track so that its first frame *inside*
/// the edit is at 0, which moves a video track by up to one frame when the
/// edit starts between two frames, as an exact-mode cut does.
pub fn probe_packets(path: &Path) -> Result<PacketProbe, String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-advanced_editlist",
            "0",
            "-show_data_hash",
            "CRC32",
            "-show_entries",
            "stream=index,codec_type,codec_name,sample_rate:\
             packet=stream_index,pts_time,dts_time,duration_time,pos,size,flags,data_hash",
            "-of",
            "default",
        ])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run ffprobe ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "ffprobe failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut probe = PacketProbe::default();
    // Sections nest ([PACKET] holds [SIDE_DATA]...); only the outer
    // section's keys are read.
    let mut stack: Vec<String> = Vec::new();
    let mut kv: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[/").and_then(|l| l.strip_suffix(']')) {
            let closed = stack.pop();
            if closed.as_deref() != Some(name) {
                return Err(format!("ffprobe output: [/{name}] closes {closed:?}"));
            }
            if stack.is_empty() {
                let get = |k: &str| kv.get(k).map(String::as_str);
                match name {
                    "STREAM" => probe.streams.push(Mp4Stream {
                        index: get("index").and_then(|v| v.parse().ok()).ok_or("index")?,
                        codec_type: get("codec_type").unwrap_or("").to_string(),
                        codec_name: get("codec_name").unwrap_or("").to_string(),
                        sample_rate: get("sample_rate").and_then(|v| v.parse().ok()),
                    }),
                    "PACKET" => {
                        let flags = get("flags").unwrap_or("");
                        probe.packets.push(Mp4Packet {
                            stream: get("stream_index")
                                .and_then(|v| v.parse().ok())
                                .ok_or("stream_index")?,
                            pts_ms: seconds(get("pts_time").as_ref()),
                            dts_ms: seconds(get("dts_time").as_ref()),
                            dur_ms: seconds(get("duration_time").as_ref()),
                            pos: get("pos").and_then(|v| v.parse().ok()),
                            size: get("size").and_then(|v| v.parse().ok()),
                            key: flags.starts_with('K'),
                            discard: flags.contains('D'),
                            hash: get("data_hash").unwrap_or("").to_string(),
                        });
                    }
                    _ => {}
                }
                kv.clear();
            }
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            stack.push(name.to_string());
        } else if stack.len() == 1 {
            if let Some((k, v)) = line.split_once('=') {
                kv.insert(k.to_string(), v.to_string());
            }
        }
    }
    Ok(probe)
}

/// The payloads of one stream's packets, concatenated (`-c copy -f data`),
/// from its first packet on (`-advanced_editlist 0`: none is dropped). For
/// PCM that is the samples as stored.
pub fn stream_payload(path: &Path, stream: &str) -> Result<Vec<u8>, String> {
    ffmpeg_stream(
        path,
        stream,
        &["-advanced_editlist", "0"],
        &["-c", "copy", "-f", "data"],
    )
}

/// What ffmpeg writes to stdout for one stream (`v:0`, `a:1`...) of `path`,
/// with `input` options before `-i` and `output` options after the `-map`.
fn ffmpeg_stream(
    path: &Path,
    stream: &str,
    input: &[&str],
    output: &[&str],
) -> Result<Vec<u8>, String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(input)
        .arg("-i")
        .arg(path)
        .args(["-map", &format!("0:{stream}")])
        .args(output)
        .arg("-")
        .output()
        .map_err(|e| format!("cannot run ffmpeg ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg {} on {stream} of {}: {}",
            output.join(" "),
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

// ------------------------------------------------------------ framemd5 --

/// One decoded frame, as `-f framemd5` reports it.
#[derive(Clone, Debug)]
pub struct FrameSum {
    pub pts_ms: f64,
    pub dur_ms: f64,
    /// The duration in the stream's time base (audio: samples).
    pub dur_ticks: i64,
    pub md5: String,
}

/// Decodes one stream (`v:0`, `a:1`...) with ffmpeg, which applies the
/// edit lists (frames outside them are decoded but not output), and returns
/// a checksum of each output frame with its timestamp. `-copyts` keeps the
/// demuxer's timestamps; `-enc_time_base -1` keeps the stream's time base,
/// so they are exact; `-fps_mode passthrough` neither drops nor duplicates.
pub fn frame_md5(path: &Path, stream: &str) -> Result<Vec<FrameSum>, String> {
    frame_md5_filtered(path, stream, "null")
}

/// As `frame_md5`, each frame through the video `filter` first: a stream
/// whose picture size changes is compared at one size (`scale=W:H`).
pub fn frame_md5_filtered(
    path: &Path,
    stream: &str,
    filter: &str,
) -> Result<Vec<FrameSum>, String> {
    frame_md5_with(path, stream, filter, &[])
}

/// As `frame_md5_filtered`, with edit lists ignored (`-advanced_editlist
/// 0`): every stored sample decoded, those an edit list hides included.
pub fn frame_md5_every_sample(
    path: &Path,
    stream: &str,
    filter: &str,
) -> Result<Vec<FrameSum>, String> {
    frame_md5_with(path, stream, filter, &["-advanced_editlist", "0"])
}

fn frame_md5_with(
    path: &Path,
    stream: &str,
    filter: &str,
    input: &[&str],
) -> Result<Vec<FrameSum>, String> {
    let input: Vec<&str> = ["-threads", "1", "-copyts"]
        .into_iter()
        .chain(input.iter().copied())
        .collect();
    let out = ffmpeg_stream(
        path,
        stream,
        &input,
        &[
            "-vf",
            filter,
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
            "-f",
            "framemd5",
        ],
    )?;
    let text = String::from_utf8_lossy(&out);
    let mut tb: Option<(f64, f64)> = None;
    let mut frames = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#tb 0:") {
            let (n, d) = rest.trim().split_once('/').ok_or("odd #tb line")?;
            tb = Some((
                n.parse().map_err(|_| "odd #tb")?,
                d.parse().map_err(|_| "odd #tb")?,
            ));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 6 {
            return Err(format!("odd framemd5 line {line:?}"));
        }
        let (n, d) = tb.ok_or("framemd5 without #tb")?;
        let ms = |v: &str| -> Result<(i64, f64), String> {
            let t: i64 = v.parse().map_err(|_| format!("odd number in {line:?}"))?;
            Ok((t, t as f64 * n / d * 1000.0))
        };
        let (_, pts_ms) = ms(f[2])?;
        let (dur_ticks, dur_ms) = ms(f[3])?;
        frames.push(FrameSum {
            pts_ms,
            dur_ms,
            dur_ticks,
            md5: f[5].to_string(),
        });
    }
    Ok(frames)
}

// ------------------------------------------------------------------ boxes --

/// A top-level ISO BMFF box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopBox {
    pub kind: [u8; 4],
    pub offset: u64,
    pub size: u64,
}

impl TopBox {
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }
}

/// Walks the top-level box headers of `b` (32-bit sizes, 64-bit
/// `largesize`, 0 = to the end); an error when they do not tile `b`
/// exactly.
pub fn top_level_boxes(b: &[u8]) -> Result<Vec<TopBox>, String> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let len = b.len() as u64;
    while pos < len {
        let p = pos as usize;
        if len - pos < 8 {
            return Err(format!("{} stray bytes at {pos}", len - pos));
        }
        let size32 = u32::from_be_bytes(b[p..p + 4].try_into().unwrap());
        let kind: [u8; 4] = b[p + 4..p + 8].try_into().unwrap();
        let size = match size32 {
            0 => len - pos,
            1 => {
                if len - pos < 16 {
                    return Err(format!("truncated largesize at {pos}"));
                }
                u64::from_be_bytes(b[p + 8..p + 16].try_into().unwrap())
            }
            n => u64::from(n),
        };
        if size < 8 || size > len - pos {
            return Err(format!(
                "box '{}' at {pos} has size {size} ({} bytes left)",
                String::from_utf8_lossy(&kind),
                len - pos
            ));
        }
        out.push(TopBox {
            kind,
            offset: pos,
            size,
        });
        pos += size;
    }
    Ok(out)
}

// ------------------------------------------------------------------- PRNG --

/// SplitMix64: small, deterministic, good enough to pick test cases.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// Seeded from a name (FNV-1a), so each file gets its own stream.
    pub fn for_name(name: &str) -> SplitMix {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        SplitMix(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`; `lo` when the range is empty.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.range(0, items.len() as u64) as usize])
        }
    }
}

/// Files whose tracks end at different times, made once with ffmpeg under
/// `target/test-media/mp4-tracks/`: `two_video.mp4` (a 10 s and a 20 s video
/// track, as nginx's own mp4.t test has) and `short_video.mp4` (10 s of
/// video, 10.5 s of AAC). Paths in that order.
pub fn tracks_ending_apart() -> (PathBuf, PathBuf) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        require_tool("ffmpeg");
        let dir = root().join("target/test-media/mp4-tracks");
        fs::create_dir_all(&dir).unwrap();
        // Each source a lavfi filter graph; `output` maps and encodes.
        let make = |name: &str, sources: &[&str], output: &[&str]| {
            let out = dir.join(name);
            if out.exists() {
                return;
            }
            let part = dir.join(format!("{name}.part.mp4"));
            let status = Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-y"])
                .args(sources.iter().flat_map(|s| ["-f", "lavfi", "-i", s]))
                .args(["-pix_fmt", "yuv420p", "-g", "15"])
                .args(output)
                .args(["-movflags", "+faststart"])
                .arg(&part)
                .status()
                .unwrap();
            assert!(status.success(), "ffmpeg could not make {name}");
            fs::rename(&part, &out).unwrap();
        };
        make(
            "two_video.mp4",
            &[
                "testsrc=duration=10:size=320x200:rate=15",
                "testsrc=duration=20:size=320x200:rate=15",
            ],
            &["-map", "0:0", "-map", "1:0", "-c:v", "libx264"],
        );
        make(
            "short_video.mp4",
            &[
                "testsrc=duration=10:size=320x200:rate=15",
                "sine=duration=10.5",
            ],
            &["-c:v", "libx264", "-c:a", "aac"],
        );
        dir
    });
    (dir.join("two_video.mp4"), dir.join("short_video.mp4"))
}
