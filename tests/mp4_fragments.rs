//! Fragmented MP4 as ffmpeg writes it with `-movflags frag_keyframe` alone:
//! the moov describes the first fragment's samples, and every later fragment
//! addresses its data by absolute file offsets (`base-data-offset`). Such a
//! file is served whole, and from its start (nothing moves); a cut further
//! in would have to move fragments whose offsets cannot change, so it is a
//! 415 that says so, never a garbled body.

mod common;

use std::fs;
use std::process::Command;

use common::mp4::mp4_media_dir;
use common::{body, decode_clean, require_tool, root, TempFile};
use pseudostream::{query, Error, Media, Options, StartUnit};

#[test]
fn absolute_offset_fragments_are_served_whole_or_from_the_start() {
    common::needs_ffmpeg!();
    require_tool("ffmpeg");
    let dir = root().join("target").join("test-media").join("mp4-extra");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("frag_keyframe_only.mp4");
    if !file.exists() {
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(mp4_media_dir().join("h264_aac.faststart.mp4"))
            .args(["-c", "copy", "-movflags", "frag_keyframe"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stored = fs::read(&file).unwrap();
    let media = Media::open(&file).unwrap();
    assert_eq!(media.info().duration_ms / 1000, 12);
    let o = Options {
        start_unit: StartUnit::Seconds,
        ..Options::default()
    };
    let plan = |q: &str| media.plan(&o, &query::parse(q.as_bytes(), &o).unwrap());

    let whole = plan("").unwrap();
    assert!(whole.whole_file);
    assert_eq!(body(&media, &whole), stored);

    // Inside the samples the moov describes: the file from its first byte
    // up to a fragment boundary at or after the end.
    let early = plan("start=1&end=3").unwrap();
    assert!(early.prefix.is_empty() && early.file_from == 0);
    assert!(early.file_to < stored.len() as u64 && early.end_ms >= 3000);
    let cut = TempFile::with_bytes("early.mp4", &body(&media, &early));
    decode_clean(cut.path()).unwrap();

    match plan("start=5") {
        Err(e @ Error::UnsupportedFormat(_)) => {
            assert_eq!(e.http_status(), 415);
            assert!(e.to_string().contains("absolute"), "{e}");
        }
        other => panic!("start=5: {other:?}"),
    }
}
