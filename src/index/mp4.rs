//! MP4 sample index: each track's sample tables, checked against each other
//! and the file, kept in compact run-length form so any cut can be planned
//! without reading the file again. Fragmented files get a fragment list
//! instead. Built once per file version and kept in the index cache.

use std::sync::atomic::{AtomicU64, Ordering};

use byteorder::{BigEndian, ByteOrder};

use super::{
    check_flagged_sample, settle_flags, Flagged, IndexOrigin, Keyframe, MediaInfo,
    FLAGGED_FIRST_READ,
};
use crate::error::{Error, Result};
use crate::format::mp4::boxes::{children, fourcc_str, parse_header, FourCc};
use crate::format::mp4::fragment::{self, TrackRun};
use crate::format::mp4::moov::{self, entered, TrackBoxes, TrackExtends, SAMPLE_TABLES};
use crate::format::mp4::relocate;
use crate::format::mp4::tables::{self, SampleSizes, SampleToGroup, StscEntry};
use crate::format::nal::NalFraming;
use crate::format::Format;
use crate::source::{read_full_at, ByteSource};

/// Default largest `moov` read into memory.
pub const DEFAULT_MOOV_LIMIT: u64 = 64 * 1024 * 1024;
static MOOV_LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_MOOV_LIMIT);

/// Sets the largest `moov` the library reads (process-wide); a larger one is
/// answered 415. 0 restores the default.
pub fn set_moov_limit(bytes: u64) {
    let v = if bytes == 0 {
        DEFAULT_MOOV_LIMIT
    } else {
        bytes
    };
    MOOV_LIMIT.store(v, Ordering::Relaxed);
}

pub fn moov_limit() -> u64 {
    MOOV_LIMIT.load(Ordering::Relaxed)
}

/// A `moov` over the limit is refused (415) with its own message.
pub fn check_moov_limit(moov_size: u64) -> Result<()> {
    let limit = moov_limit();
    if moov_size > limit {
        return Err(Error::UnsupportedFormat(format!(
            "'moov' of {moov_size} bytes is over the limit of {limit} bytes"
        )));
    }
    Ok(())
}

/// Largest `ftyp` kept (real ones are a few dozen bytes).
const MAX_FTYP: u64 = 4096;
/// Largest `moof` read; real ones are kilobytes.
pub const MAX_MOOF: u64 = 16 * 1024 * 1024;
/// Time runs between stored decode-time checkpoints.
const CHECKPOINT_RUNS: usize = 64;
/// Tracks without sync tables list a seek point about this often...
const ALL_SYNC_SPACING_NS: i128 = 1_000_000_000;
/// ...and at most this many (thinned evenly beyond).
const MAX_SEEK_POINTS: usize = 100_000;
/// Sample-by-sample scans (around composition reordering) look at most
/// this many samples; real reordering spans a few frames.
pub const MAX_SCAN: u32 = 4096;

const NS: i128 = 1_000_000_000;

pub use crate::format::samples::TrackKind;

/// The part of a track's edit list a cut composes: leading empty edits and
/// the first edit that shows media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditSummary {
    /// Leading empty edits, in the movie timescale.
    pub empty: u64,
    /// Media time presented first, in the track timescale.
    pub media_time: i64,
    /// Length of that edit in the movie timescale; None: to the media's end.
    pub duration: Option<u64>,
}

/// Decode times as (first sample, delta) runs, with the decode time of
/// every `CHECKPOINT_RUNS`-th run stored.
#[derive(Debug)]
struct Timing {
    runs: Vec<(u32, u32)>,
    checkpoints: Vec<u64>,
    total: u64,
}

impl Timing {
    /// Decode time of sample `s` (< the sample count).
    fn dts(&self, s: u32) -> u64 {
        let r = self.runs.partition_point(|run| run.0 <= s) - 1;
        let c = r / CHECKPOINT_RUNS;
        let mut t = self.checkpoints[c];
        for i in c * CHECKPOINT_RUNS..r {
            t += u64::from(self.runs[i + 1].0 - self.runs[i].0) * u64::from(self.runs[i].1);
        }
        t + u64::from(s - self.runs[r].0) * u64::from(self.runs[r].1)
    }
}

/// Slices (first sample, value) runs to samples `[from, to)` as (count,
/// value) runs, merging equal neighbours.
fn runs_within<T: Copy + PartialEq>(runs: &[(u32, T)], from: u32, to: u32) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    if from >= to {
        return out;
    }
    let mut r = runs.partition_point(|run| run.0 <= from) - 1;
    let mut s = from;
    while s < to {
        let end = runs.get(r + 1).map_or(to, |n| n.0.min(to));
        let value = runs[r].1;
        match out.last_mut() {
            Some(last) if last.1 == value => last.0 += end - s,
            _ => out.push((end - s, value)),
        }
        s = end;
        r += 1;
    }
    out
}

/// Composition offsets as (first sample, offset) runs.
#[derive(Debug)]
struct CompositionOffsets {
    version: u8,
    runs: Vec<(u32, i32)>,
    min: i32,
    max: i32,
}

/// Samples of a chunk run: from `first_chunk` (0-based), `per_chunk` each.
#[derive(Clone, Copy, Debug)]
struct ChunkRun {
    first_chunk: u32,
    first_sample: u32,
    per_chunk: u32,
    description: u32,
}

/// Sample sizes, in 16 bits when every size fits.
#[derive(Debug)]
enum Sizes {
    Uniform(u32),
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Sizes {
    fn from_table(t: SampleSizes) -> Sizes {
        match t {
            SampleSizes::Uniform { size, .. } => Sizes::Uniform(size),
            SampleSizes::Each(v) if v.iter().all(|&x| x <= u32::from(u16::MAX)) => {
                Sizes::Narrow(v.iter().map(|&x| x as u16).collect())
            }
            SampleSizes::Each(v) => Sizes::Wide(v),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Sizes::Uniform(_) => 0,
            Sizes::Narrow(v) => v.len() * 2,
            Sizes::Wide(v) => v.len() * 4,
        }
    }
}

#[derive(Debug)]
enum ChunkOffsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl ChunkOffsets {
    fn get(&self, i: usize) -> u64 {
        match self {
            ChunkOffsets::Narrow(v) => u64::from(v[i]),
            ChunkOffsets::Wide(v) => v[i],
        }
    }

