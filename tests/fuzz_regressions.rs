//! Inputs the fuzzers once crashed the library with, replayed on every run.
//! Each must open (or fail) and plan without a panic.

use std::sync::Arc;

use pseudostream::format::Format;
use pseudostream::{CutMode, Media, MemorySource, Options, Position, Request};

fn replay(bytes: Vec<u8>) {
    let Ok(media) = Media::from_source(Arc::new(MemorySource::new(bytes))) else {
        return;
    };
    let info = media.info().clone();
    assert!(info.start_ms.checked_add(info.duration_ms).is_some());
    for start in [None, Some(Position::Millis(1)), Some(Position::Bytes(40))] {
        for end in [
            None,
            Some(Position::Millis(u64::MAX)),
            Some(Position::Bytes(500)),
        ] {
            let request = Request {
                start,
                end,
                ..Request::default()
            };
            let _ = media.plan(&Options::default(), &request);
        }
    }
}

/// MP4 inputs (saved without the mp4 target's 8-byte control trailer) are
/// also cut at every sixteenth of their duration and at every seek point, in
/// both cut modes; a cut with a prefix must open again.
fn replay_mp4_cuts(name: &str, bytes: &[u8]) {
    if Format::sniff(&bytes[..bytes.len().min(16)]) != Some(Format::Mp4) {
        return;
    }
    let Ok(media) = Media::from_source(Arc::new(MemorySource::new(bytes.to_vec()))) else {
        return;
    };
    let d = media.info().duration_ms;
    let mut times: Vec<u64> = (0..=16).map(|i| d / 16 * i).collect();
    for k in media.keyframes().iter().take(32) {
        times.extend([k.time_ms, k.time_ms.saturating_add(1)]);
    }
    for cut in [CutMode::Exact, CutMode::Keyframe] {
        let options = Options {
            cut,
            ..Options::default()
        };
        for &t in &times {
            for (start, end) in [
                (Some(t), None),
                (Some(t), Some(t.saturating_add(500))),
                (None, Some(t.saturating_add(1))),
            ] {
                let request = Request {
                    start: start.map(Position::Millis),
                    end: end.map(Position::Millis),
                    ..Request::default()
                };
                let Ok(plan) = media.plan(&options, &request) else {
                    continue;
                };
                assert!(
                    plan.start_ms <= plan.end_ms,
                    "{name}: {request:?}: {plan:?}"
                );
                if plan.prefix.is_empty() {
                    continue;
                }
                let mut body = plan.prefix.to_vec();
                body.extend_from_slice(&bytes[plan.file_from as usize..plan.file_to as usize]);
                let again = match Media::from_source(Arc::new(MemorySource::new(body))) {
                    Ok(m) => m,
                    Err(e) => panic!("{name}: {cut:?} cut {request:?} does not open again: {e}"),
                };
                // A cut lasts about what it says (an edit of 0 ticks once
                // read as "to the end" and lasted the whole track).
                let span = plan.end_ms - plan.start_ms;
                let lasts = again.info().duration_ms;
                assert!(
                    lasts <= span + 10_000,
                    "{name}: {cut:?} cut {request:?} of {span} ms lasts {lasts} ms"
                );
            }
        }
    }
}

/// What a cut lasts when reopened, and what its plan says (ms).
fn reopened(media: &Media, plan: &pseudostream::Plan) -> u64 {
    let mut stream = media.stream(plan, 0, plan.len()).unwrap();
    stream.set_pacing(0, 0);
    let mut body = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let pseudostream::Fill::Data(n) = stream.fill(&mut buf, 0).unwrap() {
        body.extend_from_slice(&buf[..n]);
    }
    Media::from_source(Arc::new(MemorySource::new(body)))
        .expect("a cut reopens")
        .info()
        .duration_ms
}

