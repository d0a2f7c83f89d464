//! Keyframe metadata on the fly: a file whose onMetaData lacks keyframes (or
//! lists stale ones) is served as a virtual file that lists them. Checked
//! against programs and parsers nobody here wrote where possible: ffprobe
//! finds the listed keyframes at the listed positions, ffmpeg decodes the
//! virtual file, and the library's own metadata validator, which checks a
//! listing against the tags it points at, accepts it. Every request in the
//! virtual file's coordinates gives what the same request gives on the
//! virtual file written to disk.

mod common;

use common::{
    all_references, body, decode_clean, parse_flv, probe, reference, secs, stored_options, TempFile,
};
use pseudostream::format::flv::meta;
use pseudostream::{
    query, Conditions, IndexOrigin, Media, MetadataMode, Options, PrefixMode, Request, StartUnit,
};

fn options(metadata: MetadataMode, prefix: PrefixMode, unit: StartUnit) -> Options {
    Options {
        metadata,
        prefix,
        start_unit: unit,
        ..Options::default()
    }
}

/// The whole served file for a plain GET under `mode`.
fn served(media: &Media, mode: MetadataMode) -> Vec<u8> {
    let o = options(mode, PrefixMode::Init, StartUnit::Bytes);
    body(media, &media.plan(&o, &Request::default()).unwrap())
}

/// The onMetaData keyframes (seconds, position) of an FLV's first script tag.
fn listed_keyframes(bytes: &[u8]) -> Vec<(f64, f64)> {
    let flv = parse_flv(bytes).unwrap();
    let tag = flv.tags.first().expect("a first tag");
    assert_eq!(tag.kind, 18, "the first tag is script data");
    let (name, value) = meta::parse_script(tag.body(bytes)).expect("a script body");
    assert_eq!(name, "onMetaData");
    meta::metadata_from(&value)
        .keyframes
        .expect("keyframes listed")
}

#[test]
fn files_without_valid_keyframes_are_served_with_them() {
    common::needs_ffmpeg!();
    let mut rewritten = 0;
    for r in all_references() {
        let file = &r.entry.file;
        let media = Media::open(&r.entry.path).unwrap();
        let origin = media.info().origin;
        let virtual_file = served(&media, MetadataMode::Missing);
        assert!(
            served(&media, MetadataMode::Off) == r.bytes,
            "{file}: off serves the file as stored"
        );
        if origin == IndexOrigin::Metadata {
            assert!(virtual_file == r.bytes, "{file}: valid metadata is kept");
            let always = served(&media, MetadataMode::Always);
            assert!(always != r.bytes, "{file}: always rewrites");
            continue;
        }
        rewritten += 1;
        assert!(virtual_file != r.bytes, "{file}: {origin:?} is rewritten");
        let disk = TempFile::with_bytes("virtual.flv", &virtual_file);

        // The listing, as a player reads it, points at the keyframes ffprobe
        // finds in the virtual file, with the tags' times.
        let listed = listed_keyframes(&virtual_file);
        let probed = probe(disk.path()).unwrap();
        let video = probed.has("video");
        let key_positions: Vec<u64> = probed
            .packets
            .iter()
            .filter(|p| p.video && p.key)
            .filter_map(|p| p.pos)
            .collect();
        let tags = parse_flv(&virtual_file).unwrap();
        assert_eq!(listed.len(), media.keyframes().len(), "{file}: all listed");
        for (n, &(t, pos)) in listed.iter().enumerate() {
            let pos = pos as u64;
            let tag = tags
                .tag_at(pos)
                .unwrap_or_else(|| panic!("{file}: listed position {pos} is no tag"));
            if video {
                assert!(
                    key_positions.contains(&pos) && tag.is_key_picture(),
                    "{file}: listed position {pos} is not a keyframe ffprobe sees"
                );
            } else {
                assert!(tag.is_av(), "{file}: listed position {pos} is no audio tag");
            }
            let want_ms = media.keyframes()[n].time_ms - media.info().start_ms;
            assert_eq!(
                (t * 1000.0).round() as u64,
                want_ms,
                "{file}: time of {pos}"
            );
        }
        if video {
            let first_listed = listed[0].1 as u64;
            assert!(
                key_positions.iter().all(|&p| p >= first_listed),
                "{file}: a keyframe before the first listed one"
            );
            assert_eq!(key_positions.len(), listed.len(), "{file}: every keyframe");
        }

        // The library's validator, which trusts only video keyframes,
        // accepts the listing against the tags.
        let reopened = Media::open(disk.path()).unwrap();
        assert_eq!(reopened.info().duration_ms, media.info().duration_ms);
        decode_clean(disk.path()).unwrap_or_else(|e| panic!("{file}: {e}"));
        if video {
            assert_eq!(
                reopened.info().origin,
                IndexOrigin::Metadata,
                "{file}: the virtual file's metadata validates"
            );
            // Served again as it is: a virtual file needs no second rewrite.
            assert!(served(&reopened, MetadataMode::Missing) == virtual_file);
        }
    }
    assert!(rewritten >= 8, "only {rewritten} files were rewritten");
}

