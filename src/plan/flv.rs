//! FLV seek resolution: snap to keyframes, clip at tag boundaries, build the
//! prefix each mode needs.

use super::{Cut, MetadataMode, Position, Prefix, PrefixMode, Request, MAX_INITIAL_BYTES};
use crate::error::{Error, Result};
use crate::format::flv::meta::{encode_cut_metadata, CutMetadata, MAX_CUT_KEYFRAMES};
use crate::format::flv::tag::{
    set_tag_timestamp, write_stream_header, write_tag, STREAM_HEADER_LEN, TAG_SCRIPT,
};
use crate::index::flv::FlvIndex;
use crate::index::flv_head::VirtualHead;
use crate::index::{keyframe_at_or_before_offset, keyframe_at_or_before_time, IndexOrigin};
use crate::source::{read_full_at, ByteSource};

/// Where the file part of a response begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The served file from its first byte.
    Whole,
    /// An exact byte of the served file, no snapping (prefix mode `none`).
    Raw(u64),
    /// The keyframe with this index.
    Keyframe(usize),
}

/// The file as served: the stored file, or a virtual file whose head (with
/// every keyframe listed) replaces the stored bytes before the first media
/// tag. Byte positions a client sends are in the served file's coordinates.
struct Served<'a> {
    head: Option<&'a VirtualHead>,
    size: u64,
}

impl Served<'_> {
    fn len(&self) -> u64 {
        self.head.map_or(self.size, |h| h.virtual_size(self.size))
    }

    fn head_len(&self) -> u64 {
        self.head.map_or(0, VirtualHead::len)
    }

    /// Where the stored file's bytes begin to be served.
    fn file_base(&self) -> u64 {
        self.head.map_or(0, |h| h.replaces)
    }

    /// The stored offset of served byte `v`; None inside a virtual head.
    fn to_file(&self, v: u64) -> Option<u64> {
        self.head.map_or(Some(v), |h| h.to_file(v))
    }

    /// The served offset of stored byte `offset` (past any replaced head).
    fn to_served(&self, offset: u64) -> u64 {
        self.head.map_or(offset, |h| h.to_virtual(offset))
    }

    /// The served head from served byte `v` on (empty without a virtual head).
    fn head_from(&self, v: u64) -> Prefix {
        match self.head {
            Some(h) => Prefix::shared(&h.bytes, v.min(h.len()) as usize, h.digest),
            None => Prefix::empty(),
        }
    }

    /// Served bytes `[0, n)` (n ≤ len).
    fn read_first(&self, src: &dyn ByteSource, n: u64) -> Result<Vec<u8>> {
        let in_head = n.min(self.head_len()) as usize;
        let mut out = vec![0; n as usize];
        if let Some(h) = self.head {
            out[..in_head].copy_from_slice(&h.bytes[..in_head]);
        }
        let from_file = &mut out[in_head..];
        if !from_file.is_empty()
            && read_full_at(src, self.file_base(), from_file)? != from_file.len()
        {
            return Err(Error::SourceChanged("file shrank while planning".into()));
        }
        Ok(out)
    }
}

/// The virtual head to serve under `mode`, if any.
fn served_head(index: &FlvIndex, mode: MetadataMode) -> Option<&VirtualHead> {
    let head = index.virtual_head.as_ref()?;
    match mode {
        MetadataMode::Off => None,
        // The file's own list holds, unless it lists pictures a decoder
        // cannot start from.
        MetadataMode::Missing
            if index.info.origin == IndexOrigin::Metadata
                && index.info.keyframe_flags_overruled == 0 =>
        {
            None
        }
        MetadataMode::Missing | MetadataMode::Always => Some(head),
    }
}

