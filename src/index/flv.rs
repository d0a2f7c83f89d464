//! FLV keyframe index. The head of the file is walked tag by tag (headers
//! and the first body bytes only) until the codec configuration and
//! onMetaData are known. Metadata keyframes are then checked against the
//! tags they point at; when they do not hold, or are missing, the walk goes
//! on to the end of the file.

use byteorder::{BigEndian, ByteOrder};

use super::flv_head::{self, HeadParts, VirtualHead};
use super::flv_walk::{Step, TagWalker, PEEK};
use super::{check_flagged_sample, settle_flags, Flagged, IndexOrigin, Keyframe, MediaInfo};
use crate::error::{Error, Result};
use crate::format::flv::meta::{self, Metadata};
use crate::format::flv::tag::{
    self, audio_role, parse_file_header, parse_tag_header, video_role, TagError, TagHeader,
    VideoRole, PREV_SIZE_LEN, TAG_AUDIO, TAG_HEADER_LEN, TAG_SCRIPT, TAG_VIDEO,
};
use crate::format::nal::NalFraming;
use crate::format::Format;
use crate::source::{read_full_at, ByteSource};

/// Larger script tags are not read for onMetaData.
const MAX_SCRIPT_BODY: u32 = 16 * 1024 * 1024;
/// Larger codec configuration tags are not kept (real ones are < 1 KiB).
const MAX_CONFIG_TAG: u32 = 64 * 1024;
/// Codec configuration tags kept per file (they repeat on resolution changes).
const MAX_CONFIG_TAGS: usize = 64;
/// Audio-only files get a seek point about this often.
const AUDIO_SEEK_SPACING_MS: u64 = 1000;
/// The head walk gives up looking for a declared stream after this much media.
const HEAD_MEDIA_SPAN_MS: u64 = 5000;
const HEAD_MAX_TAGS: usize = 4000;
/// The largest tag timestamp (TimestampExtended included), in ms.
const TIME_LIMIT_MS: f64 = u32::MAX as f64;
/// Metadata times may be rounded; beyond this they describe another file.
const META_TIME_TOLERANCE_MS: u64 = 1500;

/// A codec configuration tag (AVC decoder configuration, AAC
/// AudioSpecificConfig), kept whole so a cut can re-send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigTag {
    pub offset: u64,
    pub is_video: bool,
    /// Header, body and PreviousTagSize, as in the file.
    pub bytes: Vec<u8>,
}

/// Everything the FLV plan needs, built once per file version.
#[derive(Debug)]
pub struct FlvIndex {
    pub info: MediaInfo,
    pub keyframes: Vec<Keyframe>,
    /// Offset of the first tag (after PreviousTagSize0).
    pub data_start: u64,
    /// Offset of the first audio or video tag: starts before it are the head.
    pub media_start: u64,
    pub configs: Vec<ConfigTag>,
    pub metadata: Option<Metadata>,
    /// The file with every seek point listed in a new onMetaData, for
    /// players that seek only by metadata keyframes (None: nothing to list).
    pub virtual_head: Option<VirtualHead>,
}

