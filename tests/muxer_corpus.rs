//! Files that other muxers wrote (scripts/make-muxer-corpus.sh: GStreamer's
//! flvmux, qtmux and mp4mux after h264parse, the x264 CLI's FLV writer,
//! yamdi, flvmeta, AtomicParsley, ffmpeg as the control), judged by ffmpeg.
//!
//! GStreamer flags every H.264 I picture as a keyframe, IDR or not; the
//! corpus has a non-IDR I picture in the middle of every GOP. The library
//! must not take those for seek points:
//!
//! - its keyframes are exactly the pictures ffmpeg's decoder calls key
//!   (IDR), and `keyframe_flags_overruled` counts the flags it set aside;
//! - every seek (FLV, `start` in seconds) and cut (MP4, both modes) decodes
//!   without a word from `ffmpeg -v error`, shows first the source's picture
//!   it planned (the last key picture at or before the start; exact MP4
//!   cuts: the first picture at or after it), compared by MD5, and then
//!   every later picture of the source;
//! - each audio packet of the response sits at its source time, shifted as
//!   the video is (A/V offsets kept);
//! - starts past the end get 416, bad ones 400, and a start where only the
//!   audio goes on (an MP4 whose audio outlasts its video) gets that audio.
//!
//! Then the media files other projects ship as test fixtures in their PyPI
//! packages (scripts/fetch-fixture-corpus.sh): each opens or is refused
//! with 415, and every start into those that open decodes.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::mp4::{frame_md5_filtered, FrameSum};
use common::{
    assert_no_failures, body, decode_clean, make_media, par_map, probe, root, secs, TempFile,
};
use pseudostream::{query, CutMode, Media, Options, StartUnit};

/// Pictures are compared at the corpus's smallest size: a stream whose
/// size changes (resolution-change.flv) decodes to two.
const COMPARED_AT: &str = "scale=320:180:flags=neighbor";

fn pictures(path: &std::path::Path) -> Result<Vec<FrameSum>, String> {
    frame_md5_filtered(path, "v:0", COMPARED_AT)
}

/// One line of the corpus manifest.
#[derive(Clone, Debug)]
struct CorpusFile {
    file: String,
    muxer: String,
    /// Non-IDR pictures the muxer flagged as keyframes.
    flagged_non_idr: usize,
    has_audio: bool,
    /// A stream that refreshes gradually (periodic intra refresh): its
    /// flagged recovery points are its only random access points.
    gradual: bool,
    path: PathBuf,
}

impl CorpusFile {
    fn is_flv(&self) -> bool {
        self.file.ends_with(".flv")
    }

    /// Fragmented MP4 is cut at fragments, in either mode.
    fn is_fragmented(&self) -> bool {
        self.muxer.ends_with("fragmented")
    }

    /// Whether a cut presents from the requested time (an edit list), not
    /// from the key picture before it.
    fn cuts_exactly(&self, cut: CutMode) -> bool {
        cut == CutMode::Exact && !self.is_flv() && !self.is_fragmented()
    }
}

fn corpus() -> &'static [CorpusFile] {
    static LIST: OnceLock<Vec<CorpusFile>> = OnceLock::new();
    LIST.get_or_init(|| {
        let dir = root().join("target").join("muxer-corpus");
        make_media("make-muxer-corpus.sh", &[], &dir);
        let text = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                CorpusFile {
                    file: f[0].to_string(),
                    muxer: f[1].to_string(),
                    flagged_non_idr: f[2].parse().unwrap(),
                    has_audio: f[3] == "1",
                    gradual: f[4] == "gradual",
                    path: dir.join(f[0]),
                }
            })
            .collect()
    })
}

/// Returns from the calling test when the corpus's tools are missing
/// (`common::have_tools`).
macro_rules! needs_muxers {
    () => {
        if !common::have_tools(&["ffmpeg", "ffprobe"], "scripts/setup-deps.sh")
            || !common::have_tools(&["gst-inspect-1.0", "x264"], "scripts/setup-deps.sh")
        {
            return;
        }
    };
}

