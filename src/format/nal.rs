//! Whether a coded video sample is one a decoder can start from, read from
//! its NAL units (ITU-T H.264 and H.265). Containers flag keyframes, and
//! some muxers flag every intra picture, IDR or not (GStreamer's h264parse
//! does); a decoder that starts at a non-IDR I picture shows nothing until
//! the next IDR. Pure functions over the sample's first bytes.

/// The video codecs whose samples can be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCoding {
    H264,
    Hevc,
}

/// How a sample's NAL units are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalFraming {
    pub coding: VideoCoding,
    /// Bytes of each NAL unit's length prefix (1, 2 or 4), from the
    /// decoder configuration record.
    pub length_size: u8,
}

/// What the first bytes of a sample say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartVerdict {
    /// An IDR picture, an H.264 picture after a recovery point SEI with
    /// recovery_frame_cnt 0 (open GOPs), or an HEVC IRAP picture.
    Decodable,
    /// An H.264 picture after a recovery point with recovery_frame_cnt
    /// above 0 (gradual decoding refresh, periodic intra refresh): pictures
    /// are exact only that many frames later, and a decoder may complain
    /// before. The only random access points of a stream that refreshes
    /// this way (no IDR follows its first picture).
    Gradual,
    /// Its first picture depends on pictures before it.
    Dependent,
    /// The first `n` bytes of the sample are needed to tell.
    NeedBytes(usize),
    /// The bytes do not parse as NAL units of this framing: the container's
    /// flag stands.
    Unknown,
}

/// Larger SEI NAL units are not read for a recovery point.
pub const MAX_SEI_BYTES: usize = 64 * 1024;

const H264_NON_IDR: u8 = 1;
const H264_IDR: u8 = 5;
const H264_SEI: u8 = 6;
const SEI_RECOVERY_POINT: u32 = 6;

impl NalFraming {
    /// The framing a decoder configuration record declares: an
    /// AVCDecoderConfigurationRecord (`avcC`) for H.264, an
    /// HEVCDecoderConfigurationRecord (`hvcC`) for HEVC. None when it is
    /// malformed.
    pub fn from_record(coding: VideoCoding, record: &[u8]) -> Option<NalFraming> {
        let length_size = match coding {
            VideoCoding::H264 => avcc_length_size(record)?,
            VideoCoding::Hevc => hvcc_length_size(record)?,
        };
        Some(NalFraming {
            coding,
            length_size,
        })
    }
}

/// The length prefix size in an AVCDecoderConfigurationRecord (`avcC`).
fn avcc_length_size(record: &[u8]) -> Option<u8> {
    let b = *record.get(4)?;
    (record[0] == 1).then_some((b & 3) + 1)
}

/// The length prefix size in an HEVCDecoderConfigurationRecord (`hvcC`).
fn hvcc_length_size(record: &[u8]) -> Option<u8> {
    let b = *record.get(21)?;
    (record[0] == 1).then_some((b & 3) + 1)
}

/// Classifies a sample of `sample_len` bytes from its first bytes, `head`
/// (as many as the caller has; `NeedBytes` asks for more).
pub fn start_verdict(framing: NalFraming, head: &[u8], sample_len: usize) -> StartVerdict {
    let l = usize::from(framing.length_size);
    if !(1..=4).contains(&l) || l == 3 {
        return StartVerdict::Unknown;
    }
    match walk_length_prefixed(framing.coding, l, head, sample_len) {
        StartVerdict::Unknown if starts_with_start_code(head) => walk_annex_b(framing.coding, head),
        v => v,
    }
}

fn walk_length_prefixed(
    coding: VideoCoding,
    l: usize,
    head: &[u8],
    sample_len: usize,
) -> StartVerdict {
    let mut recovery_point = None;
    let mut pos = 0usize;
    while pos + l <= sample_len {
        let header_len = match coding {
            VideoCoding::H264 => 1,
            VideoCoding::Hevc => 2,
        };
        if pos + l + header_len > head.len() {
            return need(pos + l + header_len, sample_len);
        }
        let len = head[pos..pos + l]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        let start = pos + l;
        // An empty unit is no NAL unit (zero padding, another framing).
        if len < header_len || start + len > sample_len {
            return StartVerdict::Unknown;
        }
        let unit = &head[start..];
        match classify(coding, unit, len, &mut recovery_point) {
            Step::Done(v) => return v,
            Step::NeedWhole => return need(start + len, sample_len),
            Step::Next => {}
        }
        pos = start + len;
    }
    StartVerdict::Unknown
}

