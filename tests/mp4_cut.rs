//! MP4 jump-to-time cuts (`start`/`end` in seconds), judged by ffmpeg and
//! ffprobe, never by the library: for seeded start/end pairs on every file
//! of the MP4 matrix (`scripts/make-mp4-media.sh`), in both cut modes, each
//! cut must
//!
//! - decode without a word from `ffmpeg -v error`;
//! - show first the source's picture at the requested start (exact mode) or
//!   at the keyframe before it (keyframe mode; fragmented files: the
//!   fragment's), compared by the MD5 of the decoded pictures, and present
//!   that frame at ~0 in its own timeline;
//! - last as long as asked (frames decoded x frame duration);
//! - keep every track on the source's timeline: each packet of the cut is
//!   found in the source by its CRC32 (PCM by its samples) and must sit at
//!   its source time minus the start, so each audio track keeps its offset
//!   to the video within one audio frame (delayed_audio's 1.5 s included);
//! - hold the packets that present the span, and put its moov before its
//!   media.
//!
//! Then the errors and the HTTP plumbing of MP4 requests. Tolerances are
//! one frame of the track concerned: ffmpeg does not show a video frame
//! that an edit list cuts into, and trims only whole audio frames at the
//! end. The measured worst cases are printed (`--nocapture`).

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::mp4::{
    frame_md5, mp4_manifest, probe_packets, stream_payload, top_level_boxes, FrameSum, Mp4Entry,
    Mp4Packet, PacketProbe, SplitMix,
};
use common::{assert_no_failures, body, decode_clean, drain, par_map, secs, TempFile};
use pseudostream::{
    query, CutMode, Error, Media, Options, Plan, Position, RangeOutcome, Request, StartUnit,
};

const MODES: [CutMode; 2] = [CutMode::Exact, CutMode::Keyframe];

/// Slack for times that pass through whole milliseconds (plan fields,
/// requested times) or a movie timescale.
const MS_SLACK: f64 = 1.0;

// ------------------------------------------------------ source reference --

/// What ffmpeg/ffprobe say about one source file.
struct Source {
    entry: Mp4Entry,
    media: Media,
    duration_ms: u64,
    probe: PacketProbe,
    /// The track cuts are aligned on: the first video stream, else the
    /// first audio stream (ffprobe stream index).
    reference: usize,
    has_video: bool,
    /// Decoded frames of the reference stream (edit lists applied).
    frames: Vec<FrameSum>,
    /// One frame of each stream, ms (video: a frame; audio: an audio frame,
    /// 1024 samples for PCM).
    frame_ms: HashMap<usize, f64>,
    /// Presentation times of the reference stream's sync packets.
    keys_ms: Vec<f64>,
    /// Fragmented files: every `moof`, in file order.
    fragments: Option<Vec<Fragment>>,
    /// The source's moov comes after (some of) its media.
    moov_after_media: bool,
    /// PCM streams: their stored samples, bytes per sample frame and rate.
    pcm: HashMap<usize, (Vec<u8>, usize, u32)>,
}

impl Source {
    fn stream_packets(&self, stream: usize) -> Vec<&Mp4Packet> {
        self.probe.stream_packets(stream)
    }

    /// Where the reference stream's decoded presentation ends.
    fn reference_end_ms(&self) -> f64 {
        self.frames.last().map_or(0.0, |f| f.pts_ms + f.dur_ms)
    }

    fn reference_frame_ms(&self) -> f64 {
        self.frame_ms[&self.reference]
    }
}