/// Presentation times (ms) of the pictures ffmpeg's decoder calls key: for
/// H.264, IDR pictures and those after a recovery point.
fn key_picture_times(path: &std::path::Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("frame=key_frame,best_effort_timestamp_time")
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // key_frame,time[,side data of the frame]
            let mut fields = l.split(',');
            let key = fields.next()?;
            let t = fields.next()?.trim().parse::<f64>().ok()?;
            (key == "1").then_some(t * 1000.0)
        })
        .collect()
}

/// Times (ms) of the video packets the file flags as keys: as FLV seeks
/// use them, decode times in an FLV, presentation times in an MP4.
fn flagged_times(file: &CorpusFile) -> Vec<f64> {
    probe(&file.path)
        .unwrap()
        .packets
        .iter()
        .filter(|p| p.video && p.key)
        .filter_map(|p| if file.is_flv() { p.dts_ms } else { p.pts_ms })
        .map(|t| t as f64)
        .collect()
}

fn options(file: &CorpusFile, cut: CutMode) -> Options {
    Options {
        cut,
        start_unit: if file.is_flv() {
            StartUnit::Seconds
        } else {
            Options::default().start_unit
        },
        ..Options::default()
    }
}

/// The modes a file is cut in: FLV seeks have one.
fn modes(file: &CorpusFile) -> &'static [CutMode] {
    if file.is_flv() {
        &[CutMode::Keyframe]
    } else {
        &[CutMode::Exact, CutMode::Keyframe]
    }
}

#[test]
fn flags_on_pictures_a_decoder_cannot_start_from_are_overruled() {
    needs_muxers!();
    let mut failures = Vec::new();
    for f in corpus() {
        let media = Media::open(&f.path).unwrap();
        let info = media.info();
        // ffmpeg's decoder calls only IDR pictures key in a stream that
        // refreshes gradually; there the file's own flags are the points.
        let keys = if f.gradual {
            flagged_times(f)
        } else {
            key_picture_times(&f.path)
        };
        let ours: Vec<u64> = media.keyframes().iter().map(|k| k.time_ms).collect();
        eprintln!(
            "{} ({}): {} keyframes, {} flags overruled; ffmpeg's key pictures at {:?} ms",
            f.file, f.muxer, info.keyframe_count, info.keyframe_flags_overruled, keys
        );
        // The keyframe list a virtual head gives flv.js and mpegts.js; a
        // file whose own list names pictures that are no seek points is
        // served with it.
        if let Some(head) = media.index().virtual_head() {
            if head.listed != info.keyframe_count {
                failures.push(format!(
                    "{}: the virtual head lists {} keyframes of {}",
                    f.file, head.listed, info.keyframe_count
                ));
            }
            let o = Options::default();
            let plain = media.plan(&o, &query::parse(b"", &o).unwrap()).unwrap();
            if f.flagged_non_idr > 0 && !body(&media, &plain).starts_with(&head.bytes) {
                failures.push(format!("{}: served without the virtual head", f.file));
            }
        }
        if info.keyframe_flags_overruled != f.flagged_non_idr {
            failures.push(format!(
                "{}: {} keyframe flags overruled, the muxer set {} on non-IDR pictures",
                f.file, info.keyframe_flags_overruled, f.flagged_non_idr
            ));
        }
        // FLV keyframe times are the tags' decode times, which come before
        // their presentation by the B-frame delay (80 ms here); a flag
        // left on a non-IDR picture would be a second away.
        let same = ours.len() == keys.len()
            && ours
                .iter()
                .zip(&keys)
                .all(|(&a, &b)| (a as f64 - b).abs() <= B_FRAME_DELAY_MS);
        if !same {
            failures.push(format!(
                "{}: keyframes at {ours:?} ms, ffmpeg decodes key pictures at {keys:?} ms",
                f.file
            ));
        }
    }
    assert_no_failures("muxer corpus keyframes", &failures);
}

/// The corpus's B-frame delay, and a little.
const B_FRAME_DELAY_MS: f64 = 100.0;

