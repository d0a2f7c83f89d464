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
    /// The first sample's data, when its place is known: offset (from the
    /// `moof`'s first byte, or absolute with `absolute_base`) and size.
    pub first_sample: Option<(i128, u32)>,
}

/// Parses a `moof` payload; `trex` gives the per-track defaults.
pub fn parse_moof(payload: &[u8], trex: &[TrackExtends]) -> Result<Vec<TrackRun>, Mp4Error> {
    let mut runs = Vec::new();
    for c in children(payload, *b"moof") {
        let c = c?;
        if &c.kind == b"traf" {
            runs.push(traf(payload, c.payload, trex, runs.is_empty())?);
        }
    }
    Ok(runs)
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// `first_traf`: a base offset that is not given is the `moof`'s start
/// (later ones follow the previous track fragment's data, not known here).
fn traf(
    moof: &[u8],
    payload: &[u8],
    trex: &[TrackExtends],
    first_traf: bool,
) -> Result<TrackRun, Mp4Error> {
    let mut header = None;
    let mut decode_time = None;
    let mut decode_time_at = None;
    let mut sample_count: u64 = 0;
    let mut duration = Some(0u64);
    let mut first: Option<(u32, i64)> = None;
    let mut first_sample = None;
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
                    let base = match h.base_data_offset {
                        Some(b) => Some(i128::from(b)),
                        None if h.base_is_moof || first_traf => Some(0),
                        None => None,
                    };
                    first_sample = base
                        .zip(run.data_offset)
                        .zip(run.first_size)
                        .map(|((b, o), size)| (b + i128::from(o), size));
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
        first_sample,
    })
}

#[derive(Clone, Copy)]
struct Tfhd {
    track_id: u32,
    default_duration: Option<u32>,
    default_flags: u32,
    default_size: Option<u32>,
    absolute_base: bool,
    base_data_offset: Option<u64>,
    /// `default-base-is-moof`.
    base_is_moof: bool,
}

fn tfhd(payload: &[u8], trex: &[TrackExtends]) -> Result<Tfhd, Mp4Error> {
    let mut f = Fields::new(payload, *b"tfhd");
    let (_, flags) = f.version_flags()?;
    let track_id = f.u32()?;
    let defaults = trex.iter().find(|t| t.track_id == track_id);
    let absolute_base = flags & 0x1 != 0;
    let base_data_offset = if absolute_base { Some(f.u64()?) } else { None };
    if flags & 0x2 != 0 {
        f.u32()?; // sample description index
    }
    let default_duration = if flags & 0x8 != 0 {
        Some(f.u32()?)
    } else {
        defaults.map(|d| d.default_sample_duration)
    };
    let default_size = if flags & 0x10 != 0 {
        Some(f.u32()?)
    } else {
        defaults.map(|d| d.default_sample_size)
    };
    let default_flags = if flags & 0x20 != 0 {
        f.u32()?
    } else {
        defaults.map_or(0, |d| d.default_sample_flags)
    };
    Ok(Tfhd {
        track_id,
        default_duration,
        default_flags,
        default_size,
        absolute_base,
        base_data_offset,
        base_is_moof: flags & 0x2_0000 != 0,
    })
}

struct Trun {
    count: u64,
    duration: Option<u64>,
    first_flags: u32,
    first_cts: i64,
    data_offset: Option<i32>,
    first_size: Option<u32>,
}

fn trun(payload: &[u8], h: &Tfhd) -> Result<Trun, Mp4Error> {
    let mut f = Fields::new(payload, *b"trun");
    let (version, flags) = f.version_flags()?;
    let count = f.u32()?;
    let data_offset = if flags & 0x1 != 0 {
        Some(f.u32()? as i32)
    } else {
        None
    };
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
    let mut first_size = h.default_size;
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
        let size = if has(0x200) { Some(s.u32()?) } else { None };
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
            first_size = size.or(h.default_size);
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
        data_offset,
        first_size,
    })
}

/// One sample of a run, as `drop_leading_samples` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSample {
    /// Decode time, in the track's timescale.
    pub decode_time: u64,
    pub composition_offset: i64,
    pub duration: u32,
}

/// Where the fields of a track fragment's first run lie in a `moof`.
struct FirstRun {
    /// `tfdt` value: position and width.
    decode_time_at: usize,
    decode_time_wide: bool,
    /// The `trun` box: where it starts, its header length, the position of
    /// its sample count and data offset, and where its table starts.
    run_at: usize,
    run_header: usize,
    count_at: usize,
    data_offset_at: usize,
    table_at: usize,
    version: u8,
    flags: u32,
    default_duration: u32,
    default_size: u32,
}

