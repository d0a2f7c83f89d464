//! Opening media from memory: any bytes either fail cleanly or give an index
//! whose keyframes are ordered, inside the file, and agree with the info.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pseudostream::format::flv::tag::{parse_tag_header, PREV_SIZE_LEN, TAG_HEADER_LEN};
use pseudostream::index::MediaIndex;
use pseudostream::{Media, MemorySource};

fuzz_target!(|data: &[u8]| {
    let Ok(media) = Media::from_source(Arc::new(MemorySource::new(data.to_vec()))) else {
        return;
    };
    let info = media.info();
    let keyframes = media.keyframes();
    let size = data.len() as u64;

    assert_eq!(info.size, size);
    assert_eq!(info.keyframe_count, keyframes.len());
    for k in keyframes {
        assert!(k.offset < size, "keyframe {k:?} outside a {size}-byte file");
    }
    for w in keyframes.windows(2) {
        assert!(w[0].offset < w[1].offset, "offsets not rising: {w:?}");
        assert!(w[0].time_ms <= w[1].time_ms, "times going back: {w:?}");
    }
    if info.seek_points_from_audio {
        assert!(!info.has_video);
    }
    if info.duration_ms == 0 {
        assert_eq!(info.bitrate_bps, 0);
    }

    #[allow(irrefutable_let_patterns)]
    if let MediaIndex::Flv(index) = media.index() {
        let whole_tag = (TAG_HEADER_LEN + PREV_SIZE_LEN) as u64;
        assert!(index.data_start <= size);
        assert!(index.media_start <= size);
        for k in keyframes {
            // A seek point is the first byte of a whole tag in the file.
            assert!(
                k.offset >= index.data_start,
                "keyframe {k:?} inside the file header"
            );
            assert!(
                k.offset + whole_tag <= size,
                "keyframe {k:?} is not a whole tag"
            );
            let at = k.offset as usize;
            let h = parse_tag_header(&data[at..at + TAG_HEADER_LEN]);
            assert!(
                k.offset + h.span() <= size,
                "keyframe {k:?} tag runs past the end"
            );
        }
        for c in &index.configs {
            let from = c.offset as usize;
            assert!(c.bytes.len() as u64 >= whole_tag);
            assert!(
                from + c.bytes.len() <= data.len(),
                "config tag past the end"
            );
            assert_eq!(
                &data[from..from + c.bytes.len()],
                &c.bytes[..],
                "config bytes differ"
            );
        }
    }

    let json = media.info_json();
    let format = media.info().format.name();
    assert!(json.starts_with(&format!("{{\"format\":\"{format}\"")));
    assert!(json.ends_with("]}"));
    assert_eq!(json.matches("\"time_ms\":").count(), keyframes.len());
    let count = format!("\"keyframe_count\":{},", keyframes.len());
    assert!(json.contains(&count), "keyframe_count in JSON");
});
