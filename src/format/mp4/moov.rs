//! The `moov` box: movie and track headers, edit lists and where each
//! track's sample tables are. Only the containers a cut needs are entered
//! (moov, trak, edts, mdia, minf, stbl, mvex), so nesting is bounded; a box
//! that may appear once and appears twice is an error.

use super::boxes::{children, fourcc_str, Child, Fields, FourCc};
use super::tables::{self, Edit};
use super::Mp4Error;
use crate::format::nal::NalFraming;

/// What the `moov` says, borrowing the table payloads.
#[derive(Debug)]
pub struct Movie<'a> {
    pub timescale: u32,
    pub duration: u64,
    pub tracks: Vec<TrackBoxes<'a>>,
    /// `mvex` present: samples are (also) described by movie fragments.
    pub fragmented: bool,
    pub trex: Vec<TrackExtends>,
}

/// Defaults for a track's fragments (`trex`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackExtends {
    pub track_id: u32,
    pub default_sample_duration: u32,
    pub default_sample_size: u32,
    pub default_sample_flags: u32,
}

/// One `trak`.
#[derive(Debug)]
pub struct TrackBoxes<'a> {
    pub id: u32,
    pub handler: FourCc,
    pub timescale: u32,
    pub media_duration: u64,
    /// `None` without an `edts`/`elst`.
    pub edits: Option<Vec<Edit>>,
    /// First sample entry's format and visual size.
    pub sample_entry: FourCc,
    pub entry_count: u32,
    pub dims: Option<(u16, u16)>,
    /// How the first entry's H.264/HEVC samples frame their NAL units.
    pub nal_framing: Option<NalFraming>,
    pub stbl: StblBoxes<'a>,
}

/// Payloads of the sample tables of one `stbl`.
#[derive(Debug, Default)]
pub struct StblBoxes<'a> {
    pub stts: Option<&'a [u8]>,
    pub ctts: Option<&'a [u8]>,
    pub stss: Option<&'a [u8]>,
    pub stsc: Option<&'a [u8]>,
    pub stsz: Option<&'a [u8]>,
    pub stz2: Option<&'a [u8]>,
    pub stco: Option<&'a [u8]>,
    pub co64: Option<&'a [u8]>,
    pub sdtp: Option<&'a [u8]>,
    pub sbgp: Vec<&'a [u8]>,
}

/// Whether a cut enters a `kind` box inside `parent` to rewrite what it
/// holds (moov → trak → mdia → minf → stbl); any other box is copied whole.
pub fn entered(parent: FourCc, kind: FourCc) -> bool {
    matches!(
        (&parent, &kind),
        (b"moov", b"trak") | (b"trak", b"mdia") | (b"mdia", b"minf") | (b"minf", b"stbl")
    )
}

/// Sample tables a cut regenerates from the index.
pub const SAMPLE_TABLES: [&FourCc; 10] = [
    b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stz2", b"stco", b"co64", b"sdtp", b"sbgp",
];

/// Boxes that may appear at most once in their parent.
const UNIQUE: [&FourCc; 24] = [
    b"mvhd", b"mvex", b"tkhd", b"edts", b"elst", b"mdia", b"mdhd", b"hdlr", b"minf", b"stbl",
    b"stsd", b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stz2", b"stco", b"co64", b"sdtp",
    b"vmhd", b"smhd", b"dinf", b"tref",
];

/// Iterates the children of `payload`, rejecting a second copy of a box that
/// may appear once.
fn each_child<'a>(
    payload: &'a [u8],
    parent: FourCc,
    mut f: impl FnMut(Child<'a>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    let mut seen: Vec<FourCc> = Vec::new();
    for child in children(payload, parent) {
        let child = child?;
        if UNIQUE.contains(&&child.kind) {
            if seen.contains(&child.kind) {
                return Err(Mp4Error::new(format!(
                    "'{}' appears twice in '{}'",
                    fourcc_str(child.kind),
                    fourcc_str(parent)
                )));
            }
            seen.push(child.kind);
        }
        f(child)?;
    }
    Ok(())
}

fn missing(kind: &str, parent: &str) -> Mp4Error {
    Mp4Error::new(format!("'{parent}' has no '{kind}'"))
}

