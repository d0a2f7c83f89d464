//! FLV seek resolution: snap to keyframes, clip at tag boundaries, build the
//! prefix each mode needs.

use super::{Cut, Position, PrefixMode, Request, MAX_INITIAL_BYTES};
use crate::error::{Error, Result};
use crate::format::flv::meta::{encode_cut_metadata, CutMetadata, MAX_CUT_KEYFRAMES};
use crate::format::flv::tag::{
    set_tag_timestamp, write_stream_header, write_tag, STREAM_HEADER_LEN, TAG_SCRIPT,
};
use crate::index::flv::FlvIndex;
use crate::index::{keyframe_at_or_before_offset, keyframe_at_or_before_time};
use crate::source::{read_full_at, ByteSource};

/// Where the file part of a response begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The file from its first byte, unchanged.
    Whole,
    /// An exact byte, no snapping (prefix mode `none`).
    Raw(u64),
    /// The keyframe with this index.
    Keyframe(usize),
}

pub(super) fn resolve(
    index: &FlvIndex,
    src: &dyn ByteSource,
    request: &Request,
    mode: PrefixMode,
) -> Result<Cut> {
    let size = index.info.size;
    let media_end_ms = index.info.start_ms.saturating_add(index.info.duration_ms);
    check_order(request)?;

    let start = match request.start {
        None | Some(Position::Bytes(0)) | Some(Position::Millis(0)) => Start::Whole,
        Some(Position::Bytes(b)) if b >= size => {
            return Err(Error::unsatisfiable(format!(
                "start byte {b} is past the end of a {size}-byte file"
            )))
        }
        Some(Position::Millis(t)) if t > media_end_ms => {
            return Err(Error::unsatisfiable(format!(
                "start time {t} ms is past the end of the media ({media_end_ms} ms)"
            )))
        }
        Some(Position::Bytes(b)) if mode == PrefixMode::None && request.initial_bytes.is_none() => {
            Start::Raw(b)
        }
        Some(Position::Bytes(b)) if b < index.media_start => Start::Whole,
        Some(Position::Bytes(b)) => {
            keyframe_at_or_before_offset(&index.keyframes, b).map_or(Start::Whole, Start::Keyframe)
        }
        Some(Position::Millis(t)) => {
            keyframe_at_or_before_time(&index.keyframes, t).map_or(Start::Whole, Start::Keyframe)
        }
    };

    let mut prefix = Vec::new();
    let mut start = start;
    let mut file_from = match start {
        Start::Whole => 0,
        Start::Raw(b) => b,
        Start::Keyframe(i) => index.keyframes[i].offset,
    };
    if let Some(ib) = request.initial_bytes {
        if ib > MAX_INITIAL_BYTES {
            return Err(Error::bad_request(format!(
                "initial bytes {ib} exceed the limit of {MAX_INITIAL_BYTES}"
            )));
        }
        if ib > size {
            return Err(Error::unsatisfiable(format!(
                "initial bytes {ib} exceed the {size}-byte file"
            )));
        }
        prefix = vec![0; ib as usize];
        if read_full_at(src, 0, &mut prefix)? != prefix.len() {
            return Err(Error::SourceChanged("file shrank while planning".into()));
        }
        // A seek point inside the initial bytes would repeat them: go on after.
        if file_from < ib {
            start = Start::Whole;
            file_from = ib;
        }
    }

    let start_ms = match start {
        Start::Whole => index.info.start_ms,
        Start::Keyframe(i) => index.keyframes[i].time_ms,
        Start::Raw(b) => keyframe_at_or_before_offset(&index.keyframes, b)
            .map_or(index.info.start_ms, |i| index.keyframes[i].time_ms),
    };

    let (file_to, end_ms) = match request.end {
        None => (size, media_end_ms),
        Some(Position::Bytes(e)) if e.saturating_add(1) >= size => (size, media_end_ms),
        Some(Position::Bytes(e)) if mode == PrefixMode::None => {
            (e + 1, index.tag_end_after(src, e)?.1)
        }
        Some(Position::Bytes(e)) => index.tag_end_after(src, e)?,
        Some(Position::Millis(t)) if t >= media_end_ms => (size, media_end_ms),
        Some(Position::Millis(t)) => (index.first_tag_at_time(src, t)?, t),
    };
    if file_to <= file_from && !(file_to == size && file_from == size) {
        return Err(Error::unsatisfiable(format!(
            "the requested end is not after the start (file bytes {file_from}..{file_to})"
        )));
    }
    // A decodable cut must reach past the head into the media.
    if mode != PrefixMode::None && request.end.is_some() && file_to <= index.media_start {
        return Err(Error::unsatisfiable(format!(
            "the requested end (file byte {file_to}) lies before the first media tag"
        )));
    }

    if let Start::Keyframe(i) = start {
        if request.initial_bytes.is_none() {
            let kf = index.keyframes[i];
            prefix = seek_prefix(index, mode, kf.offset, kf.time_ms, file_to, end_ms)?;
        }
    }
    Ok(Cut {
        prefix,
        from: file_from,
        to: file_to,
        start_ms,
        end_ms: end_ms.max(start_ms),
    })
}

