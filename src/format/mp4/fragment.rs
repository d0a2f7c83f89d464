//! Movie fragments (`moof`, ISO/IEC 14496-12 §8.8): for each track fragment,
//! when it starts and whether its first sample is a sync sample. Enough to
//! cut a fragmented file at fragment boundaries.

use super::boxes::{children, Fields};
use super::moov::TrackExtends;
use super::Mp4Error;

/// `sample_is_non_sync_sample` in the sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// What one `traf` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// `tfdt`, in the track's timescale.
    pub decode_time: Option<u64>,
    /// Where the `tfdt` value lies in the `moof` payload, and whether it is
    /// 64 bits wide.
    pub decode_time_at: Option<(usize, bool)>,
    /// Sum of the sample durations, when every duration is known.
    pub duration: Option<u64>,
    pub sample_count: u64,
    pub first_is_sync: bool,
    /// Composition offset of the first sample.
    pub first_cts: i64,
    /// Data offsets are absolute file positions (`base-data-offset`), so the
    /// fragment cannot move.
    pub absolute_base: bool,
}

/// Parses a `moof` payload; `trex` gives the per-track defaults.
pub fn parse_moof(payload: &[u8], trex: &[TrackExtends]) -> Result<Vec<TrackRun>, Mp4Error> {
    let mut runs = Vec::new();
    for c in children(payload, *b"moof") {
        let c = c?;
        if &c.kind == b"traf" {
            runs.push(traf(payload, c.payload, trex)?);
        }
    }
    Ok(runs)
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

fn traf(moof: &[u8], payload: &[u8], trex: &[TrackExtends]) -> Result<TrackRun, Mp4Error> {
    let mut header = None;
    let mut decode_time = None;
    let mut decode_time_at = None;
    let mut sample_count: u64 = 0;
    let mut duration = Some(0u64);
    let mut first: Option<(u32, i64)> = None;
    // trun boxes come after tfhd, which they need.
    for c in children(payload, *b"traf") {
        let c = c?;
        match &c.kind {
            b"tfhd" => {
                if header.is_some() {
                    return Err(Mp4Error::new("'tfhd' appears twice in 'traf'"));
                }
                header = Some(tfhd(c.payload, trex)?)
            }
            b"tfdt" => {
                let mut f = Fields::new(c.payload, *b"tfdt");
                let (version, _) = f.version_flags()?;
                decode_time = Some(f.u32_or_u64(version == 1)?);
                decode_time_at = Some((offset_in(moof, c.payload) + 4, version == 1));
            }
            b"trun" => {
                let h = header.ok_or_else(|| Mp4Error::new("'trun' before 'tfhd'"))?;
                let run = trun(c.payload, &h)?;
                sample_count = sample_count.saturating_add(run.count);
                duration = duration.zip(run.duration).map(|(a, b)| a.saturating_add(b));
                if first.is_none() && run.count > 0 {
                    first = Some((run.first_flags, run.first_cts));
                }
            }
            _ => {}
        }
    }
    let h = header.ok_or_else(|| Mp4Error::new("'traf' has no 'tfhd'"))?;
    let (flags, first_cts) = first.unwrap_or((h.default_flags, 0));
    Ok(TrackRun {
        track_id: h.track_id,
        decode_time,
        decode_time_at,
        duration,
        sample_count,
        first_is_sync: flags & NON_SYNC == 0,
        first_cts,
        absolute_base: h.absolute_base,
    })
}

#[derive(Clone, Copy)]
struct Tfhd {
    track_id: u32,
    default_duration: Option<u32>,
    default_flags: u32,
    absolute_base: bool,
}

fn tfhd(payload: &[u8], trex: &[TrackExtends]) -> Result<Tfhd, Mp4Error> {
    let mut f = Fields::new(payload, *b"tfhd");
    let (_, flags) = f.version_flags()?;
    let track_id = f.u32()?;
    let defaults = trex.iter().find(|t| t.track_id == track_id);
    let absolute_base = flags & 0x1 != 0;
    if absolute_base {
        f.u64()?;
    }
    if flags & 0x2 != 0 {
        f.u32()?; // sample description index
    }
    let default_duration = if flags & 0x8 != 0 {
        Some(f.u32()?)
    } else {
        defaults.map(|d| d.default_sample_duration)
    };
    if flags & 0x10 != 0 {
        f.u32()?; // default sample size
    }
    let default_flags = if flags & 0x20 != 0 {
        f.u32()?
    } else {
        defaults.map_or(0, |d| d.default_sample_flags)
    };
    Ok(Tfhd {
        track_id,
        default_duration,
        default_flags,
        absolute_base,
    })
}

struct Trun {
    count: u64,
    duration: Option<u64>,
    first_flags: u32,
    first_cts: i64,
}

fn trun(payload: &[u8], h: &Tfhd) -> Result<Trun, Mp4Error> {
    let mut f = Fields::new(payload, *b"trun");
    let (version, flags) = f.version_flags()?;
    let count = f.u32()?;
    if flags & 0x1 != 0 {
        f.u32()?; // data offset
    }
    let first_sample_flags = if flags & 0x4 != 0 {
        Some(f.u32()?)
    } else {
        None
    };
    let has = |bit: u32| flags & bit != 0;
    let per_sample = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&b| has(b))
        .count()
        * 4;
    let table = f.table(count, per_sample)?;
    let mut duration = Some(0u64);
    let mut first_flags = first_sample_flags.unwrap_or(h.default_flags);
    let mut first_cts = 0;
    for (i, e) in table.chunks_exact(per_sample.max(1)).enumerate() {
        if per_sample == 0 {
            break;
        }
        let mut s = Fields::new(e, *b"trun");
        let d = if has(0x100) {
            Some(s.u32()?)
        } else {
            h.default_duration
        };
        duration = duration.zip(d).map(|(a, b)| a + u64::from(b));
        if has(0x200) {
            s.u32()?;
        }
        let sample_flags = if has(0x400) { Some(s.u32()?) } else { None };
        let cts = if has(0x800) {
            let v = s.u32()?;
            if version == 0 {
                i64::from(v)
            } else {
                i64::from(v as i32)
            }
        } else {
            0
        };
        if i == 0 {
            if first_sample_flags.is_none() {
                first_flags = sample_flags.unwrap_or(h.default_flags);
            }
            first_cts = cts;
        }
    }
    if per_sample == 0 {
        duration = h.default_duration.map(|d| u64::from(d) * u64::from(count));
    }
    Ok(Trun {
        count: u64::from(count),
        duration,
        first_flags,
        first_cts,
    })
}
