//! MP4 opening and cutting. The input is an MP4 (or QuickTime) file followed
//! by an 8-byte control trailer:
//!
//! ```text
//! [file...][a: u16][b: u16][k: u8][flags: u8][x: u16]   (little-endian)
//! ```
//!
//! `a` and `b` are two times (per 60000 of the duration, so a little past the
//! end too), `k` picks a keyframe, `x` a byte offset (per 60000 of the size)
//! for `bstart`; `flags` adds the query-string forms of the cuts.
//!
//! A file that opens must describe itself sanely, and every cut planned on
//! it, in both cut modes (start/end of 0, inside, at and past the end, and
//! end at or before start), must either fail with 400/415/416 as the request
//! deserves, or be deterministic and well formed: a prefix of top-level boxes
//! (`ftyp`?, `moov`, then an `mdat` header sized for the file range; for
//! fragmented files a `sidx`? and, in exact mode, the first `moof`
//! rewritten, the same size) that together with the range is an MP4
//! our own parser opens again, lasting about as long as the plan says.
//! Raw byte requests (`bstart`/`bend`) are exact slices of the file, and
//! jump-to-byte (`ib`/`fs`) and byte positions are bad requests.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pseudostream::format::Format;
use pseudostream::index::mp4::{Layout, Mp4Index};
use pseudostream::index::MediaIndex;
use pseudostream::{query, CutMode, Error, Fill, Media, MemorySource, Options, Plan, Position, PrefixMode, Request, StartUnit};

const CONTROL_LEN: usize = 8;

struct Control {
    a: u64,
    b: u64,
    k: u8,
    flags: u8,
    x: u64,
}

impl Control {
    fn split(data: &[u8]) -> Option<(&[u8], Control)> {
        let at = data.len().checked_sub(CONTROL_LEN)?;
        let (file, c) = data.split_at(at);
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([c[i], c[i + 1]]));
        Some((
            file,
            Control {
                a: u16_at(0),
                b: u16_at(2),
                k: c[4],
                flags: c[5],
                x: u16_at(6),
            },
        ))
    }
}

/// Query-string forms to try as well (flag bits).
const QUERY_SECONDS: u8 = 1;
const QUERY_UNITLESS: u8 = 2;
const QUERY_WHOLE_SECONDS: u8 = 4;
const RAW_BEND_ONLY: u8 = 8;

fn index_of(media: &Media) -> &Mp4Index {
    match media.index() {
        MediaIndex::Mp4(i) => i,
        other => panic!("an MP4 opened as {:?}", other.info().format),
    }
}

/// `n * num / 60000` without overflow.
fn scaled(n: u64, num: u64) -> u64 {
    u64::try_from(u128::from(n) * u128::from(num) / 60000).unwrap_or(u64::MAX)
}

/// Errors a plan may end in: the request's fault (400, 416) or the media's
/// (415). Nothing here reads a file, so never a 500.
fn check_error(e: &Error, what: &str) {
    assert!(
        matches!(e.http_status(), 400 | 415 | 416),
        "{what}: status {} for {e}",
        e.http_status()
    );
}

fn cut(start: Option<u64>, end: Option<u64>) -> Request {
    Request {
        start: start.map(Position::Millis),
        end: end.map(Position::Millis),
        ..Request::default()
    }
}

/// Seconds with millisecond precision, as a query value.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// One top-level box of a prefix: type, where it starts, header length and
/// declared size.
struct TopBox {
    kind: [u8; 4],
    at: usize,
    header: usize,
    size: u64,
}

/// Walks the boxes of `bytes` by their headers; the last one may run past the
/// end (an `mdat` whose payload is the file range).
fn top_boxes(bytes: &[u8]) -> Vec<TopBox> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        assert!(at + 8 <= bytes.len(), "prefix ends inside a box header at {at}");
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let kind: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap();
        let (header, size) = match size32 {
            0 => panic!("prefix box {kind:?} at {at} has size 0"),
            1 => {
                assert!(at + 16 <= bytes.len(), "prefix ends inside a 64-bit box header");
                let large = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
                (16, large)
            }
            n => (8, u64::from(n)),
        };
        assert!(size >= header as u64, "prefix box {kind:?} smaller than its header");
        out.push(TopBox {
            kind,
            at,
            header,
            size,
        });
        match usize::try_from(size).ok().and_then(|s| at.checked_add(s)) {
            Some(next) if next <= bytes.len() => at = next,
            _ => break,
        }
    }
    out
}