/// Start and end in the same unit must be in order.
fn check_order(request: &Request) -> Result<()> {
    let reversed = match (request.start, request.end) {
        (Some(Position::Bytes(s)), Some(Position::Bytes(e))) => e < s,
        (Some(Position::Millis(s)), Some(Position::Millis(e))) => e <= s,
        _ => false,
    };
    if reversed {
        return Err(Error::unsatisfiable("end is not after start"));
    }
    Ok(())
}

/// The prefix for a seek to the keyframe at `from`, stamped `time_ms`.
fn seek_prefix(
    index: &FlvIndex,
    mode: PrefixMode,
    from: u64,
    time_ms: u64,
    to: u64,
    end_ms: u64,
) -> Result<Vec<u8>> {
    if mode == PrefixMode::None {
        return Ok(Vec::new());
    }
    let configs_len: usize = index.configs_before(from).map(|c| c.bytes.len()).sum();
    let mut prefix = Vec::with_capacity(STREAM_HEADER_LEN + configs_len);
    write_stream_header(&mut prefix, index.info.has_audio, index.info.has_video);
    if mode == PrefixMode::Header {
        return Ok(prefix);
    }
    if mode == PrefixMode::Full {
        let in_cut: Vec<_> = index
            .keyframes
            .iter()
            .filter(|k| k.offset >= from && k.offset < to)
            .collect();
        let step = in_cut.len().div_ceil(MAX_CUT_KEYFRAMES).max(1);
        let listed: Vec<_> = in_cut.into_iter().step_by(step).collect();
        let meta = |shift: Option<u64>, total: u64| {
            let positions: Vec<(f64, f64)> = listed
                .iter()
                .map(|k| match shift {
                    Some(head) => (k.time_ms as f64 / 1000.0, (k.offset - from + head) as f64),
                    None => (0.0, 0.0),
                })
                .collect();
            encode_cut_metadata(
                index.metadata.as_ref(),
                &CutMetadata {
                    duration_s: end_ms.saturating_sub(time_ms) as f64 / 1000.0,
                    filesize: total as f64,
                    keyframes: &positions,
                },
            )
        };
        // The body's size does not depend on the numbers: measure, then fill.
        let body_len = meta(None, 0).len();
        let tag_len = body_len + 15;
        let head = (prefix.len() + tag_len + configs_len) as u64;
        let body = meta(Some(head), head + (to - from));
        debug_assert_eq!(body.len(), body_len);
        prefix.reserve(tag_len);
        write_tag(&mut prefix, TAG_SCRIPT, 0, &body);
    }
    // Codec configuration tags, restamped so the cut starts at the keyframe.
    for c in index.configs_before(from) {
        let at = prefix.len();
        prefix.extend_from_slice(&c.bytes);
        set_tag_timestamp(&mut prefix[at..], time_ms as u32);
    }
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::media::Media;
    use crate::plan::{Options, Position, Request};
    use crate::source::MemorySource;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Found by the plan fuzzer: one video tag at 1 ms and an onMetaData
    /// duration of 1e300 s overflowed the media end time.
    #[test]
    fn absurd_metadata_duration_is_ignored() {
        let flv = hex(
            "464c5601010000000900000000120000280000000000000002000a6f6e4d6574614461\
             7461080000000100086475726174696f6e007e37e43c8800759c0000090000003309\
             000000000001000000000000000b",
        );
        let media = Media::from_source(Arc::new(MemorySource::new(flv))).unwrap();
        assert_eq!(media.info().duration_ms, 0);
        for start in [None, Some(Position::Millis(5)), Some(Position::Bytes(60))] {
            let request = Request {
                start,
                ..Request::default()
            };
            let _ = media.plan(&Options::default(), &request);
        }
    }
}
