//! Sample tables (`stbl` children) decoded from their payloads. Each decoder
//! checks that the entry count fits the box before returning the entries.

use byteorder::{BigEndian, ByteOrder};

use super::boxes::{children, fourcc_str, Fields, FourCc};
use super::Mp4Error;
use crate::format::nal::{NalFraming, VideoCoding};

fn entries(payload: &[u8], kind: FourCc, entry_len: usize) -> Result<(u8, &[u8]), Mp4Error> {
    let mut f = Fields::new(payload, kind);
    let (version, _) = f.version_flags()?;
    let count = f.u32()?;
    Ok((version, f.table(count, entry_len)?))
}

/// `stts`: (sample count, sample delta) runs.
pub fn stts(payload: &[u8]) -> Result<Vec<(u32, u32)>, Mp4Error> {
    let (_, t) = entries(payload, *b"stts", 8)?;
    Ok(t.chunks_exact(8)
        .map(|e| (BigEndian::read_u32(e), BigEndian::read_u32(&e[4..])))
        .collect())
}

/// `ctts`: (sample count, composition offset) runs and the box version.
/// Version 0 offsets are read as signed too, as writers that predate
/// version 1 stored negative offsets that way.
pub fn ctts(payload: &[u8]) -> Result<(u8, Vec<(u32, i32)>), Mp4Error> {
    let (version, t) = entries(payload, *b"ctts", 8)?;
    if version > 1 {
        return Err(Mp4Error::new(format!(
            "'ctts' version {version} is unknown"
        )));
    }
    Ok((
        version,
        t.chunks_exact(8)
            .map(|e| (BigEndian::read_u32(e), BigEndian::read_i32(&e[4..])))
            .collect(),
    ))
}

/// `stss` and `stps`: 1-based sample numbers.
pub fn sample_numbers(payload: &[u8], kind: FourCc) -> Result<Vec<u32>, Mp4Error> {
    let (_, t) = entries(payload, kind, 4)?;
    Ok(t.chunks_exact(4).map(BigEndian::read_u32).collect())
}

/// One `stsc` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StscEntry {
    pub first_chunk: u32,
    pub samples_per_chunk: u32,
    pub description_index: u32,
}

pub fn stsc(payload: &[u8]) -> Result<Vec<StscEntry>, Mp4Error> {
    let (_, t) = entries(payload, *b"stsc", 12)?;
    Ok(t.chunks_exact(12)
        .map(|e| StscEntry {
            first_chunk: BigEndian::read_u32(e),
            samples_per_chunk: BigEndian::read_u32(&e[4..]),
            description_index: BigEndian::read_u32(&e[8..]),
        })
        .collect())
}

/// Sample sizes from `stsz` or `stz2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleSizes {
    /// Every sample has this size.
    Uniform {
        size: u32,
        count: u32,
    },
    Each(Vec<u32>),
}

impl SampleSizes {
    pub fn count(&self) -> u32 {
        match self {
            SampleSizes::Uniform { count, .. } => *count,
            SampleSizes::Each(v) => v.len() as u32,
        }
    }
}

pub fn stsz(payload: &[u8]) -> Result<SampleSizes, Mp4Error> {
    let mut f = Fields::new(payload, *b"stsz");
    f.version_flags()?;
    let size = f.u32()?;
    let count = f.u32()?;
    if size != 0 {
        return Ok(SampleSizes::Uniform { size, count });
    }
    let t = f.table(count, 4)?;
    Ok(SampleSizes::Each(
        t.chunks_exact(4).map(BigEndian::read_u32).collect(),
    ))
}

pub fn stz2(payload: &[u8]) -> Result<SampleSizes, Mp4Error> {
    let mut f = Fields::new(payload, *b"stz2");
    f.version_flags()?;
    f.skip(3)?;
    let field_size = f.u8()?;
    let count = f.u32()?;
    let sizes = match field_size {
        4 => {
            let t = f.table(count.div_ceil(2), 1)?;
            (0..count as usize)
                .map(|i| {
                    let b = t[i / 2];
                    u32::from(if i % 2 == 0 { b >> 4 } else { b & 0xf })
                })
                .collect()
        }
        8 => f.table(count, 1)?.iter().map(|&b| u32::from(b)).collect(),
        16 => f
            .table(count, 2)?
            .chunks_exact(2)
            .map(|e| u32::from(BigEndian::read_u16(e)))
            .collect(),
        n => {
            return Err(Mp4Error::new(format!(
                "'stz2' field size {n} is not 4, 8 or 16"
            )))
        }
    };
    Ok(SampleSizes::Each(sizes))
}

/// `stco` or `co64`: chunk offsets.
pub fn chunk_offsets(payload: &[u8], kind: FourCc) -> Result<Vec<u64>, Mp4Error> {
    let wide = &kind == b"co64";
    let (_, t) = entries(payload, kind, if wide { 8 } else { 4 })?;
    Ok(if wide {
        t.chunks_exact(8).map(BigEndian::read_u64).collect()
    } else {
        t.chunks_exact(4)
            .map(|e| u64::from(BigEndian::read_u32(e)))
            .collect()
    })
}

