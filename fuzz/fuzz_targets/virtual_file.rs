//! Virtual files (keyframes listed on the fly): for any FLV bytes, the served
//! file is a well-formed FLV whose first tag is an onMetaData listing seek
//! points at tag starts, and every request in its coordinates answers
//! exactly what the same request answers on those bytes served as stored.
//!
//! Input: 8 control bytes, then the FLV. Control: [0] metadata mode and
//! prefix mode, [1..3] and [3..5] two positions (per mille of the virtual
//! file), [5] which request families, [6..8] an `ib` size.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pseudostream::format::flv::meta;
use pseudostream::format::flv::tag::{parse_tag_header, TAG_HEADER_LEN};
use pseudostream::index::MediaIndex;
use pseudostream::{
    Fill, Media, MemorySource, MetadataMode, Options, Plan, Position, PrefixMode, Request,
};

fn drain(media: &Media, plan: &Plan) -> Vec<u8> {
    let mut stream = media.stream(plan, 0, plan.len()).expect("stream");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        match stream.fill(&mut buf, 0) {
            Ok(Fill::Data(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Fill::Done) => break,
            Ok(Fill::Wait(_)) => panic!("unpaced stream waited"),
            Err(e) => panic!("drain: {e}"),
        }
    }
    assert_eq!(out.len() as u64, plan.len());
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (control, flv) = data.split_at(8);
    // MP4 has its own target.
    if !flv.starts_with(b"FLV") {
        return;
    }
    let Ok(media) = Media::from_source(Arc::new(MemorySource::new(flv.to_vec()))) else {
        return;
    };
    let metadata = if control[0] & 1 == 0 {
        MetadataMode::Missing
    } else {
        MetadataMode::Always
    };
    let options = Options {
        metadata,
        prefix: PrefixMode::from_u32(u32::from(control[0] >> 1) % 4).unwrap(),
        ..Options::default()
    };
    let Ok(whole) = media.plan(&options, &Request::default()) else {
        return;
    };
    let served = drain(&media, &whole);
    if whole.whole_file {
        assert_eq!(served, flv);
        return;
    }

    // A well-formed head: FLV header, then an onMetaData listing seek points
    // at tag starts of the served bytes.
    assert_eq!(&served[..3], b"FLV");
    let data_start = u32::from_be_bytes(served[5..9].try_into().unwrap()) as usize + 4;
    let h = parse_tag_header(&served[data_start..data_start + TAG_HEADER_LEN]);
    assert_eq!(h.tag_type, 18, "first tag is not script data");
    let body = &served[data_start + TAG_HEADER_LEN..data_start + TAG_HEADER_LEN + h.data_size as usize];
    let (name, value) = meta::parse_script(body).expect("onMetaData decodes");
    assert_eq!(name, meta::ON_METADATA);
    let listed = meta::metadata_from(&value).keyframes.expect("keyframes listed");
    assert!(!listed.is_empty());
    for w in listed.windows(2) {
        assert!(w[0].1 < w[1].1, "positions not rising");
    }
    for &(_, pos) in &listed {
        let pos = pos as usize;
        assert!(pos + TAG_HEADER_LEN <= served.len(), "listed position outside");
        let t = parse_tag_header(&served[pos..]);
        assert!(matches!(t.tag_type, 8 | 9), "listed position is no media tag");
    }

    // The same requests on the served bytes, served as stored.
    let twin = Media::from_source(Arc::new(MemorySource::new(served.clone()))).unwrap();
    let as_stored = Options {
        metadata: MetadataMode::Off,
        ..options.clone()
    };
    let len = served.len() as u64;
    let at = |b: &[u8]| u64::from(u16::from_le_bytes([b[0], b[1]])) % 1001 * len / 1000;
    let (a, b) = (at(&control[1..3]), at(&control[3..5]));
    let (lo, hi) = (a.min(b), a.max(b));
    let ib = u64::from(u16::from_le_bytes([control[6], control[7]]));
    let requests = [
        Request {
            start: Some(Position::Bytes(lo)),
            ..Request::default()
        },
        Request {
            start: Some(Position::Bytes(lo)),
            end: Some(Position::Bytes(hi)),
            ..Request::default()
        },
        Request {
            start: Some(Position::Bytes(lo)),
            end: Some(Position::Bytes(hi)),
            prefix: Some(PrefixMode::None),
            ..Request::default()
        },
        Request {
            start: Some(Position::Bytes(hi)),
            initial_bytes: Some(ib),
            ..Request::default()
        },
        Request {
            end: Some(Position::Bytes(lo)),
            prefix: Some(PrefixMode::None),
            ..Request::default()
        },
    ];
    for (n, request) in requests.iter().enumerate() {
        if control[5] & (1 << n) == 0 {
            continue;
        }
        match (media.plan(&options, request), twin.plan(&as_stored, request)) {
            (Ok(p), Ok(q)) => {
                // The twin's index comes from the listed keyframes and
                // walks only the head and the last group of pictures, so
                // in files whose timestamps jump back it may judge the
                // media's start and end apart from a scan, which sees every
                // tag (and which streams it holds, and codec configuration
                // tags past the head, which seeks re-send); prefixes state
                // those, and responses carry the times. Then both must only
                // agree that the request can be served.
                let (a, b) = (media.info(), twin.info());
                let configs = |m: &Media| match m.index() {
                    MediaIndex::Flv(i) => i.configs.len(),
                    MediaIndex::Mp4(_) => 0,
                };
                let same = (a.start_ms, a.duration_ms, a.has_audio, a.has_video)
                    == (b.start_ms, b.duration_ms, b.has_audio, b.has_video)
                    && configs(&media) == configs(&twin);
                if same {
                    assert_eq!(drain(&media, &p), drain(&twin, &q), "{request:?}");
                    assert_eq!((p.start_ms, p.end_ms), (q.start_ms, q.end_ms), "{request:?}");
                }
            }
            (Err(e), Err(f)) => assert_eq!(e.http_status(), f.http_status(), "{request:?}"),
            (p, q) => panic!("{request:?}: {p:?} vs {q:?}"),
        }
    }
});