fn need(n: usize, sample_len: usize) -> StartVerdict {
    if n > sample_len {
        StartVerdict::Unknown
    } else {
        StartVerdict::NeedBytes(n)
    }
}

enum Step {
    Done(StartVerdict),
    /// The whole unit is needed (an SEI).
    NeedWhole,
    Next,
}

/// One NAL unit whose first bytes are `unit` and whose length is `len`.
/// `recovery_point`: the recovery_frame_cnt of an earlier SEI of the sample.
fn classify(
    coding: VideoCoding,
    unit: &[u8],
    len: usize,
    recovery_point: &mut Option<u32>,
) -> Step {
    let first = unit[0];
    if first & 0x80 != 0 {
        // forbidden_zero_bit: not a NAL unit.
        return Step::Done(StartVerdict::Unknown);
    }
    match coding {
        VideoCoding::H264 => match first & 0x1f {
            H264_IDR => Step::Done(StartVerdict::Decodable),
            H264_NON_IDR..=4 => Step::Done(match *recovery_point {
                Some(0) => StartVerdict::Decodable,
                Some(_) => StartVerdict::Gradual,
                None => StartVerdict::Dependent,
            }),
            H264_SEI if len <= MAX_SEI_BYTES => {
                if unit.len() < len {
                    return Step::NeedWhole;
                }
                if let Some(count) = sei_recovery_frame_count(&unit[1..len]) {
                    *recovery_point = Some(count);
                }
                Step::Next
            }
            _ => Step::Next,
        },
        VideoCoding::Hevc => match (first >> 1) & 0x3f {
            16..=23 => Step::Done(StartVerdict::Decodable),
            0..=31 => Step::Done(StartVerdict::Dependent),
            _ => Step::Next,
        },
    }
}

fn starts_with_start_code(b: &[u8]) -> bool {
    b.starts_with(&[0, 0, 1]) || b.starts_with(&[0, 0, 0, 1])
}

/// Annex B byte stream (start codes), as some FLV writers store it. Only
/// what `head` holds is looked at.
fn walk_annex_b(coding: VideoCoding, head: &[u8]) -> StartVerdict {
    let mut recovery_point = None;
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= head.len() {
        if head[i] == 0 && head[i + 1] == 0 && head[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(head.len(), |&next| next - 3);
        if start >= end {
            continue;
        }
        match classify(coding, &head[start..end], end - start, &mut recovery_point) {
            Step::Done(v) => return v,
            Step::NeedWhole => return StartVerdict::Unknown,
            Step::Next => {}
        }
    }
    StartVerdict::Unknown
}

/// Whether an H.264 SEI payload (after the NAL header, with emulation
/// prevention bytes) holds a recovery point: its recovery_frame_cnt.
fn sei_recovery_frame_count(escaped: &[u8]) -> Option<u32> {
    let rbsp = unescape(escaped);
    let mut i = 0;
    // Each message: payloadType and payloadSize as runs of 0xFF plus a last
    // byte; the RBSP ends with a stop bit (0x80).
    while i < rbsp.len() && !(rbsp[i] == 0x80 && i + 1 == rbsp.len()) {
        let (kind, after) = ff_coded(&rbsp, i)?;
        let (size, body) = ff_coded(&rbsp, after)?;
        let end = body.saturating_add(size as usize);
        if end > rbsp.len() {
            return None;
        }
        if kind == SEI_RECOVERY_POINT {
            return BitReader::new(&rbsp[body..end]).ue();
        }
        i = end;
    }
    None
}

/// A value written as 0xFF bytes plus a final byte, and where it ends.
fn ff_coded(b: &[u8], mut i: usize) -> Option<(u32, usize)> {
    let mut v = 0u32;
    loop {
        let byte = *b.get(i)?;
        i += 1;
        v = v.checked_add(u32::from(byte))?;
        if byte != 0xff {
            return Some((v, i));
        }
    }
}

/// Drops emulation prevention bytes (0x03 after 0x00 0x00).
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &byte in b {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// Picture width and height (cropping applied) of the first SPS of an
/// `avcC` record; None when there is none or it does not parse.
pub fn avcc_dimensions(record: &[u8]) -> Option<(u32, u32)> {
    if record.len() < 8 || record[5] & 0x1f == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([record[6], record[7]]));
    let sps = record.get(8..8 + len)?;
    h264_sps_dimensions(&unescape(sps.get(1..)?))
}

/// Width and height an H.264 SPS payload (after the NAL header byte,
/// unescaped) declares (ISO/IEC 14496-10 §7.3.2.1.1).
fn h264_sps_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let profile = *sps.first()?;
    let mut r = BitReader::new(sps.get(3..)?);
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = 0;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let field_factor = 2 - frame_mbs_only;
    let (unit_x, unit_y) = if chroma_format == 0 || separate_planes == 1 {
        (1, field_factor)
    } else {
        let sub_width = if chroma_format == 3 { 1 } else { 2 };
        let sub_height = if chroma_format == 1 { 2 } else { 1 };
        (sub_width, sub_height * field_factor)
    };
    let width = width_mbs
        .checked_mul(16)?
        .checked_sub(unit_x * (left + right))?;
    let height = (field_factor * height_units)
        .checked_mul(16)?
        .checked_sub(unit_y * (top + bottom))?;
    Some((width, height))
}

