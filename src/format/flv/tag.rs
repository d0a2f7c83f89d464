//! FLV file header and tag headers (Adobe FLV spec, version 10.1, annex E),
//! plus the first body bytes that say what a tag carries. Pure functions.

use byteorder::{BigEndian, ByteOrder};

use crate::format::nal::VideoCoding;

/// Bytes of the FLV file header proper.
pub const FILE_HEADER_LEN: usize = 9;
/// Bytes of a tag header (type, size, timestamp, extended timestamp, stream id).
pub const TAG_HEADER_LEN: usize = 11;
/// Bytes of the PreviousTagSize field that follows every tag.
pub const PREV_SIZE_LEN: usize = 4;
/// Header + PreviousTagSize0, the smallest prefix of a valid stream.
pub const STREAM_HEADER_LEN: usize = FILE_HEADER_LEN + PREV_SIZE_LEN;

pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

/// Video codec ids whose body starts with an AVCPacketType byte.
const CODEC_AVC: u8 = 7;
const CODEC_HEVC_LEGACY: u8 = 12;
/// Sound format of AAC, whose body starts with an AACPacketType byte.
pub const SOUND_AAC: u8 = 10;
/// Enhanced-RTMP flag in the first video byte: a FourCC follows.
const EX_HEADER: u8 = 0x80;

/// What the FLV file header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u8,
    pub has_audio: bool,
    pub has_video: bool,
    /// Offset of PreviousTagSize0; 9 in every file seen in practice.
    pub data_offset: u32,
}

/// Why a header could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("not an FLV file (no FLV signature)")]
    NotFlv,
    #[error("FLV header too short")]
    Short,
    #[error("FLV header data offset {0} is smaller than the header")]
    BadDataOffset(u32),
}

/// Parses the 9-byte file header.
pub fn parse_file_header(b: &[u8]) -> Result<FileHeader, TagError> {
    if b.len() >= 3 && &b[..3] != b"FLV" {
        return Err(TagError::NotFlv);
    }
    if b.len() < FILE_HEADER_LEN {
        return Err(TagError::Short);
    }
    let data_offset = BigEndian::read_u32(&b[5..9]);
    if (data_offset as usize) < FILE_HEADER_LEN {
        return Err(TagError::BadDataOffset(data_offset));
    }
    Ok(FileHeader {
        version: b[3],
        has_audio: b[4] & 0x04 != 0,
        has_video: b[4] & 0x01 != 0,
        data_offset,
    })
}