impl FlvIndex {
    pub(crate) fn cost_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.keyframes.len() * std::mem::size_of::<Keyframe>()
            + self
                .configs
                .iter()
                .map(|c| c.bytes.len() + 48)
                .sum::<usize>()
            + self
                .metadata
                .as_ref()
                .map_or(0, |m| m.kept_properties.len() + 128)
            + self
                .virtual_head
                .as_ref()
                .map_or(0, |h| h.bytes.len() + std::mem::size_of::<VirtualHead>())
    }

    /// The configuration tags to re-send before `offset`: the last video and
    /// the last audio configuration that precede it in the file.
    pub fn configs_before(&self, offset: u64) -> impl Iterator<Item = &ConfigTag> {
        let last = |video: bool| {
            self.configs
                .iter()
                .rev()
                .find(move |c| c.is_video == video && c.offset < offset)
        };
        last(true).into_iter().chain(last(false))
    }

    /// Builds the index of an FLV source.
    pub fn build(src: &dyn ByteSource) -> Result<FlvIndex> {
        let size = src.size();
        let mut head = [0u8; tag::FILE_HEADER_LEN];
        let n = read_full_at(src, 0, &mut head)?;
        let header = parse_file_header(&head[..n]).map_err(|e| match e {
            TagError::NotFlv => Error::UnsupportedFormat(e.to_string()),
            _ => Error::malformed(e.to_string()),
        })?;
        let data_start = u64::from(header.data_offset) + PREV_SIZE_LEN as u64;
        if data_start > size {
            return Err(Error::malformed("FLV file ends inside its header"));
        }

        let mut walker = TagWalker::new(src);
        let mut seen = Collector::new(src, header.has_audio, header.has_video);
        let head_end = walker.walk(data_start, |pos, h, peek| seen.visit(pos, h, peek, true))?;
        if seen.media_start.is_none() && head_end.stopped_at == data_start && size > data_start {
            return Err(Error::malformed(
                "no FLV tag could be read after the header",
            ));
        }

        // An empty list (flvmeta and ffmpeg write one for audio-only files) is no index.
        let meta_keyframes = seen
            .metadata
            .as_ref()
            .and_then(|m| m.keyframes.clone())
            .filter(|list| !list.is_empty());
        let checked = match &meta_keyframes {
            Some(list) => check_metadata_keyframes(src, &mut walker, &seen, list, data_start)?,
            None => None,
        };
        let (checked_flags, origin, last_ts) = match checked {
            Some(c) => {
                // Configurations past the head that the metadata path did
                // not walk over.
                for config in c.configs {
                    if seen.configs.len() < MAX_CONFIG_TAGS
                        && !seen.configs.iter().any(|k| k.offset == config.offset)
                    {
                        seen.configs.push(config);
                    }
                }
                seen.configs.sort_by_key(|k| k.offset);
                (c.flags, IndexOrigin::Metadata, c.last_ts)
            }
            None => {
                if let Some(resume) = head_end.resume_at {
                    walker.walk(resume, |pos, h, peek| seen.visit(pos, h, peek, false))?;
                }
                let origin = if meta_keyframes.is_some() {
                    IndexOrigin::MetadataStale
                } else {
                    IndexOrigin::Scanned
                };
                let flags = CheckedFlags {
                    starts: std::mem::take(&mut seen.keyframes),
                    gradual: std::mem::take(&mut seen.gradual),
                    dependent: seen.dependent,
                };
                (flags, origin, seen.last_ts)
            }
        };
        let (keyframes, overruled) = checked_flags.settle();

        let seek_points_from_audio = keyframes.is_empty() && !seen.has_video;
        let keyframes = if seek_points_from_audio {
            std::mem::take(&mut seen.audio_points)
        } else {
            keyframes
        };
        let start_ms = seen.first_ts.unwrap_or(0);
        let media_start = seen.media_start.unwrap_or(size);
        let mut duration_ms = last_ts.saturating_sub(start_ms);
        if duration_ms == 0 {
            let meta_ms = seen
                .metadata
                .as_ref()
                .and_then(|m| m.duration_s)
                // Tag times are 32-bit milliseconds; a longer claim is noise.
                .filter(|d| d.is_finite() && *d > 0.0 && *d * 1000.0 <= TIME_LIMIT_MS)
                .map_or(0, |d| (d * 1000.0) as u64);
            duration_ms = meta_ms;
        }
        let bitrate_bps = if duration_ms > 0 {
            let bits = u128::from(size - media_start.min(size)) * 8000;
            (bits / u128::from(duration_ms)) as u64
        } else {
            0
        };
        let dimension = |v: Option<f64>| {
            v.filter(|d| d.is_finite() && *d > 0.0 && *d < 65536.0)
                .map(|d| d as u32)
        };
        let metadata = seen.metadata.take();
        let info = MediaInfo {
            format: Format::Flv,
            size,
            start_ms,
            duration_ms,
            has_audio: seen.has_audio,
            has_video: seen.has_video,
            video_codec: seen.video_codec,
            audio_codec: seen.audio_codec,
            width: dimension(metadata.as_ref().and_then(|m| m.width)),
            height: dimension(metadata.as_ref().and_then(|m| m.height)),
            bitrate_bps,
            keyframe_count: keyframes.len(),
            seek_points_from_audio,
            origin,
            keyframe_flags_overruled: overruled,
        };
        let virtual_head = flv_head::build(
            src,
            &HeadParts {
                info: &info,
                keyframes: &keyframes,
                metadata: metadata.as_ref(),
                data_start,
                media_start,
            },
        )?;
        Ok(FlvIndex {
            info,
            keyframes,
            data_start,
            media_start,
            configs: seen.configs,
            metadata,
            virtual_head,
        })
    }

    /// End of the tag containing byte `last_byte` and the latest timestamp up
    /// to there, found by walking from the keyframe at or before it (a tag
    /// boundary, whatever byte a raw range starts at): a cut ending there
    /// ends on a whole tag.
    pub fn tag_end_after(&self, src: &dyn ByteSource, last_byte: u64) -> Result<(u64, u64)> {
        let start = self.walk_start(|k| k.offset <= last_byte);
        let mut end = src.size();
        let mut last_ts = self.info.start_ms;
        TagWalker::new(src).walk(start, |pos, h, _| {
            if matches!(h.tag_type, TAG_AUDIO | TAG_VIDEO) {
                last_ts = last_ts.max(u64::from(h.timestamp));
            }
            let next = pos + h.span();
            if next > last_byte {
                end = next;
                return Step::Stop;
            }
            Step::Go
        })?;
        Ok((end, last_ts))
    }

    /// Offset of the first audio/video tag stamped at or after `time_ms`,
    /// walking from the keyframe at or before that time; the source size
    /// when there is none.
    pub fn first_tag_at_time(&self, src: &dyn ByteSource, time_ms: u64) -> Result<u64> {
        let start = self.walk_start(|k| k.time_ms <= time_ms);
        let mut end = src.size();
        TagWalker::new(src).walk(start, |pos, h, _| {
            if matches!(h.tag_type, TAG_AUDIO | TAG_VIDEO) && u64::from(h.timestamp) >= time_ms {
                end = pos;
                return Step::Stop;
            }
            Step::Go
        })?;
        Ok(end)
    }

    /// The last keyframe for which `before` holds, or the first tag.
    fn walk_start(&self, before: impl Fn(&Keyframe) -> bool) -> u64 {
        let i = self.keyframes.partition_point(before);
        i.checked_sub(1)
            .map_or(self.data_start, |i| self.keyframes[i].offset)
            .max(self.data_start)
    }
}

