//! MP4 cuts: `start`/`end` in seconds become a new `ftyp` + `moov` + `mdat`
//! header (the prefix) and one range of the file holding every sample the
//! new tables reference.
//!
//! The reference track (video) starts at the sync sample presented at or
//! before `start`; every other track starts at the sample presented at or
//! before that keyframe, so tracks stay together even for players that
//! ignore edit lists. Each track gets an edit list composed from its own
//! (empty edits, B-frame delay, audio priming): in exact mode it hides the
//! pre-roll so presentation begins at `start`; in keyframe mode
//! presentation begins at the keyframe.

use super::{CutMode, Position, Prefix, PrefixMode, Request};
use crate::error::{Error, Result};
use crate::fnv::Fnv;
use crate::format::mp4::boxes::{children, parse_header, FourCc};
use crate::format::mp4::fragment;
use crate::format::mp4::moov::{entered, TrackExtends};
use crate::format::mp4::write::{mdat_header, set_header_duration, BoxWriter};
use crate::index::mp4::{
    ChunkPart, DecodeTime, Faststart, Fragment, Layout, Mp4Index, TrackIndex, TrackKind, MAX_MOOF,
    MAX_SCAN,
};
use crate::plan::body::{Part, PatchedFile, Patches, PieceRun, GENERATED_MAX};
use crate::source::{read_full_at, ByteSource};
use std::sync::Arc;

const NS: i128 = 1_000_000_000;
const NS_PER_MS: i128 = 1_000_000;

/// What a format's resolver decides (see `plan::Cut`).
pub(crate) fn resolve(
    index: &Mp4Index,
    src: &dyn ByteSource,
    request: &Request,
    mode: CutMode,
    faststart: bool,
) -> Result<super::Cut> {
    if request.initial_bytes.is_some() {
        return Err(Error::bad_request(
            "jump-to-byte (ib/fs) does not apply to MP4: use start/end in seconds",
        ));
    }
    let size = index.info.size;
    if request.prefix == Some(PrefixMode::None) {
        return raw_bytes(index, request);
    }
    let start = super::seconds(request.start, "start", "MP4")?;
    let end = super::seconds(request.end, "end", "MP4")?;
    let duration_ms = index.info.duration_ms;
    if start.is_none() && end.is_none() {
        if let Some(f) = index.faststart.as_ref().filter(|_| faststart) {
            return Ok(moov_first(f, duration_ms));
        }
        return Ok(super::Cut {
            rest: super::Rest::Stored,
            prefix: Prefix::empty(),
            from: 0,
            to: size,
            start_ms: 0,
            end_ms: duration_ms,
        });
    }
    if let Some((id, why)) = index
        .tracks
        .iter()
        .find_map(|t| t.edits_refused.as_ref().map(|why| (t.id, why)))
    {
        return Err(Error::UnsupportedFormat(format!(
            "track {id} cannot be cut: its {why}; the file is served whole without start/end"
        )));
    }
    let start = start.unwrap_or(0);
    if let Some(e) = end {
        if e <= start {
            return Err(Error::bad_request(format!(
                "end ({e} ms) is not after start ({start} ms)"
            )));
        }
    }
    if start >= duration_ms {
        return Err(Error::unsatisfiable(format!(
            "start {start} ms is past the end of the media ({duration_ms} ms)"
        )));
    }
    let start_ns = i128::from(start) * NS_PER_MS;
    let end_ns = end
        .filter(|&e| e < duration_ms)
        .map(|e| i128::from(e) * NS_PER_MS);
    match &index.layout {
        Layout::Samples => cut_samples(index, start_ns, end_ns, mode),
        Layout::Fragments {
            list,
            decode_times,
            end,
            absolute,
            moov_samples,
            trex,
        } => {
            let layout = FragmentLayout {
                list,
                decode_times,
                data_end: *end,
                absolute: *absolute,
                moov_samples: *moov_samples,
                trex,
            };
            cut_fragments(index, src, &layout, start_ns, end_ns, mode)
        }
    }
}

/// The whole of a moov-at-end file with its `moov` first.
fn moov_first(f: &Faststart, duration_ms: u64) -> super::Cut {
    let parts = f
        .ranges
        .iter()
        .map(|&(from, to)| Part::File { from, to })
        .collect();
    super::Cut {
        prefix: Prefix::shared(&f.head, 0, f.digest),
        from: f.ranges.first().map_or(0, |r| r.0),
        to: f.ranges.last().map_or(0, |r| r.1),
        rest: super::Rest::Laid(parts),
        start_ms: 0,
        end_ms: duration_ms,
    }
}

/// `bstart`/`bend`: bytes of the stored file, as they are.
fn raw_bytes(index: &Mp4Index, request: &Request) -> Result<super::Cut> {
    let size = index.info.size;
    let from = match request.start {
        Some(Position::Bytes(b)) => b,
        None => 0,
        Some(_) => return Err(Error::bad_request("byte ranges are in bytes")),
    };
    if from >= size {
        return Err(Error::unsatisfiable(format!(
            "start byte {from} is past the end of a {size}-byte file"
        )));
    }
    let to = match request.end {
        Some(Position::Bytes(e)) => e.saturating_add(1).min(size),
        None => size,
        Some(_) => return Err(Error::bad_request("byte ranges are in bytes")),
    };
    if to <= from {
        return Err(Error::unsatisfiable("end is not after start"));
    }
    Ok(super::Cut {
        rest: super::Rest::Stored,
        prefix: Prefix::empty(),
        from,
        to,
        start_ms: 0,
        end_ms: 0,
    })
}

