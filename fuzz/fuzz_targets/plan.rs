//! Planning and streaming. The input is a control block, a query string, a
//! Range header and then the media bytes:
//!
//! ```text
//! [52-byte control block][query: qlen bytes][range: rlen bytes][media...]
//! ```
//!
//! The control block sets the host options and a request; the query string
//! goes through `query::parse` and, when the control flags say so and it
//! parses, replaces that request. A plan that resolves is checked for its
//! arithmetic and prefix, answered with the Range header, and the chosen
//! window is drained through a stream under a fake clock and compared with
//! the prefix and file bytes it must consist of.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pseudostream::format::flv::meta;
use pseudostream::format::flv::tag::{parse_tag_header, STREAM_HEADER_LEN, TAG_HEADER_LEN};
use pseudostream::plan::MAX_INITIAL_BYTES;
use pseudostream::{
    query, Burst, Conditions, Fill, Keyframe, Media, MemorySource, MetadataMode, Options, Pacing, ParamNames,
    Plan, Position, PrefixMode, RangeOutcome, Rate, Request, StartUnit,
};

/// Fields off the front of the input, little-endian; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    fn u8(&mut self) -> u8 {
        self.fixed::<1>()[0]
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.fixed())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.fixed())
    }
}

/// Flag bits of the control block's first byte.
const SECONDS: u8 = 1;
const CLIENT_PACING: u8 = 2;
const USE_QUERY: u8 = 4;
const IF_MATCH_ETAG: u8 = 8;
/// Bits 4-5: If-Range absent, the plan's ETag, a stale tag, a weak ETag.
const IF_RANGE_SHIFT: u8 = 4;

struct Control<'a> {
    flags: u8,
    option_prefix: u8,
    burst: (u8, u32),
    rate: (u8, u32),
    start: (u8, u64),
    end: (u8, u64),
    prefix: u8,
    initial: (u8, u32),
    req_burst: (u8, u32),
    req_rate: (u8, u32),
    seed: u32,
    query: &'a [u8],
    range: &'a [u8],
    media: &'a [u8],
}