/// The prefix of a cut: `ftyp` (the file's own, when it has one), `moov`, and
/// for sample-table files an `mdat` header whose size covers the file range.
fn check_prefix(plan: &Plan, index: &Mp4Index, data: &[u8]) {
    let p: &[u8] = &plan.prefix;
    let boxes = top_boxes(p);
    let mut i = 0;
    if let Some(ftyp) = &index.ftyp {
        assert!(p.starts_with(ftyp), "prefix does not start with the file's ftyp");
        assert_eq!(&boxes[0].kind, b"ftyp");
        i = 1;
    }
    let moov = boxes.get(i).expect("prefix has no moov");
    assert_eq!(&moov.kind, b"moov", "prefix box {i} is not moov");
    assert!(moov.at as u64 + moov.size <= p.len() as u64, "moov runs past the prefix");
    let range = plan.file_to - plan.file_from;
    match &index.layout {
        Layout::Samples => {
            assert_eq!(boxes.len(), i + 2, "prefix is not [ftyp] moov mdat");
            let mdat = &boxes[i + 1];
            assert_eq!(&mdat.kind, b"mdat");
            assert_eq!(mdat.at + mdat.header, p.len(), "mdat header is not the prefix's end");
            assert_eq!(mdat.size, mdat.header as u64 + range, "mdat size is not the range's");
        }
        Layout::Fragments { .. } => {
            // [ftyp] moov [sidx] [moof]: the first moof, rewritten, in
            // exact mode; the range goes on right after it
            let sidx = boxes.get(i + 1).is_some_and(|b| &b.kind == b"sidx");
            let j = i + 1 + usize::from(sidx);
            let moof = boxes.get(j).filter(|b| &b.kind == b"moof");
            assert_eq!(
                boxes.len(),
                j + usize::from(moof.is_some()),
                "fragmented prefix is not [ftyp] moov [sidx] [moof]"
            );
            let last = &boxes[boxes.len() - 1];
            assert_eq!(last.at as u64 + last.size, p.len() as u64);
            let from = plan.file_from as usize;
            match moof {
                Some(m) => {
                    let at = from.checked_sub(m.size as usize).expect("the moof is in the file");
                    assert_eq!(data.get(at + 4..at + 8), Some(&b"moof"[..]), "the moof is not the file's");
                    assert_eq!(&data[at..at + 4], &p[m.at..m.at + 4], "the moof changed size");
                }
                None if plan.file_from < plan.file_to => {
                    assert_eq!(data.get(from + 4..from + 8), Some(&b"moof"[..]), "range starts at no moof");
                }
                None => {}
            }
        }
    }
}

/// Longest sample duration of any track, in ms (rounded up).
fn longest_sample_ms(index: &Mp4Index) -> u64 {
    let mut longest = 0u64;
    for t in &index.tracks {
        for (_, delta) in t.time_runs(0, t.samples) {
            let ms = (u128::from(delta) * 1000).div_ceil(u128::from(t.timescale.max(1)));
            longest = longest.max(u64::try_from(ms).unwrap_or(u64::MAX));
        }
    }
    longest
}

