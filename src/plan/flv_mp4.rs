//! An FLV served as MP4: the whole file (the view's head, then its samples
//! from the file), or a cut by time (`start`/`end` in seconds) written from
//! the samples it needs, with the guarantees of MP4 cuts: video starts at
//! the keyframe presented at or before `start`, every other track at its
//! sample presented at or before that keyframe, and edit lists show `start`
//! to `end` (exact mode) or the keyframe to `end` (keyframe mode).

use std::sync::Arc;

use super::body::{Part, PieceRun, RunPiece, GENERATED_MAX};
use super::{CutMode, Prefix, PrefixMode, Request};
use crate::error::{Error, Result};
use crate::fnv::Fnv;
use crate::format::mp4::progressive::{self, to_movie, MdatLayout, TrackPart};
use crate::format::samples::{SampleMovie, SampleTrack, TrackKind};
use crate::index::flv_mp4::FlvAsMp4;

/// An `mdat` payload's samples, sent from the file.
#[derive(Debug)]
struct MdatRun {
    movie: Arc<SampleMovie>,
    /// The movie's track of each part of the layout.
    tracks: Vec<usize>,
    layout: Arc<MdatLayout>,
    digest: u64,
}

impl PieceRun for MdatRun {
    fn len(&self) -> u64 {
        self.layout.len
    }

    fn piece_at(&self, pos: u64, _scratch: &mut [u8; GENERATED_MAX]) -> RunPiece {
        let (offset, len) = self
            .layout
            .at(|part| &self.movie.tracks[self.tracks[part]], pos);
        RunPiece::File { offset, len }
    }

    fn digest(&self, h: &mut Fnv) {
        h.write(&self.digest.to_le_bytes());
    }
}

fn cut_of(head: Prefix, run: MdatRun, span: (u64, u64), start_ms: u64, end_ms: u64) -> super::Cut {
    super::Cut {
        prefix: head,
        from: span.0,
        to: span.1,
        rest: super::Rest::Laid(vec![Part::Run(Arc::new(run))]),
        start_ms,
        end_ms,
    }
}

/// The first and last file bytes the parts' samples take.
fn span(parts: &[TrackPart]) -> (u64, u64) {
    let (mut from, mut to) = (u64::MAX, 0);
    for p in parts {
        for s in &p.track.samples[p.from..p.to] {
            from = from.min(s.offset);
            to = to.max(s.offset + u64::from(s.size));
        }
    }
    (from.min(to), to)
}

