//! A progressive MP4 written from the neutral sample model: `ftyp`, a
//! `moov` with sample tables built from the samples, and an `mdat` whose
//! payload is the samples' bytes, each a range of the source file (an
//! FLV's payloads lie between tag headers). Samples are grouped into chunks
//! of about a second per track, interleaved by time, as a muxer lays them
//! out. Pure: the writer returns the head's bytes and where each sample's
//! bytes go; the caller sends them.

use super::write::{mdat_header, BoxWriter};
use super::Mp4Error;
use crate::format::mp4::boxes::FourCc;
use crate::format::samples::{SampleEntry, SampleTrack, TrackKind};

/// The movie timescale: ms.
const MOVIE_TIMESCALE: u32 = 1000;
const IDENTITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Samples `[from, to)` of a track, and the part of their presentation an
/// MP4 shows (presentation times in the track's timescale; None: all of it).
#[derive(Clone, Copy, Debug)]
pub struct TrackPart<'a> {
    pub track: &'a SampleTrack,
    pub from: usize,
    pub to: usize,
    pub shown: Option<(i64, i64)>,
}

impl<'a> TrackPart<'a> {
    pub fn whole(track: &'a SampleTrack) -> TrackPart<'a> {
        TrackPart {
            track,
            from: 0,
            to: track.samples.len(),
            shown: None,
        }
    }

    /// Decode time just past the part's last sample.
    fn end_dts(&self) -> u64 {
        self.track
            .samples
            .get(self.to)
            .map_or(self.track.end_dts, |s| s.dts)
    }

    /// What is shown: the given window, or every sample's presentation.
    pub fn shown_window(&self) -> (i64, i64) {
        self.shown.unwrap_or_else(|| {
            let pts = |s: &crate::format::samples::Sample| s.dts as i64 + i64::from(s.cts);
            let samples = &self.track.samples[self.from..self.to];
            let first = samples.iter().take(64).map(pts).min().unwrap_or(0);
            let last = samples[samples.len().saturating_sub(64)..]
                .iter()
                .map(pts)
                .max()
                .unwrap_or(0);
            let last_duration = self.end_dts() - samples.last().map_or(0, |s| s.dts);
            (first, last + last_duration as i64)
        })
    }
}

/// An MP4 laid out: its head (`ftyp`, `moov`, `mdat` header), then the
/// samples' file bytes, chunk by chunk.
#[derive(Debug)]
pub struct ProgressiveMp4 {
    pub head: Vec<u8>,
    pub mdat: MdatLayout,
    /// The movie's duration, ms.
    pub duration_ms: u64,
}

/// Samples `[from, to)` of part `part`, stored together at `at` in the
/// `mdat` payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdatChunk {
    pub part: u32,
    pub from: u32,
    pub to: u32,
    pub at: u64,
}

/// The `mdat` payload: its chunks in order (a few per second of media, so
/// the layout of a long file stays small; the samples say the rest).
#[derive(Debug, Default)]
pub struct MdatLayout {
    pub chunks: Vec<MdatChunk>,
    pub len: u64,
}

impl MdatLayout {
    /// The file range that payload byte `pos` (< `len`) is in, given each
    /// part's track: its offset and the bytes left in it from there.
    pub fn at<'t>(&self, track: impl Fn(usize) -> &'t SampleTrack, pos: u64) -> (u64, u64) {
        let c = &self.chunks[self.chunks.partition_point(|c| c.at <= pos) - 1];
        let samples = &track(c.part as usize).samples[c.from as usize..c.to as usize];
        let mut at = c.at;
        for s in samples {
            let next = at + u64::from(s.size);
            if pos < next {
                return (s.offset + (pos - at), next - pos);
            }
            at = next;
        }
        // Past the chunk's samples: not a position of this layout.
        (0, 0)
    }

    /// A digest of the layout, given the parts' tracks (the file ranges in
    /// order).
    pub fn digest<'t>(&self, track: impl Fn(usize) -> &'t SampleTrack) -> u64 {
        let mut h = crate::fnv::Fnv::new();
        for c in &self.chunks {
            for s in &track(c.part as usize).samples[c.from as usize..c.to as usize] {
                h.write(&s.offset.to_le_bytes());
                h.write(&s.size.to_le_bytes());
            }
        }
        h.finish()
    }

    pub fn cost_bytes(&self) -> usize {
        self.chunks.len() * std::mem::size_of::<MdatChunk>()
    }
}