/// A cut reopens as an MP4 of the same layout whose samples lie in the part
/// that came from the file, and lasts about as long as the plan says.
fn check_reopens(plan: &Plan, media: &Media, index: &Mp4Index) {
    let body = drain(media, plan);
    let len = body.len() as u64;
    let again = match Media::from_source(Arc::new(MemorySource::new(body))) {
        Ok(m) => m,
        Err(e) => panic!(
            "cut {}..{} ms ({} prefix + {}..{}) does not reopen: {e}",
            plan.start_ms,
            plan.end_ms,
            plan.prefix.len(),
            plan.file_from,
            plan.file_to
        ),
    };
    let cut = index_of(&again);
    assert_eq!(again.info().size, len);
    // Tracks that ended before the start are left out.
    assert!(cut.tracks.len() <= index.tracks.len(), "tracks were added");
    assert!(!cut.tracks.is_empty(), "no track left");
    match (&index.layout, &cut.layout) {
        (Layout::Samples, Layout::Samples) => {}
        (Layout::Fragments { .. }, Layout::Fragments { decode_times, .. }) => {
            // The cut's decode times count from 0.
            if let Some(min) = decode_times.iter().map(|d| d.value).min() {
                assert_eq!(min, 0, "a fragmented cut's decode times start at {min}");
            }
            return;
        }
        (a, b) => panic!("layout changed from {a:?} to {b:?}"),
    }

    // Samples point at the file's part of the body, not into the prefix.
    let data_from = plan.prefix.len() as u64;
    for t in &cut.tracks {
        let o = index.tracks.iter().find(|o| o.id == t.id).expect("a track of the source");
        assert!(t.samples <= o.samples, "track {} grew", t.id);
        let ends = (0..t.samples.min(64)).chain(t.samples.saturating_sub(64).max(64)..t.samples);
        for s in ends {
            let at = t.offset_of(s);
            assert!(
                at >= data_from && at + u64::from(t.size_of(s)) <= len,
                "track {} sample {s} at {at} outside the cut's data ({data_from}..{len})",
                t.id
            );
        }
    }
    // The reference track starts at a sync sample.
    let r = &cut.tracks[cut.reference];
    if r.sync_samples().is_some_and(|s| !s.is_empty()) {
        assert!(r.is_sync(0), "the cut's reference track does not start at a sync sample");
    }

    // No longer than the plan's span, and no shorter than the part of the
    // span the reference track presents (other tracks may present nothing
    // in it; the plan's end is the requested one).
    let wanted = plan.end_ms - plan.start_ms;
    let got = again.info().duration_ms;
    let tolerance = 2 + 1000u64.div_ceil(u64::from(index.movie_timescale.max(1))) + longest_sample_ms(index);
    assert!(
        got <= wanted.saturating_add(tolerance),
        "cut {}..{} ms reopens lasting {got} ms (tolerance {tolerance})",
        plan.start_ms,
        plan.end_ms
    );
    // The file's reference track, or the track the cut snapped to when that
    // one had ended: whichever presents longer.
    let reference_end_ms = u64::try_from(
        index.tracks[index.reference].end_ns.max(r_source_end(index, cut)).max(0) / 1_000_000,
    )
    .unwrap_or(u64::MAX);
    let presented = plan.end_ms.min(reference_end_ms).saturating_sub(plan.start_ms);
    assert!(
        got.saturating_add(tolerance) >= presented,
        "cut {}..{} ms reopens lasting {got} ms, its reference track presents {presented} ms of it (tolerance {tolerance})",
        plan.start_ms,
        plan.end_ms
    );
}

/// The body a plan sends, drained unpaced from its pieces.
fn drain(media: &Media, plan: &Plan) -> Vec<u8> {
    let mut stream = media.stream(plan, 0, plan.len()).expect("a stream over the whole body");
    stream.set_pacing(0, 0);
    let mut out = Vec::with_capacity(plan.len() as usize);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.fill(&mut buf, 0).expect("an in-memory body reads") {
            Fill::Data(n) => out.extend_from_slice(&buf[..n]),
            Fill::Wait(_) => unreachable!("unpaced"),
            Fill::Done => return out,
        }
    }
}

/// Where the source track the cut's reference came from ends, ns.
fn r_source_end(index: &Mp4Index, cut: &Mp4Index) -> i128 {
    let id = cut.tracks[cut.reference].id;
    index.tracks.iter().find(|t| t.id == id).map_or(0, |t| t.end_ns)
}