/// Every kind of request, in the virtual file's coordinates, gives the same
/// bytes as on the virtual file written to disk, and never the stored
/// file's validator.
#[test]
fn requests_address_the_virtual_file() {
    common::needs_ffmpeg!();
    for file in [
        "h264_aac.plain.flv",
        "bframes.plain.flv",
        "audio_only.plain.flv",
        "video_only.plain.flv",
        "flv1_mp3.plain.flv",
        "stale.flv",
    ] {
        let r = reference(file);
        let media = Media::open(&r.entry.path).unwrap();
        let virtual_file = served(&media, MetadataMode::Missing);
        let disk = TempFile::with_bytes("virtual.flv", &virtual_file);
        let on_disk = Media::open(disk.path()).unwrap();
        let as_stored = |o: &Options| Options {
            metadata: MetadataMode::Off,
            ..o.clone()
        };
        let len = virtual_file.len() as u64;
        let head = listed_keyframes(&virtual_file)[0].1 as u64;
        let mut queries = vec![String::new()];
        for b in [1, 13, head - 1, head, head + 1, len / 3, len / 2, len - 1] {
            queries.push(format!("start={b}"));
            queries.push(format!("start={b}&end={}", (b + len / 4).min(len - 1)));
            queries.push(format!("bstart={b}"));
            queries.push(format!("bstart={b}&bend={}", (b + 700).min(len - 1)));
            queries.push(format!("ib={}&fs={b}", (b / 2).min(head + 50)));
        }
        queries.push(format!("bstart=0&bend={}", head / 2));
        queries.push("ib=5&fs=9".into());
        let mut checked = 0;
        for mode in [
            PrefixMode::None,
            PrefixMode::Header,
            PrefixMode::Init,
            PrefixMode::Full,
        ] {
            let o = options(MetadataMode::Missing, mode, StartUnit::Bytes);
            for q in &queries {
                let request = query::parse(q.as_bytes(), &o).unwrap();
                let a = media.plan(&o, &request);
                let b = on_disk.plan(&as_stored(&o), &request);
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        assert!(
                            body(&media, &a) == body(&on_disk, &b),
                            "{file} {mode:?} ?{q}: bytes differ"
                        );
                        assert_eq!(
                            (a.start_ms, a.end_ms),
                            (b.start_ms, b.end_ms),
                            "{file} ?{q}"
                        );
                        checked += 1;
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!(a.http_status(), b.http_status(), "{file} {mode:?} ?{q}")
                    }
                    (a, b) => panic!("{file} {mode:?} ?{q}: {a:?} vs {b:?}"),
                }
            }
        }
        assert!(checked > 100, "{file}: only {checked} plans compared");
        // Past the end of the virtual file, not of the stored one.
        let o = options(MetadataMode::Missing, PrefixMode::None, StartUnit::Bytes);
        let past = query::parse(format!("bstart={len}").as_bytes(), &o).unwrap();
        assert_eq!(media.plan(&o, &past).unwrap_err().http_status(), 416);

        // Time seeks do not depend on the coordinates.
        let seconds = options(MetadataMode::Missing, PrefixMode::Init, StartUnit::Seconds);
        let stored = Options {
            start_unit: StartUnit::Seconds,
            ..stored_options()
        };
        let t = secs(r.last_ms / 2);
        let request = query::parse(format!("start={t}").as_bytes(), &seconds).unwrap();
        assert!(
            body(&media, &media.plan(&seconds, &request).unwrap())
                == body(&media, &media.plan(&stored, &request).unwrap()),
            "{file} start={t}"
        );

        // Range over the virtual file, and a validator of its own.
        let plan = media.plan(&o, &Request::default()).unwrap();
        let stored_plan = media.plan(&stored_options(), &Request::default()).unwrap();
        assert_ne!(
            plan.etag, stored_plan.etag,
            "{file}: ETag of the virtual file"
        );
        assert!(stored_plan.whole_file && !plan.whole_file);
        let resp = plan.respond(&Conditions {
            range: Some(&format!("bytes={head}-")),
            ..Conditions::default()
        });
        assert_eq!((resp.status, resp.first, resp.len), (206, head, len - head));
        assert!(
            common::drain(&media, &plan, resp.first, resp.len).unwrap()
                == virtual_file[head as usize..]
        );
    }
}

/// The validator of a virtual file changes with the file's version.
#[test]
fn virtual_file_etag_follows_the_file() {
    common::needs_ffmpeg!();
    let r = reference("h264_aac.plain.flv");
    let copy = TempFile::with_bytes("versioned.flv", &r.bytes);
    let etag = || {
        let media = Media::open(copy.path()).unwrap();
        media
            .plan(&Options::default(), &Request::default())
            .unwrap()
            .etag
    };
    let before = etag();
    let mut bytes = r.bytes.clone();
    bytes.truncate(bytes.len() - 1000);
    std::fs::write(copy.path(), &bytes).unwrap();
    assert_ne!(before, etag());
}