/// Appends a spec-correct file header and PreviousTagSize0 (13 bytes).
pub fn write_stream_header(out: &mut Vec<u8>, has_audio: bool, has_video: bool) {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    out.extend_from_slice(b"FLV");
    out.push(1);
    out.push(flags);
    out.extend_from_slice(&(FILE_HEADER_LEN as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
}

/// One tag header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagHeader {
    /// 8 audio, 9 video, 18 script data; anything else is kept and skipped.
    pub tag_type: u8,
    /// The encryption filter bit.
    pub filtered: bool,
    pub data_size: u32,
    /// Milliseconds, TimestampExtended folded in as the upper 8 bits.
    pub timestamp: u32,
    pub stream_id: u32,
}

impl TagHeader {
    /// Bytes from this tag's first header byte to the next tag's: header, body
    /// and the PreviousTagSize trailer.
    pub fn span(&self) -> u64 {
        (TAG_HEADER_LEN + PREV_SIZE_LEN) as u64 + u64::from(self.data_size)
    }

    /// The PreviousTagSize value a correct writer puts after this tag.
    pub fn expected_prev_size(&self) -> u32 {
        self.data_size + TAG_HEADER_LEN as u32
    }

    /// Whether the reserved bits and type look like a real tag header.
    pub fn is_plausible(&self) -> bool {
        matches!(self.tag_type, TAG_AUDIO | TAG_VIDEO | TAG_SCRIPT)
    }
}

/// Parses an 11-byte tag header; `b` must hold at least 11 bytes.
pub fn parse_tag_header(b: &[u8]) -> TagHeader {
    let low = BigEndian::read_u24(&b[4..7]);
    TagHeader {
        tag_type: b[0] & 0x1f,
        filtered: b[0] & 0x20 != 0,
        data_size: BigEndian::read_u24(&b[1..4]),
        timestamp: (u32::from(b[7]) << 24) | low,
        stream_id: BigEndian::read_u24(&b[8..11]),
    }
}

/// Largest tag body: DataSize is 24 bits.
pub const MAX_TAG_BODY: usize = 0x00ff_ffff;

/// Appends a whole tag (header, body, PreviousTagSize). Callers keep bodies
/// within `MAX_TAG_BODY`.
pub fn write_tag(out: &mut Vec<u8>, tag_type: u8, timestamp: u32, body: &[u8]) {
    assert!(body.len() <= MAX_TAG_BODY, "tag body over 24 bits");
    let size = body.len() as u32;
    out.push(tag_type);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out.extend_from_slice(&(timestamp & 0x00ff_ffff).to_be_bytes()[1..]);
    out.push((timestamp >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
}

/// Rewrites the timestamp of a tag held in `tag` (starting at its header).
pub fn set_tag_timestamp(tag: &mut [u8], timestamp: u32) {
    tag[4..7].copy_from_slice(&(timestamp & 0x00ff_ffff).to_be_bytes()[1..]);
    tag[7] = (timestamp >> 24) as u8;
}

/// What a video tag carries, from its first body bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoRole {
    /// A key frame with a picture: a seek point.
    Keyframe,
    /// A frame that depends on earlier ones.
    InterFrame,
    /// Decoder configuration (AVC/HEVC sequence header): re-sent after a seek.
    SequenceHeader,
    /// End of sequence, video info/command frames: no picture.
    NoPicture,
}

/// Codec and role of a video tag body. Needs the first 2 bytes for legacy
/// codecs, 1 for enhanced ones; returns None for an empty body.
pub fn video_role(body: &[u8]) -> Option<(u32, VideoRole)> {
    let first = *body.first()?;
    if first & EX_HEADER != 0 {
        // Enhanced RTMP: frame type in bits 4-6, packet type in bits 0-3.
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0f;
        let fourcc = body
            .get(1..5)
            .map(BigEndian::read_u32)
            .unwrap_or(u32::from(first));
        let role = match (frame_type, packet_type) {
            (_, 0) => VideoRole::SequenceHeader,
            (5, _) | (_, 2) | (_, 4) | (_, 5) => VideoRole::NoPicture,
            (1, _) => VideoRole::Keyframe,
            _ => VideoRole::InterFrame,
        };
        return Some((fourcc, role));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    let packet_type = if codec == CODEC_AVC || codec == CODEC_HEVC_LEGACY {
        Some(*body.get(1)?)
    } else {
        None
    };
    let role = match (frame_type, packet_type) {
        (5, _) => VideoRole::NoPicture,
        (_, Some(0)) => VideoRole::SequenceHeader,
        (_, Some(p)) if p != 1 => VideoRole::NoPicture,
        (1, _) => VideoRole::Keyframe,
        _ => VideoRole::InterFrame,
    };
    Some((u32::from(codec), role))
}

/// The NAL-unit coding of a legacy CodecID or an enhanced FourCC.
fn nal_coding(codec: u32) -> Option<VideoCoding> {
    match codec {
        c if c == u32::from(CODEC_AVC) => Some(VideoCoding::H264),
        c if c == u32::from(CODEC_HEVC_LEGACY) => Some(VideoCoding::Hevc),
        c if c == u32::from_be_bytes(*b"avc1") => Some(VideoCoding::H264),
        c if c == u32::from_be_bytes(*b"hvc1") => Some(VideoCoding::Hevc),
        _ => None,
    }
}

/// The decoder configuration record (`avcC`/`hvcC` layout) of an H.264 or
/// HEVC sequence header body, and its coding.
pub fn video_config_record(body: &[u8]) -> Option<(VideoCoding, &[u8])> {
    let (codec, role) = video_role(body)?;
    if role != VideoRole::SequenceHeader {
        return None;
    }
    // Legacy: codec byte, packet type, composition time (3); enhanced:
    // header byte, FourCC (4).
    Some((nal_coding(codec)?, body.get(5..)?))
}

/// Where the NAL units of an H.264 or HEVC coded-frame body start, and its
/// coding (the first 2 bytes of the body tell; it may be shorter than that).
pub fn video_nal_units_at(body: &[u8]) -> Option<(VideoCoding, usize)> {
    let (codec, _) = video_role(body)?;
    let coding = nal_coding(codec)?;
    let first = body[0];
    let at = if first & EX_HEADER == 0 {
        5
    } else {
        // CodedFrames carries a composition time; CodedFramesX does not.
        match first & 0x0f {
            1 => 8,
            3 => 5,
            _ => return None,
        }
    };
    Some((coding, at))
}

/// Sound format of an audio tag body and whether it is an AAC
/// AudioSpecificConfig (re-sent after a seek).
pub fn audio_role(body: &[u8]) -> Option<(u32, bool)> {
    let format = *body.first()? >> 4;
    let is_config = format == SOUND_AAC && *body.get(1)? == 0;
    Some((u32::from(format), is_config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trip() {
        let mut out = Vec::new();
        write_stream_header(&mut out, true, false);
        assert_eq!(out.len(), STREAM_HEADER_LEN);
        let h = parse_file_header(&out).unwrap();
        assert_eq!(
            h,
            FileHeader {
                version: 1,
                has_audio: true,
                has_video: false,
                data_offset: 9
            }
        );
        assert_eq!(&out[9..13], &[0, 0, 0, 0]);
    }

    #[test]
    fn file_header_errors() {
        assert_eq!(parse_file_header(b"GIF89a..."), Err(TagError::NotFlv));
        assert_eq!(parse_file_header(b"FLV\x01"), Err(TagError::Short));
        assert_eq!(
            parse_file_header(b"FLV\x01\x05\0\0\0\x03"),
            Err(TagError::BadDataOffset(3))
        );
    }

    #[test]
    fn tag_round_trip_with_extended_timestamp() {
        let mut out = Vec::new();
        write_tag(&mut out, TAG_VIDEO, 0x1234_5678, &[0x17, 1, 0, 0, 0]);
        let h = parse_tag_header(&out);
        assert_eq!(h.tag_type, TAG_VIDEO);
        assert_eq!(h.data_size, 5);
        assert_eq!(h.timestamp, 0x1234_5678);
        assert_eq!(h.span() as usize, out.len());
        assert_eq!(
            BigEndian::read_u32(&out[out.len() - 4..]),
            h.expected_prev_size()
        );
        set_tag_timestamp(&mut out, 42);
        assert_eq!(parse_tag_header(&out).timestamp, 42);
    }

    #[test]
    fn video_roles() {
        assert_eq!(video_role(&[0x17, 0]), Some((7, VideoRole::SequenceHeader)));
        assert_eq!(video_role(&[0x17, 1]), Some((7, VideoRole::Keyframe)));
        assert_eq!(video_role(&[0x17, 2]), Some((7, VideoRole::NoPicture)));
        assert_eq!(video_role(&[0x27, 1]), Some((7, VideoRole::InterFrame)));
        assert_eq!(video_role(&[0x12]), Some((2, VideoRole::Keyframe)));
        assert_eq!(video_role(&[0x22]), Some((2, VideoRole::InterFrame)));
        assert_eq!(video_role(&[0x52, 0]), Some((2, VideoRole::NoPicture)));
        assert_eq!(video_role(&[0x17]), None);
        assert_eq!(video_role(&[]), None);
        // Enhanced RTMP: keyframe, coded frames, 'hvc1'.
        assert_eq!(
            video_role(&[0x91, b'h', b'v', b'c', b'1']),
            Some((u32::from_be_bytes(*b"hvc1"), VideoRole::Keyframe))
        );
        assert_eq!(
            video_role(&[0x90, b'h', b'v', b'c', b'1']).unwrap().1,
            VideoRole::SequenceHeader
        );
    }

    #[test]
    fn nal_unit_positions() {
        let record = [1u8, 0x64, 0, 0x1f, 0xff];
        let mut legacy = vec![0x17, 0, 0, 0, 0];
        legacy.extend_from_slice(&record);
        assert_eq!(
            video_config_record(&legacy),
            Some((VideoCoding::H264, &record[..]))
        );
        assert_eq!(
            video_nal_units_at(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2]),
            Some((VideoCoding::H264, 5))
        );
        assert_eq!(
            video_nal_units_at(&[0x91, b'h', b'v', b'c', b'1', 0, 0, 0]),
            Some((VideoCoding::Hevc, 8))
        );
        assert_eq!(
            video_nal_units_at(&[0x93, b'h', b'v', b'c', b'1']),
            Some((VideoCoding::Hevc, 5))
        );
        // Sorenson H.263 has no NAL units.
        assert_eq!(video_nal_units_at(&[0x12, 0]), None);
        assert_eq!(video_config_record(&[0x17, 1, 0, 0, 0, 1]), None);
    }

    #[test]
    fn audio_roles() {
        assert_eq!(audio_role(&[0xaf, 0]), Some((10, true)));
        assert_eq!(audio_role(&[0xaf, 1]), Some((10, false)));
        assert_eq!(audio_role(&[0x2f]), Some((2, false)));
        assert_eq!(audio_role(&[0xaf]), None);
    }
}
