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
//! - decodes to the FLV's own video frames and audio samples, frame by
//!   frame (`-f framemd5` sums, timestamps aside);
//! - has its own ETag (not the FLV's), and any window of it (Range) is
//!   those bytes of the whole;
//! - cut with `start=3&end=7` lasts 4 s within a frame, decoding cleanly.
//!
//! Sorenson H.263 video is refused, naming the codec.

mod common;

use std::path::Path;
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

fn ffprobe_duration(path: &Path) -> Result<f64, String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("ffprobe gave no duration for {}", path.display()))
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
    let d = ffprobe_duration(cut_file.path())?;
    if (d - 4.0).abs() > 0.05 || (cut.start_ms, cut.end_ms) != (3000, 7000) {
        return Err(format!(
            "format=mp4&start=3&end=7 lasts {d} s (plan {}..{} ms)",
            cut.start_ms, cut.end_ms
        ));
    }
    Ok(())
}

#[test]
fn every_flv_of_the_media_set_decodes_the_same_as_mp4() {
    common::needs_ffmpeg!();
    let mut cases: Vec<(std::path::PathBuf, bool, bool, &str)> = manifest()
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