/// One seek or cut to check.
struct Job {
    file: &'static CorpusFile,
    cut: CutMode,
    start_ms: u64,
    /// The source's decoded pictures and key pictures.
    frames: &'static [FrameSum],
    keys: &'static [f64],
    /// The source's audio packet times, ms.
    audio_ms: &'static [i64],
}

impl Job {
    fn label(&self) -> String {
        format!(
            "{} start={} ({:?})",
            self.file.file,
            secs(self.start_ms),
            self.cut
        )
    }

    /// The source picture the response must show first: the last key
    /// picture at or before the start, or for an exact MP4 cut the first
    /// picture at or after it. None: no picture is left at the start.
    fn planned_picture(&self) -> Option<&FrameSum> {
        let t = self.start_ms as f64;
        let video_end = self.frames.last().map_or(0.0, |f| f.pts_ms + f.dur_ms);
        if t >= video_end {
            return None;
        }
        if self.file.cuts_exactly(self.cut) {
            return self.frames.iter().find(|f| f.pts_ms >= t - 0.5);
        }
        let key = self.keys.iter().rev().find(|&&k| k <= t + 0.5)?;
        self.frames.iter().find(|f| (f.pts_ms - key).abs() <= 0.5)
    }

    fn check(&self) -> Result<(), String> {
        let what = self.label();
        let media = Media::open(&self.file.path).map_err(|e| format!("{what}: open: {e}"))?;
        let o = options(self.file, self.cut);
        let q = format!("start={}", secs(self.start_ms));
        let request = query::parse(q.as_bytes(), &o).map_err(|e| format!("{what}: {e}"))?;
        let plan = media
            .plan(&o, &request)
            .map_err(|e| format!("{what}: status {}: {e}", e.http_status()))?;
        let out = TempFile::with_bytes(&self.file.file, &body(&media, &plan));
        decode_clean(out.path()).map_err(|e| format!("{what}: {e}"))?;
        let cut = pictures(out.path()).unwrap_or_default();
        let Some(planned) = self.planned_picture() else {
            // Only audio goes on past the video's end.
            return if cut.is_empty() && self.file.has_audio {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {} pictures past the video's end",
                    cut.len()
                ))
            };
        };
        let first = cut
            .first()
            .ok_or_else(|| format!("{what}: no picture decoded"))?;
        if first.md5 != planned.md5 {
            let shown = self.frames.iter().find(|f| f.md5 == first.md5);
            return Err(format!(
                "{what}: first picture is the source's at {:?} ms, planned {} ms",
                shown.map(|f| f.pts_ms),
                planned.pts_ms
            ));
        }
        let later = self
            .frames
            .iter()
            .filter(|f| f.pts_ms >= planned.pts_ms)
            .count();
        if cut.len() != later {
            return Err(format!(
                "{what}: {} pictures decoded, the source has {later} from {} ms",
                cut.len(),
                planned.pts_ms
            ));
        }
        // The response's time t is the source's t + shift, for every track:
        // the audio's exactly. An exact cut starts its timeline at the
        // requested time and shows its first picture up to a frame later.
        let video_shift = planned.pts_ms - first.pts_ms;
        let shift = if self.file.cuts_exactly(self.cut) {
            let exact = self.start_ms as f64;
            if (video_shift - exact).abs() > first.dur_ms + 1.0 {
                return Err(format!(
                    "{what}: the video is shifted by {video_shift} ms, the cut's timeline by {exact}"
                ));
            }
            exact
        } else {
            video_shift
        };
        let packets = probe(out.path())?.packets;
        for p in packets.iter().filter(|p| !p.video) {
            let Some(t) = p.pts_ms else { continue };
            let source = t as f64 + shift;
            let nearest = self
                .audio_ms
                .iter()
                .map(|&a| (a as f64 - source).abs())
                .fold(f64::MAX, f64::min);
            if nearest > 2.0 {
                return Err(format!(
                    "{what}: audio packet at {t} ms maps to {source:.1} ms of the source, \
                     {nearest:.1} ms from any of its audio packets"
                ));
            }
        }
        if self.file.has_audio && !packets.iter().any(|p| !p.video) {
            return Err(format!("{what}: no audio"));
        }
        Ok(())
    }
}