/// One edit list entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edit {
    /// In the movie's timescale; 0 in fragmented files means "to the end".
    pub duration: u64,
    /// In the track's timescale; -1 is an empty edit.
    pub media_time: i64,
    /// Integer part of the rate (16.16).
    pub rate: i16,
}

pub fn elst(payload: &[u8]) -> Result<Vec<Edit>, Mp4Error> {
    let mut f = Fields::new(payload, *b"elst");
    let (version, _) = f.version_flags()?;
    let wide = match version {
        0 => false,
        1 => true,
        v => return Err(Mp4Error::new(format!("'elst' version {v} is unknown"))),
    };
    let count = f.u32()?;
    let entry = if wide { 20 } else { 12 };
    let t = f.table(count, entry)?;
    Ok(t.chunks_exact(entry)
        .map(|e| {
            let (duration, media_time, rest) = if wide {
                (
                    BigEndian::read_u64(e),
                    BigEndian::read_i64(&e[8..]),
                    &e[16..],
                )
            } else {
                (
                    u64::from(BigEndian::read_u32(e)),
                    i64::from(BigEndian::read_i32(&e[4..])),
                    &e[8..],
                )
            };
            Edit {
                duration,
                media_time,
                rate: BigEndian::read_i16(rest),
            }
        })
        .collect())
}

/// `sbgp`: which group of a grouping type each run of samples belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleToGroup {
    pub grouping_type: FourCc,
    /// Present in version 1.
    pub parameter: Option<u32>,
    /// (sample count, group description index) runs.
    pub runs: Vec<(u32, u32)>,
}

pub fn sbgp(payload: &[u8]) -> Result<SampleToGroup, Mp4Error> {
    let mut f = Fields::new(payload, *b"sbgp");
    let (version, _) = f.version_flags()?;
    let grouping_type = f.u32()?.to_be_bytes();
    let parameter = if version == 1 { Some(f.u32()?) } else { None };
    let count = f.u32()?;
    let t = f.table(count, 8)?;
    Ok(SampleToGroup {
        grouping_type,
        parameter,
        runs: t
            .chunks_exact(8)
            .map(|e| (BigEndian::read_u32(e), BigEndian::read_u32(&e[4..])))
            .collect(),
    })
}

/// `sdtp`: one dependency byte per sample (the count comes from elsewhere).
pub fn sdtp(payload: &[u8]) -> Result<&[u8], Mp4Error> {
    let mut f = Fields::new(payload, *b"sdtp");
    f.version_flags()?;
    Ok(f.rest())
}

/// What an `stsd` says of its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleDescriptions {
    pub count: u32,
    /// The first entry's format.
    pub format: FourCc,
    /// The first entry's coded width and height, for visual entries.
    pub dims: Option<(u16, u16)>,
    /// How H.264/HEVC samples frame their NAL units (from `avcC`/`hvcC`).
    pub nal_framing: Option<NalFraming>,
}

pub fn stsd_first_entry(payload: &[u8]) -> Result<SampleDescriptions, Mp4Error> {
    let mut f = Fields::new(payload, *b"stsd");
    f.version_flags()?;
    let count = f.u32()?;
    if count == 0 {
        return Err(Mp4Error::new("'stsd' has no sample entries"));
    }
    let rest = f.rest();
    let mut e = Fields::new(rest, *b"stsd");
    let size = e.u32()?;
    let format: FourCc = e.u32()?.to_be_bytes();
    if (size as usize) < 8 || size as usize > rest.len() {
        return Err(Mp4Error::new(format!(
            "sample entry '{}' of {size} bytes does not fit 'stsd'",
            fourcc_str(format)
        )));
    }
    // VisualSampleEntry: 6 reserved + 2 index + 16 predefined/reserved, then
    // width and height.
    let dims = if size >= 36 {
        let mut v = Fields::new(&rest[8..size as usize], format);
        v.skip(24)?;
        Some((v.u16()?, v.u16()?))
    } else {
        None
    };
    let nal_framing = nal_framing(format, &rest[..size as usize]);
    Ok(SampleDescriptions {
        count,
        format,
        dims,
        nal_framing,
    })
}

/// Bytes of a VisualSampleEntry before its child boxes, header included.
const VISUAL_ENTRY_LEN: usize = 8 + 78;

/// The NAL framing an H.264/HEVC sample entry declares; None for other
/// entries or a malformed configuration (its samples keep their flags).
fn nal_framing(format: FourCc, entry: &[u8]) -> Option<NalFraming> {
    let (coding, config) = match &format {
        b"avc1" | b"avc3" => (VideoCoding::H264, *b"avcC"),
        b"hvc1" | b"hev1" => (VideoCoding::Hevc, *b"hvcC"),
        _ => return None,
    };
    let record = children(entry.get(VISUAL_ENTRY_LEN..)?, format)
        .map_while(|c| c.ok())
        .find(|c| c.kind == config)?
        .payload;
    NalFraming::from_record(coding, record)
}
