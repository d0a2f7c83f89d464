//! Requests that cannot be answered and files that cannot be served: the
//! right error variant, never a panic, never bytes outside the file.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{all_references, drain, reference, secs, stored_options, TempFile};
use pseudostream::{
    query, Error, Media, MemorySource, Options, Position, PrefixMode, Request, StartUnit,
};

fn opts(mode: PrefixMode, unit: StartUnit) -> Options {
    Options {
        prefix: mode,
        start_unit: unit,
        ..stored_options()
    }
}

fn plan_query(media: &Media, o: &Options, q: &str) -> Result<pseudostream::Plan, Error> {
    media.plan(o, &query::parse(q.as_bytes(), o)?)
}

fn is_416<T: std::fmt::Debug>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::RangeNotSatisfiable(_)))
}

#[test]
fn start_past_the_end_is_not_satisfiable() {
    common::needs_ffmpeg!();
    for r in all_references() {
        let media = Media::open(&r.entry.path).unwrap();
        let size = r.size();
        for mode in [
            PrefixMode::None,
            PrefixMode::Header,
            PrefixMode::Init,
            PrefixMode::Full,
        ] {
            let bytes = opts(mode, StartUnit::Bytes);
            for b in [size, size + 1, u64::MAX] {
                let p = plan_query(&media, &bytes, &format!("start={b}"));
                assert!(is_416(&p), "{} start={b}: {p:?}", r.entry.file);
            }
            let seconds = opts(mode, StartUnit::Seconds);
            for t in [r.last_ms + 1, r.last_ms + 60_000] {
                let q = format!("start={}", secs(t));
                let p = plan_query(&media, &seconds, &q);
                assert!(is_416(&p), "{} {q}: {p:?}", r.entry.file);
            }
            // The very last timestamp is still a valid start.
            let q = format!("start={}", secs(r.last_ms));
            assert!(
                plan_query(&media, &seconds, &q).is_ok(),
                "{} {q}",
                r.entry.file
            );
        }
    }
}

#[test]
fn end_before_start_is_not_satisfiable() {
    common::needs_ffmpeg!();
    for r in all_references() {
        let media = Media::open(&r.entry.path).unwrap();
        let kf = r.seek_points[r.seek_points.len() / 2];
        for mode in [PrefixMode::None, PrefixMode::Header, PrefixMode::Init] {
            let bytes = opts(mode, StartUnit::Bytes);
            let q = format!("start={}&end={}", kf.1 + 500, kf.1 + 100);
            let p = plan_query(&media, &bytes, &q);
            assert!(is_416(&p), "{} {q} {}: {p:?}", r.entry.file, mode.name());
            let seconds = opts(mode, StartUnit::Seconds);
            for (s, e) in [(kf.0 + 500, kf.0 + 100), (kf.0 + 300, kf.0 + 300)] {
                let q = format!("start={}&end={}", secs(s), secs(e));
                let p = plan_query(&media, &seconds, &q);
                assert!(is_416(&p), "{} {q} {}: {p:?}", r.entry.file, mode.name());
            }
        }
        // Built directly, too.
        let req = Request {
            start: Some(Position::Bytes(kf.1 + 10)),
            end: Some(Position::Bytes(kf.1)),
            ..Request::default()
        };
        assert!(is_416(&media.plan(&stored_options(), &req)));
    }
}

#[test]
fn garbage_negative_and_duplicate_parameters_are_bad_requests() {
    common::needs_ffmpeg!();
    let bad = [
        "start=abc",
        "start=-1",
        "start=-0",
        "start=1&start=2",
        "start=12&START=1&start=3",
        "end=1&end=1",
        "start=1e5",
        "start=0x20",
        "start=+7",
        "start=%2D5",
        "start=%G1",
        "start=",
        "end=-3",
        "bstart=-1",
        "bstart=1&bend=x",
        "ib=abc&fs=1",
        "ib=10&fs=-1",
        "fs=1&fs=2",
        "start=1&bstart=2",
        "start=1&ib=2",
        "ri=-5",
        "rs=fast",
        "start=99999999999999999999999",
    ];
    let r = reference("h264_aac.yamdi.flv");
    let media = Media::open(&r.entry.path).unwrap();
    for unit in [StartUnit::Bytes, StartUnit::Seconds] {
        let o = opts(PrefixMode::Init, unit);
        for q in bad {
            let parsed = query::parse(q.as_bytes(), &o);
            assert!(
                matches!(parsed, Err(Error::BadRequest(_))),
                "{q} ({unit:?}): {parsed:?}"
            );
            assert!(matches!(
                plan_query(&media, &o, q),
                Err(Error::BadRequest(_))
            ));
        }
    }
    // Fractions are seconds-only: no byte offset for FLV (MP4 reads them as
    // seconds whatever the unit).
    let o = opts(PrefixMode::Init, StartUnit::Bytes);
    let p = plan_query(&media, &o, "start=1.5");
    assert!(matches!(p, Err(Error::BadRequest(_))), "{p:?}");
    let p = query::parse(b"start=1.5", &opts(PrefixMode::Init, StartUnit::Seconds)).unwrap();
    assert_eq!(p.start, Some(Position::Millis(1500)));
}