pub(crate) fn resolve(view: &FlvAsMp4, request: &Request, mode: CutMode) -> Result<super::Cut> {
    if request.initial_bytes.is_some() || request.prefix == Some(PrefixMode::None) {
        return Err(Error::bad_request(
            "an FLV served as MP4 is cut by start/end in seconds and read by Range; \
             ib/fs and bstart/bend do not apply",
        ));
    }
    let what = "an FLV served as MP4";
    let start = super::seconds(request.start, "start", what)?;
    let end = super::seconds(request.end, "end", what)?;
    let duration_ms = view.duration_ms;
    if start.is_none() && end.is_none() {
        let run = MdatRun {
            movie: Arc::clone(&view.movie),
            tracks: (0..view.movie.tracks.len()).collect(),
            layout: Arc::clone(&view.mdat),
            digest: view.mdat_digest,
        };
        let head = Prefix::shared(&view.head, 0, view.head_digest);
        return Ok(cut_of(head, run, view.span, 0, duration_ms));
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
    let end = end.filter(|&e| e < duration_ms);
    cut(view, start, end, mode)
}

/// Source presentation time (ms) of the movie's 0, as the whole file's
/// timeline has it.
fn movie_origin_ms(view: &FlvAsMp4) -> i64 {
    let tracks = &view.movie.tracks;
    progressive::movie_origin(
        tracks
            .iter()
            .map(|t| (t.kind, to_movie(t.first_pts(), t.timescale))),
    )
}

fn ms_of(t: &SampleTrack, v: i64) -> i64 {
    to_movie(v, t.timescale)
}

fn in_track(t: &SampleTrack, ms: i64) -> i64 {
    (i128::from(ms) * i128::from(t.timescale) / 1000) as i64
}

fn pts(t: &SampleTrack, i: usize) -> i64 {
    let s = &t.samples[i];
    s.dts as i64 + i64::from(s.cts)
}

/// The first sample of a track to send for a cut that shows `at` (track
/// timescale): the reference track's last sync sample presented at or
/// before it, another track's last sample presented at or before it.
fn first_sample(t: &SampleTrack, at: i64, sync_only: bool) -> usize {
    // Decode order is presentation order give or take a few frames: find
    // the decode position, then look around it.
    let near = t.samples.partition_point(|s| (s.dts as i64) <= at);
    let lo = near.saturating_sub(64);
    let hi = (near + 64).min(t.samples.len());
    let mut best = None;
    for i in (0..hi).rev() {
        if i < lo && best.is_some() {
            break;
        }
        let s = &t.samples[i];
        if (sync_only && !s.sync) || pts(t, i) > at {
            continue;
        }
        if best.map_or(true, |b: usize| pts(t, i) > pts(t, b)) {
            best = Some(i);
        }
        if i < lo {
            break;
        }
    }
    best.unwrap_or(0)
}

/// Past the last sample needed to show up to `end` (exclusive, track
/// timescale): the last in decode order presented before it, and all
/// before it. Samples decoded later but presented after `end` are left
/// out: a player would count them into the duration.
fn last_sample(t: &SampleTrack, end: i64) -> usize {
    let near = t.samples.partition_point(|s| (s.dts as i64) < end);
    let hi = (near + 64).min(t.samples.len());
    (near.saturating_sub(64)..hi)
        .rev()
        .find(|&i| pts(t, i) < end)
        .map_or(near, |i| i + 1)
}

fn cut(view: &FlvAsMp4, start: u64, end: Option<u64>, mode: CutMode) -> Result<super::Cut> {
    let origin = movie_origin_ms(view);
    let tracks = &view.movie.tracks;
    let reference = tracks
        .iter()
        .position(|t| t.kind == Some(TrackKind::Video))
        .unwrap_or(0);
    let r = &tracks[reference];
    // Source times, ms.
    let start_src = origin + start as i64;
    let end_src = end.map(|e| origin + e as i64);
    let key = first_sample(r, in_track(r, start_src), true);
    let key_ms = ms_of(r, pts(r, key));
    let shown_from = match mode {
        CutMode::Exact => start_src.max(key_ms),
        CutMode::Keyframe => key_ms,
    };
    let mut parts = Vec::new();
    let mut part_tracks = Vec::new();
    for (ti, t) in tracks.iter().enumerate() {
        let from = if ti == reference {
            key
        } else {
            first_sample(t, in_track(t, key_ms), false)
        };
        let track_end = TrackPart::whole(t).shown_window().1;
        let end_at = end_src.map_or(track_end, |e| in_track(t, e).min(track_end));
        let to = end_src.map_or(t.samples.len(), |_| last_sample(t, end_at));
        let first_shown = in_track(t, shown_from).max(pts(t, from));
        if to <= from || first_shown >= end_at {
            continue;
        }
        parts.push(TrackPart {
            track: t,
            from,
            to,
            shown: Some((first_shown, end_at)),
        });
        part_tracks.push(ti);
    }
    let mp4 = progressive::write(&parts, Some(shown_from))?;
    let span = span(&parts);
    let start_ms = (shown_from - origin).max(0) as u64;
    let end_ms = start_ms + mp4.duration_ms;
    let run = MdatRun {
        digest: mp4.mdat.digest(|part| &tracks[part_tracks[part]]),
        movie: Arc::clone(&view.movie),
        tracks: part_tracks,
        layout: Arc::new(mp4.mdat),
    };
    Ok(cut_of(mp4.head.into(), run, span, start_ms, end_ms))
}