/// Files whose frames are composed far from where they are decoded (a frame
/// 20,562 s or 25 h after the others; a frame presented past the keyframe a
/// cut starts at, though decoded before it): a track lasts until its last
/// composed frame ends, and a cut reports, and lasts, the span its own
/// samples present, within a frame and a movie tick.
#[test]
fn cuts_of_files_composed_far_from_decode_last_what_their_plans_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    for (name, duration_ms, spans) in [
        (
            "mp4-frame-composed-20562-s-late.mp4",
            20_562_352,
            vec![(0, 8_140_635), (1_930, 3_960), (7_867_486, 92_143_120)],
        ),
        (
            "mp4-frame-composed-past-its-keyframe.mp4",
            3_960,
            vec![(0, 3_960), (1_930, 3_960), (100, 200)],
        ),
        (
            "mp4-frame-composed-25-h-late.mp4",
            92_143_120,
            vec![(0, 8_140_635), (1_930, 3_960), (7_867_486, 92_143_120)],
        ),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let media = Media::from_source(Arc::new(MemorySource::new(bytes))).unwrap();
        assert_eq!(media.info().duration_ms, duration_ms, "{name}");
        for cut in [CutMode::Exact, CutMode::Keyframe] {
            let options = Options {
                cut,
                ..Options::default()
            };
            for &(start, end) in &spans {
                let request = Request {
                    start: Some(Position::Millis(start)),
                    end: Some(Position::Millis(end)),
                    ..Request::default()
                };
                let plan = match media.plan(&options, &request) {
                    Ok(p) => p,
                    Err(e) => {
                        assert_eq!(e.http_status(), 416, "{name} {cut:?} {start}..{end}: {e}");
                        continue;
                    }
                };
                let span = plan.end_ms - plan.start_ms;
                let lasts = reopened(&media, &plan);
                // A frame of these files lasts 40 ms; the movie tick is 1 ms.
                assert!(
                    lasts.abs_diff(span) <= 42,
                    "{name} {cut:?} {start}..{end}: planned {}..{} ({span} ms), lasts {lasts} ms",
                    plan.start_ms,
                    plan.end_ms
                );
            }
        }
    }
}

#[test]
fn every_saved_crash_input_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        replay(bytes.clone());
        replay_mp4_cuts(&path.display().to_string(), &bytes);
        // The plan target's inputs carry a 52-byte control block first.
        if bytes.len() > 52 {
            replay(bytes[52..].to_vec());
        }
        n += 1;
    }
    assert!(n >= 2, "no saved inputs in {}", dir.display());
}

/// A fragmented file whose tracks have different timescales: cuts in
/// keyframe mode (one base for every track) once began the track that set
/// the base at 1, its time having gone through nanoseconds and back.
/// Every track's decode times in a served cut count from 0 in both modes.
#[test]
fn fragmented_cuts_count_decode_times_from_0() {
    use pseudostream::index::mp4::Layout;
    use pseudostream::index::MediaIndex;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let bytes = std::fs::read(dir.join("mp4-fragment-times-in-two-timescales.mp4")).unwrap();
    let media = Media::from_source(Arc::new(MemorySource::new(bytes))).unwrap();
    let keys: Vec<u64> = media.keyframes().iter().map(|k| k.time_ms).collect();
    assert!(!keys.is_empty());
    for cut in [CutMode::Exact, CutMode::Keyframe] {
        let options = Options {
            cut,
            ..Options::default()
        };
        for &t in &keys {
            let request = Request {
                start: Some(Position::Millis(t)),
                ..Request::default()
            };
            let plan = media.plan(&options, &request).unwrap();
            let mut stream = media.stream(&plan, 0, plan.len()).unwrap();
            stream.set_pacing(0, 0);
            let mut body = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            while let pseudostream::Fill::Data(n) = stream.fill(&mut buf, 0).unwrap() {
                body.extend_from_slice(&buf[..n]);
            }
            let again = Media::from_source(Arc::new(MemorySource::new(body))).unwrap();
            let MediaIndex::Mp4(index) = again.index() else {
                panic!("not an MP4");
            };
            let Layout::Fragments { decode_times, .. } = &index.layout else {
                panic!("not fragmented");
            };
            let min = decode_times.iter().map(|d| d.value).min();
            assert_eq!(min, Some(0), "{cut:?} cut from {t} ms");
        }
    }
}
