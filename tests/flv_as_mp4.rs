//! FLV files served as progressive MP4 (`?format=mp4`), made from the
//! neutral sample model (`index::flv_samples` → `format::mp4::progressive`),
//! judged by ffmpeg: for
//! every FLV of the media set (`scripts/make-test-media.sh`: AAC or MP3
//! audio, video with and without B-frames, audio-only, video-only,
//! timestamps past 2^24 ms, each as stored and as yamdi, flvmeta and ffmpeg
//! index them) and the muxer corpus's resolution change (a second sequence
//! header mid-file), the MP4
//!
//! - reads and decodes without a word from `ffmpeg -v warning`;
//! - decodes to the FLV's own video frames, frame by frame (`-f framemd5`
//!   sums, timestamps aside), and to its audio samples, sample for sample,
//!   less what its edit list hides before the first picture (at most one
//!   AAC frame: the encoder's priming, which an FLV plays);
//! - has its own ETag (not the FLV's), and any window of it (Range) is
//!   those bytes of the whole;
//! - cut with `start=3&end=7` lasts 4 s within a frame, decoding cleanly.
//!
//! Sorenson H.263 video is refused, naming the codec.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mp4::{frame_md5_filtered, FrameSum, SplitMix};
use common::{assert_no_failures, body, drain, manifest, par_map, root, TempFile};
use pseudostream::{query, Error, Media, Options, Plan};

fn plan(media: &Media, q: &str) -> Result<Plan, Error> {
    let options = Options::default();
    let request = query::parse(q.as_bytes(), &options)?;
    media.plan(&options, &request)
}

fn warnings(path: &Path) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "warning", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let said = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !said.trim().is_empty() {
        return Err(format!("ffmpeg -v warning: {}", said.trim()));
    }
    Ok(())
}

fn sums(f: &[FrameSum]) -> Vec<&str> {
    f.iter().map(|x| x.md5.as_str()).collect()
}

/// The first audio stream decoded to 32-bit float samples, as stored.
fn pcm(path: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-threads", "1", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "f32le", "-"])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(format!("ffmpeg decoding the audio of {}", path.display()));
    }
    Ok(out.stdout)
}

/// The MP4's audio, decoded, is the FLV's: the same samples, less at most
/// one AAC frame at the start that the MP4's edit list hides (what an FLV
/// plays before its first picture: the encoder's priming).
fn audio_is_the_flvs(flv: &Path, mp4: &Path) -> Result<(), String> {
    let (theirs, ours) = (pcm(flv)?, pcm(mp4)?);
    let hidden = theirs.len().checked_sub(ours.len());
    // 2048 samples of two channels of 4 bytes: more than an AAC frame.
    if ours.is_empty() || hidden.map_or(true, |h| h > 2048 * 2 * 4 || theirs[h..] != ours[..]) {
        return Err(format!(
            "a:0: {} bytes of decoded audio, the FLV's {} do not end with them",
            ours.len(),
            theirs.len()
        ));
    }
    Ok(())
}