impl<'a> Control<'a> {
    fn split(data: &'a [u8]) -> Control<'a> {
        let mut i = Input { data };
        let flags = i.u8();
        let option_prefix = i.u8();
        let burst = (i.u8(), i.u32());
        let rate = (i.u8(), i.u32());
        let start = (i.u8(), i.u64());
        let end = (i.u8(), i.u64());
        let prefix = i.u8();
        let initial = (i.u8(), i.u32());
        let req_burst = (i.u8(), i.u32());
        let req_rate = (i.u8(), i.u32());
        let seed = i.u32();
        let qlen = usize::from(i.u8());
        let rlen = usize::from(i.u8());
        let query = i.take(qlen);
        let range = i.take(rlen);
        Control {
            flags,
            option_prefix,
            burst,
            rate,
            start,
            end,
            prefix,
            initial,
            req_burst,
            req_rate,
            seed,
            query,
            range,
            media: i.data,
        }
    }

    fn options(&self) -> Options {
        let burst = match self.burst.0 % 2 {
            0 => Burst::Bytes(u64::from(self.burst.1)),
            _ => Burst::MediaMillis(u64::from(self.burst.1)),
        };
        let rate = match self.rate.0 % 4 {
            1 => Rate::BytesPerSecond(u64::from(self.rate.1)),
            2 => Rate::Auto {
                permille: self.rate.1,
            },
            _ => Rate::Off,
        };
        Options {
            prefix: prefix_mode(self.option_prefix),
            start_unit: if self.flags & SECONDS != 0 {
                StartUnit::Seconds
            } else {
                StartUnit::Bytes
            },
            names: ParamNames::default(),
            pacing: Pacing { burst, rate },
            client_pacing: self.flags & CLIENT_PACING != 0,
            // The checks below read the stored file's bytes; the virtual file
            // is checked against its on-disk twin in tests/flv_virtual_file.rs.
            metadata: MetadataMode::Off,
            ..Options::default()
        }
    }

    fn request(&self, media: &Media) -> Request {
        let info = media.info();
        let size = info.size;
        let end_ms = info.start_ms.saturating_add(info.duration_ms);
        let keyframes = media.keyframes();
        let position = |(kind, v): (u8, u64)| position(kind, v, size, end_ms, keyframes);
        let (ib_kind, ib) = (self.initial.0 % 4, u64::from(self.initial.1));
        Request {
            start: position(self.start),
            end: position(self.end),
            prefix: (self.prefix % 8 < 4).then(|| prefix_mode(self.prefix)),
            initial_bytes: match ib_kind {
                1 => Some(ib % (size + 2)),
                2 => Some(ib),
                3 => Some(MAX_INITIAL_BYTES + u64::from(self.initial.0 >> 2)),
                _ => None,
            },
            burst_bytes: match self.req_burst.0 % 3 {
                1 => Some(u64::from(self.req_burst.1)),
                2 => Some(u64::MAX - u64::from(self.req_burst.1)),
                _ => None,
            },
            rate_bytes_per_s: match self.req_rate.0 % 3 {
                1 => Some(u64::from(self.req_rate.1)),
                2 => Some(u64::from(self.req_rate.1 % 4096) + 1),
                _ => None,
            },
        }
    }
}

fn prefix_mode(b: u8) -> PrefixMode {
    PrefixMode::from_u32(u32::from(b % 4)).expect("0..=3 are modes")
}

/// A start or end: none, anywhere, at or near a keyframe, or raw.
fn position(kind: u8, v: u64, size: u64, end_ms: u64, keyframes: &[Keyframe]) -> Option<Position> {
    let near = |x: u64| match (kind >> 3) % 4 {
        0 => x,
        1 => x.saturating_add(1),
        2 => x.saturating_sub(1),
        _ => x.saturating_add(15),
    };
    let keyframe = || keyframes.get((v % keyframes.len().max(1) as u64) as usize);
    match kind % 8 {
        1 => Some(Position::Bytes(v % (size + 2))),
        2 => Some(Position::Millis(v % end_ms.saturating_add(2))),
        3 => keyframe().map(|k| Position::Bytes(near(k.offset))),
        4 => keyframe().map(|k| Position::Millis(near(k.time_ms))),
        5 => Some(Position::Bytes(v)),
        6 => Some(Position::Millis(v)),
        7 if v % 2 == 0 => Some(Position::Bytes(0)),
        7 => Some(Position::Millis(0)),
        _ => None,
    }
}

/// A generated prefix is an FLV stream header followed by whole tags, and a
/// `full` prefix's onMetaData describes the response it heads.
fn check_prefix(plan: &Plan, mode: PrefixMode) {
    let p = &plan.prefix;
    assert!(p.len() >= STREAM_HEADER_LEN, "prefix shorter than a header");
    assert_eq!(&p[..3], b"FLV");
    assert_eq!(&p[5..STREAM_HEADER_LEN], &[0, 0, 0, 9, 0, 0, 0, 0]);
    if mode == PrefixMode::Header {
        assert_eq!(p.len(), STREAM_HEADER_LEN);
        return;
    }
    let mut pos = STREAM_HEADER_LEN;
    let mut first = true;
    while pos < p.len() {
        assert!(
            pos + TAG_HEADER_LEN <= p.len(),
            "prefix ends inside a tag header"
        );
        let h = parse_tag_header(&p[pos..]);
        let end = pos as u64 + h.span();
        assert!(
            end <= p.len() as u64,
            "prefix tag at {pos} runs past the prefix"
        );
        if first && mode == PrefixMode::Full {
            assert_eq!(h.tag_type, 18, "full prefix starts with onMetaData");
            let body = &p[pos + TAG_HEADER_LEN..pos + TAG_HEADER_LEN + h.data_size as usize];
            let (name, value) = meta::parse_script(body).expect("prefix onMetaData parses");
            assert_eq!(name, meta::ON_METADATA);
            let m = meta::metadata_from(&value);
            assert_eq!(m.filesize, Some(plan.len() as f64), "onMetaData filesize");
            let duration = (plan.end_ms - plan.start_ms) as f64 / 1000.0;
            assert_eq!(m.duration_s, Some(duration), "onMetaData duration");
            for &(_, at) in m.keyframes.as_deref().expect("onMetaData keyframes") {
                assert!(
                    at >= p.len() as f64 && at < plan.len() as f64,
                    "onMetaData keyframe position {at} outside the file part"
                );
            }
        }
        first = false;
        pos = end as usize;
    }
    if mode == PrefixMode::Full {
        assert!(!first, "full prefix without onMetaData");
    }
}

/// Drains `len` bytes from `first` through a stream and compares them with
/// the prefix and file bytes the plan's slice names.
fn drain(media: &Media, plan: &Plan, data: &[u8], first: u64, len: u64, seed: u32) {
    let slice = plan.slice(first, len).expect("window inside the plan");
    assert!(slice.prefix_from <= slice.prefix_to && slice.prefix_to <= plan.prefix.len());
    assert!(slice.file_from <= slice.file_to && slice.file_to <= data.len() as u64);
    assert_eq!(
        (slice.prefix_to - slice.prefix_from) as u64 + (slice.file_to - slice.file_from),
        len
    );
    let mut expected = plan.prefix[slice.prefix_from..slice.prefix_to].to_vec();
    expected.extend_from_slice(&data[slice.file_from as usize..slice.file_to as usize]);

    let mut stream = media
        .stream(plan, first, len)
        .expect("stream over a valid window");
    assert_eq!(stream.remaining(), len);
    let mut now = u64::from(seed) * 1000;
    if len > 0 {
        assert!(stream.fill(&mut [], now).is_err(), "empty buffer accepted");
    }
    let mut rng = u64::from(seed) | 1;
    let mut next_size = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        match rng % 8 {
            0 => 1,
            1 => 1 + (rng >> 8) as usize % 16,
            2 => 1 + (rng >> 8) as usize % 1500,
            3 | 4 => 4096,
            _ => 65536,
        }
    };
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(len as usize);
    let mut size = next_size();
    let mut waited = false;
    let mut calls = 0u64;
    loop {
        calls += 1;
        assert!(calls <= 3 * len + 10, "stream does not progress");
        match stream.fill(&mut buf[..size], now) {
            Ok(Fill::Data(n)) => {
                assert!(n > 0 && n <= size, "fill wrote {n} into {size}");
                out.extend_from_slice(&buf[..n]);
                assert!(out.len() as u64 <= len, "stream overran its window");
                waited = false;
                size = next_size();
            }
            Ok(Fill::Wait(us)) => {
                assert!(us > 0, "zero wait");
                assert!(!waited, "still waiting after the wait the stream asked for");
                waited = true;
                now = now.checked_add(us).expect("clock overflow");
            }
            Ok(Fill::Done) => break,
            Err(e) => panic!("fill failed: {e}"),
        }
    }
    assert_eq!(stream.remaining(), 0);
    assert_eq!(out.len() as u64, len, "stream length");
    assert!(out == expected, "stream bytes differ from the plan's slice");
}