    fn len(&self) -> usize {
        match self {
            ChunkOffsets::Narrow(v) => v.len(),
            ChunkOffsets::Wide(v) => v.len(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            ChunkOffsets::Narrow(v) => v.len() * 4,
            ChunkOffsets::Wide(v) => v.len() * 8,
        }
    }
}

/// The samples of a cut in one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPart {
    /// File offset of the first of them.
    pub offset: u64,
    pub bytes: u64,
    pub samples: u32,
    pub description: u32,
}

/// One track's samples.
#[derive(Debug)]
pub struct TrackIndex {
    pub id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    pub edit: EditSummary,
    /// The track had an edit list.
    pub has_edits: bool,
    /// Why the edit list cannot be composed into a cut (media edits that
    /// do not follow on, a dwell or a rate other than 1): cuts are refused.
    pub edits_refused: Option<String>,
    pub sample_entry: FourCc,
    /// Coded width and height of a visual sample entry.
    pub dims: Option<(u16, u16)>,
    pub samples: u32,
    timing: Timing,
    cts: Option<CompositionOffsets>,
    /// 0-based sync sample numbers; None: every sample is a sync sample.
    /// Samples the file flags whose first picture depends on earlier ones
    /// are left out.
    sync: Option<Vec<u32>>,
    /// How the first sample entry frames H.264/HEVC NAL units.
    nal_framing: Option<NalFraming>,
    sizes: Sizes,
    chunk_runs: Vec<ChunkRun>,
    offsets: ChunkOffsets,
    sdtp: Option<Box<[u8]>>,
    groups: Vec<SampleToGroup>,
    /// Presentation time of the track's end, ns of the movie timeline.
    pub end_ns: i128,
    movie_timescale: u32,
}

/// A movie fragment: where its `moof` starts and when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub offset: u64,
    /// Presentation time of the reference track's first sample, ns; None when
    /// the fragment has no sample of that track.
    pub time_ns: Option<i128>,
    /// When the reference track's samples in it end, ns, when known.
    pub end_ns: Option<i128>,
    /// The reference track's first sample is a sync sample.
    pub starts_with_sync: bool,
}

/// A track fragment's decode time (`tfdt`) as stored: a cut rewrites it so
/// that the cut's timeline starts at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeTime {
    /// File offset of the value.
    pub at: u64,
    /// 64 bits (version 1) or 32.
    pub wide: bool,
    /// The track (index into `Mp4Index::tracks`).
    pub track: u32,
    /// In the track's timescale.
    pub value: u64,
}

impl DecodeTime {
    pub fn width(&self) -> u64 {
        if self.wide {
            8
        } else {
            4
        }
    }
}

/// How the samples are laid out.
#[derive(Debug)]
pub enum Layout {
    /// Sample tables in the `moov`.
    Samples,
    /// Movie fragments, up to `end` (the end of the last fragment's data).
    Fragments {
        list: Vec<Fragment>,
        /// Every `tfdt` of every fragment, in file order.
        decode_times: std::sync::Arc<[DecodeTime]>,
        end: u64,
        /// Some fragment addresses its data by absolute file offsets
        /// (`base-data-offset`): the fragments cannot move.
        absolute: bool,
        /// The `moov` describes samples before the first fragment.
        moov_samples: bool,
        /// The tracks' fragment defaults (`trex`).
        trex: Vec<TrackExtends>,
    },
}

/// Everything an MP4 cut needs, built once per file version.
#[derive(Debug)]
pub struct Mp4Index {
    pub info: MediaInfo,
    pub keyframes: Vec<Keyframe>,
    /// The file's `ftyp`, whole; None when it has none.
    pub ftyp: Option<Vec<u8>>,
    /// The `moov`'s payload with sample tables and edit lists taken out: a
    /// cut writes its own.
    pub skeleton: Vec<u8>,
    pub movie_timescale: u32,
    pub tracks: Vec<TrackIndex>,
    /// The track cuts snap to (the first video track with samples).
    pub reference: usize,
    pub layout: Layout,
    pub moov_size: u64,
    /// Whether the `moov` comes before the first media data.
    pub moov_first: bool,
    /// The file laid out with its `moov` first, when it is stored after
    /// its media data.
    pub faststart: Option<Faststart>,
}

/// A moov-at-end file laid out as `qt-faststart` writes it: the `ftyp`
/// (when the file opens with one), the `moov` with its chunk offsets moved,
/// then every other byte of the file in order.
#[derive(Debug)]
pub struct Faststart {
    /// The `ftyp` and the relocated `moov`.
    pub head: std::sync::Arc<[u8]>,
    pub digest: u64,
    /// The file ranges that follow the head.
    pub ranges: Vec<(u64, u64)>,
}