fn check(path: &Path, has_audio: bool, has_video: bool, scale: &str) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let media = Media::open(path).map_err(|e| e.to_string())?;
    let whole = plan(&media, "format=mp4").map_err(|e| e.to_string())?;
    let kind = if has_video { "video/mp4" } else { "audio/mp4" };
    if whole.content_type() != kind {
        return Err(format!(
            "Content-Type {}, want {kind}",
            whole.content_type()
        ));
    }
    let as_flv = plan(&media, "").map_err(|e| e.to_string())?;
    if as_flv.etag == whole.etag || as_flv.content_type() != "video/x-flv" {
        return Err("the MP4 has the FLV's validator, or the FLV is no longer one".into());
    }
    let bytes = body(&media, &whole);
    let mp4 = TempFile::with_bytes(&format!("{name}.mp4"), &bytes);
    warnings(mp4.path())?;
    let mut streams = Vec::new();
    if has_video {
        streams.push("v:0");
    }
    if has_audio {
        streams.push("a:0");
    }
    for s in streams {
        let filter = if s.starts_with('v') { scale } else { "anull" };
        if s.starts_with('a') {
            audio_is_the_flvs(path, mp4.path())?;
            continue;
        }
        let theirs = frame_md5_filtered(path, s, filter)?;
        let ours = frame_md5_filtered(mp4.path(), s, filter)?;
        if ours.is_empty() || sums(&ours) != sums(&theirs) {
            let first = sums(&ours)
                .iter()
                .zip(sums(&theirs))
                .position(|(a, b)| *a != b);
            return Err(format!(
                "{s}: {} frames decoded from the MP4, {} from the FLV; first difference at {first:?}",
                ours.len(),
                theirs.len()
            ));
        }
    }
    // Windows (Range) of the response are those bytes of the whole.
    let mut rng = SplitMix::for_name(&name);
    let len = bytes.len() as u64;
    for _ in 0..6 {
        let first = rng.range(0, len - 1);
        let n = rng.range(1, (len - first).min(300_000) + 1);
        let got = drain(&media, &whole, first, n).map_err(|e| e.to_string())?;
        if got != bytes[first as usize..(first + n) as usize] {
            return Err(format!(
                "window {first}+{n} differs from the whole response"
            ));
        }
    }
    // A cut lasts end - start, within a frame, and decodes cleanly.
    let cut = plan(&media, "format=mp4&start=3&end=7").map_err(|e| e.to_string())?;
    let cut_file = TempFile::with_bytes(&format!("{name}.cut.mp4"), &body(&media, &cut));
    warnings(cut_file.path())?;
    let d = common::ffprobe_duration_ms(cut_file.path())? / 1000.0;
    // One video frame at 25 fps, and the ms a plan is stated in.
    if (d - 4.0).abs() > 0.041 || (cut.start_ms, cut.end_ms) != (3000, 7000) {
        return Err(format!(
            "format=mp4&start=3&end=7 lasts {d} s (plan {}..{} ms)",
            cut.start_ms, cut.end_ms
        ));
    }
    Ok(())
}

/// The FLVs converted: the media set (but Sorenson H.263), the muxer
/// corpus's resolution change, and a copy of one whose times run past
/// 2^24 ms (TimestampExtended). (path, has audio, has video, video filter)
fn cases() -> Vec<(PathBuf, bool, bool, &'static str)> {
    let mut cases: Vec<(PathBuf, bool, bool, &str)> = manifest()
        .iter()
        .filter(|e| e.kind != "flv1_mp3")
        .map(|e| (e.path.clone(), e.has_audio, e.has_video, "null"))
        .collect();
    let corpus = root().join("target").join("muxer-corpus");
    common::make_media("make-muxer-corpus.sh", &[], &corpus);
    // Pictures of two sizes: compared at one.
    cases.push((
        corpus.join("resolution-change.flv"),
        true,
        true,
        "scale=320:180",
    ));
    cases.push((extended_timestamps(), true, true, "null"));
    cases
}

/// `h264_aac.plain.flv` with every time 16 780 s later (past 2^24 ms, so
/// each tag needs its TimestampExtended byte), made once under target/.
fn extended_timestamps() -> PathBuf {
    let dir = root().join("target").join("flv-as-mp4");
    fs::create_dir_all(&dir).unwrap();
    let out = dir.join("late.flv");
    if !out.exists() {
        let src = manifest()
            .iter()
            .find(|e| e.file == "h264_aac.plain.flv")
            .unwrap();
        let tmp = dir.join(format!("late.{}.flv", std::process::id()));
        let ok = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(&src.path)
            .args(["-c", "copy", "-output_ts_offset", "16780", "-f", "flv"])
            .arg(&tmp)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ffmpeg could not write {}", tmp.display());
        fs::rename(&tmp, &out).unwrap();
    }
    // Its media tags carry a TimestampExtended byte.
    let bytes = fs::read(&out).unwrap();
    let flv = common::parse_flv(&bytes).unwrap();
    assert!(
        flv.tags
            .iter()
            .any(|t| t.is_av() && bytes[t.pos as usize + 7] != 0),
        "{}: no extended timestamp",
        out.display()
    );
    out
}

#[test]
fn every_flv_of_the_media_set_decodes_the_same_as_mp4() {
    common::needs_ffmpeg!();
    let cases = cases();
    let failures: Vec<String> = par_map(cases, |(path, audio, video, scale)| {
        check(&path, audio, video, scale).map_err(|m| format!("{}: {m}", path.display()))
    })
    .into_iter()
    .filter_map(Result::err)
    .collect();
    assert_no_failures("FLV as MP4", &failures);
}