/// Checks metadata keyframes against the file: every position must be the
/// start of a video tag with FrameType 1 whose PreviousTagSize leads back to
/// a tag header of that size, positions must rise, times must match the tags
/// up to one constant offset (ffmpeg writes times relative to the first
/// packet), the head must hold no earlier keyframe and the tail no later one.
/// Entries on sequence headers or end-of-sequence tags (yamdi and flvmeta list
/// them) move to the next picture keyframe, or drop out; so do entries on
/// pictures that depend on earlier ones. Returns the keyframes with the
/// tags' own times, the last timestamp in the file and how many keyframe
/// flags were overruled.
fn check_metadata_keyframes(
    src: &dyn ByteSource,
    walker: &mut TagWalker,
    head: &Collector,
    list: &[(f64, f64)],
    data_start: u64,
) -> Result<Option<MetadataChecked>> {
    let mut flags = CheckedFlags::default();
    let mut configs = Vec::new();
    let size = src.size();
    if let Some(declared) = head.metadata.as_ref().and_then(|m| m.filesize) {
        if declared > 0.0 && declared != size as f64 {
            return Ok(None);
        }
    }
    let mut keyframes: Vec<Keyframe> = Vec::with_capacity(list.len());
    let mut time_offset: Option<i128> = None;
    let mut previous_pos = None;
    let mut buf = [0u8; PREV_SIZE_LEN + PEEK];
    for &(time_s, pos_f) in list {
        let valid_number = pos_f.is_finite() && pos_f.fract() == 0.0 && pos_f >= 0.0;
        // Tag times are 32-bit milliseconds: a time beyond them is not one.
        let valid_time = time_s.is_finite() && time_s >= 0.0 && time_s * 1000.0 <= TIME_LIMIT_MS;
        if !valid_number || !valid_time {
            return Ok(None);
        }
        let pos = pos_f as u64;
        if pos < data_start || pos >= size || previous_pos.is_some_and(|p| pos <= p) {
            return Ok(None);
        }
        previous_pos = Some(pos);
        // One read for the tags just before the keyframe, its header and
        // its first NAL units; what lies beyond goes to the source.
        let near = Around::read(
            src,
            pos.saturating_sub(AROUND_BEFORE)
                .max(data_start - PREV_SIZE_LEN as u64),
            pos + AROUND_AFTER,
        )?;
        let src: &dyn ByteSource = &near;
        let n = read_full_at(src, pos - PREV_SIZE_LEN as u64, &mut buf)?;
        if n < PREV_SIZE_LEN + TAG_HEADER_LEN {
            return Ok(None);
        }
        let h = parse_tag_header(&buf[PREV_SIZE_LEN..]);
        let body = &buf[PREV_SIZE_LEN + TAG_HEADER_LEN..n];
        let frame_type_1 = h.tag_type == TAG_VIDEO && body.first().is_some_and(|b| b >> 4 == 1);
        if !frame_type_1
            || pos + h.span() > size
            || !previous_tag_leads_back(src, pos, &buf, data_start)?
        {
            return Ok(None);
        }
        let meta_ms = (time_s * 1000.0) as i128;
        let offset = *time_offset.get_or_insert(i128::from(h.timestamp) - meta_ms);
        if (i128::from(h.timestamp) - meta_ms - offset).unsigned_abs()
            > u128::from(META_TIME_TOLERANCE_MS)
        {
            return Ok(None);
        }
        let picture = match video_role(body) {
            Some((_, VideoRole::Keyframe)) => Some((pos, u64::from(h.timestamp), h, body.to_vec())),
            _ => next_picture_keyframe(walker, pos)?,
        };
        let Some((pos, tag_ms, h, peek)) = picture else {
            continue;
        };
        match keyframe_verdict(src, head.framing, pos, &h, &peek) {
            Flagged::Start => {}
            Flagged::Gradual => {
                flags.gradual.push(Keyframe {
                    time_ms: tag_ms,
                    offset: pos,
                });
                continue;
            }
            Flagged::Dependent => {
                flags.dependent += 1;
                continue;
            }
        }
        if keyframes.last().is_some_and(|k| pos <= k.offset) {
            continue;
        }
        configs.extend(configs_just_before(src, pos, data_start, head.media_start)?);
        let time_ms = keyframes.last().map_or(tag_ms, |k| tag_ms.max(k.time_ms));
        keyframes.push(Keyframe {
            time_ms,
            offset: pos,
        });
    }
    let (Some(first), Some(last)) = (keyframes.first().copied(), keyframes.last().copied()) else {
        return Ok(None);
    };
    // The head walk may have met keyframes the metadata does not list.
    if head.keyframes.iter().any(|k| k.offset < first.offset) {
        return Ok(None);
    }
    // Walk the last group of pictures: no keyframe may follow the last one.
    let mut last_ts = head.last_ts;
    let mut unlisted = false;
    walker.walk(last.offset, |pos, h, peek| {
        if matches!(h.tag_type, TAG_AUDIO | TAG_VIDEO) {
            last_ts = last_ts.max(u64::from(h.timestamp));
        }
        let keyframe =
            h.tag_type == TAG_VIDEO && matches!(video_role(peek), Some((_, VideoRole::Keyframe)));
        if keyframe && pos != last.offset {
            let beyond_list = previous_pos.is_some_and(|listed| pos > listed);
            match keyframe_verdict(src, head.framing, pos, h, peek) {
                Flagged::Dependent => {
                    // Listed ones were counted with the list.
                    if beyond_list {
                        flags.dependent += 1;
                    }
                    return Step::Go;
                }
                Flagged::Gradual if !beyond_list => return Step::Go,
                _ => {}
            }
            unlisted = true;
            return Step::Stop;
        }
        Step::Go
    })?;
    flags.starts = keyframes;
    Ok((!unlisted).then_some(MetadataChecked {
        flags,
        last_ts,
        configs,
    }))
}