/// One track of a cut: samples `[from, to)` and how they are presented.
#[derive(Clone, Copy, Debug, Default)]
struct TrackCut {
    from: u32,
    to: u32,
    /// Leading empty edit, movie timescale (0: none).
    empty: u64,
    /// The edit that shows media: its media time and its duration (movie
    /// timescale).
    media_time: i64,
    shown: u64,
    /// Left out of the cut's `moov`: the track ended before the start, so
    /// it has nothing to present (a player could pick it and show nothing).
    ended: bool,
}

impl TrackCut {
    fn is_empty(&self) -> bool {
        self.from >= self.to
    }

    /// Where the track's presentation ends in the cut (movie timescale).
    /// Saturates: an edit that far out in a hostile file must not wrap.
    fn end(&self) -> u64 {
        self.empty.saturating_add(self.shown)
    }
}

/// The last sync sample presented at or before `ns`; the first sync sample
/// when none is.
fn sync_at_or_before(t: &TrackIndex, ns: i128) -> u32 {
    let target = t.ct_at(ns);
    let (min, _) = t.cts_range();
    // Samples decoded after `target - min` are composed after `target`.
    let bound = target - i128::from(min);
    let presented_by = |s: u32| t.ct(s) <= target;
    match t.sync_samples() {
        Some(sync) if !sync.is_empty() => {
            let mut i = sync.partition_point(|&s| i128::from(t.dts(s)) <= bound);
            let floor = i.saturating_sub(MAX_SCAN as usize);
            while i > floor && !presented_by(sync[i - 1]) {
                i -= 1;
            }
            sync[i.saturating_sub(1)]
        }
        Some(_) => 0,
        None => {
            let mut n = t.samples_before_dts(bound + 1);
            let floor = n.saturating_sub(MAX_SCAN);
            while n > floor && !presented_by(n - 1) {
                n -= 1;
            }
            n.saturating_sub(1)
        }
    }
}

/// Samples `[from, n)` hold every sample presented before `end_ns`, and as
/// few after it as decode order allows.
fn end_for(t: &TrackIndex, from: u32, end_ns: Option<i128>) -> u32 {
    let Some(end_ns) = end_ns else {
        return t.samples;
    };
    let target = t.ct_at(end_ns);
    let (min, max) = t.cts_range();
    // Decoded before `target - max`: composed before `target`. Decoded after
    // `target - min`: composed after it. Those between are looked at.
    let maybe = t.samples_before_dts(target - i128::from(min) + 1);
    let sure = t
        .samples_before_dts(target - i128::from(max))
        .max(maybe.saturating_sub(MAX_SCAN));
    let mut last = sure;
    for s in sure..maybe {
        if t.sample_ns(s) < end_ns {
            last = s + 1;
        }
    }
    last.max(from)
}