pub(super) fn resolve(
    index: &FlvIndex,
    src: &dyn ByteSource,
    request: &Request,
    mode: PrefixMode,
    metadata: MetadataMode,
) -> Result<Cut> {
    let size = index.info.size;
    let served = Served {
        head: served_head(index, metadata),
        size,
    };
    let served_len = served.len();
    let media_end_ms = index.info.start_ms.saturating_add(index.info.duration_ms);
    check_order(request)?;

    let start = match request.start {
        Some(Position::Unitless { .. }) => return Err(unitless()),
        None | Some(Position::Bytes(0)) | Some(Position::Millis(0)) => Start::Whole,
        Some(Position::Bytes(b)) if b >= served_len => {
            return Err(Error::unsatisfiable(format!(
                "start byte {b} is past the end of a {served_len}-byte file"
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
        Some(Position::Bytes(b)) => match served.to_file(b) {
            Some(offset) if offset >= index.media_start => {
                keyframe_at_or_before_offset(&index.keyframes, offset)
                    .map_or(Start::Whole, Start::Keyframe)
            }
            _ => Start::Whole,
        },
        Some(Position::Millis(t)) => {
            keyframe_at_or_before_time(&index.keyframes, t).map_or(Start::Whole, Start::Keyframe)
        }
    };

    let mut start = start;
    // The prefix, and where the stored file's bytes take over.
    let (mut prefix, mut file_from) = match start {
        Start::Whole => (served.head_from(0), served.file_base()),
        Start::Raw(b) => match served.to_file(b) {
            Some(offset) => (Prefix::empty(), offset),
            None => (served.head_from(b), served.file_base()),
        },
        Start::Keyframe(i) => (Prefix::empty(), index.keyframes[i].offset),
    };
    if let Some(ib) = request.initial_bytes {
        if ib > MAX_INITIAL_BYTES {
            return Err(Error::bad_request(format!(
                "initial bytes {ib} exceed the limit of {MAX_INITIAL_BYTES}"
            )));
        }
        if ib > served_len {
            return Err(Error::unsatisfiable(format!(
                "initial bytes {ib} exceed the {served_len}-byte file"
            )));
        }
        let seek_at = match start {
            Start::Keyframe(i) => served.to_served(index.keyframes[i].offset),
            _ => 0,
        };
        if seek_at < ib || start == Start::Whole {
            // A seek point inside the initial bytes would repeat them: the
            // response is the served file from its start.
            start = Start::Whole;
            (prefix, file_from) = match served.to_file(ib) {
                Some(offset) => (served.read_first(src, ib)?.into(), offset),
                None => (served.head_from(0), served.file_base()),
            };
        } else {
            prefix = served.read_first(src, ib)?.into();
        }
    }

    let start_ms = match start {
        Start::Whole => index.info.start_ms,
        Start::Keyframe(i) => index.keyframes[i].time_ms,
        Start::Raw(b) => served
            .to_file(b)
            .and_then(|offset| keyframe_at_or_before_offset(&index.keyframes, offset))
            .map_or(index.info.start_ms, |i| index.keyframes[i].time_ms),
    };

    let (file_to, end_ms) = match request.end {
        Some(Position::Unitless { .. }) => return Err(unitless()),
        None => (size, media_end_ms),
        Some(Position::Bytes(e)) if e.saturating_add(1) >= served_len => (size, media_end_ms),
        Some(Position::Bytes(e)) => match served.to_file(e) {
            // A raw range may end inside a virtual head: trim the prefix.
            None if mode == PrefixMode::None && request.initial_bytes.is_none() => {
                let served_from = match start {
                    Start::Raw(b) => b,
                    _ => 0,
                };
                let keep = (e + 1).saturating_sub(served_from) as usize;
                prefix = prefix[..keep.min(prefix.len())].to_vec().into();
                (file_from, start_ms)
            }
            None => (served.file_base(), start_ms),
            Some(last) if mode == PrefixMode::None => (last + 1, index.tag_end_after(src, last)?.1),
            Some(last) => index.tag_end_after(src, last)?,
        },
        Some(Position::Millis(t)) if t >= media_end_ms => (size, media_end_ms),
        Some(Position::Millis(t)) => (index.first_tag_at_time(src, t)?, t),
    };
    let empty_tail = file_to == size && file_from == size;
    if file_to <= file_from && !empty_tail && prefix.is_empty() {
        return Err(Error::unsatisfiable(format!(
            "the requested end is not after the start (file bytes {file_from}..{file_to})"
        )));
    }
    // A decodable cut must reach past the head into the media.
    if mode != PrefixMode::None && request.end.is_some() && file_to <= index.media_start {
        return Err(Error::unsatisfiable(format!(
            "the requested end (served byte {}) lies before the first media tag",
            served.to_served(file_to.max(served.file_base()))
        )));
    }

    if let Start::Keyframe(i) = start {
        if request.initial_bytes.is_none() {
            let kf = index.keyframes[i];
            prefix = seek_prefix(index, mode, kf.offset, kf.time_ms, file_to, end_ms)?.into();
        }
    }
    Ok(Cut {
        rest: super::Rest::Stored,
        prefix,
        from: file_from,
        to: file_to.max(file_from),
        start_ms,
        end_ms: end_ms.max(start_ms),
    })
}

/// `plan::resolve` gives every position its unit before a format sees it.
fn unitless() -> Error {
    Error::InvalidArgument("a position without a unit reached the FLV plan".into())
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
