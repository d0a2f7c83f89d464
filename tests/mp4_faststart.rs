//! MP4 files stored with their `moov` after the media data, requested
//! whole: served as a file laid out with the `moov` first (what
//! `qt-faststart` writes), judged by ffmpeg and ffprobe. For every file of
//! the MP4 matrix (`scripts/make-mp4-media.sh`):
//!
//! - a file stored moov-first is sent as it is, validator included;
//! - a file stored moov-last is sent as its top-level boxes in the same
//!   order with the `moov` moved up behind the `ftyp`, every other box
//!   byte for byte; each stream's packets are the stored ones, and the
//!   decoded pictures and audio are the stored file's, frame by frame;
//! - where `qt-faststart` takes the file (its last box is the `moov`), the
//!   response is the bytes it writes;
//! - its ETag is not the stored file's, `faststart = off` sends the file as
//!   stored, and any window of the response is those bytes of the whole.

mod common;

use common::mp4::{frame_md5, mp4_manifest, stream_payload, top_level_boxes, Mp4Entry, SplitMix};
use common::{assert_no_failures, body, decode_clean, drain, par_map, TempFile};
use pseudostream::index::MediaIndex;
use pseudostream::{query, Media, Options, Plan};

fn plan(media: &Media, options: &Options, q: &str) -> Plan {
    let request = query::parse(q.as_bytes(), options).unwrap();
    media.plan(options, &request).unwrap()
}

fn moov_first(media: &Media) -> bool {
    matches!(media.index(), MediaIndex::Mp4(m) if m.moov_first)
}

/// Streams of an entry as ffmpeg names them.
fn streams(e: &Mp4Entry) -> Vec<String> {
    let mut s = Vec::new();
    if e.has_video {
        s.push("v:0".to_string());
    }
    s.extend((0..e.audio_tracks).map(|n| format!("a:{n}")));
    s
}

/// What is wrong with `file`'s whole response; empty when nothing is.
fn check(e: &Mp4Entry) -> Result<(), String> {
    let media = Media::open(&e.path).map_err(|x| x.to_string())?;
    let stored = std::fs::read(&e.path).unwrap();
    let as_stored = Options {
        faststart: false,
        ..Options::default()
    };
    let kept = plan(&media, &as_stored, "");
    if !kept.whole_file || body(&media, &kept) != stored {
        return Err("faststart off: not the file as stored".into());
    }
    let laid = plan(&media, &Options::default(), "");
    let bytes = body(&media, &laid);
    if moov_first(&media) {
        if !laid.whole_file || bytes != stored || laid.etag != kept.etag {
            return Err("stored moov-first, yet not sent as stored".into());
        }
        return Ok(());
    }
    if laid.whole_file || laid.etag == kept.etag {
        return Err(format!(
            "moov-last: the stored file's validator {}",
            laid.etag
        ));
    }
    let before = top_level_boxes(&stored)?;
    let after = top_level_boxes(&bytes)?;
    let names = |b: &[common::mp4::TopBox]| b.iter().map(|x| x.name()).collect::<Vec<_>>();
    let mut want = names(&before);
    let moov = want.iter().position(|k| k == "moov").ok_or("no moov")?;
    want.remove(moov);
    want.insert(
        usize::from(want.first().map(String::as_str) == Some("ftyp")),
        "moov".into(),
    );
    if names(&after) != want {
        return Err(format!("boxes {:?}, want {want:?}", names(&after)));
    }
    // Every box but the moov byte for byte, in order.
    let data = |list: &[common::mp4::TopBox], from: &[u8]| -> Vec<u8> {
        list.iter()
            .filter(|x| &x.kind != b"moov")
            .flat_map(|x| from[x.offset as usize..(x.offset + x.size) as usize].to_vec())
            .collect()
    };
    if data(&before, &stored) != data(&after, &bytes) {
        return Err("a box other than the moov changed".into());
    }
    // qt-faststart (Debian's ffmpeg package) takes files whose last box
    // is the moov: the same bytes, moov included.
    if before.last().is_some_and(|x| &x.kind == b"moov") {
        let out = TempFile::new(&format!("qt-faststart-{}", e.file));
        let run = std::process::Command::new("qt-faststart")
            .arg(&e.path)
            .arg(out.path())
            .output()
            .map_err(|x| format!("cannot run qt-faststart: {x}"))?;
        let theirs = std::fs::read(out.path()).unwrap_or_default();
        if !run.status.success() || theirs != bytes {
            return Err(format!(
                "not what qt-faststart writes ({} bytes, ours {})",
                theirs.len(),
                bytes.len()
            ));
        }
    }
    let t = TempFile::with_bytes(&format!("faststart-{}", e.file), &bytes);
    decode_clean(t.path())?;
    for s in streams(e) {
        if stream_payload(t.path(), &s)? != stream_payload(&e.path, &s)? {
            return Err(format!("{s}: packets differ from the stored file's"));
        }
        let (a, b) = (frame_md5(t.path(), &s)?, frame_md5(&e.path, &s)?);
        let sums =
            |f: &[common::mp4::FrameSum]| f.iter().map(|x| x.md5.clone()).collect::<Vec<_>>();
        if a.is_empty() || sums(&a) != sums(&b) {
            return Err(format!(
                "{s}: {} decoded frames differ from the stored {}",
                a.len(),
                b.len()
            ));
        }
    }
    // Windows across the head and the file pieces.
    let mut rng = SplitMix::for_name(&e.file);
    let len = bytes.len() as u64;
    let head = (after[0].size + after[1].size).min(len - 1);
    for (first, n) in [(0, len), (head - 10, 30), (head, len - head)]
        .into_iter()
        .chain((0..8).map(|_| {
            let a = rng.range(0, len - 1);
            (a, rng.range(1, len - a))
        }))
    {
        let got = drain(&media, &laid, first, n).map_err(|x| x.to_string())?;
        if got != bytes[first as usize..(first + n) as usize] {
            return Err(format!(
                "window {first}+{n} differs from the whole response"
            ));
        }
    }
    Ok(())
}

#[test]
fn moov_last_files_are_sent_moov_first_and_decode_as_stored() {
    common::needs_ffmpeg!();
    let entries: Vec<&Mp4Entry> = mp4_manifest().iter().collect();
    let moved = entries
        .iter()
        .filter(|e| !moov_first(&Media::open(&e.path).unwrap()))
        .count();
    assert!(moved >= 4, "only {moved} moov-last files in the MP4 matrix");
    let results = par_map(entries, |e| {
        check(e).map_err(|m| format!("{}: {m}", e.file))
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert_no_failures("moov-first layout", &failures);
}