fn to_movie(ns: i128, movie_timescale: u32) -> u64 {
    let v = (ns * i128::from(movie_timescale) + NS / 2).div_euclid(NS);
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// The edits that present `[from, to)` of `t` from `start_ns` to `end_ns`.
fn compose(t: &TrackIndex, from: u32, to: u32, start_ns: i128, end_ns: i128, mts: u32) -> TrackCut {
    let mut cut = TrackCut {
        from,
        to,
        ..TrackCut::default()
    };
    if from >= to {
        return cut;
    }
    let first_dts = i128::from(t.dts(from));
    let shown_ct = t
        .ct_at(start_ns)
        .max(i128::from(t.edit.media_time))
        .max(first_dts);
    let shown_from = t.presentation_ns(shown_ct).max(start_ns);
    let shown_to = end_ns.min(t.presentation_end_of(from, to));
    if shown_to <= shown_from {
        return TrackCut::default();
    }
    cut.empty = to_movie(shown_from - start_ns, mts);
    cut.media_time = i64::try_from(shown_ct - first_dts).unwrap_or(i64::MAX);
    // An edit of 0 would read as "to the end": a span shorter than a tick
    // of the movie timescale still shows one tick.
    cut.shown = to_movie(shown_to - start_ns, mts)
        .saturating_sub(cut.empty)
        .max(1);
    cut
}

fn cut_samples(
    index: &Mp4Index,
    start_ns: i128,
    end_ns: Option<i128>,
    mode: CutMode,
) -> Result<super::Cut> {
    let mts = index.movie_timescale;
    // The track cuts snap to: the file's reference, or, when it has ended
    // before the start, the first track that still presents media then
    // (video first), so a longer track plays on past a shorter one.
    let still = |t: &TrackIndex| t.samples > 0 && t.end_ns > start_ns;
    let reference_at = if still(&index.tracks[index.reference]) {
        index.reference
    } else {
        [TrackKind::Video, TrackKind::Audio]
            .iter()
            .find_map(|k| index.tracks.iter().position(|t| t.kind == *k && still(t)))
            .or_else(|| index.tracks.iter().position(still))
            .unwrap_or(index.reference)
    };
    let reference = &index.tracks[reference_at];
    let key = sync_at_or_before(reference, start_ns);
    let key_ns = reference.sample_ns(key);
    // Presentation cannot begin before the movie does.
    let shown_start = match mode {
        CutMode::Exact => start_ns,
        CutMode::Keyframe => key_ns.max(0),
    };
    let media_end = index.tracks.iter().map(|t| t.end_ns).max().unwrap_or(0);
    let shown_end = end_ns.unwrap_or(media_end).min(media_end);
    if shown_end <= shown_start {
        return Err(Error::unsatisfiable(
            "no keyframe is presented before the end of the span",
        ));
    }
    // Data of the other tracks starts where the reference's does.
    let data_start = key_ns.min(start_ns);

    let mut cuts = Vec::with_capacity(index.tracks.len());
    for (i, t) in index.tracks.iter().enumerate() {
        if t.samples == 0 {
            cuts.push(TrackCut::default());
            continue;
        }
        let from = if i == reference_at {
            key
        } else {
            sync_at_or_before(t, data_start)
        };
        let mut to = end_for(t, from, end_ns);
        if i == reference_at {
            to = to.max(from + 1);
        }
        let mut c = compose(t, from, to, shown_start, shown_end, mts);
        c.ended = c.is_empty() && t.end_ns <= start_ns;
        cuts.push(c);
    }
    if cuts.iter().all(TrackCut::is_empty) {
        return Err(Error::unsatisfiable(
            "nothing of the media is presented in that span",
        ));
    }
    // The cut ends where its samples' presentation does: no later than the
    // end asked for, and earlier when what it holds ends earlier.
    let shown_end = cuts
        .iter()
        .map(|c| shown_start + i128::from(c.end()) * NS / i128::from(mts))
        .max()
        .unwrap_or(shown_start)
        .min(shown_end);

    // The file range: every byte of every chunk part the new tables point at.
    let chunks: Vec<Vec<ChunkPart>> = index
        .tracks
        .iter()
        .zip(&cuts)
        .map(|(t, c)| {
            if c.is_empty() {
                Vec::new()
            } else {
                t.chunks_within(c.from, c.to)
            }
        })
        .collect();
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    for part in chunks.iter().flatten() {
        lo = lo.min(part.offset);
        hi = hi.max(part.offset + part.bytes);
    }
    if lo > hi {
        return Err(Error::unsatisfiable(
            "nothing of the media is presented in that span",
        ));
    }
    let payload = hi - lo;
    let ftyp = index.ftyp.as_deref().unwrap_or(&[]);
    let bound = payload + 2 * index.moov_size + ftyp.len() as u64 + (1 << 20);
    let wide = bound > u64::from(u32::MAX);
    let movie_duration = cuts.iter().map(TrackCut::end).max().unwrap_or(0);
    let mut moov = write_moov(
        index,
        &cuts,
        &chunks,
        Some(movie_duration),
        (lo, wide),
        true,
    )?;
    let mdat = mdat_header(payload);
    let prefix_len = (ftyp.len() + moov.out.len() + mdat.len()) as u64;
    moov.shift_offsets(prefix_len)?;
    let mut prefix = Vec::with_capacity(prefix_len as usize);
    prefix.extend_from_slice(ftyp);
    prefix.extend_from_slice(&moov.out);
    prefix.extend_from_slice(&mdat);
    Ok(super::Cut {
        rest: super::Rest::Stored,
        prefix: prefix.into(),
        from: lo,
        to: hi,
        start_ms: (shown_start.max(0) / NS_PER_MS) as u64,
        end_ms: (shown_end.max(0) / NS_PER_MS) as u64,
    })
}

/// A fragmented file as a cut sees it.
struct FragmentLayout<'a> {
    list: &'a [Fragment],
    decode_times: &'a Arc<[DecodeTime]>,
    data_end: u64,
    absolute: bool,
    moov_samples: bool,
    trex: &'a [TrackExtends],
}

