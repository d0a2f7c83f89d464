//! Synthetic FLVs: a procedural source of more than 4 GiB (offsets past
//! 2^32, timestamps past 2^24 ms) that is never held in memory, and small
//! hand-made files for the index's corner cases.

mod common;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{drain, parse_flv, stored_options, VIDEO};
use pseudostream::format::flv::meta;
use pseudostream::source::SourceIdentity;
use pseudostream::{
    query, ByteSource, Conditions, IndexOrigin, Media, MemorySource, Options, Plan, Position,
    PrefixMode, Request, StartUnit,
};

// ------------------------------------------------------ writing FLV bytes --

fn flv_file_header(audio: bool, video: bool) -> Vec<u8> {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    vec![b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// The 11 header bytes of a tag.
fn tag_header(kind: u8, size: u32, ts: u32) -> [u8; 11] {
    let s = size.to_be_bytes();
    let t = ts.to_be_bytes();
    [kind, s[1], s[2], s[3], t[1], t[2], t[3], t[0], 0, 0, 0]
}

fn push_tag(out: &mut Vec<u8>, kind: u8, ts: u32, body: &[u8]) -> u64 {
    let pos = out.len() as u64;
    out.extend_from_slice(&tag_header(kind, body.len() as u32, ts));
    out.extend_from_slice(body);
    out.extend_from_slice(&(body.len() as u32 + 11).to_be_bytes());
    pos
}

/// AMF0, just what onMetaData needs.
enum Amf {
    Num(f64),
    Str(&'static str),
    Obj(Vec<(&'static str, Amf)>),
    Ecma(Vec<(&'static str, Amf)>),
    Arr(Vec<Amf>),
}

fn amf_name(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn amf(out: &mut Vec<u8>, v: &Amf) {
    match v {
        Amf::Num(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf::Str(s) => {
            out.push(2);
            amf_name(out, s);
        }
        Amf::Obj(props) | Amf::Ecma(props) => {
            if let Amf::Ecma(_) = v {
                out.push(8);
                out.extend_from_slice(&(props.len() as u32).to_be_bytes());
            } else {
                out.push(3);
            }
            for (k, v) in props {
                amf_name(out, k);
                amf(out, v);
            }
            out.extend_from_slice(&[0, 0, 9]);
        }
        Amf::Arr(items) => {
            out.push(10);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for i in items {
                amf(out, i);
            }
        }
    }
}

/// An onMetaData body with a keyframes object (times in s, positions).
fn on_metadata(keyframes: Option<&[(f64, f64)]>, extra: Vec<(&'static str, Amf)>) -> Vec<u8> {
    let mut props = extra;
    if let Some(list) = keyframes {
        props.push((
            "keyframes",
            Amf::Obj(vec![
                (
                    "times",
                    Amf::Arr(list.iter().map(|k| Amf::Num(k.0)).collect()),
                ),
                (
                    "filepositions",
                    Amf::Arr(list.iter().map(|k| Amf::Num(k.1)).collect()),
                ),
            ]),
        ));
    }
    let mut out = Vec::new();
    amf(&mut out, &Amf::Str("onMetaData"));
    amf(&mut out, &Amf::Ecma(props));
    out
}

// ------------------------------------------- a procedural 5 GiB source --

/// About 16 MiB, within the 24-bit DataSize.
const BIG_BODY: u64 = 16 * 1024 * 1024 - 1024;
const BIG_SPAN: u64 = BIG_BODY + 15;
const BIG_TAGS: u64 = 320;
const GOP: u64 = 8;
const STEP_MS: u64 = 60_000;
const TWO_32: u64 = 1 << 32;
const TWO_24: u64 = 1 << 24;

/// Header, optional onMetaData, an AVC sequence header, then `BIG_TAGS`
/// AVC video tags of ~16 MiB (a keyframe every `GOP`), stamped every
/// `STEP_MS` so the last ones need TimestampExtended. Only the few non-zero
/// bytes are ever computed.
struct Virtual {
    prelude: Vec<u8>,
    reads: AtomicU64,
    bytes_read: AtomicU64,
}

const AVC_CONFIG: [u8; 16] = [
    0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 0, 0x01, 0, 0,
];

impl Virtual {
    fn new(with_metadata: bool) -> Virtual {
        let build = |prelude_len: u64| {
            let mut out = flv_file_header(false, true);
            if with_metadata {
                let kf: Vec<(f64, f64)> = Virtual::expected_keyframes(prelude_len)
                    .iter()
                    .map(|&(t, off)| (t as f64 / 1000.0, off as f64))
                    .collect();
                let size = prelude_len + BIG_TAGS * BIG_SPAN;
                let body = on_metadata(
                    Some(&kf),
                    vec![
                        (
                            "duration",
                            Amf::Num(((BIG_TAGS - 1) * STEP_MS) as f64 / 1000.0),
                        ),
                        ("width", Amf::Num(640.0)),
                        ("height", Amf::Num(360.0)),
                        ("videocodecid", Amf::Num(7.0)),
                        ("filesize", Amf::Num(size as f64)),
                    ],
                );
                push_tag(&mut out, 18, 0, &body);
            }
            push_tag(&mut out, VIDEO, 0, &AVC_CONFIG);
            out
        };
        // Numbers do not change the encoded size: measure, then build.
        let len = build(0).len() as u64;
        let prelude = build(len);
        assert_eq!(prelude.len() as u64, len);
        Virtual {
            prelude,
            reads: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
        }
    }

    fn tag_pos(prelude_len: u64, i: u64) -> u64 {
        prelude_len + i * BIG_SPAN
    }

    fn tag_ts(i: u64) -> u64 {
        i * STEP_MS
    }

    fn expected_keyframes(prelude_len: u64) -> Vec<(u64, u64)> {
        (0..BIG_TAGS)
            .step_by(GOP as usize)
            .map(|i| (Virtual::tag_ts(i), Virtual::tag_pos(prelude_len, i)))
            .collect()
    }

    fn keyframes(&self) -> Vec<(u64, u64)> {
        Virtual::expected_keyframes(self.prelude.len() as u64)
    }

    fn pos(&self, i: u64) -> u64 {
        Virtual::tag_pos(self.prelude.len() as u64, i)
    }

    /// The non-zero bytes of tag `i`: header + first body bytes, and the trailer.
    fn tag_pieces(i: u64) -> ([u8; 16], [u8; 4]) {
        let mut head = [0u8; 16];
        head[..11].copy_from_slice(&tag_header(
            VIDEO,
            BIG_BODY as u32,
            Virtual::tag_ts(i) as u32,
        ));
        head[11] = if i % GOP == 0 { 0x17 } else { 0x27 };
        head[12] = 1; // AVC NALU
        (head, ((BIG_BODY + 11) as u32).to_be_bytes())
    }
}

/// Copies the part of `piece` (which sits at `at`) that falls in `buf` (at `offset`).
fn overlay(buf: &mut [u8], offset: u64, at: u64, piece: &[u8]) {
    let start = at.max(offset);
    let end = (at + piece.len() as u64).min(offset + buf.len() as u64);
    if start < end {
        buf[(start - offset) as usize..(end - offset) as usize]
            .copy_from_slice(&piece[(start - at) as usize..(end - at) as usize]);
    }
}

impl ByteSource for Virtual {
    fn size(&self) -> u64 {
        self.prelude.len() as u64 + BIG_TAGS * BIG_SPAN
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.size();
        if offset >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - offset) as usize;
        let buf = &mut buf[..n];
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        buf.fill(0);
        overlay(buf, offset, 0, &self.prelude);
        let p = self.prelude.len() as u64;
        let end = offset + n as u64;
        if end > p {
            let first = offset.saturating_sub(p) / BIG_SPAN;
            let last = ((end - 1 - p) / BIG_SPAN).min(BIG_TAGS - 1);
            for i in first..=last {
                let at = self.pos(i);
                let (head, trailer) = Virtual::tag_pieces(i);
                overlay(buf, offset, at, &head);
                overlay(buf, offset, at + 11 + BIG_BODY, &trailer);
            }
        }
        Ok(n)
    }

    fn identity(&self) -> SourceIdentity {
        SourceIdentity {
            key: None,
            size: self.size(),
            mtime_ns: 0,
        }
    }
}

fn open_virtual(with_metadata: bool) -> (Arc<Virtual>, Media) {
    let v = Arc::new(Virtual::new(with_metadata));
    let media = Media::from_source(Arc::clone(&v) as Arc<dyn ByteSource>).unwrap();
    (v, media)
}

fn pairs(media: &Media) -> Vec<(u64, u64)> {
    media
        .keyframes()
        .iter()
        .map(|k| (k.time_ms, k.offset))
        .collect()
}

#[test]
fn virtual_source_reads_like_a_real_flv() {
    let v = Virtual::new(true);
    assert!(v.size() > 5_000_000_000);
    // A window across a tag boundary beyond 4 GiB, read whole and in pieces.
    let i = 300;
    let at = v.pos(i) - 6;
    let mut whole = vec![0u8; 40];
    assert_eq!(v.read_at(at, &mut whole).unwrap(), 40);
    let mut pieces = vec![0u8; 40];
    for k in (0..40).step_by(7) {
        let end = (k + 7).min(40);
        v.read_at(at + k as u64, &mut pieces[k..end]).unwrap();
    }
    assert_eq!(whole, pieces);
    assert_eq!(&whole[2..6], &((BIG_BODY + 11) as u32).to_be_bytes());
    assert_eq!(whole[6], VIDEO);
    assert_eq!(whole[6 + 7], (Virtual::tag_ts(i) >> 24) as u8);
    // The prelude parses with our own reader.
    let mut head = vec![0u8; v.prelude.len()];
    v.read_at(0, &mut head).unwrap();
    let flv = parse_flv(&head).unwrap();
    assert_eq!(flv.tags.len(), 2);
    // End of the source.
    let mut tail = [0u8; 8];
    assert_eq!(v.read_at(v.size() - 4, &mut tail).unwrap(), 4);
    assert_eq!(v.read_at(v.size(), &mut tail).unwrap(), 0);
}

#[test]
fn index_from_metadata_and_from_a_scan_agree_past_4_gib() {
    let clock = std::time::Instant::now();
    let (v_meta, with_meta) = open_virtual(true);
    let meta_time = clock.elapsed();
    let clock = std::time::Instant::now();
    let (v_scan, scanned) = open_virtual(false);
    let scan_time = clock.elapsed();
    eprintln!("index of a 5 GiB source: metadata {meta_time:?}, scan {scan_time:?}");
    let info = with_meta.info();
    assert_eq!(info.origin, IndexOrigin::Metadata);
    assert_eq!(scanned.info().origin, IndexOrigin::Scanned);
    assert_eq!(pairs(&with_meta), v_meta.keyframes());
    assert_eq!(pairs(&scanned), v_scan.keyframes());
    // Same media, so the same times (offsets differ by the metadata tag).
    let times = |m: &Media| m.keyframes().iter().map(|k| k.time_ms).collect::<Vec<_>>();
    assert_eq!(times(&with_meta), times(&scanned));
    assert!(with_meta.keyframes().iter().any(|k| k.offset > TWO_32));
    assert!(with_meta.keyframes().iter().any(|k| k.time_ms > TWO_24));
    assert_eq!(info.start_ms, 0);
    assert_eq!(info.duration_ms, (BIG_TAGS - 1) * STEP_MS);
    assert_eq!(info.video_codec, Some(7));
    assert_eq!((info.width, info.height), (Some(640), Some(360)));
    assert!(!info.has_audio && info.has_video);

    // Cost: the scan hops header to header; the metadata path reads once
    // around each listed keyframe (the tags just before it, its header, its
    // first NAL units), so it makes fewer reads, of a few KiB at most each.
    let scan_bytes = v_scan.bytes_read.load(Ordering::Relaxed);
    let meta_bytes = v_meta.bytes_read.load(Ordering::Relaxed);
    let size = v_scan.size();
    eprintln!(
        "scan: {} reads, {scan_bytes} bytes; metadata: {} reads, {meta_bytes} bytes; file {size}",
        v_scan.reads.load(Ordering::Relaxed),
        v_meta.reads.load(Ordering::Relaxed)
    );
    assert!(scan_bytes * 100 < size, "scan read {scan_bytes} of {size}");
    assert!(v_scan.reads.load(Ordering::Relaxed) < 4 * BIG_TAGS);
    let meta_reads = v_meta.reads.load(Ordering::Relaxed);
    assert!(meta_reads < v_scan.reads.load(Ordering::Relaxed));
    assert!(
        meta_bytes < 4096 * meta_reads,
        "metadata path: {meta_bytes} bytes in {meta_reads} reads"
    );
}

/// The response bytes `[first, first+len)` of a plan.
fn window(media: &Media, plan: &Plan, first: u64, len: u64) -> Vec<u8> {
    drain(media, plan, first, len).unwrap()
}

fn tag_ts_at(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[7], b[4], b[5], b[6]]))
}

#[test]
fn seeks_past_4_gib_and_2_pow_24_ms() {
    let (v, media) = open_virtual(true);
    let kf = v.keyframes();
    // Byte seek inside tag 300 (past 4 GiB): the keyframe at tag 296.
    let b = v.pos(300) + 1234;
    assert!(b > TWO_32);
    let want = (Virtual::tag_ts(296), v.pos(296));
    assert!(want.0 > TWO_24);
    let o = Options {
        prefix: PrefixMode::Header,
        ..stored_options()
    };
    let plan = media
        .plan(
            &o,
            &query::parse(format!("start={b}").as_bytes(), &o).unwrap(),
        )
        .unwrap();
    assert_eq!((plan.start_ms, plan.file_from), want);
    assert!(plan.file_from > TWO_32);
    assert_eq!(plan.file_to, v.size());
    let head = window(&media, &plan, 0, 13 + 16);
    assert_eq!(&head[..13], &flv_file_header(false, true)[..]);
    assert_eq!(head[13], VIDEO);
    assert_eq!(tag_ts_at(&head[13..]), want.0, "TimestampExtended lost");
    assert_eq!(head[13 + 11], 0x17);

    // Time seeks: past 2^24 ms, right at it, and between keyframes.
    let seconds = Options {
        start_unit: StartUnit::Seconds,
        ..stored_options()
    };
    for (t, i) in [
        (Virtual::tag_ts(300), 296u64),
        (Virtual::tag_ts(296), 296),
        (TWO_24, 272),
        (Virtual::tag_ts(280) - 1, 272),
        (Virtual::tag_ts(BIG_TAGS - 1), 312),
        (Virtual::tag_ts(257), 256),
    ] {
        let q = format!("start={}", common::secs(t));
        let plan = media
            .plan(&seconds, &query::parse(q.as_bytes(), &seconds).unwrap())
            .unwrap();
        assert_eq!(
            (plan.start_ms, plan.file_from),
            (Virtual::tag_ts(i), v.pos(i)),
            "{q}"
        );
        assert!(kf.contains(&(plan.start_ms, plan.file_from)));
        // Init prefix: the AVC configuration restamped to the keyframe time.
        let prefix = parse_flv(&plan.prefix).unwrap();
        assert_eq!(prefix.tags.len(), 1, "{q}");
        let config = &prefix.tags[0];
        assert_eq!(
            u64::from(config.ts),
            Virtual::tag_ts(i),
            "{q}: config stamp"
        );
        assert_eq!(config.body(&plan.prefix), &AVC_CONFIG[..]);
        let first = window(&media, &plan, plan.prefix.len() as u64, 16);
        assert_eq!(tag_ts_at(&first), Virtual::tag_ts(i));
    }
    let past = format!("start={}", common::secs(Virtual::tag_ts(BIG_TAGS - 1) + 1));
    assert!(media
        .plan(&seconds, &query::parse(past.as_bytes(), &seconds).unwrap())
        .is_err());

    // Ends past 4 GiB: a byte end finishes its tag, a time end cuts before
    // the first tag at or after it.
    let plan = media
        .plan(
            &stored_options(),
            &Request {
                start: Some(Position::Bytes(v.pos(290))),
                end: Some(Position::Bytes(v.pos(301) + 5)),
                ..Request::default()
            },
        )
        .unwrap();
    assert_eq!((plan.file_from, plan.file_to), (v.pos(288), v.pos(302)));
    let plan = media
        .plan(
            &stored_options(),
            &Request {
                start: Some(Position::Millis(Virtual::tag_ts(290))),
                end: Some(Position::Millis(Virtual::tag_ts(301) + 1)),
                ..Request::default()
            },
        )
        .unwrap();
    assert_eq!((plan.file_from, plan.file_to), (v.pos(288), v.pos(302)));
    assert_eq!(plan.end_ms, Virtual::tag_ts(301) + 1);

    // A Range at the very end of a >4 GiB response.
    let plan = media
        .plan(
            &stored_options(),
            &Request {
                start: Some(Position::Bytes(v.pos(10))),
                ..Request::default()
            },
        )
        .unwrap();
    let resp = plan.respond(&Conditions {
        range: Some("bytes=-4"),
        ..Conditions::default()
    });
    assert_eq!(resp.status, 206);
    assert!(plan.len() > TWO_32);
    assert_eq!(
        window(&media, &plan, resp.first, resp.len),
        ((BIG_BODY + 11) as u32).to_be_bytes()
    );
}

#[test]
fn full_prefix_metadata_past_4_gib() {
    let (v, media) = open_virtual(true);
    let o = Options {
        prefix: PrefixMode::Full,
        ..stored_options()
    };
    let plan = media
        .plan(
            &o,
            &Request {
                start: Some(Position::Bytes(v.pos(290))),
                ..Request::default()
            },
        )
        .unwrap();
    assert_eq!(plan.file_from, v.pos(288));
    let prefix = parse_flv(&plan.prefix).unwrap();
    let script = &prefix.tags[0];
    let (name, value) = meta::parse_script(script.body(&plan.prefix)).unwrap();
    assert_eq!(name, "onMetaData");
    let m = meta::metadata_from(&value);
    let list = m.keyframes.unwrap();
    let expected: Vec<u64> = (288..BIG_TAGS).step_by(GOP as usize).collect();
    assert_eq!(list.len(), expected.len());
    for (&(t, pos), &i) in list.iter().zip(&expected) {
        assert_eq!((t * 1000.0) as u64, Virtual::tag_ts(i));
        // The position is a keyframe tag in the response itself.
        let at = window(&media, &plan, pos as u64, 16);
        assert_eq!(at[0], VIDEO);
        assert_eq!(tag_ts_at(&at), Virtual::tag_ts(i));
        assert_eq!(at[11], 0x17);
    }
    assert_eq!(m.filesize, Some(plan.len() as f64));
    assert_eq!(
        m.duration_s,
        Some((Virtual::tag_ts(BIG_TAGS - 1) - Virtual::tag_ts(288)) as f64 / 1000.0)
    );
    assert_eq!(value.get("width").and_then(|w| w.as_number()), Some(640.0));
}

// ------------------------------------------------- small hand-made files --

/// H.263 video tags (codec 2): key 0x12, inter 0x22.
fn video(out: &mut Vec<u8>, ts: u32, key: bool) -> u64 {
    let mut body = vec![if key { 0x12 } else { 0x22 }];
    body.extend_from_slice(&[0x55; 30]);
    push_tag(out, VIDEO, ts, &body)
}

fn audio(out: &mut Vec<u8>, ts: u32) -> u64 {
    // MP3, 44.1 kHz stereo.
    let mut body = vec![0x2f];
    body.extend_from_slice(&[0x33; 20]);
    push_tag(out, 8, ts, &body)
}

fn open_memory(bytes: Vec<u8>) -> Media {
    Media::from_source(Arc::new(MemorySource::new(bytes))).unwrap()
}

/// A layout of (time, key?) video frames with one audio tag per frame;
/// returns the bytes and the keyframe list. `prelude` gives the script
/// tags, taking the keyframes it must describe.
fn build(
    frames: &[(u32, bool)],
    prelude: impl Fn(&[(u64, u64)]) -> Vec<Vec<u8>>,
) -> (Vec<u8>, Vec<(u64, u64)>) {
    let lay = |scripts: &[Vec<u8>]| {
        let mut out = flv_file_header(true, true);
        for s in scripts {
            push_tag(&mut out, 18, 0, s);
        }
        let mut kf = Vec::new();
        for &(ts, key) in frames {
            let pos = video(&mut out, ts, key);
            if key {
                kf.push((u64::from(ts), pos));
            }
            audio(&mut out, ts + 5);
        }
        (out, kf)
    };
    // Script sizes do not depend on the numbers in them.
    let (_, guess) = lay(&prelude(&[]).iter().map(|_| Vec::new()).collect::<Vec<_>>());
    let (_, kf) = lay(&prelude(&guess));
    let (bytes, kf2) = lay(&prelude(&kf));
    assert_eq!(kf, kf2);
    (bytes, kf)
}

fn meta_of(kf: &[(u64, u64)], time_shift_ms: i64) -> Vec<u8> {
    let list: Vec<(f64, f64)> = kf
        .iter()
        .map(|&(t, p)| ((t as i64 + time_shift_ms) as f64 / 1000.0, p as f64))
        .collect();
    on_metadata(Some(&list), vec![("duration", Amf::Num(9.0))])
}

fn time_plan(media: &Media, ms: u64) -> Plan {
    media
        .plan(
            &stored_options(),
            &Request {
                start: Some(Position::Millis(ms)),
                ..Request::default()
            },
        )
        .unwrap()
}

#[test]
fn duplicate_keyframe_times_seek_to_the_first() {
    let frames = [
        (0, true),
        (40, false),
        (80, false),
        (1000, true),
        (1000, true),
        (1040, false),
        (2000, true),
        (2040, false),
    ];
    let (plain, kf) = build(&frames, |_| Vec::new());
    let (indexed, kf_meta) = build(&frames, |k| vec![meta_of(k, 0)]);
    for (bytes, kf, origin) in [
        (plain, kf, IndexOrigin::Scanned),
        (indexed, kf_meta, IndexOrigin::Metadata),
    ] {
        let media = open_memory(bytes);
        assert_eq!(media.info().origin, origin);
        assert_eq!(pairs(&media), kf);
        for (t, want) in [(1000, 1), (1500, 1), (999, 0), (2000, 3), (1999, 1)] {
            let plan = time_plan(&media, t);
            assert_eq!(
                (plan.start_ms, plan.file_from),
                kf[want],
                "{origin:?} time {t}"
            );
        }
        // A byte seek at the second of the twins stays on it.
        let plan = media
            .plan(
                &stored_options(),
                &Request {
                    start: Some(Position::Bytes(kf[2].1)),
                    ..Request::default()
                },
            )
            .unwrap();
        assert_eq!(plan.file_from, kf[2].1);
    }
}

#[test]
fn first_onmetadata_with_keyframes_wins() {
    let frames = [
        (0, true),
        (500, false),
        (1000, true),
        (1500, false),
        (2000, true),
    ];
    let bogus = |k: &[(u64, u64)]| -> Vec<u8> {
        let wrong: Vec<(u64, u64)> = k.iter().map(|&(t, p)| (t, p + 3)).collect();
        meta_of(&wrong, 0)
    };
    let no_keyframes = on_metadata(None, vec![("duration", Amf::Num(2.0))]);
    // No index, then a good one, then a bad one: the good one.
    let (bytes, kf) = build(&frames, |k| {
        vec![no_keyframes.clone(), meta_of(k, 0), bogus(k)]
    });
    let media = open_memory(bytes);
    assert_eq!(media.info().origin, IndexOrigin::Metadata);
    assert_eq!(pairs(&media), kf);
    // A bad one first: it is the one checked, found stale, and the file scanned.
    let (bytes, kf) = build(&frames, |k| vec![bogus(k), meta_of(k, 0)]);
    let media = open_memory(bytes);
    assert_eq!(media.info().origin, IndexOrigin::MetadataStale);
    assert_eq!(pairs(&media), kf);
}

/// Script tags for a layout, given its keyframes.
type Prelude = dyn Fn(&[(u64, u64)]) -> Vec<Vec<u8>>;

#[test]
fn non_zero_first_timestamp() {
    let frames = [
        (7000, true),
        (7500, false),
        (8000, true),
        (8500, false),
        (9000, true),
        (9400, false),
    ];
    let variants: [(&str, Box<Prelude>); 3] = [
        ("scanned", Box::new(|_: &[(u64, u64)]| Vec::new())),
        (
            "absolute times",
            Box::new(|k: &[(u64, u64)]| vec![meta_of(k, 0)]),
        ),
        // ffmpeg's style: times relative to the first packet.
        (
            "relative times",
            Box::new(|k: &[(u64, u64)]| vec![meta_of(k, -7000)]),
        ),
    ];
    for (label, prelude) in variants {
        let (bytes, kf) = build(&frames, prelude);
        let media = open_memory(bytes.clone());
        assert_eq!(pairs(&media), kf, "{label}");
        let info = media.info();
        assert_eq!(info.start_ms, 7000, "{label}");
        assert_eq!(info.duration_ms, 9405 - 7000, "{label}");
        for (t, want) in [
            (7000, Some(0)),
            (8500, Some(1)),
            (9405, Some(2)),
            (3000, None),
        ] {
            let plan = time_plan(&media, t);
            match want {
                Some(i) => assert_eq!((plan.start_ms, plan.file_from), kf[i], "{label} {t}"),
                None => {
                    assert!(plan.whole_file, "{label} {t}: before the first keyframe");
                    assert_eq!(plan.start_ms, 7000);
                }
            }
        }
        let o = Options {
            start_unit: StartUnit::Seconds,
            ..stored_options()
        };
        let past = query::parse(b"start=9.406", &o).unwrap();
        assert!(media.plan(&o, &past).is_err(), "{label}");
        assert!(
            media
                .plan(&o, &query::parse(b"start=0", &o).unwrap())
                .unwrap()
                .whole_file
        );
    }
}

#[test]
fn metadata_pointing_mid_tag_is_stale_and_rescanned() {
    let frames = [
        (0, true),
        (40, false),
        (1000, true),
        (1040, false),
        (2000, true),
    ];
    for shift in [1i64, 11, 20, -4] {
        let (bytes, kf) = build(&frames, |k| {
            let moved: Vec<(u64, u64)> = k
                .iter()
                .map(|&(t, p)| (t, (p as i64 + shift) as u64))
                .collect();
            vec![meta_of(&moved, 0)]
        });
        let media = open_memory(bytes);
        assert_eq!(
            media.info().origin,
            IndexOrigin::MetadataStale,
            "shift {shift}"
        );
        assert_eq!(pairs(&media), kf, "shift {shift}");
    }
    // Only the last entry off: still stale.
    let (bytes, kf) = build(&frames, |k| {
        let mut moved = k.to_vec();
        if let Some(last) = moved.last_mut() {
            last.1 += 7;
        }
        vec![meta_of(&moved, 0)]
    });
    let media = open_memory(bytes);
    assert_eq!(media.info().origin, IndexOrigin::MetadataStale);
    assert_eq!(pairs(&media), kf);
}