fuzz_target!(|data: &[u8]| {
    let c = Control::split(data);
    let options = c.options();
    let parsed = query::parse(c.query, &options);

    let media_bytes = c.media;
    let Ok(media) = Media::from_source(Arc::new(MemorySource::new(media_bytes.to_vec()))) else {
        return;
    };
    // MP4 has its own target (`mp4`); the checks here are FLV's.
    if media.info().format.name() != "flv" {
        return;
    }
    let size = media_bytes.len() as u64;
    let mut request = c.request(&media);
    if c.flags & USE_QUERY != 0 {
        if let Ok(r) = parsed {
            request = r;
        }
    }
    let Ok(plan) = media.plan(&options, &request) else {
        return;
    };

    // Arithmetic.
    assert!(plan.file_from <= plan.file_to, "{plan:?}");
    assert!(plan.file_to <= size, "file_to past the end: {plan:?}");
    assert_eq!(
        plan.len(),
        plan.prefix.len() as u64 + plan.file_to - plan.file_from
    );
    assert!(plan.start_ms <= plan.end_ms);
    assert_eq!(
        plan.whole_file,
        plan.prefix.is_empty() && plan.file_from == 0 && plan.file_to == size
    );
    assert_eq!(media.plan(&options, &request).ok().as_ref(), Some(&plan));

    // Prefix.
    let mode = request.prefix.unwrap_or(options.prefix);
    if let Some(ib) = request.initial_bytes {
        assert_eq!(&plan.prefix[..], &media_bytes[..ib as usize]);
        assert!(plan.file_from >= ib);
    } else if mode == PrefixMode::None {
        assert!(plan.prefix.is_empty(), "prefix in mode none");
    } else if !plan.prefix.is_empty() {
        check_prefix(&plan, mode);
    }

    // Preconditions and Range.
    let range = (!c.range.is_empty()).then(|| String::from_utf8_lossy(c.range).into_owned());
    let weak = format!("W/{}", plan.etag);
    let if_range = match (c.flags >> IF_RANGE_SHIFT) % 4 {
        1 => Some(plan.etag.as_str()),
        2 => Some("\"stale\""),
        3 => Some(weak.as_str()),
        _ => None,
    };
    let conditions = Conditions {
        range: range.as_deref(),
        if_match: (c.flags & IF_MATCH_ETAG != 0).then_some(plan.etag.as_str()),
        if_none_match: None,
        if_range,
    };
    let r = plan.respond(&conditions);
    // If-Range with anything but the plan's strong ETag means the whole response.
    let ranged = if_range.map_or(true, |tag| tag == plan.etag);
    let outcome = if ranged {
        plan.range(range.as_deref())
    } else {
        RangeOutcome::Full
    };
    match (r.status, outcome) {
        (200, RangeOutcome::Full) => assert_eq!((r.first, r.len), (0, plan.len())),
        (206, RangeOutcome::Partial { first, len }) => {
            assert_eq!((r.first, r.len), (first, len));
            assert!(r.len > 0 && r.first.checked_add(r.len).is_some_and(|e| e <= plan.len()));
            let shown = plan.content_range(&r).expect("Content-Range for 206");
            let expected = format!("bytes {}-{}/{}", r.first, r.first + r.len - 1, plan.len());
            assert_eq!(shown, expected);
        }
        (416, RangeOutcome::Unsatisfiable) => {
            assert_eq!(r.len, 0);
            assert_eq!(
                plan.content_range(&r),
                Some(format!("bytes */{}", plan.len()))
            );
        }
        (status, outcome) => panic!("status {status} for {outcome:?}: {r:?}"),
    }
    let none_match = Conditions {
        if_none_match: Some(plan.etag.as_str()),
        ..conditions
    };
    assert_eq!(plan.respond(&none_match).status, 304);
    let mismatch = Conditions {
        if_match: Some("\"no-such-etag\""),
        ..conditions
    };
    assert_eq!(plan.respond(&mismatch).status, 412);

    // Windows outside the response are refused.
    assert!(media.stream(&plan, plan.len(), 1).is_err());
    assert!(media.stream(&plan, u64::MAX, 2).is_err());

    drain(&media, &plan, media_bytes, r.first, r.len, c.seed);
});
