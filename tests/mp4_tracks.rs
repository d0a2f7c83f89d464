//! MP4 files whose tracks end at different times. A start after one track
//! has ended but inside the movie is a cut of the tracks that go on (that
//! track is left out of it), in both cut modes, lasting from the start to
//! the movie's end; only a start at or past the movie's duration is 416.
//! tests/nginx.rs compares the same cuts with nginx's `mp4` module.

mod common;

use std::path::Path;

use common::mp4::{probe_packets, tracks_ending_apart};
use common::{body, decode_clean, ffprobe_duration_ms, TempFile};
use pseudostream::{query, CutMode, Error, Media, Options, StartUnit};

fn cut(file: &Path, q: &str, mode: CutMode) -> Result<Vec<u8>, Error> {
    let media = Media::open(file).unwrap();
    let options = Options {
        start_unit: StartUnit::Seconds,
        cut: mode,
        ..Options::default()
    };
    let plan = media.plan(&options, &query::parse(q.as_bytes(), &options)?)?;
    Ok(body(&media, &plan))
}

#[test]
fn a_start_after_a_track_ends_cuts_the_tracks_that_go_on() {
    common::needs_ffmpeg!();
    let (two_video, short_video) = tracks_ending_apart();
    for (file, start, lasts_ms, streams) in [
        (&two_video, "11", 9000.0, 1),
        (&two_video, "19.9", 100.0, 1),
        (&short_video, "10.2", 300.0, 1),
        (&short_video, "9.5", 1000.0, 2),
    ] {
        for mode in [CutMode::Exact, CutMode::Keyframe] {
            let what = format!("{} start={start} {mode:?}", file.display());
            let bytes = cut(file, &format!("start={start}"), mode)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let t = TempFile::with_bytes("tracks.mp4", &bytes);
            decode_clean(t.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
            let probe = probe_packets(t.path()).unwrap();
            let with_packets = probe
                .streams
                .iter()
                .filter(|s| !probe.stream_packets(s.index).is_empty())
                .count();
            assert_eq!(probe.streams.len(), streams, "{what}: streams");
            assert_eq!(with_packets, streams, "{what}: streams with packets");
            if mode == CutMode::Exact {
                let got = ffprobe_duration_ms(t.path()).unwrap();
                // Within a video frame (15 fps) or an AAC frame.
                assert!(
                    (got - lasts_ms).abs() <= 67.0,
                    "{what}: lasts {got} ms, want {lasts_ms}"
                );
            }
        }
    }
    for (file, start) in [
        (&two_video, "20"),
        (&two_video, "25"),
        (&short_video, "10.5"),
    ] {
        for mode in [CutMode::Exact, CutMode::Keyframe] {
            match cut(file, &format!("start={start}"), mode) {
                Err(e) => assert_eq!(e.http_status(), 416, "{start}: {e}"),
                Ok(_) => panic!("{} start={start} {mode:?}: past the end", file.display()),
            }
        }
    }
}