/// Plans `request` twice (the same plan), on a second opening of the same
/// bytes too when given, and checks what any plan must hold.
fn plan_checked(media: &Media, twin: Option<&Media>, options: &Options, request: &Request, size: u64) -> Result<Plan, Error> {
    let first = media.plan(options, request);
    let second = media.plan(options, request);
    let other = match twin {
        Some(t) => t.plan(options, request),
        None => media.plan(options, request),
    };
    match (&first, &second, &other) {
        (Ok(p), Ok(q), Ok(r)) => {
            assert_eq!(p, q, "planning twice differs: {request:?}");
            assert_eq!(p, r, "planning on a second opening differs: {request:?}");
            assert_eq!(p.format, Format::Mp4);
            assert!(matches!(p.content_type, "video/mp4" | "audio/mp4" | "video/quicktime"));
            assert!(p.file_from <= p.file_to, "{p:?}");
            assert!(p.file_to <= size, "file_to past the end: {p:?}");
            assert!(p.start_ms <= p.end_ms, "start after end: {p:?}");
            assert_eq!(p.len(), p.prefix.len() as u64 + p.file_to - p.file_from);
            assert_eq!(
                p.whole_file,
                p.prefix.is_empty() && p.file_from == 0 && p.file_to == size
            );
        }
        (Err(e), Err(f), Err(g)) => {
            check_error(e, &format!("{request:?}"));
            assert_eq!(e.http_status(), f.http_status());
            assert_eq!(e.http_status(), g.http_status());
        }
        _ => panic!("planning {request:?} gives {first:?}, then {second:?}, then {other:?}"),
    }
    first
}