#[test]
fn files_that_are_neither_flv_nor_mp4_are_unsupported() {
    common::needs_ffmpeg!();
    let text = TempFile::with_bytes("notes.txt", b"just some text, not a video\n");
    let e = Media::open(text.path()).err();
    assert!(matches!(e, Some(Error::UnsupportedFormat(_))), "{e:?}");

    let mp4 = TempFile::new("clip.mp4");
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=0.5",
            "-c:v",
            "mpeg4",
            "-f",
            "mp4",
        ])
        .arg(mp4.path())
        .output()
        .expect("ffmpeg: run scripts/setup-deps.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An MP4 is served (cut by time), whatever its codec.
    let m = Media::open(mp4.path()).unwrap();
    assert_eq!(m.info().format.name(), "mp4");

    for junk in [
        &b"GIF89a\x01\x00"[..],
        b"\x00\x00\x00\x18ftypmp42",
        b"FL",
        b"F",
    ] {
        let e = Media::from_source(Arc::new(MemorySource::new(junk.to_vec()))).err();
        assert!(
            matches!(e, Some(Error::UnsupportedFormat(_) | Error::Malformed(_))),
            "{junk:?}: {e:?}"
        );
    }
    let missing = Media::open(common::root().join("target/tmp-it/no-such-file.flv")).err();
    assert!(matches!(missing, Some(Error::NotFound(_))), "{missing:?}");
    let dir = Media::open(common::media_dir()).err();
    assert!(matches!(dir, Some(Error::NotFound(_))), "{dir:?}");
}

#[test]
fn empty_file_is_an_error_not_a_panic() {
    let empty = TempFile::with_bytes("empty.flv", b"");
    assert!(Media::open(empty.path()).is_err());
    assert!(Media::from_source(Arc::new(MemorySource::new(Vec::new()))).is_err());
}

/// Every kind of seek on a (possibly) opened truncated file: a plan or a
/// 416, and a plan always within the file and streamable to its length.
fn exercise_truncated(label: &str, media: &Media, cut: u64, seeks: &[(u64, u64)]) {
    let info = media.info();
    assert_eq!(info.size, cut, "{label}");
    for k in media.keyframes() {
        assert!(
            k.offset < cut,
            "{label}: keyframe at {} past {cut}",
            k.offset
        );
    }
    let mut queries = vec!["".to_string(), "start=0".to_string()];
    for &(t, off) in seeks {
        queries.push(format!("start={off}"));
        queries.push(format!("start={}", off + 3));
        queries.push(format!("start={}", secs(t)));
        queries.push(format!("start={}&end={}", off, off + 4000));
        queries.push(format!("bstart={off}&bend={}", off + 4000));
        queries.push(format!("ib=13&fs={off}"));
    }
    for q in &queries {
        for unit in [StartUnit::Bytes, StartUnit::Seconds] {
            for mode in [
                PrefixMode::None,
                PrefixMode::Header,
                PrefixMode::Init,
                PrefixMode::Full,
            ] {
                let o = opts(mode, unit);
                let Ok(req) = query::parse(q.as_bytes(), &o) else {
                    continue; // e.g. a byte offset read as seconds is fine; "3.5" never occurs
                };
                match media.plan(&o, &req) {
                    Ok(plan) => {
                        assert!(
                            plan.file_from <= plan.file_to && plan.file_to <= cut,
                            "{label} {q} {}: range {}..{} outside {cut}",
                            mode.name(),
                            plan.file_from,
                            plan.file_to
                        );
                        let out = drain(media, &plan, 0, plan.len())
                            .unwrap_or_else(|e| panic!("{label} {q}: {e}"));
                        assert_eq!(out.len() as u64, plan.len());
                    }
                    Err(Error::RangeNotSatisfiable(_)) => {}
                    // Seconds are no byte offset for FLV under the byte unit.
                    Err(Error::BadRequest(_)) if unit == StartUnit::Bytes && q.contains('.') => {}
                    Err(e) => panic!("{label} {q} {}: unexpected {e}", mode.name()),
                }
            }
        }
    }
}

#[test]
fn truncated_flv_opens_or_fails_cleanly_and_never_serves_past_its_end() {
    common::needs_ffmpeg!();
    let mut opened = 0;
    let mut refused = 0;
    for r in all_references() {
        let size = r.size();
        let mid_tag = r.flv.tag_containing(size / 2).unwrap().pos + 6;
        let second_tag = r.flv.tags[1].pos + 1;
        for cut in [3, 9, 12, 13, 14, 100, second_tag, mid_tag, size - 1] {
            let bytes = r.bytes[..cut as usize].to_vec();
            let label = format!("{} cut at {cut}", r.entry.file);
            match Media::from_source(Arc::new(MemorySource::new(bytes))) {
                Ok(media) => {
                    opened += 1;
                    exercise_truncated(&label, &media, cut, &r.seek_points);
                }
                Err(Error::Malformed(_) | Error::UnsupportedFormat(_)) => refused += 1,
                Err(e) => panic!("{label}: unexpected error {e}"),
            }
        }
    }
    eprintln!("truncated files: {opened} opened, {refused} refused");
    assert!(opened > 50, "most truncations keep whole tags to serve");

    // The same through a real file.
    let r = reference("bframes.yamdi.flv");
    let cut = r.flv.tag_containing(r.size() / 2).unwrap().pos + 100;
    let tmp = TempFile::with_bytes("truncated.flv", &r.bytes[..cut as usize]);
    let media = Media::open(tmp.path()).unwrap();
    assert_eq!(
        media.info().origin,
        pseudostream::IndexOrigin::MetadataStale
    );
    exercise_truncated("bframes.yamdi.flv (file)", &media, cut, &r.seek_points);
}