/// Lays out the parts (none empty), in this order, on a timeline whose 0 is
/// presentation time `origin_ms` of the source (None: the first picture
/// shown, or without video the earliest presentation shown). What a track
/// shows before the origin (audio priming that an FLV keeps) is hidden by
/// its edit list.
pub fn write(parts: &[TrackPart], origin_ms: Option<i64>) -> Result<ProgressiveMp4, Mp4Error> {
    if parts.is_empty() || parts.iter().any(|p| p.to <= p.from) {
        return Err(Mp4Error::new("no samples to write"));
    }
    let chunks = interleave(parts);
    let mut layout = Vec::with_capacity(chunks.len());
    let mut chunk_at = vec![Vec::new(); parts.len()];
    let mut at = 0u64;
    for c in &chunks {
        chunk_at[c.track].push(at);
        layout.push(MdatChunk {
            part: c.track as u32,
            from: c.from as u32,
            to: c.to as u32,
            at,
        });
        at += parts[c.track].track.samples[c.from..c.to]
            .iter()
            .map(|s| u64::from(s.size))
            .sum::<u64>();
    }
    let mdat_len = at;
    let timing = Timing::of(parts, origin_ms);
    let ftyp = ftyp();
    let mdat_head = mdat_header(mdat_len);
    // The moov's size depends on the width of its chunk offsets, not on
    // their values.
    let mut wide = false;
    let moov = loop {
        let probe = moov(parts, &chunks, &chunk_at, &timing, 0, wide);
        let base = (ftyp.len() + probe.len() + mdat_head.len()) as u64;
        if !wide && base + mdat_len > u64::from(u32::MAX) {
            wide = true;
            continue;
        }
        break moov(parts, &chunks, &chunk_at, &timing, base, wide);
    };
    let mut head = ftyp;
    head.extend_from_slice(&moov);
    head.extend_from_slice(&mdat_head);
    Ok(ProgressiveMp4 {
        head,
        mdat: MdatLayout {
            chunks: layout,
            len: mdat_len,
        },
        duration_ms: timing.movie_duration,
    })
}

/// Samples `[from, to)` of one track, stored together.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    track: usize,
    from: usize,
    to: usize,
    /// Decode time of the first, seconds (for interleaving).
    time: f64,
}

/// Chunks of about a second per track (a new one also where the sample
/// description changes), in order of time.
fn interleave(parts: &[TrackPart]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for (ti, p) in parts.iter().enumerate() {
        let samples = &p.track.samples;
        let second = u64::from(p.track.timescale);
        let mut from = p.from;
        for i in p.from + 1..=p.to {
            let cut = i == p.to
                || samples[i].dts - samples[from].dts >= second
                || samples[i].entry != samples[from].entry;
            if cut {
                chunks.push(Chunk {
                    track: ti,
                    from,
                    to: i,
                    time: samples[from].dts as f64 / f64::from(p.track.timescale),
                });
                from = i;
            }
        }
    }
    chunks.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.track.cmp(&b.track)));
    chunks
}

/// Where each track sits on the movie's timeline.
struct Timing {
    /// Per track: leading empty time (movie timescale), the first media
    /// time shown (track timescale, from the part's first decode time) and
    /// how long it shows (movie timescale).
    edits: Vec<(u64, i64, u64)>,
    movie_duration: u64,
}

/// Where a movie's timeline starts, given each track's kind and first
/// presentation time (ms): at the first picture, or without video at the
/// earliest sample.
pub fn movie_origin(starts: impl Iterator<Item = (Option<TrackKind>, i64)> + Clone) -> i64 {
    starts
        .clone()
        .filter(|(kind, _)| *kind == Some(TrackKind::Video))
        .map(|(_, t)| t)
        .min()
        .or_else(|| starts.map(|(_, t)| t).min())
        .unwrap_or(0)
}

/// Track time to movie time (ms), rounded: a start in ms goes through a
/// track's timescale and back to where it was.
pub fn to_movie(v: i64, timescale: u32) -> i64 {
    let ts = i128::from(timescale);
    ((i128::from(v) * i128::from(MOVIE_TIMESCALE) + ts / 2).div_euclid(ts)) as i64
}