/// A cut of a fragmented file: whole fragments, from the one that starts
/// with the keyframe at or before `start` to the one presented from `end`,
/// on a timeline that starts at 0. Exact mode presents it from that
/// keyframe: edit lists hide what comes before it (the B-frame delay, audio
/// decoded earlier), and the first fragment's leading samples of the other
/// tracks presented before it are dropped. Keyframe mode hides nothing: the
/// cut's 0 is its earliest decode time.
fn cut_fragments(
    index: &Mp4Index,
    src: &dyn ByteSource,
    layout: &FragmentLayout<'_>,
    start_ns: i128,
    end_ns: Option<i128>,
    mode: CutMode,
) -> Result<super::Cut> {
    let list = layout.list;
    let media_end_ns = i128::from(index.info.duration_ms) * NS_PER_MS;
    // The fragment boundary at or after `end`, after fragment `after`, and
    // when it is presented.
    let end_at = |after: Option<usize>| -> (u64, i128) {
        let rest = after.map_or(list, |i| &list[i + 1..]);
        match end_ns {
            Some(e) => rest
                .iter()
                .find(|f| f.time_ns.is_some_and(|t| t >= e))
                .map_or((layout.data_end, media_end_ns), |f| {
                    (f.offset, f.time_ns.unwrap_or(0))
                }),
            None => (layout.data_end, media_end_ns),
        }
    };
    let ms = |ns: i128| (ns.max(0) / NS_PER_MS) as u64;
    // Before the first fragment, samples the moov describes: the file from
    // its first byte, with its own moov (nothing moves).
    let first_time = list.first().and_then(|f| f.time_ns).unwrap_or(0);
    if layout.moov_samples && start_ns < first_time {
        let (to, end) = end_at(None);
        return Ok(super::Cut {
            rest: super::Rest::Stored,
            prefix: Prefix::empty(),
            from: 0,
            to,
            start_ms: 0,
            end_ms: ms(end),
        });
    }
    if layout.absolute {
        return Err(Error::UnsupportedFormat(
            "the fragments address their data by absolute file offsets: the file is served \
             whole, or from its start, but cannot be cut later"
                .into(),
        ));
    }
    let first = list
        .iter()
        .rposition(|f| f.starts_with_sync && f.time_ns.is_some_and(|t| t <= start_ns))
        .or_else(|| list.iter().position(|f| f.starts_with_sync))
        .unwrap_or(0);
    let from = list[first].offset;
    let first_ns = list[first].time_ns.unwrap_or(0);
    if end_ns.is_some_and(|e| first_ns >= e) {
        return Err(Error::unsatisfiable(
            "no fragment starting with a keyframe begins before the end of the span",
        ));
    }
    let (to, end) = end_at(Some(first));
    let to = to.max(from);
    // Keyframe mode: every decode time in the cut moves back by the
    // earliest first decode time among its tracks, so the tracks keep their
    // offsets to each other without edit lists. Exact mode: each track
    // starts at 0 and its edit list places it.
    let mut rebase = Rebase::new(index, layout.decode_times, from, to);
    let decode_zero_ns = if rebase.lo < rebase.hi {
        rebase.base_ns
    } else {
        first_ns
    };
    // The source's time at the cut's 0.
    let zero_ns = match mode {
        CutMode::Exact => first_ns,
        CutMode::Keyframe => decode_zero_ns,
    };
    let mts = index.movie_timescale;
    let length = to_movie(end - zero_ns, mts).max(1);
    let mut first_moof = None;
    if mode == CutMode::Exact {
        first_moof = trimmed_moof(index, src, layout, from, to, zero_ns)?;
        let starts = first_moof.as_ref().map(|(_, starts)| starts);
        rebase.each_from_zero(|i| starts.and_then(|s: &Vec<Option<u64>>| s[i]));
    }
    let cuts: Vec<TrackCut> = index
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| match mode {
            CutMode::Exact => fragment_edit(t, rebase.less[i], zero_ns, length, mts),
            CutMode::Keyframe => TrackCut {
                shown: length,
                ..TrackCut::default()
            },
        })
        .collect();
    let no_chunks = vec![Vec::new(); index.tracks.len()];
    let edits = mode == CutMode::Exact;
    let moov = write_moov(index, &cuts, &no_chunks, Some(length), (0, false), edits)?;
    let ftyp = index.ftyp.as_deref().unwrap_or(&[]);
    let in_cut = &list[first..list.partition_point(|f| f.offset < to)];
    let sidx = segment_index(index, in_cut, to, end, zero_ns);
    let mut prefix = Vec::with_capacity(ftyp.len() + moov.out.len() + sidx.len());
    prefix.extend_from_slice(ftyp);
    prefix.extend_from_slice(&moov.out);
    prefix.extend_from_slice(&sidx);
    // Exact mode: the first moof goes from memory, trimmed and rebased.
    let mut run_from = from;
    if let Some((mut moof, _)) = first_moof {
        rebase.apply(&mut moof, from);
        run_from = from + moof.len() as u64;
        prefix.extend_from_slice(&moof);
    }
    let run: Arc<dyn PieceRun> = Arc::new(PatchedFile {
        from: run_from,
        to,
        patches: rebase,
    });
    Ok(super::Cut {
        rest: super::Rest::Patched(run),
        prefix: prefix.into(),
        from: run_from,
        to,
        start_ms: ms(zero_ns),
        end_ms: ms(end).max(ms(zero_ns)),
    })
}