impl Faststart {
    /// The layout of a file whose `ftyp` is `ftyp_len` bytes at its start
    /// (0: none) and whose `moov` box spans `[moov_at, moov_end)`.
    fn build(
        moov_payload: &[u8],
        ftyp: Option<&[u8]>,
        moov_at: u64,
        moov_end: u64,
        size: u64,
    ) -> Result<Faststart> {
        let ftyp = ftyp.unwrap_or_default();
        let data_from = ftyp.len() as u64;
        let moov_len = moov_end - moov_at;
        // Offsets as they will be, less the new moov's own length.
        let moved = |o: u64| {
            if (data_from..moov_at).contains(&o) {
                Some(o)
            } else if (moov_end..size).contains(&o) {
                Some(o - moov_len)
            } else {
                None
            }
        };
        let moov = relocate::relocated_moov(moov_payload, moved)?;
        let mut head = Vec::with_capacity(ftyp.len() + moov.len());
        head.extend_from_slice(ftyp);
        head.extend_from_slice(&moov);
        let ranges = [(data_from, moov_at), (moov_end, size)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .collect();
        Ok(Faststart {
            digest: crate::fnv::digest(&head),
            head: head.into(),
            ranges,
        })
    }
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

/// Top-level boxes, as found by hopping headers.
struct TopLevel {
    ftyp: Option<Vec<u8>>,
    moov: Option<(u64, u64, u64)>,
    first_data: Option<u64>,
    moofs: Vec<(u64, u64, u64)>,
    /// Where fragments end (an `mfra`, or the end of the file).
    fragments_end: u64,
}

fn scan_top_level(src: &dyn ByteSource) -> Result<TopLevel> {
    let size = src.size();
    let mut top = TopLevel {
        ftyp: None,
        moov: None,
        first_data: None,
        moofs: Vec::new(),
        fragments_end: size,
    };
    let mut pos = 0u64;
    let mut mfra_seen = false;
    while pos < size {
        let mut head = [0u8; 16];
        let n = read_full_at(src, pos, &mut head)?;
        let header = parse_header(&head[..n])?.ok_or_else(|| {
            malformed(format!("{} stray bytes at the end of the file", size - pos))
        })?;
        let box_size = header.size.unwrap_or(size - pos);
        if box_size < header.header_len || box_size > size - pos {
            return Err(malformed(format!(
                "box '{}' at {pos} ({box_size} bytes) runs past the end of the file ({size} bytes)",
                fourcc_str(header.kind)
            )));
        }
        let payload = (pos + header.header_len, pos + box_size);
        match &header.kind {
            b"ftyp" if top.ftyp.is_none() && pos == 0 => {
                if box_size > MAX_FTYP {
                    return Err(malformed(format!("'ftyp' of {box_size} bytes")));
                }
                let mut b = vec![0; box_size as usize];
                read_exact(src, pos, &mut b)?;
                top.ftyp = Some(b);
            }
            b"moov" => {
                if top.moov.is_some() {
                    return Err(malformed("the file has two 'moov' boxes"));
                }
                top.moov = Some((pos, payload.0, payload.1));
            }
            b"mdat" => {
                top.first_data.get_or_insert(pos);
            }
            b"moof" => {
                top.first_data.get_or_insert(pos);
                if !mfra_seen {
                    top.moofs.push((pos, payload.0, payload.1));
                }
            }
            b"mfra" => {
                if !mfra_seen {
                    top.fragments_end = pos;
                }
                mfra_seen = true;
            }
            _ => {}
        }
        pos += box_size;
    }
    Ok(top)
}

fn read_exact(src: &dyn ByteSource, offset: u64, buf: &mut [u8]) -> Result<()> {
    if read_full_at(src, offset, buf)? != buf.len() {
        return Err(Error::SourceChanged("file shrank while indexing".into()));
    }
    Ok(())
}

impl Mp4Index {
    pub fn build(src: &dyn ByteSource) -> Result<Mp4Index> {
        let size = src.size();
        let top = scan_top_level(src)?;
        let (moov_at, from, to) = top
            .moov
            .ok_or_else(|| malformed("no 'moov' box: the file has no index of its samples"))?;
        let moov_size = to - moov_at;
        check_moov_limit(moov_size)?;
        let mut moov_bytes = vec![0; (to - from) as usize];
        read_exact(src, from, &mut moov_bytes)?;
        let movie = moov::parse(&moov_bytes)?;
        let movie_timescale = movie.timescale;

        let mut tracks = Vec::with_capacity(movie.tracks.len());
        let mut overruled = 0;
        for t in &movie.tracks {
            let mut track = TrackIndex::build(t, movie_timescale, size, movie.fragmented)
                .map_err(|e| prefix_error(e, t.id))?;
            overruled += track.drop_dependent_sync_samples(src)?;
            tracks.push(track);
        }
        let reference = tracks
            .iter()
            .position(|t| t.kind == TrackKind::Video && (t.samples > 0 || movie.fragmented))
            .or_else(|| {
                tracks
                    .iter()
                    .position(|t| t.kind == TrackKind::Audio && (t.samples > 0 || movie.fragmented))
            })
            .or_else(|| tracks.iter().position(|t| t.samples > 0))
            .unwrap_or(0);

        let layout = if movie.fragmented && !top.moofs.is_empty() {
            let (list, decode_times, absolute) = fragments(
                src,
                &top.moofs,
                &movie.trex,
                &tracks,
                reference,
                &mut overruled,
            )?;
            Layout::Fragments {
                list,
                decode_times: decode_times.into(),
                end: top.fragments_end,
                absolute,
                moov_samples: tracks.iter().any(|t| t.samples > 0),
                trex: movie.trex.clone(),
            }
        } else {
            if tracks.iter().all(|t| t.samples == 0) {
                return Err(malformed("the 'moov' describes no samples"));
            }
            Layout::Samples
        };

        let skeleton = skeleton(&moov_bytes)?;
        drop(movie);
        let moov_first = top.first_data.map_or(true, |d| moov_at < d);
        // A file whose chunk offsets cannot be moved is served as stored.
        let faststart = match layout {
            Layout::Samples if !moov_first => {
                Faststart::build(&moov_bytes, top.ftyp.as_deref(), moov_at, to, size).ok()
            }
            _ => None,
        };
        let mut index = Mp4Index {
            info: MediaInfo {
                format: Format::Mp4,
                size,
                start_ms: 0,
                duration_ms: 0,
                has_audio: false,
                has_video: false,
                video_codec: None,
                audio_codec: None,
                width: None,
                height: None,
                bitrate_bps: 0,
                keyframe_count: 0,
                seek_points_from_audio: false,
                origin: IndexOrigin::Metadata,
                keyframe_flags_overruled: overruled,
            },
            keyframes: Vec::new(),
            ftyp: top.ftyp,
            skeleton,
            movie_timescale,
            tracks,
            reference,
            layout,
            moov_size,
            moov_first,
            faststart,
        };
        index.fill_info();
        Ok(index)
    }

    fn fill_info(&mut self) {
        let fourcc = |c: FourCc| Some(u32::from_be_bytes(c));
        for t in &self.tracks {
            let present = t.samples > 0 || matches!(self.layout, Layout::Fragments { .. });
            match t.kind {
                TrackKind::Video if present && !self.info.has_video => {
                    self.info.has_video = true;
                    self.info.video_codec = fourcc(t.sample_entry);
                    if let Some((w, h)) = t.dims {
                        self.info.width = Some(u32::from(w));
                        self.info.height = Some(u32::from(h));
                    }
                }
                TrackKind::Audio if present && !self.info.has_audio => {
                    self.info.has_audio = true;
                    self.info.audio_codec = fourcc(t.sample_entry);
                }
                _ => {}
            }
        }
        let end_ns = match &self.layout {
            Layout::Samples => self.tracks.iter().map(|t| t.end_ns).max().unwrap_or(0),
            Layout::Fragments { .. } => self.fragmented_end_ns(),
        };
        self.info.duration_ms = (end_ns.max(0) / 1_000_000) as u64;
        if self.info.duration_ms > 0 {
            let data = self.info.size.saturating_sub(self.moov_size);
            self.info.bitrate_bps =
                (u128::from(data) * 8000 / u128::from(self.info.duration_ms)) as u64;
        }
        let r = &self.tracks[self.reference];
        self.info.seek_points_from_audio = r.kind != TrackKind::Video;
        self.keyframes = match &self.layout {
            Layout::Samples => r.seek_points(),
            Layout::Fragments { list, .. } => list
                .iter()
                .filter(|f| f.starts_with_sync)
                .filter_map(|f| {
                    f.time_ns.map(|t| Keyframe {
                        time_ms: (t.max(0) / 1_000_000) as u64,
                        offset: f.offset,
                    })
                })
                .collect(),
        };
        if let Layout::Fragments { .. } = self.layout {
            self.info.origin = IndexOrigin::Scanned;
        }
        self.info.keyframe_count = self.keyframes.len();
    }

    /// The end of a fragmented movie: the `mvhd`/`mehd` duration is often 0,
    /// so the fragments' own ends are used.
    fn fragmented_end_ns(&self) -> i128 {
        let Layout::Fragments { list, .. } = &self.layout else {
            return 0;
        };
        list.iter()
            .filter_map(|f| f.end_ns.or(f.time_ns))
            .max()
            .unwrap_or(0)
    }

    /// Approximate heap bytes, for the cache's budget.
    pub fn cost_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.keyframes.len() * std::mem::size_of::<Keyframe>()
            + self.skeleton.len()
            + self.ftyp.as_ref().map_or(0, Vec::len)
            + self.faststart.as_ref().map_or(0, |f| {
                f.head.len() + f.ranges.len() * std::mem::size_of::<(u64, u64)>()
            })
            + self
                .tracks
                .iter()
                .map(TrackIndex::cost_bytes)
                .sum::<usize>()
            + match &self.layout {
                Layout::Samples => 0,
                Layout::Fragments {
                    list, decode_times, ..
                } => {
                    list.len() * std::mem::size_of::<Fragment>()
                        + decode_times.len() * std::mem::size_of::<DecodeTime>()
                }
            }
    }

    /// QuickTime brand: video/quicktime; no video: audio/mp4; else video/mp4.
    pub fn content_type(&self) -> &'static str {
        if self
            .ftyp
            .as_ref()
            .is_some_and(|f| f.get(8..12) == Some(b"qt  "))
        {
            "video/quicktime"
        } else if !self.info.has_video {
            "audio/mp4"
        } else {
            "video/mp4"
        }
    }

