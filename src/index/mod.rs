//! Keyframe index: where a stream may start, built from metadata that has
//! been checked against the file, or by scanning tag headers.

pub mod flv;
pub mod flv_head;
pub mod flv_mp4;
pub mod flv_samples;
mod flv_walk;
pub mod mp4;

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::format::nal::{self, NalFraming, StartVerdict};
use crate::format::Format;
use crate::source::{read_full_at, ByteSource};

/// A point a stream may start at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyframe {
    /// Presentation time of the tag, milliseconds, as stamped in the file.
    pub time_ms: u64,
    /// Offset of the tag's first header byte.
    pub offset: u64,
}

/// Where the keyframe index came from. Numbers are part of the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum IndexOrigin {
    /// The file's own metadata, checked against the tags it points at.
    Metadata = 1,
    /// The metadata's keyframes did not match the file; rebuilt by scanning.
    MetadataStale = 2,
    /// No keyframe metadata; built by scanning.
    Scanned = 3,
}

impl IndexOrigin {
    pub fn name(self) -> &'static str {
        match self {
            IndexOrigin::Metadata => "metadata",
            IndexOrigin::MetadataStale => "metadata-stale-rebuilt",
            IndexOrigin::Scanned => "scanned",
        }
    }
}

/// What a host or player wants to know about a file.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaInfo {
    pub format: Format,
    pub size: u64,
    /// Timestamp of the first audio/video tag.
    pub start_ms: u64,
    pub duration_ms: u64,
    pub has_audio: bool,
    pub has_video: bool,
    /// FLV CodecID (video) or SoundFormat (audio); FourCC for enhanced FLV.
    pub video_codec: Option<u32>,
    pub audio_codec: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Average over the media data, bits per second; 0 when duration is 0.
    pub bitrate_bps: u64,
    pub keyframe_count: usize,
    /// Seek points are audio tags about a second apart (no video).
    pub seek_points_from_audio: bool,
    pub origin: IndexOrigin,
    /// Samples the file flags as keyframes whose first picture depends on
    /// earlier ones (a non-IDR I picture): not seek points.
    pub keyframe_flags_overruled: usize,
}

/// The index of one file, whatever its format.
#[derive(Debug)]
pub enum MediaIndex {
    Flv(flv::FlvIndex),
    Mp4(mp4::Mp4Index),
    /// A file served as MP4 (an FLV made into one).
    Mp4View(Box<flv_mp4::Mp4ViewIndex>),
}

impl MediaIndex {
    /// Recognises the format and builds its index.
    pub fn build(src: &dyn ByteSource) -> Result<MediaIndex> {
        let mut head = [0u8; 16];
        let n = read_full_at(src, 0, &mut head)?;
        match Format::sniff(&head[..n]) {
            Some(Format::Flv) => Ok(MediaIndex::Flv(flv::FlvIndex::build(src)?)),
            Some(Format::Mp4) => Ok(MediaIndex::Mp4(mp4::Mp4Index::build(src)?)),
            None => Err(Error::UnsupportedFormat(
                "neither FLV nor MP4 (no FLV signature, no ISO BMFF box)".into(),
            )),
        }
    }

    pub fn info(&self) -> &MediaInfo {
        match self {
            MediaIndex::Flv(i) => &i.info,
            MediaIndex::Mp4(i) => &i.info,
            MediaIndex::Mp4View(v) => &v.info,
        }
    }

    pub fn keyframes(&self) -> &[Keyframe] {
        match self {
            MediaIndex::Flv(i) => &i.keyframes,
            MediaIndex::Mp4(i) => &i.keyframes,
            MediaIndex::Mp4View(v) => v.base.keyframes(),
        }
    }

    /// The head of the virtual file that lists the keyframes, when one
    /// was built (FLV).
    pub fn virtual_head(&self) -> Option<&flv_head::VirtualHead> {
        match self {
            MediaIndex::Flv(i) => i.virtual_head.as_ref(),
            MediaIndex::Mp4(_) | MediaIndex::Mp4View(_) => None,
        }
    }

    /// Approximate heap bytes, for the cache's budget.
    pub fn cost_bytes(&self) -> usize {
        match self {
            MediaIndex::Flv(i) => i.cost_bytes(),
            MediaIndex::Mp4(i) => i.cost_bytes(),
            MediaIndex::Mp4View(v) => v.cost_bytes(),
        }
    }

    /// Limits that apply to an index taken from the cache as to a new one
    /// (a limit lowered after the file was indexed still holds).
    pub fn check_limits(&self) -> Result<()> {
        match self {
            MediaIndex::Mp4(m) => mp4::check_moov_limit(m.moov_size),
            MediaIndex::Flv(_) => Ok(()),
            MediaIndex::Mp4View(v) => v.base.check_limits(),
        }
    }

    /// Figures of the format's own index for the info JSON, each followed by
    /// a comma (none for FLV, whose figures are the virtual head's).
    pub fn write_format_json(&self, out: &mut String) {
        if let MediaIndex::Mp4(m) = self {
            let samples = m.sample_count();
            let bytes = m.cost_bytes();
            let _ = write!(
                out,
                "\"mp4\":{{\"moov_bytes\":{},\"moov_first\":{},\"faststart_head_bytes\":{},\
                 \"fragmented\":{},\"tracks\":{},\"samples\":{samples},\
                 \"index_bytes\":{bytes},\"index_bytes_per_sample\":{:.2}}},",
                m.moov_size,
                m.moov_first,
                m.faststart
                    .as_ref()
                    .map_or("null".to_string(), |f| f.head.len().to_string()),
                matches!(m.layout, mp4::Layout::Fragments { .. }),
                m.tracks.len(),
                bytes as f64 / samples.max(1) as f64,
            );
        }
    }