/// A track's edit list in an exact fragmented cut: presentation starts at
/// `zero_ns` of the source, given that the track's decode times lose
/// `less` ticks. The source's own edit (a delayed start, the B-frame delay)
/// is composed in.
fn fragment_edit(t: &TrackIndex, less: u64, zero_ns: i128, length: u64, mts: u32) -> TrackCut {
    let ts = i128::from(t.timescale.max(1));
    let empty_ns = i128::from(t.edit.empty) * NS / i128::from(mts.max(1));
    // The cut's composition time c presents at
    //   empty + (c + less - media_time) / ts - zero.
    let at_zero_ns =
        empty_ns + (i128::from(less) - i128::from(t.edit.media_time)) * NS / ts - zero_ns;
    // A track whose samples in the cut would present only after its end
    // starts at the end (its fragments are in the range all the same).
    let (empty, media_time) = if at_zero_ns >= 0 {
        (to_movie(at_zero_ns, mts).min(length), 0)
    } else {
        let ticks = ((-at_zero_ns) * ts + NS / 2).div_euclid(NS);
        (0, i64::try_from(ticks).unwrap_or(i64::MAX))
    };
    TrackCut {
        empty,
        media_time,
        shown: length.saturating_sub(empty).max(1),
        ..TrackCut::default()
    }
}

/// The cut's first `moof` in exact mode, with the leading samples of every
/// track but the reference that are presented before `zero_ns` dropped (an
/// audio frame or a few, decoded before the keyframe), and each track's
/// decode time in it afterwards. None when it is not one to read (too
/// large, not a `moof`).
#[allow(clippy::type_complexity)]
fn trimmed_moof(
    index: &Mp4Index,
    src: &dyn ByteSource,
    layout: &FragmentLayout<'_>,
    from: u64,
    to: u64,
    zero_ns: i128,
) -> Result<Option<(Vec<u8>, Vec<Option<u64>>)>> {
    let mut head = [0u8; 16];
    let n = read_full_at(src, from, &mut head)?;
    let Ok(Some(header)) = parse_header(&head[..n]) else {
        return Ok(None);
    };
    let Some(size) = header
        .size
        .filter(|&s| header.kind == *b"moof" && s <= MAX_MOOF && from + s <= to)
    else {
        return Ok(None);
    };
    let mut moof = vec![0u8; size as usize];
    if read_full_at(src, from, &mut moof)? != moof.len() {
        return Err(Error::SourceChanged(format!(
            "the file ends inside the 'moof' at {from}"
        )));
    }
    for (i, t) in index.tracks.iter().enumerate() {
        if i != index.reference {
            fragment::drop_leading_samples(&mut moof, layout.trex, t.id, |s| {
                let ct = i128::from(s.decode_time) + i128::from(s.composition_offset);
                t.presentation_ns(ct) < zero_ns
            });
        }
    }
    let payload = &moof[header.header_len as usize..];
    let runs = fragment::parse_moof(payload, layout.trex).map_err(Error::from)?;
    let starts = index
        .tracks
        .iter()
        .map(|t| {
            runs.iter()
                .find(|r| r.track_id == t.id)
                .and_then(|r| r.decode_time)
        })
        .collect();
    Ok(Some((moof, starts)))
}

/// A segment index (`sidx`) of the cut's fragments, placed before the
/// first: each fragment's bytes and duration on the reference track. A
/// player that reads it knows the cut's length and where each fragment is
/// without reading them all (ffmpeg, and so Chromium's own `<video>`, would
/// otherwise take the duration from the last fragment). Empty when the
/// fragments cannot be described so (a fragment without a time of the
/// reference track, more than 65,535 of them, one over 2 GiB).
fn segment_index(
    index: &Mp4Index,
    fragments: &[Fragment],
    to: u64,
    end_ns: i128,
    base_ns: i128,
) -> Vec<u8> {
    let reference = &index.tracks[index.reference];
    let ts = i128::from(reference.timescale.max(1));
    let Some(first_ns) = fragments.first().and_then(|f| f.time_ns) else {
        return Vec::new();
    };
    let ticks = |ns: i128| ((ns - first_ns) * ts + NS / 2).div_euclid(NS);
    if fragments.len() > usize::from(u16::MAX) || fragments.iter().any(|f| f.time_ns.is_none()) {
        return Vec::new();
    }
    let mut w = BoxWriter::with_capacity(32 + fragments.len() * 12);
    let b = w.open_full(*b"sidx", 1, 0);
    w.u32(reference.id);
    w.u32(reference.timescale.max(1));
    let earliest = ((first_ns - base_ns).max(0) * ts + NS / 2).div_euclid(NS);
    w.u64(u64::try_from(earliest).unwrap_or(0));
    w.u64(0); // the first fragment follows at once
    w.u16(0);
    w.u16(fragments.len() as u16);
    for (i, f) in fragments.iter().enumerate() {
        let next = fragments.get(i + 1);
        let size = next.map_or(to, |n| n.offset) - f.offset;
        let until = next.and_then(|n| n.time_ns).unwrap_or(end_ns);
        let duration = ticks(until) - ticks(f.time_ns.unwrap_or(first_ns));
        let (Ok(size), Ok(duration)) = (u32::try_from(size), u32::try_from(duration.max(0))) else {
            return Vec::new();
        };
        if size >= 1 << 31 {
            return Vec::new();
        }
        w.u32(size);
        w.u32(duration);
        // starts with a SAP of type 1 when its first sample is a sync sample
        w.u32(if f.starts_with_sync { 0x9000_0000 } else { 0 });
    }
    w.close(b);
    w.out
}