fuzz_target!(|data: &[u8]| {
    let Some((file, c)) = Control::split(data) else {
        return;
    };
    if Format::sniff(&file[..file.len().min(16)]) != Some(Format::Mp4) {
        return;
    }
    let open = || Media::from_source(Arc::new(MemorySource::new(file.to_vec())));
    let media = match open() {
        Ok(m) => m,
        Err(e) => {
            assert_eq!(e.http_status(), 415, "opening failed with {e}");
            return;
        }
    };
    let twin = open().expect("the same bytes open twice");
    let size = file.len() as u64;
    let index = index_of(&media);

    // Information.
    let info = media.info();
    assert_eq!(info, twin.info(), "two openings disagree");
    assert_eq!(info.format, Format::Mp4);
    assert_eq!(info.size, size);
    assert!(info.start_ms.checked_add(info.duration_ms).is_some());
    assert_eq!(info.keyframe_count, media.keyframes().len());
    if info.duration_ms == 0 {
        assert_eq!(info.bitrate_bps, 0);
    }
    for k in media.keyframes() {
        assert!(k.offset < size, "keyframe {k:?} outside a {size}-byte file");
    }
    assert!(index.reference < index.tracks.len());
    let json = media.info_json();
    assert!(json.starts_with("{\"format\":\"mp4\""));
    assert!(json.ends_with("]}"));

    let duration = info.duration_ms;
    let (ta, tb) = (scaled(duration, c.a), scaled(duration, c.b));
    let keyframes = media.keyframes();
    let key = keyframes
        .get(usize::from(c.k) % keyframes.len().max(1))
        .map_or(ta, |k| k.time_ms);

    // The whole file.
    for mode in [CutMode::Exact, CutMode::Keyframe] {
        let options = Options {
            cut: mode,
            ..Options::default()
        };
        let whole = plan_checked(&media, Some(&twin), &options, &Request::default(), size).expect("the whole file");
        assert!(whole.whole_file);
    }

    // Cuts by time.
    let cuts = [
        (Some(0), None),
        (Some(ta), None),
        (None, Some(tb)),
        (Some(ta), Some(tb)),
        (Some(tb), Some(ta)),
        (Some(ta), Some(ta)),
        (Some(key), Some(key.saturating_add(1))),
        (Some(key.saturating_sub(1)), None),
        (Some(0), Some(duration)),
        (Some(duration.saturating_sub(1)), Some(duration.saturating_add(1))),
        (Some(duration), None),
        (Some(ta), Some(u64::MAX)),
        (Some(u64::MAX), None),
    ];
    for mode in [CutMode::Exact, CutMode::Keyframe] {
        let options = Options {
            cut: mode,
            ..Options::default()
        };
        for (n, &(start, end)) in cuts.iter().enumerate() {
            let request = cut(start, end);
            let from = start.unwrap_or(0);
            // The second opening plans the cut between the two times.
            let twin = (n == 3).then_some(&twin);
            match plan_checked(&media, twin, &options, &request, size) {
                Ok(plan) => {
                    assert!(
                        end.is_none_or(|e| e > from) && from < duration || (start, end) == (None, None),
                        "{mode:?} cut {start:?}..{end:?} of {duration} ms planned: {plan:?}"
                    );
                    if !plan.prefix.is_empty() {
                        check_prefix(&plan, index, file);
                        check_reopens(&plan, &media, index);
                    }
                }
                Err(e) => {
                    if end.is_some_and(|e| e <= from) {
                        assert!(matches!(e, Error::BadRequest(_)), "end<=start: {e}");
                    } else if from >= duration {
                        assert!(matches!(e, Error::RangeNotSatisfiable(_)), "start past the end: {e}");
                    }
                }
            }
        }

        // The same cut as query strings: seconds, unitless numbers (seconds
        // to MP4), whole seconds.
        let (start, end) = (ta.min(tb), ta.max(tb));
        let direct = media.plan(&options, &cut(Some(start), Some(end)));
        let mut queries = Vec::new();
        // Larger values overflow as milliseconds: bad requests, seen above.
        let fits = end < u64::MAX / 1000;
        if fits && c.flags & QUERY_SECONDS != 0 {
            let o = Options {
                start_unit: StartUnit::Seconds,
                ..options.clone()
            };
            queries.push((o, format!("start={}&end={}", secs(start), secs(end)), direct.as_ref().ok().cloned()));
        }
        if fits && c.flags & QUERY_UNITLESS != 0 {
            queries.push((options.clone(), format!("start={}&end={}", secs(start), secs(end)), direct.as_ref().ok().cloned()));
        }
        if fits && c.flags & QUERY_WHOLE_SECONDS != 0 {
            let (s, e) = (start / 1000, end / 1000);
            let whole = media.plan(&options, &cut(Some(s * 1000), Some(e * 1000))).ok();
            queries.push((options.clone(), format!("start={s}&end={e}"), whole));
        }
        for (o, q, expected) in queries {
            let request = query::parse(q.as_bytes(), &o).expect("a well-formed query");
            let got = plan_checked(&media, None, &o, &request, size).ok();
            assert_eq!(got, expected, "{q} differs from the same cut in milliseconds");
        }
    }

    // Raw bytes, exactly as stored.
    let options = Options::default();
    let bstart = scaled(size, c.x);
    let bend = scaled(size, c.b);
    let mut raw = vec![
        (format!("bstart={bstart}&bend={bend}"), Some(bstart), Some(bend)),
        (format!("bstart={bstart}"), Some(bstart), None),
    ];
    if c.flags & RAW_BEND_ONLY != 0 {
        raw.push((format!("bend={bend}"), None, Some(bend)));
    }
    for (q, from, last) in raw {
        let request = query::parse(q.as_bytes(), &options).expect("a well-formed byte range");
        assert_eq!(request.prefix, Some(PrefixMode::None));
        let from = from.unwrap_or(0);
        let to = last.map_or(size, |l| l.saturating_add(1).min(size));
        match plan_checked(&media, Some(&twin), &options, &request, size) {
            Ok(p) => {
                assert!(from < to, "{q}: planned {p:?}");
                assert!(p.prefix.is_empty(), "{q}: a prefix");
                assert_eq!((p.file_from, p.file_to), (from, to), "{q}");
            }
            Err(e) => {
                assert!(from >= size || to <= from, "{q}: {e}");
                assert!(matches!(e, Error::RangeNotSatisfiable(_)), "{q}: {e}");
            }
        }
    }

    // Jump-to-byte and byte positions do not apply to MP4.
    let x = scaled(size, c.x);
    for q in [format!("ib={x}&fs={bend}"), format!("ib={x}"), format!("fs={x}")] {
        let request = query::parse(q.as_bytes(), &options).expect("a well-formed ib/fs");
        match media.plan(&options, &request) {
            Err(Error::BadRequest(_)) => {}
            other => panic!("{q} on MP4: {other:?}"),
        }
    }
    for request in [
        Request {
            start: Some(Position::Bytes(x)),
            ..Request::default()
        },
        Request {
            start: Some(Position::Millis(ta)),
            end: Some(Position::Bytes(x)),
            ..Request::default()
        },
    ] {
        match media.plan(&options, &request) {
            Err(Error::BadRequest(_)) => {}
            other => panic!("{request:?} on MP4: {other:?}"),
        }
    }
});