#[test]
fn codecs_an_mp4_for_browsers_cannot_carry_are_refused_by_name() {
    common::needs_ffmpeg!();
    let e = manifest().iter().find(|e| e.kind == "flv1_mp3").unwrap();
    let media = Media::open(&e.path).unwrap();
    match plan(&media, "format=mp4") {
        Err(e) => {
            assert_eq!(e.http_status(), 415, "{e}");
            assert!(e.to_string().contains("Sorenson H.263"), "{e}");
        }
        Ok(_) => panic!("{} was written as MP4", e.file),
    }
}

/// Packets of stream `s` (`v:0`, `a:0`) by ffprobe, those before an edit
/// list's start included (`-advanced_editlist 0`).
fn packets(path: &Path, s: &str) -> Result<u64, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-advanced_editlist", "0"])
        .args(["-select_streams", s, "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("ffprobe counted no packets of {s} in {}", path.display()))
}

/// What MediaInfo says is wrong with an MP4 (nothing: Ok).
fn mediainfo(path: &Path, has_audio: bool, has_video: bool) -> Result<(), String> {
    let out = Command::new("mediainfo")
        .arg("--Output=JSON")
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run mediainfo: {e}"))?;
    // Compared without white space (MediaInfo indents its JSON).
    let text: String = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect();
    let want = |kind: &str, on: bool| text.contains(&format!("\"@type\":\"{kind}\"")) == on;
    let complaint = ["IsTruncated", "Conformance", "Error", "Warning"]
        .iter()
        .find(|w| text.contains(*w));
    if !out.status.success()
        || !text.contains("\"Format\":\"MPEG-4\"")
        || !want("Video", has_video)
        || !want("Audio", has_audio)
        || complaint.is_some()
    {
        return Err(format!("MediaInfo: {complaint:?} in {}", text.trim()));
    }
    Ok(())
}

#[test]
#[ignore = "needs mediainfo (scripts/setup-deps.sh) and mp4box.js in web/node_modules (scripts/setup-web.sh)"]
fn independent_readers_accept_every_mp4() {
    common::needs_ffmpeg!();
    assert!(
        Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js 20 or later"
    );
    let script = root().join("tests").join("readers").join("mp4box.mjs");
    let dir = root().join("target").join("flv-as-mp4").join("readers");
    fs::create_dir_all(&dir).unwrap();
    // Every MP4, whole and cut, written out for the readers.
    let mut files = Vec::new();
    for (path, audio, video, _) in cases() {
        let media = Media::open(&path).unwrap();
        for q in ["format=mp4", "format=mp4&start=3&end=7"] {
            let bytes = body(&media, &plan(&media, q).unwrap());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let out = dir.join(format!(
                "{name}.{}.mp4",
                if q.contains("start") { "cut" } else { "whole" }
            ));
            fs::write(&out, bytes).unwrap();
            files.push((out, audio, video));
        }
    }
    let run = Command::new("node")
        .arg(&script)
        .args(files.iter().map(|f| &f.0))
        .output()
        .expect("node runs");
    assert!(
        run.status.success(),
        "mp4box.js: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let reports = String::from_utf8_lossy(&run.stdout).into_owned();
    let mut failures = Vec::new();
    for ((file, audio, video), line) in files.iter().zip(reports.lines()) {
        let name = file.display();
        // mp4box.js: no error or warning, and each track holds the samples
        // ffprobe counts as packets.
        if !line.contains("\"error\":null") || !line.contains("\"said\":[]") {
            failures.push(format!("{name}: mp4box.js: {line}"));
            continue;
        }
        for (kind, s, on) in [("video", "v:0", *video), ("audio", "a:0", *audio)] {
            if !on {
                continue;
            }
            let want = packets(file, s).unwrap_or(0);
            let found = line
                .split("{\"type\":")
                .find(|t| t.starts_with(&format!("\"{kind}\"")))
                .and_then(|t| t.split("\"samples\":").nth(1))
                .and_then(|t| t.split(',').next())
                .and_then(|n| n.parse::<u64>().ok());
            if found != Some(want) || want == 0 {
                failures.push(format!(
                    "{name}: mp4box.js finds {found:?} {kind} samples, ffprobe {want} packets"
                ));
            }
        }
        if let Err(e) = mediainfo(file, *audio, *video) {
            failures.push(format!("{name}: {e}"));
        }
    }
    if reports.lines().count() != files.len() {
        failures.push(format!(
            "mp4box.js reported on {} of {} files",
            reports.lines().count(),
            files.len()
        ));
    }
    assert_no_failures("readers of FLV as MP4", &failures);
    let _ = fs::remove_dir_all(&dir);
}