/// Drops the first samples of `track_id`'s first run in `moof` (the whole
/// box, header included) while `drop` says so, in place, and returns how
/// many went. The run's sample count, data offset and the `tfdt` move past
/// them; its table closes up and a `free` box after the run, inside the
/// `traf`, takes the bytes the table gave up, so no box changes size and
/// nothing after the run moves. At least one sample stays. Nothing changes
/// (0) where the track fragment cannot be trimmed so: no `tfdt` or data
/// offset, sizes or durations unknown, too few bytes freed for a `free` box.
pub fn drop_leading_samples(
    moof: &mut [u8],
    trex: &[TrackExtends],
    track_id: u32,
    drop: impl Fn(RunSample) -> bool,
) -> u32 {
    let Some(run) = first_run(moof, trex, track_id) else {
        return 0;
    };
    let be32 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let Some(count) = be32(moof, run.count_at) else {
        return 0;
    };
    let decode_time = if run.decode_time_wide {
        moof.get(run.decode_time_at..run.decode_time_at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    } else {
        be32(moof, run.decode_time_at).map(u64::from)
    };
    let Some(mut decode_time) = decode_time else {
        return 0;
    };
    let has = |bit: u32| run.flags & bit != 0;
    let entry = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&b| has(b))
        .count()
        * 4;
    let (mut dropped, mut bytes, mut ticks) = (0u32, 0u64, 0u64);
    if entry == 0 {
        // No table: every sample has the defaults, so the times only grow
        // and the samples to drop are a prefix. Its end is found by
        // bisection: a run may claim four billion samples.
        let (duration, size) = (run.default_duration, run.default_size);
        if duration == 0 || size == 0 || count == 0 {
            return 0;
        }
        let nth = |k: u32| {
            Some(RunSample {
                decode_time: decode_time.checked_add(u64::from(k) * u64::from(duration))?,
                composition_offset: 0,
                duration,
            })
        };
        let (mut lo, mut hi) = (0u32, count - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match nth(mid) {
                Some(sample) if drop(sample) => lo = mid + 1,
                Some(_) => hi = mid,
                None => return 0,
            }
        }
        dropped = lo;
        bytes = u64::from(lo) * u64::from(size);
        ticks = u64::from(lo) * u64::from(duration);
    }
    while entry > 0 && dropped + 1 < count {
        let at = run.table_at + dropped as usize * entry;
        let mut field = at;
        let mut next = |present: bool| -> Option<Option<u32>> {
            if !present {
                return Some(None);
            }
            let v = be32(moof, field)?;
            field += 4;
            Some(Some(v))
        };
        let (Some(d), Some(s), Some(_), Some(c)) = (
            next(has(0x100)),
            next(has(0x200)),
            next(has(0x400)),
            next(has(0x800)),
        ) else {
            return 0;
        };
        let duration = d.unwrap_or(run.default_duration);
        let size = s.unwrap_or(run.default_size);
        let composition_offset = match c {
            Some(v) if run.version == 0 => i64::from(v),
            Some(v) => i64::from(v as i32),
            None => 0,
        };
        if duration == 0 && !has(0x100) || size == 0 && !has(0x200) {
            return 0; // no default to go by
        }
        let sample = RunSample {
            decode_time,
            composition_offset,
            duration,
        };
        if !drop(sample) {
            break;
        }
        dropped += 1;
        bytes += u64::from(size);
        ticks += u64::from(duration);
        let Some(next) = decode_time.checked_add(u64::from(duration)) else {
            return 0;
        };
        decode_time = next;
    }
    let freed = dropped as usize * entry;
    if dropped == 0 || (freed > 0 && freed < 8) {
        return 0;
    }
    let Some(offset) = be32(moof, run.data_offset_at) else {
        return 0;
    };
    let Some(offset) = i64::try_from(bytes)
        .ok()
        .and_then(|b| i32::try_from(i64::from(offset as i32) + b).ok())
    else {
        return 0;
    };
    let new_decode = if run.decode_time_wide {
        be_u64(moof, run.decode_time_at).checked_add(ticks)
    } else {
        u64::from(be32(moof, run.decode_time_at).unwrap_or(0))
            .checked_add(ticks)
            .filter(|&v| v <= u64::from(u32::MAX))
    };
    let Some(new_decode) = new_decode else {
        return 0;
    };
    // The run's box size: 32 bits, or 64 after "size 1".
    let run_size = if run.run_header == 16 {
        be_u64(moof, run.run_at + 8)
    } else {
        u64::from(be32(moof, run.run_at).unwrap_or(0))
    };
    let run_end = run.run_at + run_size as usize;
    let table_end = run.table_at + count as usize * entry;
    if table_end > run_end || run_end > moof.len() {
        return 0;
    }
    // Close up the table, then hand the freed bytes to a `free` box.
    moof.copy_within(run.table_at + freed..run_end, run.table_at);
    let free_at = run_end - freed;
    if freed > 0 {
        moof[free_at..free_at + 4].copy_from_slice(&(freed as u32).to_be_bytes());
        moof[free_at + 4..free_at + 8].copy_from_slice(b"free");
        moof[free_at + 8..run_end].fill(0);
        let new_size = run_size - freed as u64;
        if run.run_header == 16 {
            moof[run.run_at + 8..run.run_at + 16].copy_from_slice(&new_size.to_be_bytes());
        } else {
            moof[run.run_at..run.run_at + 4].copy_from_slice(&(new_size as u32).to_be_bytes());
        }
    }
    moof[run.count_at..run.count_at + 4].copy_from_slice(&(count - dropped).to_be_bytes());
    moof[run.data_offset_at..run.data_offset_at + 4].copy_from_slice(&offset.to_be_bytes());
    if run.decode_time_wide {
        moof[run.decode_time_at..run.decode_time_at + 8].copy_from_slice(&new_decode.to_be_bytes());
    } else {
        moof[run.decode_time_at..run.decode_time_at + 4]
            .copy_from_slice(&(new_decode as u32).to_be_bytes());
    }
    dropped
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// The fields `drop_leading_samples` rewrites, for `track_id`'s first run.
fn first_run(moof: &[u8], trex: &[TrackExtends], track_id: u32) -> Option<FirstRun> {
    let header = super::boxes::parse_header(moof).ok()??;
    if header.kind != *b"moof" {
        return None;
    }
    let payload = moof.get(header.header_len as usize..header.size? as usize)?;
    for traf_box in children(payload, *b"moof") {
        let traf_box = traf_box.ok()?;
        if &traf_box.kind != b"traf" {
            continue;
        }
        let mut tfhd_fields = None;
        let mut decode = None;
        for c in children(traf_box.payload, *b"traf") {
            let c = c.ok()?;
            match &c.kind {
                b"tfhd" => {
                    let mut f = Fields::new(c.payload, *b"tfhd");
                    let (_, flags) = f.version_flags().ok()?;
                    let id = f.u32().ok()?;
                    if id != track_id {
                        break;
                    }
                    if flags & 0x1 != 0 {
                        return None; // absolute offsets
                    }
                    if flags & 0x2 != 0 {
                        f.u32().ok()?;
                    }
                    let defaults = trex.iter().find(|t| t.track_id == id);
                    let duration = if flags & 0x8 != 0 {
                        f.u32().ok()?
                    } else {
                        defaults.map_or(0, |d| d.default_sample_duration)
                    };
                    let size = if flags & 0x10 != 0 {
                        f.u32().ok()?
                    } else {
                        defaults.map_or(0, |d| d.default_sample_size)
                    };
                    tfhd_fields = Some((duration, size));
                }
                b"tfdt" => {
                    let version = *c.payload.first()?;
                    decode = Some((offset_in(moof, c.payload) + 4, version == 1));
                }
                b"trun" => {
                    let (default_duration, default_size) = tfhd_fields?;
                    let (decode_time_at, decode_time_wide) = decode?;
                    let mut f = Fields::new(c.payload, *b"trun");
                    let (version, flags) = f.version_flags().ok()?;
                    if flags & 0x1 == 0 {
                        return None; // no data offset to move
                    }
                    let payload_at = offset_in(moof, c.payload);
                    let first_flags = if flags & 0x4 != 0 { 4 } else { 0 };
                    return Some(FirstRun {
                        decode_time_at,
                        decode_time_wide,
                        run_at: offset_in(moof, c.bytes),
                        run_header: c.bytes.len() - c.payload.len(),
                        count_at: payload_at + 4,
                        data_offset_at: payload_at + 8,
                        table_at: payload_at + 12 + first_flags,
                        version,
                        flags,
                        default_duration,
                        default_size,
                    });
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    /// A moof with one traf of track 2: tfdt 1000, a run of four samples
    /// (durations 10, sizes 100..=103) at data offset 500.
    fn moof() -> Vec<u8> {
        let tfhd = boxed(b"tfhd", &[0, 2, 0, 0, 0, 0, 0, 2]);
        let mut tfdt = vec![1, 0, 0, 0];
        tfdt.extend_from_slice(&1000u64.to_be_bytes());
        let mut trun = vec![0, 0, 0x03, 0x01];
        trun.extend_from_slice(&4u32.to_be_bytes());
        trun.extend_from_slice(&500i32.to_be_bytes());
        for size in 100u32..104 {
            trun.extend_from_slice(&10u32.to_be_bytes());
            trun.extend_from_slice(&size.to_be_bytes());
        }
        let traf = [
            boxed(b"tfhd", &tfhd[8..]),
            boxed(b"tfdt", &tfdt),
            boxed(b"trun", &trun),
        ]
        .concat();
        boxed(b"moof", &boxed(b"traf", &traf))
    }

    #[test]
    fn leading_samples_are_dropped_in_place() {
        let mut m = moof();
        let before = m.len();
        let dropped = drop_leading_samples(&mut m, &[], 2, |s| s.decode_time < 1025);
        assert_eq!(dropped, 3);
        assert_eq!(m.len(), before);
        let runs = parse_moof(&m[8..], &[]).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].decode_time, Some(1030));
        assert_eq!(runs[0].sample_count, 1);
        assert_eq!(runs[0].duration, Some(10));
        // the run's data offset moved past 100 + 101 + 102 bytes, its one
        // entry is the last sample's, and a free box holds the rest
        let trun_at = m.windows(4).position(|w| w == b"trun").unwrap() - 4;
        let field = |at: usize| u32::from_be_bytes(m[at..at + 4].try_into().unwrap());
        assert_eq!(field(trun_at), 8 + 4 + 4 + 4 + 8);
        assert_eq!(field(trun_at + 16) as i32, 500 + 303);
        assert_eq!((field(trun_at + 20), field(trun_at + 24)), (10, 103));
        assert_eq!(&m[trun_at + 32..trun_at + 36], b"free");
        assert_eq!(field(trun_at + 28), 24);
    }

    /// A run without a table: four billion samples of the `tfhd`'s
    /// defaults (duration 10, size 1).
    fn tableless_moof() -> Vec<u8> {
        let mut tfhd = vec![0, 0x02, 0x00, 0x18, 0, 0, 0, 2];
        tfhd.extend_from_slice(&10u32.to_be_bytes());
        tfhd.extend_from_slice(&1u32.to_be_bytes());
        let mut tfdt = vec![1, 0, 0, 0];
        tfdt.extend_from_slice(&1000u64.to_be_bytes());
        let mut trun = vec![0, 0, 0, 0x01];
        trun.extend_from_slice(&4_000_000_000u32.to_be_bytes());
        trun.extend_from_slice(&500i32.to_be_bytes());
        let traf = [
            boxed(b"tfhd", &tfhd),
            boxed(b"tfdt", &tfdt),
            boxed(b"trun", &trun),
        ]
        .concat();
        boxed(b"moof", &boxed(b"traf", &traf))
    }

    #[test]
    fn a_run_without_a_table_drops_its_prefix_at_once() {
        let mut m = tableless_moof();
        let dropped = drop_leading_samples(&mut m, &[], 2, |s| s.decode_time < 1000 + 10_000_000);
        assert_eq!(dropped, 1_000_000);
        let runs = parse_moof(&m[8..], &[]).unwrap();
        assert_eq!(runs[0].decode_time, Some(1000 + 10_000_000));
        assert_eq!(runs[0].sample_count, 3_999_000_000);
        let trun_at = m.windows(4).position(|w| w == b"trun").unwrap() - 4;
        let offset = i32::from_be_bytes(m[trun_at + 16..trun_at + 20].try_into().unwrap());
        assert_eq!(offset, 500 + 1_000_000);
        // Dropping all but one would move the data offset past 2^31:
        // nothing changes.
        let mut m = tableless_moof();
        assert_eq!(drop_leading_samples(&mut m, &[], 2, |_| true), 0);
        assert_eq!(m, tableless_moof());
    }

    #[test]
    fn one_sample_always_stays_and_other_tracks_are_untouched() {
        let mut m = moof();
        assert_eq!(drop_leading_samples(&mut m, &[], 2, |_| true), 3);
        let mut m = moof();
        assert_eq!(drop_leading_samples(&mut m, &[], 7, |_| true), 0);
        assert_eq!(m, moof());
        // one sample's entry (8 bytes) is room enough for a free box
        let mut m = moof();
        assert_eq!(
            drop_leading_samples(&mut m, &[], 2, |s| s.decode_time < 1005),
            1
        );
    }
}