impl Timing {
    fn of(parts: &[TrackPart], origin_ms: Option<i64>) -> Timing {
        let mut windows: Vec<(i64, i64)> = parts.iter().map(TrackPart::shown_window).collect();
        let starts = || {
            parts
                .iter()
                .zip(windows.iter())
                .map(|(p, w)| (p.track.kind, to_movie(w.0, p.track.timescale)))
        };
        let origin = origin_ms.unwrap_or_else(|| movie_origin(starts()));
        for (p, w) in parts.iter().zip(windows.iter_mut()) {
            let ts = i128::from(p.track.timescale);
            let from = (i128::from(origin) * ts / i128::from(MOVIE_TIMESCALE)) as i64;
            w.0 = w.0.max(from).min(w.1);
        }
        let mut edits = Vec::new();
        let mut movie_duration = 0;
        for (p, &(first, end)) in parts.iter().zip(&windows) {
            let ts = p.track.timescale;
            let dts0 = p.track.samples[p.from].dts as i64;
            let empty = (to_movie(first, ts) - origin).max(0) as u64;
            let shown = (to_movie(end, ts) - to_movie(first, ts)).max(0) as u64;
            // An edit cannot start before the media (negative composition
            // offsets can put a presentation there).
            edits.push((empty, (first - dts0).max(0), shown));
            movie_duration = movie_duration.max(empty + shown);
        }
        Timing {
            edits,
            movie_duration,
        }
    }
}

fn ftyp() -> Vec<u8> {
    let mut w = BoxWriter::default();
    let b = w.open(*b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
        w.bytes(brand);
    }
    w.close(b);
    w.out
}

fn moov(
    parts: &[TrackPart],
    chunks: &[Chunk],
    chunk_at: &[Vec<u64>],
    timing: &Timing,
    base: u64,
    wide: bool,
) -> Vec<u8> {
    let mut w = BoxWriter::default();
    let moov = w.open(*b"moov");
    let long = timing.movie_duration > u64::from(u32::MAX);
    let mvhd = w.open_full(*b"mvhd", u8::from(long), 0);
    times(&mut w, long, MOVIE_TIMESCALE, timing.movie_duration);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.bytes(&[0; 10]);
    IDENTITY_MATRIX.iter().for_each(|&m| w.u32(m));
    w.bytes(&[0; 24]);
    w.u32(parts.len() as u32 + 1);
    w.close(mvhd);
    for (ti, p) in parts.iter().enumerate() {
        let track_chunks: Vec<&Chunk> = chunks.iter().filter(|c| c.track == ti).collect();
        trak(
            &mut w,
            ti,
            p,
            &track_chunks,
            &chunk_at[ti],
            timing.edits[ti],
            base,
            wide,
        );
    }
    w.close(moov);
    w.out
}

/// creation and modification (0), timescale, duration.
fn times(w: &mut BoxWriter, long: bool, timescale: u32, duration: u64) {
    if long {
        w.u64(0);
        w.u64(0);
        w.u32(timescale);
        w.u64(duration);
    } else {
        w.u32(0);
        w.u32(0);
        w.u32(timescale);
        w.u32(duration as u32);
    }
}