/// The decode times of a fragmented cut, each moved back by its track's
/// share of the cut's start.
#[derive(Debug)]
struct Rebase {
    times: Arc<[DecodeTime]>,
    /// The cut's decode times: `times[lo..hi]`.
    lo: usize,
    hi: usize,
    /// What each track's times lose, in its timescale.
    less: Vec<u64>,
    /// The cut's start on the source's decode timeline, ns.
    base_ns: i128,
    /// Each track's first decode time in the cut, as stored.
    firsts: Vec<Option<u64>>,
}

impl Rebase {
    fn new(index: &Mp4Index, times: &Arc<[DecodeTime]>, from: u64, to: u64) -> Rebase {
        let lo = times.partition_point(|d| d.at < from);
        let hi = times.partition_point(|d| d.at + d.width() <= to);
        let hi = hi.max(lo);
        let ns = |d: &DecodeTime| {
            let ts = index.tracks[d.track as usize].timescale.max(1);
            i128::from(d.value) * NS / i128::from(ts)
        };
        // The earliest first decode time among the tracks in the cut.
        let mut firsts: Vec<Option<&DecodeTime>> = vec![None; index.tracks.len()];
        for d in &times[lo..hi] {
            firsts[d.track as usize].get_or_insert(d);
        }
        let base = firsts.iter().flatten().min_by_key(|d| ns(d)).copied();
        let base_ns = base.map_or(0, ns);
        let firsts = firsts.iter().map(|d| d.map(|d| d.value)).collect();
        // In each track's ticks, rounded down, so no time goes below 0 (and
        // the base's own track loses exactly its first time).
        let base_ts = base.map_or(1, |d| index.tracks[d.track as usize].timescale.max(1));
        let less = index
            .tracks
            .iter()
            .map(|t| {
                let v = base.map_or(0, |d| {
                    i128::from(d.value) * i128::from(t.timescale) / i128::from(base_ts)
                });
                u64::try_from(v.max(0)).unwrap_or(u64::MAX)
            })
            .collect();
        Rebase {
            times: Arc::clone(times),
            lo,
            hi,
            less,
            base_ns,
            firsts,
        }
    }

    /// Every track's times start at 0 instead: for cuts whose edit lists
    /// keep the tracks together. `first` overrides where a track starts.
    fn each_from_zero(&mut self, first: impl Fn(usize) -> Option<u64>) {
        for (i, less) in self.less.iter_mut().enumerate() {
            if let Some(v) = first(i).or(self.firsts[i]) {
                *less = v;
            }
        }
    }
}

impl Rebase {
    /// Rebases the decode times inside `bytes`, a copy of the file from
    /// `from` (its values read from the copy, which may have moved them).
    fn apply(&self, bytes: &mut [u8], from: u64) {
        let to = from + bytes.len() as u64;
        let inside = self.times[self.lo..self.hi]
            .iter()
            .filter(|d| d.at >= from && d.at + d.width() <= to);
        for d in inside {
            let at = (d.at - from) as usize;
            let less = self.less[d.track as usize];
            if d.wide {
                let field = &mut bytes[at..at + 8];
                let v = u64::from_be_bytes(field.try_into().expect("8 bytes"));
                field.copy_from_slice(&v.saturating_sub(less).to_be_bytes());
            } else {
                let field = &mut bytes[at..at + 4];
                let v = u64::from(u32::from_be_bytes(field.try_into().expect("4 bytes")));
                field.copy_from_slice(&(v.saturating_sub(less) as u32).to_be_bytes());
            }
        }
    }
}

impl Patches for Rebase {
    fn first_ending_after(&self, at: u64, out: &mut [u8; GENERATED_MAX]) -> Option<(u64, usize)> {
        let cut = &self.times[self.lo..self.hi];
        let d = cut.get(cut.partition_point(|d| d.at + d.width() <= at))?;
        let value = d.value.saturating_sub(self.less[d.track as usize]);
        if d.wide {
            out[..8].copy_from_slice(&value.to_be_bytes());
            Some((d.at, 8))
        } else {
            // A time that fit 32 bits still does, made smaller.
            out[..4].copy_from_slice(&(value as u32).to_be_bytes());
            Some((d.at, 4))
        }
    }

    fn digest(&self, h: &mut Fnv) {
        h.write(&(self.lo as u64).to_le_bytes());
        h.write(&(self.hi as u64).to_le_bytes());
        for l in &self.less {
            h.write(&l.to_le_bytes());
        }
    }
}

/// A written `moov` and where its chunk offset tables are, to shift them
/// once the prefix length is known.
struct WrittenMoov {
    out: Vec<u8>,
    /// (position of the first entry, entry count, 8-byte entries)
    offset_tables: Vec<(usize, usize, bool)>,
}

impl WrittenMoov {
    /// Adds `by` (the prefix length) to every chunk offset.
    fn shift_offsets(&mut self, by: u64) -> Result<()> {
        for &(at, count, wide) in &self.offset_tables {
            let width = if wide { 8 } else { 4 };
            for i in 0..count {
                let p = at + i * width;
                let field = &mut self.out[p..p + width];
                if wide {
                    let old = u64::from_be_bytes(field.try_into().expect("8 bytes"));
                    let new = old.checked_add(by).ok_or_else(overflow)?;
                    field.copy_from_slice(&new.to_be_bytes());
                } else {
                    let old = u32::from_be_bytes(field.try_into().expect("4 bytes"));
                    let new = u32::try_from(u64::from(old) + by).map_err(|_| overflow())?;
                    field.copy_from_slice(&new.to_be_bytes());
                }
            }
        }
        Ok(())
    }
}