/// Keyframe flags sorted by what the flagged tags turned out to be.
#[derive(Default)]
struct CheckedFlags {
    /// Seek points, in file order.
    starts: Vec<Keyframe>,
    /// Gradual decoding refresh points.
    gradual: Vec<Keyframe>,
    /// Pictures that depend on earlier ones.
    dependent: usize,
}

impl CheckedFlags {
    /// The seek points (gradual refresh points among them when the stream
    /// has no other, see `settle_flags`) and how many flags were set aside.
    fn settle(self) -> (Vec<Keyframe>, usize) {
        let (mut keyframes, overruled) =
            settle_flags(self.starts, self.gradual, self.dependent, |k| k.offset);
        // Times must not run backwards for time lookups.
        for i in 1..keyframes.len() {
            keyframes[i].time_ms = keyframes[i].time_ms.max(keyframes[i - 1].time_ms);
        }
        (keyframes, overruled)
    }
}

/// Metadata keyframes that hold, the last timestamp in the file, and the
/// codec configurations found just before the keyframes.
struct MetadataChecked {
    flags: CheckedFlags,
    last_ts: u64,
    configs: Vec<ConfigTag>,
}

/// Bytes read at once around each metadata keyframe: before it (the tags
/// `configs_just_before` looks at: audio tags are a few hundred bytes) and
/// after its start (header and the first NAL units a check reads).
const AROUND_BEFORE: u64 = 1024;
const AROUND_AFTER: u64 = 640;