#[test]
fn seeks_and_cuts_decode_from_the_planned_picture_with_av_in_step() {
    needs_muxers!();
    let mut jobs = Vec::new();
    for f in corpus().iter().filter(|f| !f.gradual) {
        let frames: &'static [FrameSum] = pictures(&f.path).unwrap().leak();
        let keys: &'static [f64] = key_picture_times(&f.path).leak();
        let audio_ms: &'static [i64] = probe(&f.path)
            .unwrap()
            .packets
            .iter()
            .filter(|p| !p.video)
            .filter_map(|p| p.pts_ms)
            .collect::<Vec<_>>()
            .leak();
        let duration_ms = Media::open(&f.path).unwrap().info().duration_ms;
        // Half a second after every whole second: after each non-IDR I
        // picture (1 s, 3 s, ...) and each IDR one (0 s, 2 s, ...).
        for start_ms in (500..duration_ms).step_by(1000) {
            for &cut in modes(f) {
                jobs.push(Job {
                    file: f,
                    cut,
                    start_ms,
                    frames,
                    keys,
                    audio_ms,
                });
            }
        }
    }
    let n = jobs.len();
    let failures: Vec<String> = par_map(jobs, |j| j.check())
        .into_iter()
        .filter_map(Result::err)
        .collect();
    eprintln!(
        "muxer corpus: {n} seeks and cuts over {} files",
        corpus().len()
    );
    assert_no_failures("muxer corpus seeks", &failures);
}

#[test]
fn gradual_refresh_points_stay_seek_points() {
    // Refusing them would send every seek to the first picture. A decoder
    // starting there shows exact pictures after the refresh period (21
    // frames here; ffmpeg shows its first some 36 frames in) and may
    // complain before; it must not fail.
    needs_muxers!();
    let mut failures = Vec::new();
    for f in corpus().iter().filter(|f| f.gradual) {
        let media = Media::open(&f.path).unwrap();
        let flagged = flagged_times(f);
        for start_ms in [2500u64, 5500, 9500] {
            for &cut in modes(f) {
                let o = options(f, cut);
                let q = format!("start={}", secs(start_ms));
                let plan = media
                    .plan(&o, &query::parse(q.as_bytes(), &o).unwrap())
                    .unwrap();
                let out = TempFile::with_bytes(&f.file, &body(&media, &plan));
                let decoded = Command::new("ffmpeg")
                    .args(["-nostdin", "-v", "quiet", "-i"])
                    .arg(out.path())
                    .args(["-map", "0:v", "-f", "framemd5", "-"])
                    .output()
                    .unwrap();
                let pictures = String::from_utf8_lossy(&decoded.stdout)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .count();
                // The point at or before the start, not the first picture.
                let point = flagged
                    .iter()
                    .rev()
                    .find(|&&t| t <= start_ms as f64 + B_FRAME_DELAY_MS)
                    .copied()
                    .unwrap_or(0.0);
                let after_point = ((12_000.0 - point) / 40.0) as usize;
                // Exact pictures within a GOP's length (50 frames).
                if !decoded.status.success() || pictures + 50 < after_point || point < 1000.0 {
                    failures.push(format!(
                        "{} {q} ({cut:?}): ffmpeg exit {:?}, {pictures} pictures, \
                         {after_point} from the refresh point at {point} ms",
                        f.file,
                        decoded.status.code()
                    ));
                }
            }
        }
    }
    assert_no_failures("gradual refresh seeks", &failures);
}

#[test]
fn statuses_for_other_muxers_files() {
    needs_muxers!();
    let mut failures = Vec::new();
    for f in corpus() {
        let media = Media::open(&f.path).unwrap();
        let past_end = media.info().duration_ms + 2000;
        for (q, want) in [
            (format!("start={}", secs(past_end)), 416),
            ("start=x".to_string(), 400),
        ] {
            let o = options(f, CutMode::Exact);
            let status = match query::parse(q.as_bytes(), &o) {
                Err(e) => e.http_status(),
                Ok(r) => media.plan(&o, &r).map_or_else(|e| e.http_status(), |_| 200),
            };
            if status != want {
                failures.push(format!("{} ?{q}: status {status}, want {want}", f.file));
            }
        }
    }
    assert_no_failures("muxer corpus statuses", &failures);
}