    /// Samples in all tracks.
    pub fn sample_count(&self) -> u64 {
        self.tracks.iter().map(|t| u64::from(t.samples)).sum()
    }
}

fn prefix_error(e: Error, track: u32) -> Error {
    match e {
        Error::Malformed(m) => Error::Malformed(format!("track {track}: {m}")),
        other => other,
    }
}

/// The `moov` payload without sample tables and edit lists.
fn skeleton(moov_payload: &[u8]) -> Result<Vec<u8>> {
    fn copy(payload: &[u8], parent: FourCc, out: &mut Vec<u8>) -> Result<()> {
        for c in children(payload, parent) {
            let c = c?;
            if SAMPLE_TABLES.contains(&&c.kind) || &c.kind == b"edts" {
                continue;
            }
            // Tables that describe samples by number would be wrong after a cut.
            if &parent == b"stbl" && !matches!(&c.kind, b"stsd" | b"sgpd") {
                continue;
            }
            if entered(parent, c.kind) {
                let at = out.len();
                out.extend_from_slice(&c.bytes[..8]);
                copy(c.payload, c.kind, out)?;
                let size = (out.len() - at) as u32;
                BigEndian::write_u32(&mut out[at..at + 4], size);
            } else {
                out.extend_from_slice(c.bytes);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    copy(moov_payload, *b"moov", &mut out)?;
    Ok(out)
}

/// The fragments' list and decode times, and whether some fragment uses
/// absolute data offsets. A fragment whose first sample is flagged as a
/// sync sample but depends on earlier pictures does not start with one; it
/// counts in `overruled`.
fn fragments(
    src: &dyn ByteSource,
    moofs: &[(u64, u64, u64)],
    trex: &[TrackExtends],
    tracks: &[TrackIndex],
    reference: usize,
    overruled: &mut usize,
) -> Result<(Vec<Fragment>, Vec<DecodeTime>, bool)> {
    let reference = &tracks[reference];
    let mut list = Vec::with_capacity(moofs.len());
    let mut decode_times = Vec::with_capacity(moofs.len() * tracks.len());
    let mut absolute = false;
    // Fragments whose first sample is flagged sync, by what it turns out to be.
    let (mut starts, mut gradual, mut dependent) = (Vec::new(), Vec::new(), 0);
    // Fragments without `tfdt` follow the samples the moov describes.
    let mut next_decode: u64 = reference.dts(reference.samples);
    let mut buf = Vec::new();
    for &(at, from, to) in moofs {
        if to - from > MAX_MOOF {
            return Err(malformed(format!("'moof' at {at} of {} bytes", to - from)));
        }
        buf.resize((to - from) as usize, 0);
        read_exact(src, from, &mut buf)?;
        let runs = fragment::parse_moof(&buf, trex)?;
        absolute |= runs.iter().any(|r| r.absolute_base);
        for r in &runs {
            let track = tracks.iter().position(|t| t.id == r.track_id);
            if let (Some(track), Some(value), Some((at, wide))) =
                (track, r.decode_time, r.decode_time_at)
            {
                decode_times.push(DecodeTime {
                    at: from + at as u64,
                    wide,
                    track: track as u32,
                    value,
                });
            }
        }
        let run: Option<&TrackRun> = runs.iter().find(|r| r.track_id == reference.id);
        let fragment = match run {
            Some(r) => {
                let decode = r.decode_time.unwrap_or(next_decode);
                next_decode = decode.saturating_add(r.duration.unwrap_or(0));
                let ct = i128::from(decode) + i128::from(r.first_cts);
                let flagged = r.first_is_sync && reference.kind == TrackKind::Video;
                let verdict = match (flagged, reference.nal_framing, r.first_sample) {
                    (true, Some(framing), Some((offset, size))) => {
                        let base = if r.absolute_base { 0 } else { i128::from(at) };
                        match u64::try_from(base + offset) {
                            Ok(pos) => check_flagged_sample(src, pos, u64::from(size), framing)?,
                            Err(_) => Flagged::Start,
                        }
                    }
                    _ => Flagged::Start,
                };
                if flagged {
                    match verdict {
                        Flagged::Start => starts.push(list.len()),
                        Flagged::Gradual => gradual.push(list.len()),
                        Flagged::Dependent => dependent += 1,
                    }
                }
                Fragment {
                    offset: at,
                    time_ns: Some(reference.presentation_ns(ct)),
                    end_ns: r
                        .duration
                        .map(|d| reference.presentation_ns(ct + i128::from(d))),
                    starts_with_sync: reference.kind != TrackKind::Video,
                }
            }
            None => Fragment {
                offset: at,
                time_ns: None,
                end_ns: None,
                starts_with_sync: false,
            },
        };
        list.push(fragment);
    }
    let (starts, set_aside) = settle_flags(starts, gradual, dependent, |&i| i);
    *overruled += set_aside;
    for i in starts {
        list[i].starts_with_sync = true;
    }
    decode_times.sort_by_key(|d| d.at);
    Ok((list, decode_times, absolute))
}

impl TrackIndex {
    fn build(
        t: &TrackBoxes<'_>,
        movie_timescale: u32,
        file_size: u64,
        fragmented: bool,
    ) -> Result<TrackIndex> {
        let kind = match &t.handler {
            b"vide" => TrackKind::Video,
            b"soun" => TrackKind::Audio,
            _ => TrackKind::Other,
        };
        let need = |b: Option<&[u8]>, name: &str| -> Result<Vec<u8>> {
            b.map(<[u8]>::to_vec)
                .ok_or_else(|| malformed(format!("'stbl' has no '{name}'")))
        };
        let s = &t.stbl;
        let sizes = match (s.stsz, s.stz2) {
            (Some(p), _) => tables::stsz(p)?,
            (None, Some(p)) => tables::stz2(p)?,
            (None, None) if fragmented => SampleSizes::Each(Vec::new()),
            (None, None) => return Err(malformed("'stbl' has no 'stsz'")),
        };
        let samples = sizes.count();
        let stts = match s.stts {
            Some(p) => tables::stts(p)?,
            None if samples == 0 => Vec::new(),
            None => tables::stts(&need(None, "stts")?)?,
        };
        let timing = timing(&stts, samples)?;
        drop(stts);
        let cts = match s.ctts {
            Some(p) => composition_offsets(tables::ctts(p)?, samples)?,
            None => None,
        };
        let sync = match s.stss {
            Some(p) => Some(sync_samples(tables::sample_numbers(p, *b"stss")?, samples)?),
            None => None,
        };
        let offsets = match (s.stco, s.co64) {
            (Some(p), _) => tables::chunk_offsets(p, *b"stco")?,
            (None, Some(p)) => tables::chunk_offsets(p, *b"co64")?,
            (None, None) if samples == 0 => Vec::new(),
            (None, None) => return Err(malformed("'stbl' has no 'stco'")),
        };
        let stsc = match s.stsc {
            Some(p) => tables::stsc(p)?,
            None if samples == 0 => Vec::new(),
            None => return Err(malformed("'stbl' has no 'stsc'")),
        };
        let chunk_runs = chunk_runs(&stsc, offsets.len(), samples, t.entry_count)?;
        drop(stsc);
        let offsets = if offsets.iter().all(|&o| o <= u64::from(u32::MAX)) {
            ChunkOffsets::Narrow(offsets.iter().map(|&o| o as u32).collect())
        } else {
            ChunkOffsets::Wide(offsets)
        };
        // Sample dependency and group tables that disagree with the sample
        // count are dropped: they are hints, and a cut must not misplace them.
        let sdtp = s
            .sdtp
            .map(tables::sdtp)
            .transpose()?
            .filter(|d| d.len() == samples as usize)
            .map(Box::from);
        let mut groups = Vec::new();
        for p in &s.sbgp {
            let g = tables::sbgp(p)?;
            let total = g
                .runs
                .iter()
                .try_fold(0u64, |a, r| a.checked_add(u64::from(r.0)));
            if total.is_some_and(|n| n <= u64::from(samples)) {
                groups.push(g);
            }
        }
        let (edit, edits_refused) = edit_summary(t.edits.as_deref(), t.timescale, movie_timescale)?;
        let mut track = TrackIndex {
            id: t.id,
            kind,
            timescale: t.timescale,
            edit,
            has_edits: t.edits.is_some(),
            edits_refused,
            sample_entry: t.sample_entry,
            dims: t.dims,
            samples,
            timing,
            cts,
            sync,
            nal_framing: t.nal_framing,
            sizes: Sizes::from_table(sizes),
            chunk_runs,
            offsets,
            sdtp,
            groups,
            end_ns: 0,
            movie_timescale,
        };
        track.check_chunks(file_size)?;
        track.end_ns = track.presentation_end_ns();
        Ok(track)
    }

    /// Leaves out of the sync samples those whose first picture depends on
    /// earlier ones (GStreamer flags every H.264 I picture), and returns how
    /// many (`settle_flags` says what becomes of gradual refresh points).
    /// Only samples of the first sample entry, whose framing is known, are
    /// read; if none of the flagged samples proves a seek point the flags
    /// stand, as a reading that rejects every one is more likely wrong.
    fn drop_dependent_sync_samples(&mut self, src: &dyn ByteSource) -> Result<usize> {
        let (Some(framing), Some(sync), TrackKind::Video) =
            (self.nal_framing, &self.sync, self.kind)
        else {
            return Ok(0);
        };
        let checked = |s: u32| self.chunk_runs[self.chunk_of(s).2].description == 1;
        let ranges: Vec<(u64, u64)> = sync
            .iter()
            .filter(|&&s| checked(s))
            .map(|&s| {
                (
                    self.offset_of(s),
                    u64::from(self.size_of(s)).min(FLAGGED_FIRST_READ),
                )
            })
            .collect();
        src.prefetch(&ranges);
        let (mut starts, mut gradual, mut dependent) =
            (Vec::with_capacity(sync.len()), Vec::new(), 0);
        for &s in sync {
            if !checked(s) {
                starts.push(s);
                continue;
            }
            let len = u64::from(self.size_of(s));
            match check_flagged_sample(src, self.offset_of(s), len, framing)? {
                Flagged::Start => starts.push(s),
                Flagged::Gradual => gradual.push(s),
                Flagged::Dependent => dependent += 1,
            }
        }
        if starts.is_empty() && gradual.is_empty() {
            return Ok(0);
        }
        let (keep, overruled) = settle_flags(starts, gradual, dependent, |&s| s);
        if overruled > 0 {
            self.sync = Some(keep);
        }
        Ok(overruled)
    }

    /// Every chunk's data lies inside the file.
    fn check_chunks(&self, file_size: u64) -> Result<()> {
        for r in 0..self.chunk_runs.len() {
            let run = self.chunk_runs[r];
            let last_chunk = self
                .chunk_runs
                .get(r + 1)
                .map_or(self.offsets.len() as u32, |n| n.first_chunk);
            for c in run.first_chunk..last_chunk {
                let first = run.first_sample + (c - run.first_chunk) * run.per_chunk;
                let bytes = self.sizes_sum(first, first + run.per_chunk);
                let start = self.offsets.get(c as usize);
                if start.checked_add(bytes).map_or(true, |end| end > file_size) {
                    return Err(malformed(format!(
                        "chunk {} ({bytes} bytes at {start}) runs past the end of the file ({file_size} bytes)",
                        c + 1
                    )));
                }
            }
        }
        Ok(())
    }

    fn cost_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.timing.runs.len() * 8
            + self.timing.checkpoints.len() * 8
            + self.cts.as_ref().map_or(0, |c| c.runs.len() * 8)
            + self.sync.as_ref().map_or(0, |s| s.len() * 4)
            + self.sizes.bytes()
            + self.chunk_runs.len() * std::mem::size_of::<ChunkRun>()
            + self.offsets.bytes()
            + self.sdtp.as_ref().map_or(0, |d| d.len())
            + self
                .groups
                .iter()
                .map(|g| g.runs.len() * 8 + 32)
                .sum::<usize>()
    }

    // ------------------------------------------------------------ lookups --

    /// Decode time of sample `s` (`samples` gives the end).
    pub fn dts(&self, s: u32) -> u64 {
        if s >= self.samples {
            return self.timing.total;
        }
        self.timing.dts(s)
    }

    /// (count, delta) runs of the decode durations of samples `[from, to)`.
    pub fn time_runs(&self, from: u32, to: u32) -> Vec<(u32, u32)> {
        runs_within(&self.timing.runs, from, to)
    }

    /// (count, offset) runs of the composition offsets of `[from, to)`.
    pub fn cts_runs(&self, from: u32, to: u32) -> Vec<(u32, i32)> {
        self.cts
            .as_ref()
            .map_or_else(Vec::new, |c| runs_within(&c.runs, from, to))
    }

    /// The chunks holding samples `[from, to)`, as far as they hold them.
    pub fn chunks_within(&self, from: u32, to: u32) -> Vec<ChunkPart> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let (mut chunk, mut first, mut r) = self.chunk_of(from);
        let mut s = from;
        while s < to {
            while r + 1 < self.chunk_runs.len() && self.chunk_runs[r + 1].first_chunk <= chunk {
                r += 1;
            }
            let run = self.chunk_runs[r];
            let end = (first + run.per_chunk).min(to);
            out.push(ChunkPart {
                offset: self.chunk_offset(chunk) + self.sizes_sum(first, s),
                bytes: self.sizes_sum(s, end),
                samples: end - s,
                description: run.description,
            });
            s = end;
            first += run.per_chunk;
            chunk += 1;
        }
        out
    }

    pub fn duration_of(&self, s: u32) -> u32 {
        let runs = &self.timing.runs;
        runs[runs.partition_point(|run| run.0 <= s) - 1].1
    }

    pub fn cts_offset(&self, s: u32) -> i32 {
        match &self.cts {
            Some(c) => c.runs[c.runs.partition_point(|r| r.0 <= s) - 1].1,
            None => 0,
        }
    }

    /// Composition time of sample `s`, track timescale.
    pub fn ct(&self, s: u32) -> i128 {
        i128::from(self.dts(s)) + i128::from(self.cts_offset(s))
    }

    /// Where a composition time is presented on the movie timeline, ns.
    pub fn presentation_ns(&self, ct: i128) -> i128 {
        let empty = i128::from(self.edit.empty) * NS / i128::from(self.movie_timescale);
        empty + (ct - i128::from(self.edit.media_time)) * NS / i128::from(self.timescale)
    }

    /// Presentation time of sample `s`, ns.
    pub fn sample_ns(&self, s: u32) -> i128 {
        self.presentation_ns(self.ct(s))
    }

    /// Converts ns on the movie timeline to this track's composition time,
    /// to the nearest tick (so a sample's own time converts back to it).
    pub fn ct_at(&self, ns: i128) -> i128 {
        let empty = i128::from(self.edit.empty) * NS / i128::from(self.movie_timescale);
        i128::from(self.edit.media_time)
            + ((ns - empty) * i128::from(self.timescale) + NS / 2).div_euclid(NS)
    }

    pub fn has_sync_table(&self) -> bool {
        self.sync.is_some()
    }

    pub fn is_sync(&self, s: u32) -> bool {
        self.sync
            .as_ref()
            .map_or(true, |v| v.binary_search(&s).is_ok())
    }

    pub fn sync_samples(&self) -> Option<&[u32]> {
        self.sync.as_deref()
    }

    pub fn cts_version(&self) -> Option<u8> {
        self.cts.as_ref().map(|c| c.version)
    }

    pub fn cts_range(&self) -> (i32, i32) {
        self.cts.as_ref().map_or((0, 0), |c| (c.min, c.max))
    }

    pub fn size_of(&self, s: u32) -> u32 {
        match &self.sizes {
            Sizes::Uniform(size) => *size,
            Sizes::Narrow(v) => u32::from(v[s as usize]),
            Sizes::Wide(v) => v[s as usize],
        }
    }

    /// Whether every sample has one size, and which.
    pub fn uniform_size(&self) -> Option<u32> {
        match &self.sizes {
            Sizes::Uniform(size) => Some(*size),
            _ => None,
        }
    }

    /// Bytes of samples `[from, to)`.
    pub fn sizes_sum(&self, from: u32, to: u32) -> u64 {
        match &self.sizes {
            Sizes::Uniform(size) => u64::from(to - from) * u64::from(*size),
            Sizes::Narrow(v) => v[from as usize..to as usize]
                .iter()
                .map(|&x| u64::from(x))
                .sum(),
            Sizes::Wide(v) => v[from as usize..to as usize]
                .iter()
                .map(|&x| u64::from(x))
                .sum(),
        }
    }

    /// The chunk holding sample `s`: (chunk, its first sample, its run).
    pub fn chunk_of(&self, s: u32) -> (u32, u32, usize) {
        let r = self.chunk_runs.partition_point(|c| c.first_sample <= s) - 1;
        let run = self.chunk_runs[r];
        let k = (s - run.first_sample) / run.per_chunk;
        (run.first_chunk + k, run.first_sample + k * run.per_chunk, r)
    }

    /// Samples in chunk run `r`'s chunks, and its sample description.
    pub fn chunk_run(&self, r: usize) -> (u32, u32) {
        (self.chunk_runs[r].per_chunk, self.chunk_runs[r].description)
    }

    pub fn chunk_offset(&self, chunk: u32) -> u64 {
        self.offsets.get(chunk as usize)
    }

    /// File offset of sample `s`.
    pub fn offset_of(&self, s: u32) -> u64 {
        let (chunk, first, _) = self.chunk_of(s);
        self.chunk_offset(chunk) + self.sizes_sum(first, s)
    }

    pub fn sdtp(&self) -> Option<&[u8]> {
        self.sdtp.as_deref()
    }

    pub fn groups(&self) -> &[SampleToGroup] {
        &self.groups
    }

    /// The last sample in decode order whose decode time is below `dts`
    /// bound, as a count: samples `[0, n)` have decode time < `dts`.
    pub fn samples_before_dts(&self, dts: i128) -> u32 {
        if dts <= 0 {
            return 0;
        }
        let dts = u64::try_from(dts).unwrap_or(u64::MAX);
        let (mut lo, mut hi) = (0u32, self.samples);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.dts(mid) < dts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Presentation end of the track, ns: its last presented sample's end,
    /// bounded by its edit.
    fn presentation_end_ns(&self) -> i128 {
        self.presentation_end_of(0, self.samples)
    }

    /// Where the presentation of samples `[from, to)` ends, ns: the latest
    /// composition end among them (their composition times decide, as the
    /// file states them), bounded by the track's edit. A cut reports and
    /// lasts what its own samples present, not the whole track's end.
    pub fn presentation_end_of(&self, from: u32, to: u32) -> i128 {
        let to = to.min(self.samples);
        let media_end = if from >= to {
            i128::from(self.edit.media_time)
        } else {
            let (min, max) = self.cts_range();
            // Samples decoded before the last one's decode time less the
            // composition offsets' spread end before it is composed.
            let last = to - 1;
            let window_start = self
                .samples_before_dts(i128::from(self.dts(last)) - i128::from(max) + i128::from(min))
                .max(to.saturating_sub(MAX_SCAN))
                .max(from);
            (window_start..to)
                .map(|s| self.ct(s) + i128::from(self.duration_of(s)))
                .max()
                .unwrap_or(0)
        };
        let end = self.presentation_ns(media_end);
        match self.edit.duration {
            Some(d) => {
                let empty = i128::from(self.edit.empty) * NS / i128::from(self.movie_timescale);
                end.min(empty + i128::from(d) * NS / i128::from(self.movie_timescale))
            }
            None => end,
        }
    }

    /// Seek points for the media information: sync samples, or samples about
    /// a second apart when every sample is a sync sample.
    fn seek_points(&self) -> Vec<Keyframe> {
        let point = |s: u32| Keyframe {
            time_ms: (self.sample_ns(s).max(0) / 1_000_000) as u64,
            offset: self.offset_of(s),
        };
        match &self.sync {
            Some(v) => v.iter().map(|&s| point(s)).collect(),
            None if self.samples == 0 => Vec::new(),
            None => {
                // By time, not sample by sample: a PCM track has a sample per
                // audio frame. At most MAX_SEEK_POINTS, spread evenly.
                let first = self.sample_ns(0);
                let span = (self.end_ns - first).max(0);
                let step = ALL_SYNC_SPACING_NS.max(span / MAX_SEEK_POINTS as i128 + 1);
                let mut out: Vec<Keyframe> = Vec::new();
                let mut t = first;
                while t <= first + span && out.len() < MAX_SEEK_POINTS {
                    let ct = self.ct_at(t);
                    let s = self
                        .samples_before_dts(ct + 1)
                        .saturating_sub(1)
                        .min(self.samples - 1);
                    if out.last().map_or(true, |k| k.offset != self.offset_of(s)) {
                        out.push(point(s));
                    }
                    // The sample changes only once the next one's decode
                    // time is reached: skip the grid points before it (a
                    // few samples spread over a long span would otherwise
                    // cost a walk of MAX_SEEK_POINTS steps).
                    if s + 1 >= self.samples {
                        break;
                    }
                    let next = self.presentation_ns(i128::from(self.dts(s + 1)));
                    t = (t + step).max(first + (next - first).div_euclid(step) * step);
                }
                out
            }
        }
    }
}

fn timing(stts: &[(u32, u32)], samples: u32) -> Result<Timing> {
    let mut runs = Vec::with_capacity(stts.len());
    let mut checkpoints = Vec::with_capacity(stts.len() / CHECKPOINT_RUNS + 1);
    let mut first: u64 = 0;
    let mut time: u64 = 0;
    for &(count, delta) in stts {
        if count == 0 {
            continue;
        }
        if runs.len() % CHECKPOINT_RUNS == 0 {
            checkpoints.push(time);
        }
        runs.push((first as u32, delta));
        first += u64::from(count);
        if first > u64::from(samples) {
            return Err(malformed(format!(
                "'stts' describes more samples than the {samples} in 'stsz'"
            )));
        }
        time = u64::from(count)
            .checked_mul(u64::from(delta))
            .and_then(|d| time.checked_add(d))
            .filter(|&t| t <= i64::MAX as u64 / 2)
            .ok_or_else(|| malformed("'stts' decode times overflow"))?;
    }
    if first != u64::from(samples) {
        return Err(malformed(format!(
            "'stts' describes {first} samples, 'stsz' {samples}"
        )));
    }
    Ok(Timing {
        runs,
        checkpoints,
        total: time,
    })
}

fn composition_offsets(
    (version, entries): (u8, Vec<(u32, i32)>),
    samples: u32,
) -> Result<Option<CompositionOffsets>> {
    let mut runs = Vec::with_capacity(entries.len());
    let mut first: u64 = 0;
    let (mut min, mut max) = (i32::MAX, i32::MIN);
    for (count, offset) in entries {
        if count == 0 {
            continue;
        }
        runs.push((first as u32, offset));
        min = min.min(offset);
        max = max.max(offset);
        first += u64::from(count);
        if first > u64::from(samples) {
            break;
        }
    }
    if first != u64::from(samples) {
        return Err(malformed(format!(
            "'ctts' describes {first} samples, 'stsz' {samples}"
        )));
    }
    if runs.is_empty() {
        return Ok(None);
    }
    Ok(Some(CompositionOffsets {
        version,
        runs,
        min,
        max,
    }))
}

fn sync_samples(numbers: Vec<u32>, samples: u32) -> Result<Vec<u32>> {
    let mut prev = 0u32;
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        if n == 0 || n > samples {
            return Err(malformed(format!(
                "'stss' lists sample {n}, outside 1..={samples}"
            )));
        }
        if n <= prev {
            return Err(malformed("'stss' entries are not increasing"));
        }
        prev = n;
        out.push(n - 1);
    }
    Ok(out)
}

fn chunk_runs(
    stsc: &[StscEntry],
    chunks: usize,
    samples: u32,
    descriptions: u32,
) -> Result<Vec<ChunkRun>> {
    if samples == 0 {
        return Ok(Vec::new());
    }
    let chunks = u32::try_from(chunks).map_err(|_| malformed("too many chunks"))?;
    if stsc.is_empty() || chunks == 0 {
        return Err(malformed(format!(
            "{samples} samples but {} 'stsc' entries and {chunks} chunks",
            stsc.len()
        )));
    }
    let mut runs = Vec::with_capacity(stsc.len());
    let mut first_sample: u64 = 0;
    for (i, e) in stsc.iter().enumerate() {
        let expected_first = if i == 0 {
            1
        } else {
            stsc[i - 1].first_chunk + 1
        };
        if e.first_chunk < expected_first || (i == 0 && e.first_chunk != 1) {
            return Err(malformed(format!(
                "'stsc' entry {} starts at chunk {} (entries must start at chunk 1 and increase)",
                i + 1,
                e.first_chunk
            )));
        }
        if e.first_chunk > chunks {
            return Err(malformed(format!(
                "'stsc' entry {} starts at chunk {} of {chunks}",
                i + 1,
                e.first_chunk
            )));
        }
        if e.samples_per_chunk == 0 || e.samples_per_chunk > samples {
            return Err(malformed(format!(
                "'stsc' entry {} has {} samples per chunk",
                i + 1,
                e.samples_per_chunk
            )));
        }
        if e.description_index == 0 || e.description_index > descriptions {
            return Err(malformed(format!(
                "'stsc' entry {} uses sample description {} of {descriptions}",
                i + 1,
                e.description_index
            )));
        }
        let next = stsc.get(i + 1).map_or(chunks + 1, |n| n.first_chunk);
        let run_chunks = u64::from(next.saturating_sub(e.first_chunk));
        runs.push(ChunkRun {
            first_chunk: e.first_chunk - 1,
            first_sample: first_sample as u32,
            per_chunk: e.samples_per_chunk,
            description: e.description_index,
        });
        first_sample += run_chunks * u64::from(e.samples_per_chunk);
        if first_sample > u64::from(samples) {
            return Err(malformed(format!(
                "'stsc' places more than the {samples} samples of 'stsz' in {chunks} chunks"
            )));
        }
    }
    if first_sample != u64::from(samples) {
        return Err(malformed(format!(
            "'stsc' places {first_sample} samples in {chunks} chunks, 'stsz' has {samples}"
        )));
    }
    Ok(runs)
}

/// What a cut composes of a track's edit list: the leading empty edits and
/// the edit that shows media, with the media edits that follow on from it
/// (an edit split in two by an editing application) joined to it, and the
/// empty edits after the last ignored (they only pad the end). Anything else
/// (media from another place, a dwell of rate 0, another rate) cannot be
/// composed into one edit: the reason comes back, and cuts of the file are
/// refused with it; the file as stored is still served.
fn edit_summary(
    edits: Option<&[tables::Edit]>,
    timescale: u32,
    movie_timescale: u32,
) -> Result<(EditSummary, Option<String>)> {
    // Without an edit list, composition time is presentation time.
    let Some(edits) = edits else {
        return Ok((
            EditSummary {
                empty: 0,
                media_time: 0,
                duration: None,
            },
            None,
        ));
    };
    let first = edits.iter().position(|e| e.media_time != -1);
    let empty = edits[..first.unwrap_or(edits.len())]
        .iter()
        .fold(0u64, |a, e| a.saturating_add(e.duration));
    let Some(first) = first else {
        // Only empty edits: nothing of the media is shown after them.
        let summary = EditSummary {
            empty,
            media_time: 0,
            duration: None,
        };
        return Ok((summary, None));
    };
    let e = &edits[first];
    if e.media_time < 0 {
        return Err(malformed(format!("'elst' media time {}", e.media_time)));
    }
    let mut summary = EditSummary {
        empty,
        media_time: e.media_time,
        duration: (e.duration != 0).then_some(e.duration),
    };
    let why = |i: usize, what: String| {
        Some(format!(
            "edit list entry {} of {}: {what}",
            i + 1,
            edits.len()
        ))
    };
    match e.rate {
        1 => {}
        0 => return Ok((summary, why(first, "a dwell (rate 0)".into()))),
        r => return Ok((summary, why(first, format!("rate {r}")))),
    }
    // A movie-timescale duration in media ticks is exact only to a tick.
    let slack = i128::from(timescale.div_ceil(movie_timescale.max(1)));
    let mut padding = false;
    for (i, e) in edits.iter().enumerate().skip(first + 1) {
        if e.media_time == -1 {
            padding = true;
            continue;
        }
        let Some(shown) = summary.duration else {
            return Ok((
                summary,
                why(i, "media after an edit that lasts to the end".into()),
            ));
        };
        let follows = i128::from(summary.media_time)
            + i128::from(shown) * i128::from(timescale) / i128::from(movie_timescale.max(1));
        if padding || e.rate != 1 || (i128::from(e.media_time) - follows).abs() > slack {
            let what = format!(
                "media from time {} where the edits before end at {follows}, rate {}",
                e.media_time, e.rate
            );
            return Ok((summary, why(i, what)));
        }
        summary.duration = (e.duration != 0).then(|| shown.saturating_add(e.duration));
    }
    Ok((summary, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_lists_compose_or_say_why_not() {
        let e = |duration, media_time, rate| tables::Edit {
            duration,
            media_time,
            rate,
        };
        // Movie timescale 1000, media 12800: 4 s of movie are 51200 ticks.
        let summary = |edits: &[tables::Edit]| edit_summary(Some(edits), 12_800, 1000).unwrap();
        // An empty edit, then a media edit split in two that follow on, then
        // padding: one edit of 12 s.
        let (s, refused) = summary(&[
            e(1500, -1, 1),
            e(4000, 1024, 1),
            e(8000, 1024 + 51_200, 1),
            e(500, -1, 1),
        ]);
        assert_eq!(refused, None);
        assert_eq!(
            (s.empty, s.media_time, s.duration),
            (1500, 1024, Some(12_000))
        );
        // Media from elsewhere, a dwell, media after padding: refused.
        let (_, refused) = summary(&[e(4000, 1024, 1), e(6000, 1024 + 76_800, 1)]);
        assert!(refused.unwrap().starts_with("edit list entry 2 of 2"));
        let (_, refused) = summary(&[e(4000, 1024, 0)]);
        assert!(refused.unwrap().contains("dwell"));
        let (_, refused) = summary(&[e(4000, 1024, 1), e(10, -1, 1), e(10, 52_224, 1)]);
        assert!(refused.is_some());
        assert!(edit_summary(Some(&[e(10, -5, 1)]), 12_800, 1000).is_err());
    }

    #[test]
    fn chunk_runs_checked() {
        let e = |f, n, d| StscEntry {
            first_chunk: f,
            samples_per_chunk: n,
            description_index: d,
        };
        let runs = chunk_runs(&[e(1, 2, 1), e(3, 1, 1)], 4, 6, 1).unwrap();
        assert_eq!(runs[1].first_sample, 4);
        assert!(chunk_runs(&[e(0, 2, 1)], 3, 6, 1).is_err());
        assert!(chunk_runs(&[e(2, 2, 1), e(1, 2, 1)], 3, 6, 1).is_err());
        assert!(chunk_runs(&[e(1, 2, 2)], 3, 6, 1).is_err());
        assert!(chunk_runs(&[e(1, 0, 1)], 3, 6, 1).is_err());
        assert!(chunk_runs(&[e(1, u32::MAX, 1)], 3, 6, 1).is_err());
        assert!(chunk_runs(&[e(1, 2, 1)], 3, 7, 1).is_err());
        assert!(chunk_runs(&[], 0, 6, 1).is_err());
    }

    #[test]
    fn timing_lookups() {
        let stts: Vec<(u32, u32)> = (0..200).map(|i| (1, 10 + i)).collect();
        let t = timing(&stts, 200).unwrap();
        let mut expected = 0u64;
        for s in 0..200u32 {
            assert_eq!(t.dts(s), expected, "sample {s}");
            expected += u64::from(10 + s);
        }
        assert_eq!(runs_within(&t.runs, 3, 6), vec![(1, 13), (1, 14), (1, 15)]);
        let flat = timing(&[(4, 7), (4, 7), (2, 9)], 10).unwrap();
        assert_eq!(runs_within(&flat.runs, 1, 9), vec![(7, 7), (1, 9)]);
        assert!(timing(&[(5, 1)], 4).is_err());
        assert!(timing(&[(u32::MAX, u32::MAX), (u32::MAX, u32::MAX)], u32::MAX).is_err());
    }

    #[test]
    fn sync_checked() {
        assert_eq!(sync_samples(vec![1, 5], 5).unwrap(), vec![0, 4]);
        assert!(sync_samples(vec![0], 5).is_err());
        assert!(sync_samples(vec![6], 5).is_err());
        assert!(sync_samples(vec![3, 3], 5).is_err());
    }
}