/// A window of a source read at once; reads outside it go to the source.
struct Around<'a> {
    src: &'a dyn ByteSource,
    start: u64,
    bytes: Vec<u8>,
}

impl<'a> Around<'a> {
    fn read(src: &'a dyn ByteSource, start: u64, end: u64) -> Result<Around<'a>> {
        let mut bytes = vec![0; end.saturating_sub(start) as usize];
        let n = read_full_at(src, start, &mut bytes)?;
        bytes.truncate(n);
        Ok(Around { src, start, bytes })
    }
}

impl ByteSource for Around<'_> {
    fn size(&self) -> u64 {
        self.src.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.start + self.bytes.len() as u64;
        if offset >= self.start && offset + buf.len() as u64 <= end {
            let at = (offset - self.start) as usize;
            buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
            return Ok(buf.len());
        }
        self.src.read_at(offset, buf)
    }

    fn identity(&self) -> crate::source::SourceIdentity {
        self.src.identity()
    }
}

/// Tags looked at before a keyframe for a new codec configuration.
const CONFIG_LOOKBACK_TAGS: usize = 16;

/// The codec configurations among the tags just before the keyframe at
/// `pos`, found by following PreviousTagSize back until a video picture (or
/// `CONFIG_LOOKBACK_TAGS` tags, or the head). A writer that meets a new
/// configuration mid-stream (a resolution change: ffmpeg, recorders such as
/// nginx-rtmp) puts it right before the keyframe that needs it, audio tags
/// at most in between; the metadata path walks no further, so this is where
/// it finds them.
fn configs_just_before(
    src: &dyn ByteSource,
    mut pos: u64,
    data_start: u64,
    media_start: Option<u64>,
) -> Result<Vec<ConfigTag>> {
    let floor = media_start.unwrap_or(data_start).max(data_start);
    let mut found = Vec::new();
    for _ in 0..CONFIG_LOOKBACK_TAGS {
        if pos < floor + (TAG_HEADER_LEN + PREV_SIZE_LEN) as u64 {
            break;
        }
        let mut size = [0u8; PREV_SIZE_LEN];
        if read_full_at(src, pos - PREV_SIZE_LEN as u64, &mut size)? < PREV_SIZE_LEN {
            break;
        }
        let prev_size = u64::from(BigEndian::read_u32(&size));
        let Some(prev) = (pos - PREV_SIZE_LEN as u64).checked_sub(prev_size) else {
            break;
        };
        if prev < floor {
            break;
        }
        let mut b = [0u8; PEEK];
        let n = read_full_at(src, prev, &mut b)?;
        if n < TAG_HEADER_LEN {
            break;
        }
        let h = parse_tag_header(&b);
        if !h.is_plausible() || u64::from(h.expected_prev_size()) != prev_size {
            break;
        }
        let body = &b[TAG_HEADER_LEN..n.min(TAG_HEADER_LEN + h.data_size as usize)];
        let is_video = match h.tag_type {
            TAG_VIDEO => match video_role(body) {
                Some((_, VideoRole::SequenceHeader)) => true,
                Some((_, VideoRole::NoPicture)) => {
                    pos = prev;
                    continue;
                }
                _ => break,
            },
            TAG_AUDIO if audio_role(body).is_some_and(|r| r.1) => false,
            _ => {
                pos = prev;
                continue;
            }
        };
        if h.data_size <= MAX_CONFIG_TAG {
            let mut bytes = vec![0u8; h.span() as usize];
            if read_full_at(src, prev, &mut bytes)? == bytes.len() {
                found.push(ConfigTag {
                    offset: prev,
                    is_video,
                    bytes,
                });
            }
        }
        pos = prev;
    }
    Ok(found)
}