struct BitReader<'a> {
    b: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(b: &'a [u8]) -> Self {
        BitReader { b, bit: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.b.get(self.bit / 8)?;
        let v = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v = 0u32;
        for _ in 0..zeros {
            v = (v << 1) | self.bit()?;
        }
        Some((1u32 << zeros) - 1 + v)
    }

    /// Signed Exp-Golomb.
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVC4: NalFraming = NalFraming {
        coding: VideoCoding::H264,
        length_size: 4,
    };
    const HEVC4: NalFraming = NalFraming {
        coding: VideoCoding::Hevc,
        length_size: 4,
    };

    fn sample(units: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for u in units {
            out.extend_from_slice(&(u.len() as u32).to_be_bytes());
            out.extend_from_slice(u);
        }
        out
    }

    fn verdict(f: NalFraming, s: &[u8]) -> StartVerdict {
        start_verdict(f, s, s.len())
    }

    #[test]
    fn h264_idr_and_non_idr_pictures() {
        let aud: &[u8] = &[0x09, 0xf0];
        let sps: &[u8] = &[0x67, 0x64, 0, 0x1f];
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let i_slice: &[u8] = &[0x41, 0x9a, 0x00];
        assert_eq!(
            verdict(AVC4, &sample(&[aud, sps, idr])),
            StartVerdict::Decodable
        );
        assert_eq!(
            verdict(AVC4, &sample(&[aud, i_slice])),
            StartVerdict::Dependent
        );
        // Two-byte prefixes.
        let mut two = Vec::new();
        for u in [aud, idr] {
            two.extend_from_slice(&(u.len() as u16).to_be_bytes());
            two.extend_from_slice(u);
        }
        let f = NalFraming {
            coding: VideoCoding::H264,
            length_size: 2,
        };
        assert_eq!(verdict(f, &two), StartVerdict::Decodable);
    }

    #[test]
    fn h264_recovery_point_sei() {
        // SEI: recovery point (type 6, size 1): recovery_frame_cnt ue = 0
        // ('1' bit), exact_match, broken_link, changing_slice_group_idc.
        let sei_zero: &[u8] = &[0x06, 0x06, 0x01, 0xc4, 0x80];
        let sei_four: &[u8] = &[0x06, 0x06, 0x01, 0x2c, 0x80]; // ue = 4 (00101)
        let i_slice: &[u8] = &[0x41, 0x9a];
        assert_eq!(
            verdict(AVC4, &sample(&[sei_zero, i_slice])),
            StartVerdict::Decodable
        );
        // Periodic intra refresh: exact after four frames.
        assert_eq!(
            verdict(AVC4, &sample(&[sei_four, i_slice])),
            StartVerdict::Gradual
        );
        // No recovery point: a picture that depends on earlier ones.
        let sei_user_data: &[u8] = &[0x06, 0x05, 0x01, 0x41, 0x80];
        assert_eq!(
            verdict(AVC4, &sample(&[sei_user_data, i_slice])),
            StartVerdict::Dependent
        );
        // A user-data SEI before it (x264's options string), with an
        // emulation prevention byte inside.
        let mut sei = vec![0x06, 0x05, 20];
        sei.extend_from_slice(&[0, 0, 3, 1]);
        sei.extend_from_slice(&[0x41; 17]);
        sei.extend_from_slice(&[0x06, 0x01, 0xc4, 0x80]);
        assert_eq!(
            verdict(AVC4, &sample(&[&sei, i_slice])),
            StartVerdict::Decodable
        );
    }

    #[test]
    fn asks_for_more_bytes_until_it_can_tell() {
        let mut big_sei = vec![0x06, 0x05, 0xff, 0xff, 0x02];
        big_sei.resize(5 + 512, 0x55);
        big_sei.push(0x80);
        let idr: &[u8] = &[0x65, 0x88];
        let s = sample(&[&big_sei, idr]);
        assert_eq!(
            start_verdict(AVC4, &s[..16], s.len()),
            StartVerdict::NeedBytes(4 + big_sei.len())
        );
        assert_eq!(
            start_verdict(AVC4, &s[..4 + big_sei.len()], s.len()),
            StartVerdict::NeedBytes(4 + big_sei.len() + 4 + 1)
        );
        assert_eq!(verdict(AVC4, &s), StartVerdict::Decodable);
    }

    #[test]
    fn hevc_irap_pictures() {
        let vps: &[u8] = &[0x40, 0x01, 0x0c];
        let idr_w_radl: &[u8] = &[0x26, 0x01, 0xaf];
        let cra: &[u8] = &[0x2a, 0x01, 0xaf];
        let trail_r: &[u8] = &[0x02, 0x01, 0xd0];
        assert_eq!(
            verdict(HEVC4, &sample(&[vps, idr_w_radl])),
            StartVerdict::Decodable
        );
        assert_eq!(verdict(HEVC4, &sample(&[cra])), StartVerdict::Decodable);
        assert_eq!(
            verdict(HEVC4, &sample(&[vps, trail_r])),
            StartVerdict::Dependent
        );
    }

    #[test]
    fn garbage_leaves_the_flag_alone() {
        assert_eq!(verdict(AVC4, &[0xff; 40]), StartVerdict::Unknown);
        assert_eq!(verdict(AVC4, &[]), StartVerdict::Unknown);
        assert_eq!(
            verdict(AVC4, &sample(&[&[0x09, 0xf0]])),
            StartVerdict::Unknown
        );
        let f = NalFraming {
            coding: VideoCoding::H264,
            length_size: 3,
        };
        assert_eq!(verdict(f, &[0; 8]), StartVerdict::Unknown);
    }

    #[test]
    fn annex_b_samples() {
        let s = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 0x88, 0x84];
        assert_eq!(verdict(AVC4, &s), StartVerdict::Decodable);
        let s = [0, 0, 1, 0x41, 0x9a, 0x00];
        assert_eq!(verdict(AVC4, &s), StartVerdict::Dependent);
    }

    #[test]
    fn picture_size_from_the_sps_of_an_avcc() {
        // x264, High profile, 320x180: 12 macroblock rows less 12 cropped lines.
        let hex =
            "0164000cffe1001a6764000cacd941419f9f011000000300100000030320f142996001000568ef8472c0";
        let record: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(avcc_dimensions(&record), Some((320, 180)));
        assert_eq!(avcc_dimensions(&record[..7]), None);
    }

    #[test]
    fn configuration_records() {
        assert_eq!(avcc_length_size(&[1, 0x64, 0, 0x1f, 0xff, 0xe1]), Some(4));
        assert_eq!(avcc_length_size(&[1, 0x64, 0, 0x1f, 0xfd]), Some(2));
        assert_eq!(avcc_length_size(&[0, 0x64, 0, 0x1f, 0xff]), None);
        let mut hvcc = vec![1u8; 23];
        hvcc[21] = 0x0f;
        assert_eq!(hvcc_length_size(&hvcc), Some(4));
        assert_eq!(hvcc_length_size(&hvcc[..10]), None);
    }
}