#[allow(clippy::too_many_arguments)]
fn trak(
    w: &mut BoxWriter,
    ti: usize,
    p: &TrackPart,
    chunks: &[&Chunk],
    chunk_at: &[u64],
    (empty, media_time, shown): (u64, i64, u64),
    base: u64,
    wide: bool,
) {
    let t = p.track;
    let video = t.kind == Some(TrackKind::Video);
    let trak = w.open(*b"trak");
    let duration = empty + shown;
    let long = duration > u64::from(u32::MAX);
    let tkhd = w.open_full(*b"tkhd", u8::from(long), 3);
    if long {
        w.u64(0);
        w.u64(0);
        w.u32(ti as u32 + 1);
        w.u32(0);
        w.u64(duration);
    } else {
        w.u32(0);
        w.u32(0);
        w.u32(ti as u32 + 1);
        w.u32(0);
        w.u32(duration as u32);
    }
    w.bytes(&[0; 8]);
    w.u16(0); // layer
    w.u16(0); // alternate group
    w.u16(if video { 0 } else { 0x0100 });
    w.u16(0);
    IDENTITY_MATRIX.iter().for_each(|&m| w.u32(m));
    let (width, height) = match t.entries.first() {
        Some(SampleEntry::Avc { width, height, .. }) => (*width, *height),
        _ => (0, 0),
    };
    w.u32(u32::from(width) << 16);
    w.u32(u32::from(height) << 16);
    w.close(tkhd);

    let edts = w.open(*b"edts");
    let entries = if empty > 0 { 2 } else { 1 };
    let wide_edits = duration > u64::from(u32::MAX) || media_time > i64::from(i32::MAX);
    let elst = w.open_full(*b"elst", u8::from(wide_edits), 0);
    w.u32(entries);
    let edit = |w: &mut BoxWriter, length: u64, time: i64| {
        if wide_edits {
            w.u64(length);
            w.i64(time);
        } else {
            w.u32(length as u32);
            w.i32(time as i32);
        }
        w.u32(0x0001_0000);
    };
    if empty > 0 {
        edit(w, empty, -1);
    }
    edit(w, shown, media_time);
    w.close(elst);
    w.close(edts);

    let mdia = w.open(*b"mdia");
    let media_duration = p.end_dts() - t.samples[p.from].dts;
    let long = media_duration > u64::from(u32::MAX);
    let mdhd = w.open_full(*b"mdhd", u8::from(long), 0);
    times(w, long, t.timescale, media_duration);
    w.u16(0x55c4); // 'und'
    w.u16(0);
    w.close(mdhd);
    let hdlr = w.open_full(*b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(if video { b"vide" } else { b"soun" });
    w.bytes(&[0; 12]);
    w.bytes(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    w.close(hdlr);
    let minf = w.open(*b"minf");
    if video {
        let vmhd = w.open_full(*b"vmhd", 0, 1);
        w.bytes(&[0; 8]);
        w.close(vmhd);
    } else {
        let smhd = w.open_full(*b"smhd", 0, 0);
        w.u32(0);
        w.close(smhd);
    }
    let dinf = w.open(*b"dinf");
    let dref = w.open_full(*b"dref", 0, 0);
    w.u32(1);
    let url = w.open_full(*b"url ", 0, 1);
    w.close(url);
    w.close(dref);
    w.close(dinf);
    stbl(w, ti, p, chunks, chunk_at, base, wide);
    w.close(minf);
    w.close(mdia);
    w.close(trak);
}

fn stbl(
    w: &mut BoxWriter,
    ti: usize,
    p: &TrackPart,
    chunks: &[&Chunk],
    chunk_at: &[u64],
    base: u64,
    wide: bool,
) {
    let t = p.track;
    let samples = &t.samples[p.from..p.to];
    let stbl = w.open(*b"stbl");
    let stsd = w.open_full(*b"stsd", 0, 0);
    w.u32(t.entries.len() as u32);
    for e in &t.entries {
        sample_entry(w, ti, e);
    }
    w.close(stsd);

    let n = samples.len();
    let stts_runs = runs((p.from..p.to).map(|i| t.duration(i) as u32));
    let stts = w.open_full(*b"stts", 0, 0);
    w.u32(stts_runs.len() as u32);
    for (count, delta) in stts_runs {
        w.u32(count);
        w.u32(delta);
    }
    w.close(stts);

    if samples.iter().any(|s| s.cts != 0) {
        let negative = samples.iter().any(|s| s.cts < 0);
        let ctts = w.open_full(*b"ctts", u8::from(negative), 0);
        let list = runs(samples.iter().map(|s| s.cts));
        w.u32(list.len() as u32);
        for (count, offset) in list {
            w.u32(count);
            w.i32(offset);
        }
        w.close(ctts);
    }

    if samples.iter().any(|s| !s.sync) {
        let stss = w.open_full(*b"stss", 0, 0);
        let sync: Vec<u32> = (0..n)
            .filter(|&i| samples[i].sync)
            .map(|i| i as u32 + 1)
            .collect();
        w.u32(sync.len() as u32);
        sync.iter().for_each(|&s| w.u32(s));
        w.close(stss);
    }

    let stsc = w.open_full(*b"stsc", 0, 0);
    let mut entries: Vec<(u32, u32, u32)> = Vec::new();
    for (ci, c) in chunks.iter().enumerate() {
        let per = (c.to - c.from) as u32;
        let desc = u32::from(t.samples[c.from].entry) + 1;
        if entries
            .last()
            .map_or(true, |&(_, p, d)| (p, d) != (per, desc))
        {
            entries.push((ci as u32 + 1, per, desc));
        }
    }
    w.u32(entries.len() as u32);
    for (first, per, desc) in entries {
        w.u32(first);
        w.u32(per);
        w.u32(desc);
    }
    w.close(stsc);

    let stsz = w.open_full(*b"stsz", 0, 0);
    let first = samples[0].size;
    if samples.iter().all(|s| s.size == first) {
        w.u32(first);
        w.u32(n as u32);
    } else {
        w.u32(0);
        w.u32(n as u32);
        samples.iter().for_each(|s| w.u32(s.size));
    }
    w.close(stsz);

    let kind: FourCc = if wide { *b"co64" } else { *b"stco" };
    let stco = w.open_full(kind, 0, 0);
    w.u32(chunk_at.len() as u32);
    for &at in chunk_at {
        if wide {
            w.u64(base + at);
        } else {
            w.u32((base + at) as u32);
        }
    }
    w.close(stco);
    w.close(stbl);
}

/// Equal neighbours as (count, value) runs.
fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((count, last)) if *last == v => *count += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

fn sample_entry(w: &mut BoxWriter, ti: usize, e: &SampleEntry) {
    match e {
        SampleEntry::Avc {
            record,
            width,
            height,
        } => {
            let b = w.open(*b"avc1");
            w.bytes(&[0; 6]);
            w.u16(1); // data reference
            w.bytes(&[0; 16]);
            w.u16(*width);
            w.u16(*height);
            w.u32(0x0048_0000);
            w.u32(0x0048_0000);
            w.u32(0);
            w.u16(1); // frames per sample
            w.bytes(&[0; 32]);
            w.u16(0x0018);
            w.u16(0xffff);
            let avcc = w.open(*b"avcC");
            w.bytes(record);
            w.close(avcc);
            w.close(b);
        }
        SampleEntry::Aac {
            config,
            channels,
            rate,
        } => audio_entry(w, ti, 0x40, config, *channels, *rate),
        SampleEntry::Mp3 { channels, rate } => {
            // MPEG-1 audio, or MPEG-2's lower rates.
            let oti = if *rate >= 32000 { 0x6b } else { 0x69 };
            audio_entry(w, ti, oti, &[], *channels, *rate)
        }
    }
}

fn audio_entry(w: &mut BoxWriter, ti: usize, oti: u8, config: &[u8], channels: u16, rate: u32) {
    let b = w.open(*b"mp4a");
    w.bytes(&[0; 6]);
    w.u16(1);
    w.bytes(&[0; 8]);
    w.u16(channels);
    w.u16(16);
    w.u32(0);
    w.u32(if rate <= 0xffff { rate << 16 } else { 0 });
    let esds = w.open_full(*b"esds", 0, 0);
    let mut specific = Vec::new();
    if !config.is_empty() {
        descriptor(&mut specific, 0x05, config);
    }
    let mut decoder = vec![oti, 0x15, 0, 0, 0];
    decoder.extend_from_slice(&[0; 8]); // max and average bitrate: unknown
    decoder.extend_from_slice(&specific);
    let mut es = Vec::new();
    es.extend_from_slice(&(ti as u16 + 1).to_be_bytes());
    es.push(0);
    descriptor(&mut es, 0x04, &decoder);
    descriptor(&mut es, 0x06, &[0x02]);
    let mut out = Vec::new();
    descriptor(&mut out, 0x03, &es);
    w.bytes(&out);
    w.close(esds);
    w.close(b);
}

/// An MPEG-4 descriptor: tag, length (7 bits a byte), payload.
fn descriptor(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    let n = payload.len();
    let mut bytes = vec![(n & 0x7f) as u8];
    let mut rest = n >> 7;
    while rest > 0 {
        bytes.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    bytes.reverse();
    out.extend_from_slice(&bytes);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_lengths_take_seven_bits_a_byte() {
        let mut out = Vec::new();
        descriptor(&mut out, 5, &[1, 2]);
        assert_eq!(out, [5, 2, 1, 2]);
        let mut out = Vec::new();
        descriptor(&mut out, 3, &[0; 200]);
        assert_eq!(&out[..3], [3, 0x81, 0x48]);
        assert_eq!(out.len(), 203);
    }

    #[test]
    fn runs_merge_equal_neighbours() {
        assert_eq!(runs([1, 1, 2, 1].into_iter()), vec![(2, 1), (1, 2), (1, 1)]);
    }
}