/// A keyframe tag: offset, timestamp, header and first body bytes.
type FoundKeyframe = (u64, u64, TagHeader, Vec<u8>);

/// The picture keyframe that follows a configuration or end-of-sequence tag,
/// if the next video tag is one.
fn next_picture_keyframe(walker: &mut TagWalker, from: u64) -> Result<Option<FoundKeyframe>> {
    let mut found = None;
    let mut video_tags = 0;
    walker.walk(from, |pos, h, peek| {
        if h.tag_type != TAG_VIDEO {
            return Step::Go;
        }
        video_tags += 1;
        match video_role(peek) {
            Some((_, VideoRole::Keyframe)) => {
                found = Some((pos, u64::from(h.timestamp), *h, peek.to_vec()));
                Step::Stop
            }
            Some((_, VideoRole::SequenceHeader)) if video_tags < 4 => Step::Go,
            _ if video_tags == 1 => Step::Go,
            _ => Step::Stop,
        }
    })?;
    Ok(found)
}

/// Whether the PreviousTagSize in `buf[..4]` (read just before `pos`) points
/// back at a tag header whose size it matches, or at PreviousTagSize0.
fn previous_tag_leads_back(
    src: &dyn ByteSource,
    pos: u64,
    buf: &[u8],
    data_start: u64,
) -> Result<bool> {
    let prev_size = u64::from(BigEndian::read_u32(&buf[..PREV_SIZE_LEN]));
    if prev_size == 0 {
        return Ok(pos == data_start);
    }
    let Some(prev_pos) = (pos - PREV_SIZE_LEN as u64).checked_sub(prev_size) else {
        return Ok(false);
    };
    if prev_pos < data_start {
        return Ok(false);
    }
    let mut hdr = [0u8; TAG_HEADER_LEN];
    if read_full_at(src, prev_pos, &mut hdr)? < TAG_HEADER_LEN {
        return Ok(false);
    }
    let h = parse_tag_header(&hdr);
    Ok(h.is_plausible() && u64::from(h.expected_prev_size()) == prev_size)
}