/// One `moof` of a fragmented source, as ffprobe's packets place it.
#[derive(Clone, Copy, Debug)]
struct Fragment {
    offset: u64,
    /// Presentation time of its first reference-stream sample (None: it
    /// holds none) and whether that sample is sync.
    time_ms: Option<f64>,
    sync: bool,
    /// The earliest decode time of any stream's sample in it.
    first_dts_ms: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn build_source(entry: &Mp4Entry) -> Result<Source, String> {
    let ctx = |m: String| format!("{}: {m}", entry.file);
    let bytes = std::fs::read(&entry.path).map_err(|e| ctx(e.to_string()))?;
    let media = Media::open(&entry.path).map_err(|e| ctx(format!("Media::open: {e}")))?;
    let probe = probe_packets(&entry.path).map_err(ctx)?;
    let video = probe.of_type("video");
    let audio = probe.of_type("audio");
    if video.is_empty() == entry.has_video || audio.is_empty() == entry.has_audio {
        return Err(ctx(format!(
            "manifest says audio={} video={}, ffprobe finds {} audio and {} video streams",
            entry.has_audio,
            entry.has_video,
            audio.len(),
            video.len()
        )));
    }
    if audio.len() != entry.audio_tracks {
        return Err(ctx(format!(
            "manifest says {} audio tracks, ffprobe finds {}",
            entry.audio_tracks,
            audio.len()
        )));
    }
    let has_video = !video.is_empty();
    let reference = *video
        .first()
        .or(audio.first())
        .ok_or_else(|| ctx("no streams".into()))?;
    let frames = frame_md5(&entry.path, if has_video { "v:0" } else { "a:0" }).map_err(ctx)?;
    if frames.len() < 10 {
        return Err(ctx(format!("only {} frames decode", frames.len())));
    }
    let mut frame_ms = HashMap::new();
    for s in &probe.streams {
        let pcm = s.codec_name.starts_with("pcm_");
        let d = match (s.codec_type.as_str(), s.sample_rate) {
            ("audio", Some(sr)) if pcm => 1024.0 * 1000.0 / f64::from(sr),
            _ => median(
                probe
                    .stream_packets(s.index)
                    .iter()
                    .filter_map(|p| p.dur_ms)
                    .filter(|&d| d > 0.0)
                    .collect(),
            )
            .unwrap_or(0.0),
        };
        frame_ms.insert(s.index, d);
    }
    if has_video {
        // The decoded frame duration, which is what the duration check counts.
        let d = median(frames.iter().map(|f| f.dur_ms).collect()).unwrap_or(0.0);
        frame_ms.insert(reference, d);
    }
    let ref_packets = probe.stream_packets(reference);
    let mut keys_ms: Vec<f64> = ref_packets
        .iter()
        .filter(|p| p.key)
        .filter_map(|p| p.pts_ms)
        .collect();
    keys_ms.sort_by(f64::total_cmp);
    let boxes = top_level_boxes(&bytes).map_err(|e| ctx(format!("source boxes: {e}")))?;
    let first = |k: &[u8; 4]| boxes.iter().position(|b| &b.kind == k);
    let moov = first(b"moov").ok_or_else(|| ctx("no moov".into()))?;
    let media_box = first(b"mdat")
        .into_iter()
        .chain(first(b"moof"))
        .min()
        .ok_or_else(|| ctx("no mdat".into()))?;
    let moofs: Vec<u64> = boxes
        .iter()
        .filter(|b| &b.kind == b"moof")
        .map(|b| b.offset)
        .collect();
    let fragments = (!moofs.is_empty()).then(|| {
        let mut list = Vec::new();
        for (i, &at) in moofs.iter().enumerate() {
            let next = moofs.get(i + 1).copied().unwrap_or(u64::MAX);
            let first = ref_packets
                .iter()
                .filter(|p| p.pos.is_some_and(|pos| pos > at && pos < next))
                .min_by_key(|p| p.pos);
            let first_dts_ms = probe
                .packets
                .iter()
                .filter(|p| p.pos.is_some_and(|pos| pos > at && pos < next))
                .filter_map(|p| p.dts_ms)
                .min_by(f64::total_cmp);
            list.push(Fragment {
                offset: at,
                time_ms: first.and_then(|p| p.pts_ms),
                sync: first.is_some_and(|p| p.key),
                first_dts_ms,
            });
        }
        list
    });
    let mut pcm = HashMap::new();
    for st in &probe.streams {
        let (true, Some(sr)) = (st.codec_name.starts_with("pcm_"), st.sample_rate) else {
            continue;
        };
        let p = probe.stream_packets(st.index);
        let (size, dur) = p
            .iter()
            .find_map(|p| Some((p.size?, p.dur_ms?)).filter(|x| x.1 > 0.0))
            .ok_or_else(|| ctx("PCM packets without size or duration".into()))?;
        let bpf = (size as f64 / (dur * f64::from(sr) / 1000.0)).round() as usize;
        let payload = stream_payload(&entry.path, &st.index.to_string()).map_err(ctx)?;
        pcm.insert(st.index, (payload, bpf.max(1), sr));
    }
    Ok(Source {
        entry: entry.clone(),
        duration_ms: media.info().duration_ms,
        media,
        probe,
        reference,
        has_video,
        frames,
        frame_ms,
        keys_ms,
        fragments,
        moov_after_media: moov > media_box,
        pcm,
    })
}

fn sources() -> Vec<Arc<Source>> {
    let entries: Vec<Mp4Entry> = mp4_manifest().to_vec();
    par_map(entries, |e| build_source(&e).map(Arc::new))
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

// ------------------------------------------------------------------ cases --

#[derive(Clone, Copy, Debug)]
struct Case {
    mode: CutMode,
    why: &'static str,
    start: Option<u64>,
    end: Option<u64>,
}

impl Case {
    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(s) = self.start {
            q.push(format!("start={}", secs(s)));
        }
        if let Some(e) = self.end {
            q.push(format!("end={}", secs(e)));
        }
        q.join("&")
    }
}

/// About nine cuts per mode, from a PRNG seeded by the file name: start
/// only, start near the end, on a keyframe, just before one, a span under a
/// GOP, an end near the end, an early start (inside a delayed track's gap),
/// an end past the end, and an end alone or one more random pair.
fn cases(src: &Source) -> Vec<Case> {
    let mut rng = SplitMix::for_name(&src.entry.file);
    let dur = src.duration_ms;
    assert!(dur > 3000, "{}: {dur} ms is too short", src.entry.file);
    let keys: Vec<u64> = src
        .keys_ms
        .iter()
        .map(|&k| k.round() as u64)
        .filter(|&k| k >= 40 && k + 200 < dur)
        .collect();
    let mut out = Vec::new();
    for mode in MODES {
        let mut add = |why, start, end| {
            out.push(Case {
                mode,
                why,
                start,
                end,
            })
        };
        let s = rng.range(300, dur - 500);
        add("start only", Some(s), None);
        let s = dur - rng.range(20, 700);
        add("start near the end", Some(s), None);
        let k = rng.pick(&keys).copied().unwrap_or(dur / 2);
        add("on a keyframe", Some(k), Some(k + rng.range(300, 4000)));
        let k = rng.pick(&keys).copied().unwrap_or(dur / 2);
        let s = k - rng.range(1, 40.min(k));
        add(
            "just before a keyframe",
            Some(s),
            Some(s + rng.range(100, 3000)),
        );
        let s = rng.range(0, dur - 1000);
        add("tiny span", Some(s), Some(s + rng.range(45, 1900)));
        let s = rng.range(100, dur / 2);
        add("end near the end", Some(s), Some(dur - rng.range(1, 300)));
        let s = rng.range(1, 2000);
        add("early start", Some(s), Some(s + rng.range(800, 5000)));
        let s = rng.range(dur / 3, dur - 300);
        add("end past the end", Some(s), Some(dur + rng.range(0, 3000)));
        if mode == CutMode::Exact {
            add("end only", None, Some(rng.range(500, dur)));
        } else {
            let s = rng.range(0, dur - 100);
            add("random", Some(s), Some(s + rng.range(1, dur - s + 1000)));
        }
    }
    out
}

// ----------------------------------------------------------------- checks --

/// The worst errors of one cut (ms) and what failed.
#[derive(Default)]
struct Outcome {
    first_frame: f64,
    duration: f64,
    av: f64,
    timeline: f64,
    failures: Vec<String>,
}

/// What a cut must present, in source time.
struct Expect {
    /// Where presentation starts: the start (exact), the keyframe
    /// (keyframe mode) or the fragment (fragmented files).
    s: f64,
    /// Where it ends: the end or the media end (the fragment boundary at or
    /// after the end for fragmented files).
    e: f64,
    /// Cut time = source time + shift: -s; for fragmented files, minus the
    /// earliest decode time in the first fragment, from which the cut's
    /// rewritten decode times count.
    shift: f64,
    /// plan.start_ms / plan.end_ms: the source's times at the cut's 0 and
    /// where it ends.
    start_ms: f64,
    end_ms: f64,
    /// Fragmented files: the source bytes whose packets the cut must hold,
    /// from the first fragment's moof to the moof after the last one.
    fragment_bytes: Option<(u64, u64)>,
}

fn expect(src: &Source, case: &Case) -> Result<Expect, String> {
    let start = case.start.unwrap_or(0) as f64;
    let media_end = src.duration_ms as f64;
    let end_ms = case.end.map_or(media_end, |e| (e as f64).min(media_end));
    if let Some(frags) = &src.fragments {
        // The fragment at or before the start whose first sample is sync.
        let first = frags
            .iter()
            .rposition(|f| f.sync && f.time_ms.is_some_and(|t| t <= start + 1e-6))
            .or_else(|| frags.iter().position(|f| f.sync))
            .ok_or("no fragment starts with a sync sample")?;
        let f = frags[first].time_ms.unwrap();
        // The first fragment presented from the end on ends the cut.
        let last = case.end.and_then(|e| {
            frags[first + 1..]
                .iter()
                .find(|x| x.time_ms.is_some_and(|t| t >= e as f64))
        });
        let e = last.map_or(media_end, |x| x.time_ms.unwrap());
        // The cut's 0: the fragment's first frame (exact mode; what other
        // streams present before it is dropped), or its earliest decode
        // time (keyframe mode, no edit lists).
        let zero = match case.mode {
            CutMode::Exact => f,
            CutMode::Keyframe => frags[first]
                .first_dts_ms
                .ok_or("a fragment without samples")?,
        };
        return Ok(Expect {
            s: f,
            e,
            shift: -zero,
            start_ms: zero,
            end_ms: e,
            fragment_bytes: Some((frags[first].offset, last.map_or(u64::MAX, |x| x.offset))),
        });
    }
    let key = src
        .keys_ms
        .iter()
        .rev()
        .find(|&&k| k <= start + 1e-6)
        .or(src.keys_ms.first())
        .copied()
        .ok_or("no sync sample")?;
    let s = match case.mode {
        CutMode::Exact => start,
        CutMode::Keyframe => key,
    };
    Ok(Expect {
        s,
        e: end_ms,
        shift: -s,
        start_ms: s,
        end_ms,
        fragment_bytes: None,
    })
}

/// The cut stream's shift (cut time minus source time), from the first of
/// its packets found in the source stream followed by the same packets
/// (CRC32 of the payload); among several such places, the one nearest the
/// expected shift. Also how many leading cut packets matched nothing.
fn stream_shift(cut: &[&Mp4Packet], src: &[&Mp4Packet], expected: f64) -> Option<(f64, usize)> {
    let mut by_hash: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in src.iter().enumerate() {
        by_hash.entry(p.hash.as_str()).or_default().push(i);
    }
    for j in 0..cut.len().min(64) {
        let Some(cut_pts) = cut[j].pts_ms else {
            continue;
        };
        let run = (cut.len() - j).min(6);
        let best = by_hash
            .get(cut[j].hash.as_str())
            .into_iter()
            .flatten()
            .filter(|&&i| {
                i + run <= src.len() && (0..run).all(|k| src[i + k].hash == cut[j + k].hash)
            })
            .filter_map(|&i| src[i].pts_ms.map(|p| cut_pts - p))
            .min_by(|a, b| (a - expected).abs().total_cmp(&(b - expected).abs()));
        if let Some(shift) = best {
            return Some((shift, j));
        }
    }
    None
}

/// The shift of a PCM stream: where the cut's first samples are among the
/// source's, nearest the expected shift.
fn pcm_shift(
    cut: &[u8],
    cut_first: &Mp4Packet,
    (stored, bpf, rate): &(Vec<u8>, usize, u32),
    src_first: &Mp4Packet,
    expected: f64,
) -> Option<f64> {
    let needle = &cut[..cut.len().min(2048)];
    if needle.len() < *bpf {
        return None;
    }
    let (cut_pts, src_pts) = (cut_first.pts_ms?, src_first.pts_ms?);
    (0..stored.len().saturating_sub(needle.len()) + 1)
        .step_by(*bpf)
        .filter(|&at| stored[at..].starts_with(needle))
        .map(|at| cut_pts - (src_pts + (at / bpf) as f64 * 1000.0 / f64::from(*rate)))
        .min_by(|a, b| (a - expected).abs().total_cmp(&(b - expected).abs()))
}

fn check_cut(src: &Source, case: &Case) -> Outcome {
    let mut out = Outcome::default();
    let q = case.query();
    let label = format!(
        "{} {} '{q}' ({})",
        src.entry.file,
        case.mode.name(),
        case.why
    );
    macro_rules! fail {
        ($m:expr) => {
            out.failures.push(format!("{label}: {}", $m))
        };
    }
    let o = Options {
        cut: case.mode,
        start_unit: StartUnit::Seconds,
        ..Options::default()
    };

    // The plan, from the query and from a Request built by hand.
    let plan = match query::parse(q.as_bytes(), &o).and_then(|r| src.media.plan(&o, &r)) {
        Ok(p) => p,
        Err(e) => {
            fail!(format!("no plan: {e} (HTTP {})", e.http_status()));
            return out;
        }
    };
    let direct = src.media.plan(
        &o,
        &Request {
            start: case.start.map(Position::Millis),
            end: case.end.map(Position::Millis),
            ..Request::default()
        },
    );
    if direct.as_ref().ok() != Some(&plan) {
        fail!(format!(
            "the query's plan and the Request's differ: {direct:?}"
        ));
    }
    let want = match expect(src, case) {
        Ok(w) => w,
        Err(e) => {
            fail!(e);
            return out;
        }
    };
    if (plan.start_ms as f64 - want.start_ms).abs() > MS_SLACK
        || (plan.end_ms as f64 - want.end_ms).abs() > MS_SLACK
    {
        fail!(format!(
            "plan presents {}..{} ms, expected {:.3}..{:.3}",
            plan.start_ms, plan.end_ms, want.start_ms, want.end_ms
        ));
    }
    if plan.whole_file {
        fail!("a cut is planned as the whole file");
    }
    let bytes = body(&src.media, &plan);
    if bytes.len() as u64 != plan.len() {
        fail!(format!(
            "{} bytes for a plan of {}",
            bytes.len(),
            plan.len()
        ));
    }

    // Structure: the boxes tile the body, one moov, before any media.
    match top_level_boxes(&bytes) {
        Err(e) => fail!(format!("top-level boxes: {e}")),
        Ok(boxes) => {
            let moovs: Vec<usize> = (0..boxes.len())
                .filter(|&i| &boxes[i].kind == b"moov")
                .collect();
            let media = boxes
                .iter()
                .position(|b| &b.kind == b"mdat" || &b.kind == b"moof");
            let order: Vec<String> = boxes.iter().map(|b| b.name()).collect();
            if moovs.len() != 1 || media.is_none() || moovs[0] > media.unwrap() {
                fail!(format!(
                    "top-level boxes {order:?}: want one moov before the media{}",
                    if src.moov_after_media {
                        " (the source's moov is at its end)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }

    let tmp = TempFile::with_bytes("cut.mp4", &bytes);
    if let Err(e) = decode_clean(tmp.path()) {
        fail!(e);
    }
    let probe = match probe_packets(tmp.path()) {
        Ok(p) => p,
        Err(e) => {
            fail!(e);
            return out;
        }
    };
    let kinds = |p: &PacketProbe| -> Vec<String> {
        p.streams.iter().map(|s| s.codec_type.clone()).collect()
    };
    if kinds(&probe) != kinds(&src.probe) {
        fail!(format!(
            "streams {:?}, the source has {:?}",
            kinds(&probe),
            kinds(&src.probe)
        ));
        return out;
    }
    let pairs: Vec<(usize, usize)> = probe
        .streams
        .iter()
        .zip(&src.probe.streams)
        .map(|(c, s)| (c.index, s.index))
        .collect();

    // Timeline: each track's packets sit at their source times + shift.
    // (ffprobe's timestamps include the edit lists and ctts; see
    // `probe_packets` for why the edit list is applied as an offset.)
    let mut shifts: HashMap<usize, f64> = HashMap::new();
    for &(c, s) in &pairs {
        let cut_p = probe.stream_packets(c);
        let src_p = src.stream_packets(s);
        let frame = src.frame_ms[&s];
        let stype = &src.probe.stream(s).unwrap().codec_type;
        if let Some((from, to)) = want.fragment_bytes {
            // Whole fragments: exactly the source's packets of those bytes,
            // less, in exact mode, those of other streams than the
            // reference presented before the cut's first frame.
            let dropped = |p: &Mp4Packet| {
                case.mode == CutMode::Exact
                    && s != src.reference
                    && p.pts_ms.is_some_and(|t| t < want.s - 0.001)
            };
            let want_hashes: Vec<&str> = src_p
                .iter()
                .filter(|p| p.pos.is_some_and(|pos| pos >= from && pos < to))
                .filter(|p| !dropped(p))
                .map(|p| p.hash.as_str())
                .collect();
            let got: Vec<&str> = cut_p.iter().map(|p| p.hash.as_str()).collect();
            if got != want_hashes {
                let same = got
                    .iter()
                    .zip(&want_hashes)
                    .take_while(|(a, b)| a == b)
                    .count();
                fail!(format!(
                    "{stype} stream {c}: {} packets, the source's fragments at {from}..{to} \
                     hold {} (the first {same} agree)",
                    got.len(),
                    want_hashes.len()
                ));
            }
        } else if cut_p.is_empty() {
            let presented = src_p.iter().any(|p| {
                let (pts, dur) = (p.pts_ms.unwrap_or(0.0), p.dur_ms.unwrap_or(0.0));
                pts + dur > want.s + MS_SLACK && pts < want.e - MS_SLACK
            });
            if presented {
                fail!(format!(
                    "{stype} stream {c} is empty but the source presents it in that span"
                ));
            }
        }
        if cut_p.is_empty() {
            continue;
        }
        // PCM is placed by its samples (packets are cut from chunks, and
        // a cut's first chunk starts inside a stored one); the rest by the
        // CRC32 of whole packets.
        let pcm = src.pcm.get(&s);
        let found = match pcm {
            Some(stored) => stream_payload(tmp.path(), &c.to_string())
                .map_err(|e| fail!(e))
                .ok()
                .and_then(|cut| pcm_shift(&cut, cut_p[0], stored, src_p[0], want.shift))
                .map(|shift| (shift, 0)),
            None => stream_shift(&cut_p, &src_p, want.shift),
        };
        let Some((shift, skipped)) = found else {
            fail!(format!(
                "no packet of {stype} stream {c} is found in the source"
            ));
            continue;
        };
        if skipped > 0 {
            fail!(format!(
                "the first {skipped} packets of {stype} stream {c} are not source packets"
            ));
        }
        shifts.insert(c, shift);
        let err = (shift - want.shift).abs();
        out.timeline = out.timeline.max(err);
        if err > frame + MS_SLACK {
            fail!(format!(
                "{stype} stream {c} is shifted by {shift:.3} ms, expected {:.3} ({err:.3} ms off)",
                want.shift
            ));
        }
        if want.fragment_bytes.is_some() {
            continue;
        }
        // Coverage: the cut holds this stream from where its presentation
        // starts to where it ends (in whole packets).
        let src_first = src_p
            .iter()
            .filter_map(|p| p.pts_ms)
            .fold(f64::INFINITY, f64::min);
        let src_last = src_p
            .iter()
            .filter_map(|p| Some(p.pts_ms? + p.dur_ms?))
            .fold(f64::NEG_INFINITY, f64::max);
        let need_from = want.s.max(src_first.max(0.0));
        let need_to = want.e.min(src_last);
        if need_from < need_to {
            let have_from = cut_p
                .iter()
                .filter_map(|p| p.pts_ms)
                .fold(f64::INFINITY, f64::min)
                - want.shift;
            let have_to = cut_p
                .iter()
                .filter_map(|p| Some(p.pts_ms? + p.dur_ms?))
                .fold(f64::NEG_INFINITY, f64::max)
                - want.shift;
            if have_from > need_from + MS_SLACK || have_to < need_to - MS_SLACK {
                fail!(format!(
                    "{stype} stream {c} holds {have_from:.3}..{have_to:.3} ms of source time, \
                     must cover {need_from:.3}..{need_to:.3}"
                ));
            }
        }
    }

    // A/V: every audio track keeps its offset to the video (within one audio
    // frame): (v_cut - a_cut) - (v_src - a_src) = shift_v - shift_a.
    let cut_ref = pairs
        .iter()
        .find(|p| p.1 == src.reference)
        .map(|p| p.0)
        .unwrap();
    if src.has_video {
        if let Some(&sv) = shifts.get(&cut_ref) {
            for &(c, s) in &pairs {
                let stream = src.probe.stream(s).unwrap();
                if stream.codec_type != "audio" {
                    continue;
                }
                let Some(&sa) = shifts.get(&c) else { continue };
                let delta = (sv - sa).abs();
                out.av = out.av.max(delta);
                if delta > src.frame_ms[&s] + 0.01 {
                    fail!(format!(
                        "audio stream {c} moved {delta:.3} ms against the video \
                         (one audio frame is {:.3} ms)",
                        src.frame_ms[&s]
                    ));
                }
            }
        }
    }

    // The first presented frame, by the exact timestamps: the reference
    // packet presented at the cut's start (the last at or before it) is
    // within one frame of it ("pts ~0"), and is the source's packet
    // presented at `s`. (ffmpeg's default edit-list handling is not used for
    // this: it re-anchors short edits over reordered frames, e.g. a 40 ms
    // edit of negative_cts.mp4, its own `-ss 5 -c copy` output included,
    // decodes at -80 ms.)
    let frame = src.reference_frame_ms();
    let target = want.s + want.shift;
    let presented = probe
        .stream_packets(cut_ref)
        .iter()
        .filter_map(|p| p.pts_ms)
        .filter(|&t| t <= target + MS_SLACK)
        .fold(f64::NEG_INFINITY, f64::max);
    let src_at_s = src
        .stream_packets(src.reference)
        .iter()
        .filter_map(|p| p.pts_ms)
        .filter(|&t| t <= want.s + 1e-6)
        .fold(f64::NEG_INFINITY, f64::max);
    // (Only where the source presents something at `s`.)
    if src_at_s.is_finite() && target - presented > frame + MS_SLACK {
        fail!(format!(
            "nothing is presented at the start ({target:.3} ms in the cut): \
             the last frame before it is at {presented:.3}"
        ));
    } else if src_at_s.is_finite() {
        let err = (presented - want.shift - src_at_s).abs();
        out.timeline = out.timeline.max(err);
        if err > MS_SLACK {
            fail!(format!(
                "the frame presented first is the source's at {:.3} ms, expected {src_at_s:.3}",
                presented - want.shift
            ));
        }
    }

    // The decoded pictures (ffmpeg applies the edit lists) and their count.
    let frames = match frame_md5(tmp.path(), if src.has_video { "v:0" } else { "a:0" }) {
        Ok(f) => f,
        Err(e) => {
            fail!(e);
            return out;
        }
    };
    let e_eff = want.e.min(src.reference_end_ms());
    let want_ms = e_eff - want.s;
    if frames.is_empty() {
        // ffmpeg shows no frame that the edit list cuts into, so a span
        // within one frame shows nothing.
        let some_frame = if src.has_video {
            src.frames
                .iter()
                .any(|f| f.pts_ms >= want.s - 0.01 && f.pts_ms < e_eff - 0.01)
        } else {
            want_ms >= frame
        };
        if some_frame {
            fail!("no frame decodes");
        }
        return out;
    }
    let first = &frames[0];
    if src.has_video {
        // The source frame presented at `s`, and the source picture nearest
        // it among those equal to the cut's first picture.
        let at_s = src
            .frames
            .iter()
            .rposition(|f| f.pts_ms <= want.s + 1e-6)
            .unwrap_or(0);
        let expected_first = &src.frames[at_s];
        let matched = (0..src.frames.len())
            .filter(|&i| src.frames[i].md5 == first.md5)
            .min_by(|&a, &b| {
                let d = |i: usize| (src.frames[i].pts_ms - expected_first.pts_ms).abs();
                d(a).total_cmp(&d(b))
            });
        match matched {
            None => fail!("the first frame is no picture of the source"),
            Some(i) => {
                let m = &src.frames[i];
                let err = (m.pts_ms - expected_first.pts_ms).abs();
                out.first_frame = out.first_frame.max(err);
                // ffmpeg does not show a frame that the edit list cuts
                // into: when `s` falls inside a frame, the next one comes
                // first. Anything else is a different picture.
                let inside = want.s > expected_first.pts_ms + 0.01;
                if err > frame + MS_SLACK || !(i == at_s || (inside && i == at_s + 1)) {
                    fail!(format!(
                        "the first frame is the source's picture at {:.3} ms, \
                         expected the one at {:.3} ms{}",
                        m.pts_ms,
                        expected_first.pts_ms,
                        if inside { " (or the next)" } else { "" }
                    ));
                }
            }
        }
    } else {
        // Audio does not decode bit-exactly after a cut: its first frame is
        // judged by its packet's place on the timeline.
        let err = shifts
            .get(&cut_ref)
            .map_or(0.0, |sh| (sh - want.shift).abs());
        out.first_frame = out.first_frame.max(err);
    }
    // Presented duration: frames x frame duration (audio: decoded samples),
    // and last end - first start, against end - start.
    let by_count: f64 = if src.has_video {
        frames.len() as f64 * frame
    } else {
        frames.iter().map(|f| f.dur_ms).sum()
    };
    let last = frames.last().unwrap();
    let by_span = last.pts_ms + last.dur_ms - first.pts_ms;
    let err = (by_count - want_ms).abs().max((by_span - want_ms).abs());
    out.duration = out.duration.max(err);
    if err > frame + MS_SLACK {
        fail!(format!(
            "presents {by_count:.3} ms ({} frames, {by_span:.3} ms from first to last), \
             expected {want_ms:.3}",
            frames.len()
        ));
    }
    out
}

// ------------------------------------------------------------------ tests --

#[test]
fn cuts_decode_start_on_time_last_as_asked_and_keep_av_sync() {
    common::needs_ffmpeg!();
    let t0 = std::time::Instant::now();
    let srcs = sources();
    let mut jobs = Vec::new();
    for (i, src) in srcs.iter().enumerate() {
        for case in cases(src) {
            jobs.push((i, case));
        }
    }
    // The media duration the plans use agrees with ffprobe: at least the
    // decoded reference track, at most the last packet's end.
    let mut failures = Vec::new();
    for src in &srcs {
        let last_end = src
            .probe
            .packets
            .iter()
            .filter_map(|p| Some(p.pts_ms? + p.dur_ms?))
            .fold(f64::NEG_INFINITY, f64::max);
        let d = src.duration_ms as f64;
        if d < src.reference_end_ms() - src.reference_frame_ms() || d > last_end + MS_SLACK {
            failures.push(format!(
                "{}: duration {d} ms, but the reference track ends at {:.3} and the last \
                 packet at {last_end:.3}",
                src.entry.file,
                src.reference_end_ms()
            ));
        }
    }
    let results = par_map(jobs.clone(), |(i, case)| Ok(check_cut(&srcs[i], &case)));
    let mut rows: Vec<(usize, Outcome)> =
        (0..srcs.len()).map(|i| (i, Outcome::default())).collect();
    let mut counts = vec![0usize; srcs.len()];
    for ((i, case), r) in jobs.iter().zip(results) {
        counts[*i] += 1;
        match r {
            Err(e) => failures.push(format!(
                "{} {} '{}': {e}",
                srcs[*i].entry.file,
                case.mode.name(),
                case.query()
            )),
            Ok(o) => {
                let row = &mut rows[*i].1;
                row.first_frame = row.first_frame.max(o.first_frame);
                row.duration = row.duration.max(o.duration);
                row.av = row.av.max(o.av);
                row.timeline = row.timeline.max(o.timeline);
                row.failures.extend(o.failures.iter().cloned());
                failures.extend(o.failures);
            }
        }
    }
    eprintln!(
        "\n{:<24} {:>5} {:>12} {:>12} {:>10} {:>12} {:>6}",
        "file", "cuts", "first-frame", "duration", "A/V delta", "timeline", "fails"
    );
    eprintln!(
        "{:<24} {:>5} {:>12} {:>12} {:>10} {:>12} {:>6}",
        "", "", "max ms", "max ms", "max ms", "max ms", ""
    );
    for (i, row) in &rows {
        let s = &srcs[*i];
        eprintln!(
            "{:<24} {:>5} {:>12.3} {:>12.3} {:>10} {:>12.3} {:>6}",
            s.entry.file,
            counts[*i],
            row.first_frame,
            row.duration,
            if s.has_video && s.entry.has_audio {
                format!("{:.3}", row.av)
            } else {
                "-".to_string()
            },
            row.timeline,
            row.failures.len()
        );
    }
    eprintln!(
        "{} cuts of {} files checked in {:.1} s\n",
        jobs.len(),
        srcs.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_no_failures("MP4 cuts", &failures);
}

fn plan_q(media: &Media, o: &Options, q: &str) -> Result<Plan, Error> {
    media.plan(o, &query::parse(q.as_bytes(), o)?)
}

fn seconds_options(cut: CutMode) -> Options {
    Options {
        cut,
        start_unit: StartUnit::Seconds,
        ..Options::default()
    }
}

#[test]
fn no_query_and_raw_byte_ranges_send_the_stored_bytes_with_the_content_type() {
    common::needs_ffmpeg!();
    for e in mp4_manifest() {
        let media = Media::open(&e.path).unwrap();
        let bytes = std::fs::read(&e.path).unwrap();
        // Files stored moov-last are laid out moov-first unless `faststart`
        // is off (tests/mp4_faststart.rs).
        let stored = |o: Options| Options {
            faststart: false,
            ..o
        };
        let moov_first =
            matches!(media.index(), pseudostream::index::MediaIndex::Mp4(m) if m.moov_first);
        let mut options = vec![
            stored(Options::default()),
            stored(seconds_options(CutMode::Keyframe)),
        ];
        if moov_first {
            options.push(Options::default());
        }
        for o in options {
            for q in ["", "other=1"] {
                let plan = plan_q(&media, &o, q).unwrap();
                assert!(plan.whole_file, "{} '{q}': not the whole file", e.file);
                assert!(
                    body(&media, &plan) == bytes,
                    "{} '{q}': body differs",
                    e.file
                );
            }
            let kind = match e.path.extension().and_then(|x| x.to_str()) {
                Some("m4a") => "audio/mp4",
                Some("mov") => "video/quicktime",
                _ => "video/mp4",
            };
            let cut = plan_q(&media, &seconds_options(o.cut), "start=1").unwrap();
            for p in [&cut, &plan_q(&media, &o, "").unwrap()] {
                assert_eq!(p.content_type(), kind, "{}", e.file);
            }
            let plan = plan_q(&media, &o, "bstart=100&bend=199").unwrap();
            assert!(
                body(&media, &plan) == bytes[100..=199],
                "{} bstart=100&bend=199: not bytes 100..=199",
                e.file
            );
        }
    }
}

#[test]
fn media_edits_that_do_not_follow_on_refuse_cuts_and_say_why() {
    // skip_edit.mp4: the video shows 0-4 s, then 6 s on (mp4craft
    // skip-edit). One edit cannot say that; a cut is refused, naming the
    // entry, and the file is served whole. (split_edit.mp4, whose two edits
    // follow on, is cut in the matrix above like any other.)
    common::needs_ffmpeg!();
    let path = common::mp4::mp4_media_dir().join("skip_edit.mp4");
    let media = Media::open(&path).unwrap();
    let o = seconds_options(CutMode::Exact);
    match plan_q(&media, &o, "start=5") {
        Err(e) => {
            assert_eq!(e.http_status(), 415, "{e}");
            let message = e.to_string();
            assert!(message.contains("edit list entry 2 of 2"), "{message}");
        }
        Ok(_) => panic!("skip_edit.mp4 was cut"),
    }
    let as_stored = Options {
        faststart: false,
        ..o.clone()
    };
    let whole = plan_q(&media, &as_stored, "").unwrap();
    assert_eq!(body(&media, &whole), std::fs::read(&path).unwrap());
}

#[test]
fn errors_and_plumbing_of_mp4_requests() {
    common::needs_ffmpeg!();
    let e = mp4_manifest()
        .iter()
        .find(|e| e.file == "h264_aac.faststart.mp4")
        .or_else(|| mp4_manifest().iter().find(|e| e.has_video && e.has_audio))
        .expect("an MP4 with audio and video");
    let media = Media::open(&e.path).unwrap();
    let bytes = std::fs::read(&e.path).unwrap();
    let dur = media.info().duration_ms;
    let mut failures = Vec::new();
    let mut status = |o: &Options, q: &str, want: u16| match plan_q(&media, o, q) {
        Err(err) if err.http_status() == want => {}
        other => failures.push(format!(
            "{} '{q}' ({:?} unit): expected HTTP {want}, got {:?}",
            e.file,
            o.start_unit,
            other
                .map(|p| (p.start_ms, p.end_ms))
                .map_err(|e| e.to_string())
        )),
    };
    for mode in MODES {
        for o in [
            seconds_options(mode),
            Options {
                cut: mode,
                ..Options::default()
            },
        ] {
            status(&o, &format!("start={}", secs(dur)), 416);
            status(&o, &format!("start={}", secs(dur + 5000)), 416);
            status(
                &o,
                &format!("start={}&end={}", secs(dur), secs(dur + 10)),
                416,
            );
            status(&o, "start=5&end=5", 400);
            status(&o, "start=5&end=4.5", 400);
            status(&o, "fs=100", 400);
            status(&o, "ib=10&fs=100", 400);
            status(&o, "ib=10", 400);
            status(&o, "start=abc", 400);
            status(&o, "start=5&end=xyz", 400);
            status(&o, "start=-1", 400);
        }
    }

    let o = seconds_options(CutMode::Exact);
    // The same request twice: the same bytes and ETag.
    let a = plan_q(&media, &o, "start=5.5&end=8").unwrap();
    let again = Media::open(&e.path).unwrap();
    let b = plan_q(&again, &o, "start=5.5&end=8").unwrap();
    let body_a = body(&media, &a);
    if a.etag != b.etag || body_a != body(&again, &b) {
        failures.push("the same cut twice differs (bytes or ETag)".into());
    }
    // Different cuts: different ETags whenever the bytes differ.
    let cuts = [
        (CutMode::Exact, "start=5.5&end=8"),
        (CutMode::Exact, "start=5.5"),
        (CutMode::Exact, "start=5.6&end=8"),
        (CutMode::Exact, "start=2&end=8"),
        (CutMode::Keyframe, "start=5.5&end=8"),
        (CutMode::Keyframe, "start=2&end=8"),
        (CutMode::Exact, "end=8"),
    ];
    let planned: Vec<(String, Plan, Vec<u8>)> = cuts
        .iter()
        .map(|&(m, q)| {
            let p = plan_q(&media, &seconds_options(m), q).unwrap();
            let b = body(&media, &p);
            (format!("{} {q}", m.name()), p, b)
        })
        .collect();
    for (i, (qa, pa, ba)) in planned.iter().enumerate() {
        for (qb, pb, bb) in &planned[i + 1..] {
            if (ba == bb) != (pa.etag == pb.etag) {
                failures.push(format!(
                    "'{qa}' and '{qb}': bodies {} but ETags {}",
                    if ba == bb { "equal" } else { "differ" },
                    if pa.etag == pb.etag {
                        "equal"
                    } else {
                        "differ"
                    }
                ));
            }
        }
    }
    let as_stored = Options {
        faststart: false,
        ..o.clone()
    };
    let whole = plan_q(&media, &as_stored, "").unwrap();
    for (q, p, _) in &planned {
        if p.etag == whole.etag {
            failures.push(format!("'{q}' has the whole file's ETag"));
        }
    }
    if !whole.whole_file || body(&media, &whole) != bytes {
        failures.push("no query: not the file unchanged".into());
    }
    if a.content_type() != "video/mp4" {
        failures.push(format!("content type {}", a.content_type()));
    }
    // A Range over a cut: those bytes of the whole cut.
    match a.range(Some("bytes=1000-1999")) {
        RangeOutcome::Partial { first, len } => {
            let got = drain(&media, &a, first, len).unwrap();
            if (first, len) != (1000, 1000) || got != body_a[1000..2000] {
                failures.push(format!(
                    "Range bytes=1000-1999 of a cut: {first}+{len}, not bytes 1000..=1999 of the cut"
                ));
            }
        }
        other => failures.push(format!("Range bytes=1000-1999 of a cut: {other:?}")),
    }
    // A Range across the prefix and the file bytes.
    let p = a.prefix.len() as u64;
    let h = format!("bytes={}-{}", p - 10, p + 10);
    match a.range(Some(&h)) {
        RangeOutcome::Partial { first, len } => {
            let got = drain(&media, &a, first, len).unwrap();
            if got != body_a[(p - 10) as usize..=(p + 10) as usize] {
                failures.push(format!("Range {h} of a cut: not those bytes of the cut"));
            }
        }
        other => failures.push(format!("Range {h} of a cut: {other:?}")),
    }
    // Under the byte unit (the default), MP4 still reads seconds.
    for (q, ms) in [
        ("start=5.5&end=8", (5500, 8000)),
        ("start=5&end=7.25", (5000, 7250)),
    ] {
        let bytes_unit = Options::default();
        let secs_unit = seconds_options(CutMode::Exact);
        match (
            plan_q(&media, &bytes_unit, q),
            plan_q(&media, &secs_unit, q),
        ) {
            (Ok(x), Ok(y)) => {
                if (x.start_ms, x.end_ms) != ms
                    || x.etag != y.etag
                    || body(&media, &x) != body(&media, &y)
                {
                    failures.push(format!(
                        "'{q}' under the byte unit: {}..{} ms, not the seconds cut {}..{}",
                        x.start_ms, x.end_ms, y.start_ms, y.end_ms
                    ));
                }
            }
            (x, y) => failures.push(format!("'{q}': bytes unit {x:?}, seconds unit {y:?}")),
        }
    }
    assert_no_failures("MP4 request plumbing", &failures);
}