/// Parses a `moov` payload.
pub fn parse(moov: &[u8]) -> Result<Movie<'_>, Mp4Error> {
    let mut header = None;
    let mut tracks = Vec::new();
    let mut fragmented = false;
    let mut trex = Vec::new();
    each_child(moov, *b"moov", |c| {
        match &c.kind {
            b"mvhd" => header = Some(mvhd(c.payload)?),
            b"trak" => tracks.push(trak(c.payload)?),
            b"mvex" => {
                fragmented = true;
                each_child(c.payload, *b"mvex", |m| {
                    if &m.kind == b"trex" {
                        trex.push(parse_trex(m.payload)?);
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        Ok(())
    })?;
    let (timescale, duration) = header.ok_or_else(|| missing("mvhd", "moov"))?;
    if tracks.is_empty() {
        return Err(Mp4Error::new("'moov' has no tracks"));
    }
    let mut ids: Vec<u32> = tracks.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(Mp4Error::new("two tracks share a track ID"));
    }
    Ok(Movie {
        timescale,
        duration,
        tracks,
        fragmented,
        trex,
    })
}

/// `mvhd` or `mdhd`: (timescale, duration); the timescale must not be 0.
fn time_header(payload: &[u8], kind: FourCc) -> Result<(u32, u64), Mp4Error> {
    let mut f = Fields::new(payload, kind);
    let (version, _) = f.version_flags()?;
    let wide = match version {
        0 => false,
        1 => true,
        v => {
            return Err(Mp4Error::new(format!(
                "'{}' version {v} is unknown",
                fourcc_str(kind)
            )))
        }
    };
    f.u32_or_u64(wide)?; // creation time
    f.u32_or_u64(wide)?; // modification time
    let timescale = f.u32()?;
    let duration = f.u32_or_u64(wide)?;
    if timescale == 0 {
        return Err(Mp4Error::new(format!(
            "'{}' timescale is 0",
            fourcc_str(kind)
        )));
    }
    // All ones in the 32-bit field means "unknown".
    let duration = if !wide && duration == u64::from(u32::MAX) {
        0
    } else {
        duration
    };
    Ok((timescale, duration))
}

fn mvhd(payload: &[u8]) -> Result<(u32, u64), Mp4Error> {
    time_header(payload, *b"mvhd")
}

fn parse_trex(payload: &[u8]) -> Result<TrackExtends, Mp4Error> {
    let mut f = Fields::new(payload, *b"trex");
    f.version_flags()?;
    let track_id = f.u32()?;
    f.u32()?; // default sample description index
    let default_sample_duration = f.u32()?;
    let default_sample_size = f.u32()?;
    let default_sample_flags = f.u32()?;
    Ok(TrackExtends {
        track_id,
        default_sample_duration,
        default_sample_size,
        default_sample_flags,
    })
}

fn tkhd_id(payload: &[u8]) -> Result<u32, Mp4Error> {
    let mut f = Fields::new(payload, *b"tkhd");
    let (version, _) = f.version_flags()?;
    let wide = version == 1;
    f.u32_or_u64(wide)?;
    f.u32_or_u64(wide)?;
    f.u32()
}

fn trak(payload: &[u8]) -> Result<TrackBoxes<'_>, Mp4Error> {
    let mut id = None;
    let mut edits = None;
    let mut media = None;
    each_child(payload, *b"trak", |c| {
        match &c.kind {
            b"tkhd" => id = Some(tkhd_id(c.payload)?),
            b"edts" => each_child(c.payload, *b"edts", |e| {
                if &e.kind == b"elst" {
                    edits = Some(tables::elst(e.payload)?);
                }
                Ok(())
            })?,
            b"mdia" => media = Some(mdia(c.payload)?),
            _ => {}
        }
        Ok(())
    })?;
    let id = id.ok_or_else(|| missing("tkhd", "trak"))?;
    let (handler, timescale, media_duration, stsd, stbl) =
        media.ok_or_else(|| missing("mdia", "trak"))?;
    let descriptions = tables::stsd_first_entry(stsd)?;
    Ok(TrackBoxes {
        id,
        handler,
        timescale,
        media_duration,
        edits,
        sample_entry: descriptions.format,
        entry_count: descriptions.count,
        dims: descriptions.dims,
        nal_framing: descriptions.nal_framing,
        stbl,
    })
}

type Media<'a> = (FourCc, u32, u64, &'a [u8], StblBoxes<'a>);

fn mdia(payload: &[u8]) -> Result<Media<'_>, Mp4Error> {
    let mut header = None;
    let mut handler = None;
    let mut stbl = None;
    each_child(payload, *b"mdia", |c| {
        match &c.kind {
            b"mdhd" => header = Some(time_header(c.payload, *b"mdhd")?),
            b"hdlr" => {
                let mut f = Fields::new(c.payload, *b"hdlr");
                f.version_flags()?;
                f.u32()?; // pre_defined (QuickTime: component type)
                handler = Some(f.u32()?.to_be_bytes());
            }
            b"minf" => each_child(c.payload, *b"minf", |m| {
                if &m.kind == b"stbl" {
                    stbl = Some(parse_stbl(m.payload)?);
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })?;
    let (timescale, duration) = header.ok_or_else(|| missing("mdhd", "mdia"))?;
    let handler = handler.ok_or_else(|| missing("hdlr", "mdia"))?;
    let (stsd, stbl) = stbl.ok_or_else(|| missing("stbl", "minf"))?;
    Ok((handler, timescale, duration, stsd, stbl))
}

fn parse_stbl(payload: &[u8]) -> Result<(&[u8], StblBoxes<'_>), Mp4Error> {
    let mut stsd = None;
    let mut t = StblBoxes::default();
    each_child(payload, *b"stbl", |c| {
        let p = Some(c.payload);
        match &c.kind {
            b"stsd" => stsd = p,
            b"stts" => t.stts = p,
            b"ctts" => t.ctts = p,
            b"stss" => t.stss = p,
            b"stsc" => t.stsc = p,
            b"stsz" => t.stsz = p,
            b"stz2" => t.stz2 = p,
            b"stco" => t.stco = p,
            b"co64" => t.co64 = p,
            b"sdtp" => t.sdtp = p,
            b"sbgp" => t.sbgp.push(c.payload),
            _ => {}
        }
        Ok(())
    })?;
    if t.stsz.is_some() && t.stz2.is_some() {
        return Err(Mp4Error::new("'stbl' has both 'stsz' and 'stz2'"));
    }
    if t.stco.is_some() && t.co64.is_some() {
        return Err(Mp4Error::new("'stbl' has both 'stco' and 'co64'"));
    }
    Ok((stsd.ok_or_else(|| missing("stsd", "stbl"))?, t))
}
