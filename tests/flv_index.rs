//! Keyframe index of every file of the media matrix against ffprobe, index
//! origins, media info, and the process-wide index cache.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{all_references, reference, Reference, TempFile, AUDIO};
use pseudostream::cache::IndexCache;
use pseudostream::{FileSource, IndexOrigin, Media};

fn flv_video_codec(name: &str) -> u32 {
    match name {
        "h264" => 7,
        "flv1" => 2,
        other => panic!("unexpected video codec {other}"),
    }
}

fn flv_audio_format(name: &str) -> u32 {
    match name {
        "aac" => 10,
        "mp3" => 2,
        other => panic!("unexpected audio codec {other}"),
    }
}

fn expected_origin(r: &Reference) -> IndexOrigin {
    let e = &r.entry;
    if e.variant == "stale" {
        IndexOrigin::MetadataStale
    } else if !e.has_video || e.variant == "plain" {
        IndexOrigin::Scanned
    } else {
        IndexOrigin::Metadata
    }
}

fn check_file(r: &Reference) -> Result<(), String> {
    let name = &r.entry.file;
    let media = Media::open(&r.entry.path).map_err(|e| format!("{name}: open: {e}"))?;
    let info = media.info();
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };

    // Media facts.
    check(
        info.size == r.size(),
        format!("size {} != {}", info.size, r.size()),
    );
    check(
        info.has_audio == r.has_audio() && info.has_video == r.has_video(),
        format!(
            "has_audio/has_video {}/{} != ffprobe {}/{}",
            info.has_audio,
            info.has_video,
            r.has_audio(),
            r.has_video()
        ),
    );
    check(
        info.has_audio == r.entry.has_audio && info.has_video == r.entry.has_video,
        "streams differ from the manifest".into(),
    );
    let vcodec = r.probe.codec("video").map(flv_video_codec);
    let acodec = r.probe.codec("audio").map(flv_audio_format);
    check(
        info.video_codec == vcodec,
        format!("video codec {:?} != {vcodec:?}", info.video_codec),
    );
    check(
        info.audio_codec == acodec,
        format!("audio codec {:?} != {acodec:?}", info.audio_codec),
    );
    check(
        info.start_ms == r.first_ms,
        format!("start_ms {} != first packet {}", info.start_ms, r.first_ms),
    );
    check(
        info.start_ms + info.duration_ms == r.last_ms,
        format!(
            "start+duration {} != last packet {}",
            info.start_ms + info.duration_ms,
            r.last_ms
        ),
    );

    // The keyframe list, exactly.
    let got: Vec<(u64, u64)> = media
        .keyframes()
        .iter()
        .map(|k| (k.time_ms, k.offset))
        .collect();
    check(
        got == r.seek_points,
        format!(
            "keyframes\n    got      {got:?}\n    ffprobe  {:?}",
            r.seek_points
        ),
    );
    check(
        info.keyframe_count == got.len(),
        format!("keyframe_count {} != {}", info.keyframe_count, got.len()),
    );
    check(!got.is_empty(), "no seek points".into());

    // Origin and what the seek points are.
    let origin = expected_origin(r);
    check(
        info.origin == origin,
        format!("origin {:?} != {origin:?}", info.origin),
    );
    check(
        info.seek_points_from_audio != r.has_video(),
        format!("seek_points_from_audio = {}", info.seek_points_from_audio),
    );
    for &(t, off) in &got {
        match r.flv.tag_at(off) {
            Some(tag) if r.has_video() => check(
                tag.is_key_picture() && u64::from(tag.ts) == t,
                format!("keyframe {off} is not a key picture tag stamped {t}"),
            ),
            Some(tag) => check(
                tag.kind == AUDIO && !tag.is_config() && u64::from(tag.ts) == t,
                format!("seek point {off} is not an audio frame stamped {t}"),
            ),
            None => check(false, format!("seek point {off} is not a tag start")),
        }
    }
    if !r.has_video() {
        for w in got.windows(2) {
            let gap = w[1].0 - w[0].0;
            check(
                (1000..1100).contains(&gap),
                format!("audio seek points {gap} ms apart"),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}: {}", problems.join("; ")))
    }
}

