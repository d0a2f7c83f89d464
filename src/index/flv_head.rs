//! The head of an FLV's "virtual file": the file's header, an onMetaData
//! that lists every seek point (times and filepositions in the virtual
//! file's own byte coordinates), then the file's other head script tags.
//! The file's tags from its first audio/video tag on follow unchanged, so a
//! player that only seeks with metadata keyframes (flv.js, mpegts.js) can
//! seek in files whose own metadata has none. Built once per file version.

use std::sync::Arc;

use super::{Keyframe, MediaInfo};
use crate::error::Result;
use crate::fnv;
use crate::format::flv::meta::{self, encode_cut_metadata, CutMetadata, Metadata};
use crate::format::flv::tag::{write_tag, TAG_HEADER_LEN, TAG_SCRIPT};
use crate::source::{read_full_at, ByteSource};

use super::flv_walk::{Step, TagWalker};

/// Most seek points listed (18 bytes each in the onMetaData): a 55-hour
/// file with a keyframe every 2 s. Longer lists are thinned evenly, which
/// leaves a player snapping to a slightly earlier listed keyframe.
pub const MAX_HEAD_KEYFRAMES: usize = 100_000;
/// A header region (FLV header, DataOffset padding) larger than this is not
/// carried over: such a file is served as it is.
const MAX_FILE_HEADER: u64 = 64 * 1024;
/// Other script tags in the head (onCuePoint, custom events) are carried
/// over up to this many bytes in all; past it the file is served as it is.
const MAX_KEPT_SCRIPT_BYTES: u64 = 1024 * 1024;

/// The bytes that replace the file's `[0, replaces)`.
#[derive(Debug)]
pub struct VirtualHead {
    pub bytes: Arc<[u8]>,
    /// The file's first audio/video tag: file bytes from here on follow the
    /// head unchanged.
    pub replaces: u64,
    /// FNV-1a of `bytes`, so a plan's validator need not hash them per request.
    pub digest: u64,
    /// Seek points listed (after thinning).
    pub listed: usize,
}

impl VirtualHead {
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Size of the virtual file made from a file of `file_size` bytes.
    pub fn virtual_size(&self, file_size: u64) -> u64 {
        self.len() + (file_size - self.replaces)
    }

    /// Where virtual byte `v` comes from in the file; None inside the head.
    pub fn to_file(&self, v: u64) -> Option<u64> {
        v.checked_sub(self.len()).map(|past| past + self.replaces)
    }

    /// The virtual offset of file byte `offset` (at or after `replaces`).
    pub fn to_virtual(&self, offset: u64) -> u64 {
        offset - self.replaces + self.len()
    }
}

/// What the head is made of.
pub(crate) struct HeadParts<'a> {
    pub info: &'a MediaInfo,
    pub keyframes: &'a [Keyframe],
    pub metadata: Option<&'a Metadata>,
    /// End of the file header and PreviousTagSize0.
    pub data_start: u64,
    /// The first audio/video tag.
    pub media_start: u64,
}

/// Builds the virtual head, or None when there is nothing to list or the
/// head is beyond the limits above (the file is then served as it is).
pub(crate) fn build(src: &dyn ByteSource, parts: &HeadParts) -> Result<Option<VirtualHead>> {
    let size = parts.info.size;
    if parts.keyframes.is_empty()
        || parts.media_start >= size
        || parts.data_start > MAX_FILE_HEADER
        || parts.data_start > parts.media_start
    {
        return Ok(None);
    }
    let mut file_header = vec![0u8; parts.data_start as usize];
    if read_full_at(src, 0, &mut file_header)? != file_header.len() {
        return Ok(None);
    }
    let Some(kept_tags) = other_head_scripts(src, parts.data_start, parts.media_start)? else {
        return Ok(None);
    };

    let step = parts.keyframes.len().div_ceil(MAX_HEAD_KEYFRAMES).max(1);
    let listed: Vec<&Keyframe> = parts.keyframes.iter().step_by(step).collect();
    // Times on the player's clock, which starts at the first media tag.
    let origin_ms = parts.info.start_ms;
    let body = |head_len: u64| {
        let positions: Vec<(f64, f64)> = listed
            .iter()
            .map(|k| {
                let t = k.time_ms.saturating_sub(origin_ms) as f64 / 1000.0;
                (t, (k.offset - parts.media_start + head_len) as f64)
            })
            .collect();
        encode_cut_metadata(
            parts.metadata,
            &CutMetadata {
                duration_s: parts.info.duration_ms as f64 / 1000.0,
                filesize: (head_len + size - parts.media_start) as f64,
                keyframes: &positions,
            },
        )
    };
    // AMF0 numbers are fixed-width: the body's size does not depend on them.
    let body_len = body(0).len();
    let Some(tag_len) = tag_span(body_len) else {
        return Ok(None);
    };
    let head_len = file_header.len() + tag_len + kept_tags.len();
    let mut bytes = Vec::with_capacity(head_len);
    bytes.extend_from_slice(&file_header);
    write_tag(&mut bytes, TAG_SCRIPT, 0, &body(head_len as u64));
    bytes.extend_from_slice(&kept_tags);
    debug_assert_eq!(bytes.len(), head_len);
    let digest = fnv::digest(&bytes);
    Ok(Some(VirtualHead {
        bytes: bytes.into(),
        replaces: parts.media_start,
        digest,
        listed: listed.len(),
    }))
}

/// Header, body and PreviousTagSize of a tag with this body; None when the
/// body does not fit a tag.
fn tag_span(body_len: usize) -> Option<usize> {
    (body_len <= crate::format::flv::tag::MAX_TAG_BODY).then_some(TAG_HEADER_LEN + body_len + 4)
}

/// The head's script tags other than onMetaData, whole and in order; None
/// when they exceed the carry-over limit.
fn other_head_scripts(
    src: &dyn ByteSource,
    data_start: u64,
    media_start: u64,
) -> Result<Option<Vec<u8>>> {
    let mut spans = Vec::new();
    TagWalker::new(src).walk(data_start, |pos, h, _| {
        if pos >= media_start {
            return Step::Stop;
        }
        spans.push((pos, h.span(), h.tag_type == TAG_SCRIPT));
        Step::Go
    })?;
    let mut kept = Vec::new();
    for (pos, span, is_script) in spans {
        if !is_script {
            continue;
        }
        if kept.len() as u64 + span > MAX_KEPT_SCRIPT_BYTES {
            return Ok(None);
        }
        let at = kept.len();
        kept.resize(at + span as usize, 0);
        if read_full_at(src, pos, &mut kept[at..])? != span as usize {
            return Ok(None);
        }
        let body_end = kept.len() - 4;
        let is_metadata = meta::parse_script(&kept[at + TAG_HEADER_LEN..body_end])
            .is_some_and(|(name, _)| name == meta::ON_METADATA);
        if is_metadata {
            kept.truncate(at);
        }
    }
    Ok(Some(kept))
}