/// Fixture files from package registries, with the package they came from;
/// None when they cannot be fetched outside `scripts/test.sh` (offline).
fn fixtures() -> Option<Vec<(PathBuf, String)>> {
    let dir = root().join("target").join("fixture-corpus");
    let made = std::panic::catch_unwind(|| make_media("fetch-fixture-corpus.sh", &[], &dir));
    if made.is_err() {
        if std::env::var_os("PSEUDOSTREAM_TEST_ALL").is_some_and(|v| v == "1") {
            panic!("scripts/fetch-fixture-corpus.sh failed");
        }
        eprintln!("skipped: the PyPI registry cannot be reached (scripts/fetch-fixture-corpus.sh)");
        return None;
    }
    let text = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (file, package) = l.split_once(' ').unwrap();
                (dir.join(file), package.to_string())
            })
            .collect(),
    )
}

#[test]
fn fixtures_from_package_registries_open_or_are_refused_and_cuts_decode() {
    needs_muxers!();
    let Some(files) = fixtures() else { return };
    let mut failures = Vec::new();
    let (mut opened, mut refused, mut cuts) = (0, 0, 0);
    for (path, package) in &files {
        let name = format!(
            "{} ({package})",
            path.file_name().unwrap().to_string_lossy()
        );
        let media = match Media::open(path) {
            Ok(m) => m,
            Err(e) if e.http_status() == 415 => {
                eprintln!("{name}: refused: {e}");
                refused += 1;
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}: open: status {}: {e}", e.http_status()));
                continue;
            }
        };
        opened += 1;
        let flv = path.extension().is_some_and(|x| x == "flv");
        let d = media.info().duration_ms;
        let mut starts: Vec<u64> = vec![0, d / 4, d / 2, d * 3 / 4, d.saturating_sub(30)];
        starts.dedup();
        let modes: &[CutMode] = if flv {
            &[CutMode::Keyframe]
        } else {
            &[CutMode::Exact, CutMode::Keyframe]
        };
        for &cut in modes {
            let o = Options {
                cut,
                start_unit: StartUnit::Seconds,
                ..Options::default()
            };
            for &start in &starts {
                let q = format!("start={}", secs(start));
                let planned = query::parse(q.as_bytes(), &o).and_then(|r| media.plan(&o, &r));
                let plan = match planned {
                    Ok(p) => p,
                    // Documented (docs/mp4.md): fragments that address their
                    // data by absolute offsets are served from their start
                    // only (mutagen's no-tags.3g2).
                    Err(e)
                        if e.http_status() == 415
                            && e.to_string().contains("absolute file offsets") =>
                    {
                        eprintln!("{name} ?{q} ({cut:?}): refused: {e}");
                        continue;
                    }
                    Err(e) => {
                        failures.push(format!(
                            "{name} ?{q} ({cut:?}): status {}: {e}",
                            e.http_status()
                        ));
                        continue;
                    }
                };
                cuts += 1;
                let out = TempFile::with_bytes("fixture", &body(&media, &plan));
                if let Err(e) = decode_clean(out.path()) {
                    failures.push(format!("{name} ?{q} ({cut:?}): {e}"));
                }
            }
            let q = format!("start={}", secs(d + 1000));
            let status = query::parse(q.as_bytes(), &o)
                .and_then(|r| media.plan(&o, &r))
                .map_or_else(|e| e.http_status(), |_| 200);
            if status != 416 {
                failures.push(format!("{name} ?{q}: status {status}, want 416"));
            }
        }
    }
    eprintln!(
        "fixtures: {} files: {opened} open, {refused} refused with 415; {cuts} cuts decoded",
        files.len()
    );
    assert_no_failures("registry fixtures", &failures);
}