#[test]
fn keyframe_index_matches_ffprobe_for_every_file() {
    common::needs_ffmpeg!();
    let refs = all_references();
    let failures: Vec<String> = refs.iter().filter_map(|r| check_file(r).err()).collect();
    eprintln!("index checked for {} files", refs.len());
    common::assert_no_failures("keyframe index", &failures);
}

#[test]
fn manifest_variants_are_what_the_tests_assume() {
    common::needs_ffmpeg!();
    for e in common::manifest() {
        match e.variant.as_str() {
            "plain" => assert_eq!(e.meta_keyframes, None, "{}", e.file),
            "yamdi" | "flvmeta" | "ffidx" if e.has_video => {
                assert!(e.meta_keyframes.unwrap_or(0) > 0, "{}", e.file)
            }
            _ => {}
        }
    }
}

fn same_index(a: &Media, b: &Media) -> bool {
    std::ptr::eq(a.index(), b.index())
}

#[test]
fn second_open_is_a_cache_hit() {
    common::needs_ffmpeg!();
    let r = reference("h264_aac.yamdi.flv");
    let first = Media::open(&r.entry.path).unwrap();
    let before = IndexCache::global().stats();
    let second = Media::open(&r.entry.path).unwrap();
    let after = IndexCache::global().stats();
    assert!(same_index(&first, &second), "second open built a new index");
    assert!(after.hits > before.hits, "{before:?} -> {after:?}");
    assert!(after.entries >= 1);

    // A private cache counts exactly.
    let cache = IndexCache::new(1 << 20);
    let open = || Media::with_cache(Arc::new(FileSource::open(&r.entry.path).unwrap()), &cache);
    let a = open().unwrap();
    let b = open().unwrap();
    assert!(same_index(&a, &b));
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.entries), (1, 1, 1), "{s:?}");
}

fn set_mtime(path: &std::path::Path, secs_from_now: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(secs_from_now))
        .unwrap();
}

#[test]
fn touched_appended_or_rewritten_file_is_indexed_again() {
    common::needs_ffmpeg!();
    let a = reference("h264_aac.plain.flv");
    let b = reference("video_only.plain.flv");
    let tmp = TempFile::with_bytes("reindex.flv", &a.bytes);
    let m1 = Media::open(tmp.path()).unwrap();
    let m1_again = Media::open(tmp.path()).unwrap();
    assert!(same_index(&m1, &m1_again));
    let kf_a: Vec<(u64, u64)> = m1
        .keyframes()
        .iter()
        .map(|k| (k.time_ms, k.offset))
        .collect();
    assert_eq!(kf_a, a.seek_points);

    // Same bytes, new modification time: indexed again, same answer.
    set_mtime(tmp.path(), 100);
    let misses = IndexCache::global().stats().misses;
    let m2 = Media::open(tmp.path()).unwrap();
    assert!(!same_index(&m1, &m2), "touched file served from the cache");
    assert!(IndexCache::global().stats().misses > misses);
    assert_eq!(m2.keyframes(), m1.keyframes());

    // Appended bytes (a copy of the last tag): new size, new index.
    let last = a.flv.tags.last().unwrap();
    let mut grown = a.bytes.clone();
    grown.extend_from_slice(last.bytes(&a.bytes));
    fs::write(tmp.path(), &grown).unwrap();
    set_mtime(tmp.path(), 200);
    let m3 = Media::open(tmp.path()).unwrap();
    assert!(!same_index(&m2, &m3));
    assert_eq!(m3.info().size, grown.len() as u64);

    // Rewritten in place with another file: that file's keyframes.
    fs::write(tmp.path(), &b.bytes).unwrap();
    set_mtime(tmp.path(), 300);
    let m4 = Media::open(tmp.path()).unwrap();
    let kf_b: Vec<(u64, u64)> = m4
        .keyframes()
        .iter()
        .map(|k| (k.time_ms, k.offset))
        .collect();
    assert_eq!(kf_b, b.seek_points);
    assert!(!m4.info().has_audio);
    // And the old handle still answers from its own index.
    assert_eq!(m1.keyframes().len(), a.seek_points.len());
}