/// The NAL framing a video sequence header tag body declares.
fn framing_of(body: &[u8]) -> Option<NalFraming> {
    let (coding, record) = tag::video_config_record(body)?;
    NalFraming::from_record(coding, record)
}

/// What a video tag flagged as a keyframe (FrameType 1) holds; `peek` is
/// its first body bytes. Tags of other codecs, or before any sequence
/// header, keep their flag, as do those that cannot be read.
fn keyframe_verdict(
    src: &dyn ByteSource,
    framing: Option<NalFraming>,
    pos: u64,
    h: &TagHeader,
    peek: &[u8],
) -> Flagged {
    let (Some(framing), Some((coding, at))) = (framing, tag::video_nal_units_at(peek)) else {
        return Flagged::Start;
    };
    let at = at as u64;
    if coding != framing.coding || u64::from(h.data_size) <= at {
        return Flagged::Start;
    }
    let body = pos + TAG_HEADER_LEN as u64;
    check_flagged_sample(src, body + at, u64::from(h.data_size) - at, framing)
        .unwrap_or(Flagged::Start)
}

/// Gathers what the walk sees.
struct Collector<'a> {
    src: &'a dyn ByteSource,
    declared_audio: bool,
    declared_video: bool,
    keyframes: Vec<Keyframe>,
    audio_points: Vec<Keyframe>,
    configs: Vec<ConfigTag>,
    /// NAL framing of the latest H.264/HEVC sequence header.
    framing: Option<NalFraming>,
    /// Gradual decoding refresh points flagged as keyframes.
    gradual: Vec<Keyframe>,
    /// Keyframe flags on pictures that depend on earlier ones.
    dependent: usize,
    metadata: Option<Metadata>,
    media_start: Option<u64>,
    has_audio: bool,
    has_video: bool,
    seen_audio_frame: bool,
    video_codec: Option<u32>,
    audio_codec: Option<u32>,
    first_ts: Option<u64>,
    last_ts: u64,
    tags: usize,
}

impl<'a> Collector<'a> {
    fn new(src: &'a dyn ByteSource, declared_audio: bool, declared_video: bool) -> Self {
        Collector {
            src,
            declared_audio,
            declared_video,
            keyframes: Vec::new(),
            audio_points: Vec::new(),
            configs: Vec::new(),
            framing: None,
            gradual: Vec::new(),
            dependent: 0,
            metadata: None,
            media_start: None,
            has_audio: false,
            has_video: false,
            seen_audio_frame: false,
            video_codec: None,
            audio_codec: None,
            first_ts: None,
            last_ts: 0,
            tags: 0,
        }
    }