fn overflow() -> Error {
    Error::Malformed("chunk offsets of the cut overflow".into())
}

/// Writes the `moov` box for `cuts` (one per track, in `moov` order), from
/// the index's skeleton. `movie_duration`: None keeps the stored durations
/// (fragmented files). `edits`: write the cut's edit lists; otherwise each
/// track's stored edit (first entries) is written back.
fn write_moov(
    index: &Mp4Index,
    cuts: &[TrackCut],
    chunks: &[Vec<ChunkPart>],
    movie_duration: Option<u64>,
    (base, wide): (u64, bool),
    edits: bool,
) -> Result<WrittenMoov> {
    let mut w = Writer {
        index,
        cuts,
        chunks,
        movie_duration,
        base,
        wide,
        edits,
        box_writer: BoxWriter::with_capacity(index.skeleton.len() + 4096),
        offset_tables: Vec::new(),
        track: 0,
    };
    let moov = w.box_writer.open(*b"moov");
    w.container(&index.skeleton, *b"moov")?;
    w.box_writer.close(moov);
    if w.box_writer.len() > u32::MAX as usize {
        return Err(Error::Malformed("the cut's moov would exceed 4 GiB".into()));
    }
    Ok(WrittenMoov {
        out: w.box_writer.out,
        offset_tables: w.offset_tables,
    })
}

struct Writer<'a> {
    index: &'a Mp4Index,
    cuts: &'a [TrackCut],
    /// Each track's chunk parts (empty for an empty cut).
    chunks: &'a [Vec<ChunkPart>],
    movie_duration: Option<u64>,
    /// File offset of the range's first byte.
    base: u64,
    wide: bool,
    edits: bool,
    box_writer: BoxWriter,
    offset_tables: Vec<(usize, usize, bool)>,
    /// The `trak` being written.
    track: usize,
}

impl<'a> Writer<'a> {
    fn container(&mut self, payload: &[u8], parent: FourCc) -> Result<()> {
        for c in children(payload, parent) {
            let c = c?;
            match &c.kind {
                b"mvhd" | b"tkhd" | b"mdhd" if header_of(parent) == Some(c.kind) => {
                    let duration = self.header_duration(c.kind);
                    let at = self.box_writer.len();
                    self.box_writer.bytes(c.bytes);
                    if let Some(d) = duration {
                        let header = c.bytes.len() - c.payload.len();
                        set_header_duration(c.kind, &mut self.box_writer.out[at + header..], d);
                    }
                    if &c.kind == b"tkhd" {
                        self.edit_list();
                    }
                }
                b"mvex" if &parent == b"moov" && self.movie_duration.is_some() => {
                    let b = self.box_writer.open(c.kind);
                    for m in children(c.payload, c.kind) {
                        let m = m?;
                        let at = self.box_writer.len();
                        self.box_writer.bytes(m.bytes);
                        if &m.kind == b"mehd" {
                            let header = m.bytes.len() - m.payload.len();
                            let d = self.movie_duration.unwrap_or(0);
                            set_header_duration(m.kind, &mut self.box_writer.out[at + header..], d);
                        }
                    }
                    self.box_writer.close(b);
                }
                b"stsd" if &parent == b"stbl" => {
                    self.box_writer.bytes(c.bytes);
                    self.sample_tables();
                }
                kind if entered(parent, *kind) => {
                    if kind == b"trak" && self.track >= self.index.tracks.len() {
                        return Err(Error::Malformed("the moov changed shape".into()));
                    }
                    if kind == b"trak" && self.cuts[self.track].ended {
                        self.track += 1;
                        continue;
                    }
                    let b = self.box_writer.open(c.kind);
                    self.container(c.payload, c.kind)?;
                    self.box_writer.close(b);
                    if kind == b"trak" {
                        self.track += 1;
                    }
                }
                _ => self.box_writer.bytes(c.bytes),
            }
        }
        Ok(())
    }

    fn cut(&self) -> (&'a TrackIndex, TrackCut) {
        (&self.index.tracks[self.track], self.cuts[self.track])
    }

    fn header_duration(&self, kind: FourCc) -> Option<u64> {
        let movie = self.movie_duration?;
        if &kind == b"mvhd" {
            // Anywhere in the moov, before or after the tracks.
            return Some(movie);
        }
        let (t, c) = self.cut();
        Some(match &kind {
            b"tkhd" => c.end(),
            _ if c.is_empty() => 0,
            _ => t.dts(c.to) - t.dts(c.from),
        })
    }

