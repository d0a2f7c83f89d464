//! FLV files written as progressive MP4 from the neutral sample model
//! (`index::flv_samples` → `plan::progressive`), judged by ffmpeg: for
//! every FLV of the media set (`scripts/make-test-media.sh`: AAC or MP3
//! audio, video with and without B-frames, audio-only, video-only,
//! timestamps past 2^24 ms, each as stored and as yamdi, flvmeta and ffmpeg
//! index them) and the muxer corpus's resolution change (a second sequence
//! header mid-file), the MP4
//!
//! - reads and decodes without a word from `ffmpeg -v warning`;
//! - decodes to the FLV's own video frames and audio samples, frame by
//!   frame (`-f framemd5` sums, timestamps aside);
//! - holds each sample once: its `mdat` is the payloads' bytes.
//!
//! Sorenson H.263 video is refused, naming the codec.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::mp4::{frame_md5_filtered, FrameSum};
use common::{assert_no_failures, manifest, par_map, root, TempFile};
use pseudostream::index::{flv_samples, MediaIndex};
use pseudostream::plan::progressive::ProgressiveMp4;
use pseudostream::plan::{Body, Piece};
use pseudostream::{Error, Media};

/// The MP4 made from `path`, as bytes.
fn as_mp4(path: &Path) -> Result<Vec<u8>, Error> {
    let media = Media::open(path)?;
    let MediaIndex::Flv(index) = media.index() else {
        panic!("{} is not an FLV", path.display());
    };
    let movie = flv_samples::sample_movie(index, &**media.source())?;
    let samples: u64 = movie
        .tracks
        .iter()
        .flat_map(|t| t.samples.iter().map(|s| u64::from(s.size)))
        .sum();
    let mp4 = Arc::new(ProgressiveMp4::build(&movie)?);
    assert_eq!(mp4.mdat.len(), samples, "{}", path.display());
    let file = std::fs::read(path).unwrap();
    Ok(collect(&mp4.body(), &file))
}

fn collect(body: &Body, file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() as usize);
    let mut pos = 0;
    while pos < body.len() {
        let mut scratch = [0u8; 16];
        let piece = body.piece_at(pos, body.len(), &mut scratch);
        match piece {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::File { offset, len } => {
                out.extend_from_slice(&file[offset as usize..(offset + len) as usize])
            }
        }
        pos += piece.len();
    }
    out
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

fn check(path: &Path, has_audio: bool, has_video: bool, scale: &str) -> Result<(), String> {
    let bytes = as_mp4(path).map_err(|e| e.to_string())?;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
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
    match as_mp4(&e.path) {
        Err(e) => {
            assert_eq!(e.http_status(), 415, "{e}");
            assert!(e.to_string().contains("Sorenson H.263"), "{e}");
        }
        Ok(_) => panic!("{} was written as MP4", e.file),
    }
}