    /// Whether the file is served as MP4 through a view made from its
    /// samples (it is not MP4 itself).
    pub fn mp4_needs_view(&self) -> bool {
        matches!(self, MediaIndex::Flv(_))
    }

    /// The Content-Type a host should send for this file.
    pub fn content_type(&self) -> &'static str {
        match self {
            MediaIndex::Flv(_) => "video/x-flv",
            MediaIndex::Mp4(i) => i.content_type(),
            MediaIndex::Mp4View(v) => v.content_type(),
        }
    }
}

/// First read of a flagged sample: enough for the parameter sets and the
/// first slice header of nearly every sample.
pub(crate) const FLAGGED_FIRST_READ: u64 = 512;

/// What a sample the file flags as a keyframe turns out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flagged {
    /// A decoder can start there (or its bytes do not parse as NAL units:
    /// the flag stands).
    Start,
    /// A gradual decoding refresh point: exact pictures some frames later.
    Gradual,
    /// Its first picture depends on earlier ones.
    Dependent,
}

/// What a sample the file flags as a keyframe (`len` bytes at `offset`) is,
/// read from its first NAL units. Only a picture shown to depend on earlier
/// ones loses its flag.
pub(crate) fn check_flagged_sample(
    src: &dyn ByteSource,
    offset: u64,
    len: u64,
    framing: NalFraming,
) -> Result<Flagged> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut want = (FLAGGED_FIRST_READ as usize).min(len);
    loop {
        let mut buf = vec![0; want];
        let got = read_full_at(src, offset, &mut buf)?;
        buf.truncate(got);
        match nal::start_verdict(framing, &buf, len) {
            StartVerdict::Dependent => return Ok(Flagged::Dependent),
            StartVerdict::Gradual => return Ok(Flagged::Gradual),
            StartVerdict::NeedBytes(n)
                if got == want
                    && n > want
                    && n <= nal::MAX_SEI_BYTES + FLAGGED_FIRST_READ as usize =>
            {
                want = n.max(want * 2).min(len);
            }
            _ => return Ok(Flagged::Start),
        }
    }
}

/// The seek points of a track once its flagged samples are checked: those
/// a decoder starts from, and, in a stream that refreshes gradually (one
/// such point at most, the first picture), its gradual refresh points too:
/// refusing them would leave every seek the whole file. Returns the points
/// sorted by `key`, and how many flags were set aside.
pub(crate) fn settle_flags<T: Copy, K: Ord>(
    mut starts: Vec<T>,
    gradual: Vec<T>,
    dependent: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, usize) {
    if gradual.is_empty() || starts.len() > 1 {
        return (starts, dependent + gradual.len());
    }
    starts.extend(gradual);
    starts.sort_by_key(|t| key(t));
    (starts, dependent)
}

/// Index of the last keyframe at or before `offset` (None: before the first).
pub fn keyframe_at_or_before_offset(keyframes: &[Keyframe], offset: u64) -> Option<usize> {
    keyframes
        .partition_point(|k| k.offset <= offset)
        .checked_sub(1)
}

/// Index of the keyframe for a time seek: the last time at or before
/// `time_ms`; among keyframes sharing that time, the first in the file.
pub fn keyframe_at_or_before_time(keyframes: &[Keyframe], time_ms: u64) -> Option<usize> {
    let last = keyframes
        .partition_point(|k| k.time_ms <= time_ms)
        .checked_sub(1)?;
    let time = keyframes[last].time_ms;
    Some(keyframes[..=last].partition_point(|k| k.time_ms < time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kf(list: &[(u64, u64)]) -> Vec<Keyframe> {
        list.iter()
            .map(|&(time_ms, offset)| Keyframe { time_ms, offset })
            .collect()
    }

    #[test]
    fn gradual_refresh_points_count_only_where_nothing_else_is() {
        // IDR pictures every GOP: recovery points with a count are set aside.
        let (kept, overruled) = settle_flags(vec![0, 50, 100], vec![25, 75], 1, |&s| s);
        assert_eq!((kept, overruled), (vec![0, 50, 100], 3));
        // Periodic intra refresh: the first picture is the only IDR.
        let (kept, overruled) = settle_flags(vec![0], vec![75, 25], 0, |&s| s);
        assert_eq!((kept, overruled), (vec![0, 25, 75], 0));
    }

    #[test]
    fn lookups() {
        let k = kf(&[(0, 100), (2000, 500), (2000, 600), (4000, 900)]);
        assert_eq!(keyframe_at_or_before_offset(&k, 99), None);
        assert_eq!(keyframe_at_or_before_offset(&k, 100), Some(0));
        assert_eq!(keyframe_at_or_before_offset(&k, 599), Some(1));
        assert_eq!(keyframe_at_or_before_offset(&k, 10_000), Some(3));
        assert_eq!(keyframe_at_or_before_time(&k, 1999), Some(0));
        // Duplicate times: the first tag carrying that time.
        assert_eq!(keyframe_at_or_before_time(&k, 2000), Some(1));
        assert_eq!(keyframe_at_or_before_time(&k, 3999), Some(1));
        assert_eq!(keyframe_at_or_before_time(&k, 99_999), Some(3));
        assert_eq!(keyframe_at_or_before_time(&kf(&[(500, 1)]), 499), None);
        assert_eq!(keyframe_at_or_before_time(&[], 5), None);
    }
}