    fn edit_list(&mut self) {
        let (t, c) = self.cut();
        let entries: Vec<(u64, i64)> = if self.edits {
            // Nothing shown: no samples in a cut of samples (a fragmented
            // cut's tracks show their fragments' samples).
            if c.shown == 0 {
                return;
            }
            let mut e = Vec::new();
            if c.empty > 0 {
                e.push((c.empty, -1));
            }
            e.push((c.shown, c.media_time));
            e
        } else {
            if !t.has_edits {
                return;
            }
            let mut e = Vec::new();
            if t.edit.empty > 0 {
                e.push((t.edit.empty, -1));
            }
            e.push((t.edit.duration.unwrap_or(0), t.edit.media_time));
            e
        };
        let w = &mut self.box_writer;
        let wide = entries
            .iter()
            .any(|&(d, m)| d > u64::from(u32::MAX) || m > i64::from(i32::MAX));
        let edts = w.open(*b"edts");
        let elst = w.open_full(*b"elst", u8::from(wide), 0);
        w.u32(entries.len() as u32);
        for (duration, media_time) in entries {
            if wide {
                w.u64(duration);
                w.i64(media_time);
            } else {
                w.u32(duration as u32);
                w.i32(media_time as i32);
            }
            w.u16(1);
            w.u16(0);
        }
        w.close(elst);
        w.close(edts);
    }

    fn sample_tables(&mut self) {
        let (t, c) = self.cut();
        let (from, to) = if c.is_empty() { (0, 0) } else { (c.from, c.to) };
        let n = to - from;
        let w = &mut self.box_writer;

        let runs = t.time_runs(from, to);
        let b = w.open_full(*b"stts", 0, 0);
        w.u32(runs.len() as u32);
        for (count, delta) in runs {
            w.u32(count);
            w.u32(delta);
        }
        w.close(b);

        if let Some(version) = t.cts_version() {
            let runs = t.cts_runs(from, to);
            if !runs.is_empty() {
                let b = w.open_full(*b"ctts", version, 0);
                w.u32(runs.len() as u32);
                for (count, offset) in runs {
                    w.u32(count);
                    w.i32(offset);
                }
                w.close(b);
            }
        }

        if let Some(sync) = t.sync_samples() {
            let lo = sync.partition_point(|&s| s < from);
            let hi = sync.partition_point(|&s| s < to);
            let b = w.open_full(*b"stss", 0, 0);
            w.u32((hi - lo) as u32);
            for &s in &sync[lo..hi] {
                w.u32(s - from + 1);
            }
            w.close(b);
        }

        if let Some(deps) = t.sdtp() {
            let b = w.open_full(*b"sdtp", 0, 0);
            w.bytes(&deps[from as usize..to as usize]);
            w.close(b);
        }

        let chunks = &self.chunks[self.track];
        let b = w.open_full(*b"stsc", 0, 0);
        let count_at = w.len();
        w.u32(0);
        let mut entries = 0u32;
        let mut last: Option<(u32, u32)> = None;
        for (i, part) in chunks.iter().enumerate() {
            let run = (part.samples, part.description);
            if last != Some(run) {
                w.u32(i as u32 + 1);
                w.u32(part.samples);
                w.u32(part.description);
                entries += 1;
                last = Some(run);
            }
        }
        w.out[count_at..count_at + 4].copy_from_slice(&entries.to_be_bytes());
        w.close(b);

        let b = w.open_full(*b"stsz", 0, 0);
        match t.uniform_size() {
            Some(size) => {
                w.u32(size);
                w.u32(n);
            }
            None => {
                w.u32(0);
                w.u32(n);
                for s in from..to {
                    w.u32(t.size_of(s));
                }
            }
        }
        w.close(b);

        // Offsets relative to the range start here; the prefix length is
        // added once the whole prefix is written.
        let b = w.open_full(if self.wide { *b"co64" } else { *b"stco" }, 0, 0);
        w.u32(chunks.len() as u32);
        let table_at = w.len();
        for part in chunks {
            let relative = part.offset - self.base;
            if self.wide {
                w.u64(relative);
            } else {
                w.u32(relative as u32);
            }
        }
        w.close(b);
        self.offset_tables.push((table_at, chunks.len(), self.wide));

        for g in t.groups() {
            let runs = slice_group(&g.runs, from, to);
            let w = &mut self.box_writer;
            let b = w.open_full(*b"sbgp", u8::from(g.parameter.is_some()), 0);
            w.bytes(&g.grouping_type);
            if let Some(p) = g.parameter {
                w.u32(p);
            }
            w.u32(runs.len() as u32);
            for (count, group) in runs {
                w.u32(count);
                w.u32(group);
            }
            w.close(b);
        }
    }
}

/// The header box whose duration a cut rewrites, by its parent.
fn header_of(parent: FourCc) -> Option<FourCc> {
    match &parent {
        b"moov" => Some(*b"mvhd"),
        b"trak" => Some(*b"tkhd"),
        b"mdia" => Some(*b"mdhd"),
        _ => None,
    }
}

/// Slices (count, group) runs to samples `[from, to)`.
fn slice_group(runs: &[(u32, u32)], from: u32, to: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut s = 0u32;
    for &(count, group) in runs {
        let (a, b) = (s.max(from), s.saturating_add(count).min(to));
        if a < b {
            out.push((b - a, group));
        }
        s = s.saturating_add(count);
        if s >= to {
            break;
        }
    }
    out
}