    /// Records one tag. In the head walk, stops once the codec configuration
    /// and the first frames of every declared stream are known.
    fn visit(&mut self, pos: u64, h: &TagHeader, peek: &[u8], in_head: bool) -> Step {
        self.tags += 1;
        let ts = u64::from(h.timestamp);
        match h.tag_type {
            TAG_SCRIPT if self.media_start.is_none() => self.script(pos, h),
            TAG_VIDEO => {
                let role = video_role(peek);
                let is_config = matches!(role, Some((_, VideoRole::SequenceHeader)));
                self.media(pos, ts, is_config);
                self.has_video = true;
                if let Some((codec, role)) = role {
                    self.video_codec.get_or_insert(codec);
                    match role {
                        VideoRole::Keyframe => {
                            match keyframe_verdict(self.src, self.framing, pos, h, peek) {
                                Flagged::Start => self.push_keyframe(ts, pos),
                                Flagged::Gradual => self.gradual.push(Keyframe {
                                    time_ms: ts,
                                    offset: pos,
                                }),
                                Flagged::Dependent => self.dependent += 1,
                            }
                        }
                        VideoRole::SequenceHeader => self.config(pos, h, true),
                        _ => {}
                    }
                }
            }
            TAG_AUDIO => {
                let role = audio_role(peek);
                self.media(pos, ts, role.is_some_and(|r| r.1));
                self.has_audio = true;
                if let Some((format, is_config)) = role {
                    self.audio_codec.get_or_insert(format);
                    if is_config {
                        self.config(pos, h, false);
                    } else {
                        self.seen_audio_frame = true;
                        let due = self
                            .audio_points
                            .last()
                            .map_or(true, |p| ts >= p.time_ms + AUDIO_SEEK_SPACING_MS);
                        if due {
                            self.audio_points.push(Keyframe {
                                time_ms: ts,
                                offset: pos,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        if in_head && self.head_is_known(ts) {
            return Step::Stop;
        }
        Step::Go
    }

    fn head_is_known(&self, ts: u64) -> bool {
        let video_known = !self.declared_video || !self.keyframes.is_empty();
        let audio_known = !self.declared_audio || self.seen_audio_frame;
        let media_span = self
            .first_ts
            .is_some_and(|first| ts > first + HEAD_MEDIA_SPAN_MS);
        (video_known && audio_known && self.media_start.is_some())
            || media_span
            || self.tags >= HEAD_MAX_TAGS
    }

    /// Notes an audio/video tag; configuration tags do not start the clock
    /// (ffmpeg stamps them 0 even when the media starts later).
    fn media(&mut self, pos: u64, ts: u64, is_config: bool) {
        self.media_start.get_or_insert(pos);
        if !is_config {
            self.first_ts.get_or_insert(ts);
        }
        self.last_ts = self.last_ts.max(ts);
    }

    fn push_keyframe(&mut self, ts: u64, pos: u64) {
        // Times must not run backwards for time lookups; clamp broken stamps.
        let time_ms = self.keyframes.last().map_or(ts, |k| ts.max(k.time_ms));
        self.keyframes.push(Keyframe {
            time_ms,
            offset: pos,
        });
    }

    /// Keeps a configuration tag whole (within the limits) and notes the
    /// NAL framing a video one declares, from one read.
    fn config(&mut self, pos: u64, h: &TagHeader, is_video: bool) {
        let keep = h.data_size <= MAX_CONFIG_TAG && self.configs.len() < MAX_CONFIG_TAGS;
        // Enough for the length-size byte: 5 body bytes before the record,
        // then 22 bytes into an hvcC (5 into an avcC).
        let len = if keep {
            h.span()
        } else {
            h.span().min((TAG_HEADER_LEN + 5 + 23) as u64)
        };
        let mut bytes = vec![0u8; len as usize];
        let Ok(n) = read_full_at(self.src, pos, &mut bytes) else {
            return;
        };
        if is_video {
            let body = &bytes[TAG_HEADER_LEN.min(n)..n];
            self.framing = framing_of(body).or(self.framing);
        }
        if keep && n == bytes.len() {
            self.configs.push(ConfigTag {
                offset: pos,
                is_video,
                bytes,
            });
        }
    }

    /// Reads an onMetaData in the head. The first one with keyframes wins;
    /// failing that, the first one.
    fn script(&mut self, pos: u64, h: &TagHeader) {
        let has_keyframes = self
            .metadata
            .as_ref()
            .is_some_and(|m| m.keyframes.is_some());
        if has_keyframes || h.data_size > MAX_SCRIPT_BODY {
            return;
        }
        let mut body = vec![0u8; h.data_size as usize];
        let start = pos + TAG_HEADER_LEN as u64;
        if !matches!(read_full_at(self.src, start, &mut body), Ok(n) if n == body.len()) {
            return;
        }
        if let Some((name, value)) = meta::parse_script(&body) {
            if name == meta::ON_METADATA {
                let found = meta::metadata_from(&value);
                if self.metadata.is_none() || found.keyframes.is_some() {
                    self.metadata = Some(found);
                }
            }
        }
    }
}
