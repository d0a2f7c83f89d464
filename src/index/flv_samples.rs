//! An FLV file in the neutral sample model: every audio and video tag's
//! media payload as a sample (AVC NAL units without FLV's 5-byte packet
//! header, raw AAC frames without the 2-byte one, MP3 frames without the
//! sound byte), with the codec configurations its sequence headers carry.
//! One walk over the tag headers; configuration tags are read whole.

use std::collections::HashSet;

use byteorder::{BigEndian, ByteOrder};

use super::flv::FlvIndex;
use super::flv_walk::{Step, TagWalker};
use crate::error::{Error, Result};
use crate::format::flv::tag::{TAG_AUDIO, TAG_HEADER_LEN, TAG_VIDEO};
use crate::format::nal::avcc_dimensions;
use crate::format::samples::{Sample, SampleEntry, SampleMovie, SampleTrack, TrackKind};
use crate::source::{read_full_at, ByteSource};

/// Video tags: ms.
const VIDEO_TIMESCALE: u32 = 1000;
/// Distinct configurations per track an MP4 sample description takes.
const MAX_ENTRIES: usize = 255;
const CODEC_AVC: u8 = 7;
const SOUND_MP3: u8 = 2;
const SOUND_AAC: u8 = 10;

fn video_codec_name(id: u8) -> String {
    match id {
        2 => "Sorenson H.263".into(),
        3 => "Screen Video".into(),
        4 => "On2 VP6".into(),
        5 => "On2 VP6 with alpha".into(),
        6 => "Screen Video 2".into(),
        12 => "HEVC (legacy FLV codec 12)".into(),
        n => format!("video codec {n}"),
    }
}

fn sound_format_name(id: u8) -> String {
    match id {
        0 | 3 => "linear PCM".into(),
        1 => "ADPCM".into(),
        4..=6 => "Nellymoser".into(),
        7 => "G.711 A-law".into(),
        8 => "G.711 mu-law".into(),
        11 => "Speex".into(),
        14 => "MP3 8 kHz".into(),
        n => format!("sound format {n}"),
    }
}

fn unsupported(what: String) -> Error {
    Error::UnsupportedFormat(format!(
        "{what} cannot be carried in an MP4 for browsers (H.264 with AAC or MP3 can)"
    ))
}

/// AAC AudioSpecificConfig: channels, output rate, samples per frame.
fn aac_config(asc: &[u8]) -> Option<(u16, u32, u32)> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let mut bits = Bits { b: asc, at: 0 };
    let object_type = |bits: &mut Bits| -> Option<u32> {
        match bits.take(5)? {
            31 => Some(32 + bits.take(6)?),
            t => Some(t),
        }
    };
    let rate = |bits: &mut Bits| -> Option<u32> {
        match bits.take(4)? {
            15 => bits.take(24),
            i => RATES.get(i as usize).copied(),
        }
    };
    let mut aot = object_type(&mut bits)?;
    let mut out_rate = rate(&mut bits)?;
    let channels = bits.take(4)?;
    let mut frame = 1024;
    if aot == 5 || aot == 29 {
        // Explicit SBR: the output rate follows, then the core's type.
        out_rate = rate(&mut bits)?;
        aot = object_type(&mut bits)?;
        frame = 2048;
    }
    if matches!(aot, 1..=4 | 6 | 7 | 17 | 19..=23) && bits.take(1)? == 1 {
        frame = frame / 1024 * 960;
    }
    let channels = match channels {
        1..=6 => channels,
        7 => 8,
        _ => 2,
    };
    Some((channels as u16, out_rate, frame))
}

/// MP3 frame header: channels, rate, samples per frame.
fn mp3_header(h: &[u8]) -> Option<(u16, u32, u32)> {
    if h.len() < 4 || h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let layer = (h[1] >> 1) & 3; // 1: III, 2: II, 3: I
    let rate_index = (h[2] >> 2) & 3;
    let base = [44100u32, 48000, 32000].get(rate_index as usize).copied()?;
    let rate = match version {
        3 => base,
        2 => base / 2,
        0 => base / 4,
        _ => return None,
    };
    let samples = match (layer, version) {
        (3, _) => 384,
        (2, _) | (1, 3) => 1152,
        (1, _) => 576,
        _ => return None,
    };
    let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
    Some((channels, rate, samples))
}

struct Bits<'a> {
    b: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.b.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }
}

/// A track as the walk fills it.
#[derive(Default)]
struct Filling {
    track: SampleTrack,
    /// Samples per frame (audio) and the decode time the next frame has
    /// when nothing is missing.
    frame: u32,
    next_dts: Option<u64>,
    current: Option<u8>,
}

impl Filling {
    fn entry(&mut self, entry: SampleEntry) -> Result<()> {
        let i = match self.track.entries.iter().position(|e| *e == entry) {
            Some(i) => i,
            None if self.track.entries.len() < MAX_ENTRIES => {
                self.track.entries.push(entry);
                self.track.entries.len() - 1
            }
            None => {
                return Err(unsupported(format!(
                    "a stream whose codec configuration changes more than {MAX_ENTRIES} times"
                )))
            }
        };
        self.current = Some(i as u8);
        Ok(())
    }

    fn push(&mut self, offset: u64, size: u32, dts: u64, cts: i32, sync: bool) {
        let Some(entry) = self.current else { return };
        if size == 0 {
            return;
        }
        // Decode times never go back in an MP4.
        let floor = self.track.samples.last().map_or(0, |s| s.dts);
        self.track.samples.push(Sample {
            offset,
            dts: dts.max(floor),
            size,
            cts,
            sync,
            entry,
        });
    }

    /// Audio: decode times from the frame length, unless the stamps say a
    /// frame went missing (or came twice) by more than a frame.
    fn audio_dts(&mut self, ts_ms: u64) -> u64 {
        let rate = u64::from(self.track.timescale);
        let stamped = ts_ms * rate / 1000;
        let frame = u64::from(self.frame);
        let dts = match self.next_dts {
            Some(next) if next.abs_diff(stamped) <= frame + rate / 1000 => next,
            _ => stamped,
        };
        self.next_dts = Some(dts + frame);
        dts
    }

    fn finish(mut self, kind: TrackKind) -> Option<SampleTrack> {
        if self.track.samples.is_empty() {
            return None;
        }
        let last = self.track.samples.last().map_or(0, |s| s.dts);
        self.track.end_dts = match kind {
            TrackKind::Audio => last + u64::from(self.frame),
            // The last frame lasts as long as the one before it.
            _ => {
                let n = self.track.samples.len();
                let before = if n > 1 {
                    last - self.track.samples[n - 2].dts
                } else {
                    u64::from(VIDEO_TIMESCALE) / 25
                };
                last + before.max(1)
            }
        };
        self.track.kind = Some(kind);
        Some(self.track)
    }
}

/// The FLV's audio and video tags as sample tracks (video first). A codec an
/// MP4 for browsers cannot carry is an `UnsupportedFormat` naming it.
pub fn sample_movie(index: &FlvIndex, src: &dyn ByteSource) -> Result<SampleMovie> {
    let mut video = Filling::default();
    video.track.timescale = VIDEO_TIMESCALE;
    let mut audio = Filling::default();
    let checked_keyframes: Option<HashSet<u64>> = (index.info.keyframe_flags_overruled > 0)
        .then(|| index.keyframes.iter().map(|k| k.offset).collect());
    let mut failure: Option<Error> = None;
    let mut walker = TagWalker::new(src);
    walker.walk(index.data_start, |pos, h, peek| {
        let outcome = (|| -> Result<()> {
            let body_at = pos + TAG_HEADER_LEN as u64;
            let ts = u64::from(h.timestamp);
            match h.tag_type {
                TAG_VIDEO if !peek.is_empty() => {
                    let first = peek[0];
                    let codec = first & 0x0f;
                    if first & 0x80 != 0 || codec != CODEC_AVC {
                        if first >> 4 == 5 {
                            return Ok(()); // video info/command frame
                        }
                        return Err(unsupported(if first & 0x80 != 0 {
                            "enhanced FLV video".to_string()
                        } else {
                            video_codec_name(codec)
                        }));
                    }
                    if peek.len() < 5 || h.data_size < 5 {
                        return Ok(());
                    }
                    match peek[1] {
                        0 => {
                            let body = read_body(src, body_at, h.data_size)?;
                            let record = body[5..].to_vec();
                            let (width, height) = avcc_dimensions(&record)
                                .or_else(|| Some((index.info.width?, index.info.height?)))
                                .unwrap_or((0, 0));
                            video.entry(SampleEntry::Avc {
                                record,
                                width: width.min(65535) as u16,
                                height: height.min(65535) as u16,
                            })?;
                        }
                        1 => {
                            let cts = BigEndian::read_i24(&peek[2..5]);
                            let sync = first >> 4 == 1
                                && checked_keyframes
                                    .as_ref()
                                    .map_or(true, |k| k.contains(&pos));
                            video.push(body_at + 5, h.data_size - 5, ts, cts, sync);
                        }
                        _ => {}
                    }
                }
                TAG_AUDIO if !peek.is_empty() => {
                    let format = peek[0] >> 4;
                    match format {
                        SOUND_AAC if peek.len() >= 2 && h.data_size >= 2 => {
                            if peek[1] == 0 {
                                let body = read_body(src, body_at, h.data_size)?;
                                let config = body[2..].to_vec();
                                let (channels, rate, frame) =
                                    aac_config(&config).ok_or_else(|| {
                                        Error::malformed(format!(
                                            "the AAC configuration at byte {pos} does not parse"
                                        ))
                                    })?;
                                audio.entry(SampleEntry::Aac {
                                    config,
                                    channels,
                                    rate,
                                })?;
                                set_audio_clock(&mut audio, rate, frame)?;
                            } else {
                                let dts = audio.audio_dts(ts);
                                audio.push(body_at + 2, h.data_size - 2, dts, 0, true);
                            }
                        }
                        SOUND_MP3 if h.data_size > 1 => {
                            if audio.current.is_none() {
                                let mut head = [0u8; 4];
                                read_full_at(src, body_at + 1, &mut head)?;
                                let (channels, rate, frame) =
                                    mp3_header(&head).ok_or_else(|| {
                                        Error::malformed(format!(
                                            "the MP3 tag at byte {pos} starts with no frame header"
                                        ))
                                    })?;
                                audio.entry(SampleEntry::Mp3 { channels, rate })?;
                                set_audio_clock(&mut audio, rate, frame)?;
                            }
                            let dts = audio.audio_dts(ts);
                            audio.push(body_at + 1, h.data_size - 1, dts, 0, true);
                        }
                        SOUND_AAC | SOUND_MP3 => {}
                        other => return Err(unsupported(sound_format_name(other))),
                    }
                }
                _ => {}
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => Step::Go,
            Err(e) => {
                failure = Some(e);
                Step::Stop
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let tracks: Vec<SampleTrack> = [
        video.finish(TrackKind::Video),
        audio.finish(TrackKind::Audio),
    ]
    .into_iter()
    .flatten()
    .collect();
    if tracks.is_empty() {
        return Err(Error::UnsupportedFormat(
            "the FLV holds no H.264, AAC or MP3 sample to put in an MP4".into(),
        ));
    }
    Ok(SampleMovie { tracks })
}

/// The audio track's timescale is its sample rate, set by its first
/// configuration; a later one at another rate cannot share the track.
fn set_audio_clock(audio: &mut Filling, rate: u32, frame: u32) -> Result<()> {
    if rate == 0 {
        return Err(Error::malformed("audio at a sample rate of 0"));
    }
    match audio.track.timescale {
        0 => {
            audio.track.timescale = rate;
            audio.frame = frame;
        }
        r if r != rate => {
            return Err(unsupported(format!(
                "audio whose sample rate changes mid-file ({r} Hz, then {rate} Hz)"
            )))
        }
        _ => {}
    }
    Ok(())
}

fn read_body(src: &dyn ByteSource, at: u64, len: u32) -> Result<Vec<u8>> {
    let mut body = vec![0u8; len as usize];
    if read_full_at(src, at, &mut body)? != body.len() {
        return Err(Error::SourceChanged(
            "file shrank while reading a tag".into(),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::flv::tag::{write_stream_header, write_tag};
    use crate::index::flv::FlvIndex;
    use crate::source::MemorySource;

    /// An FLV of a few tags: `video` bodies at 40 ms apart, `audio` ones
    /// at 23 ms.
    fn flv(video: &[&[u8]], audio: &[&[u8]]) -> MemorySource {
        let mut out = Vec::new();
        write_stream_header(&mut out, !audio.is_empty(), !video.is_empty());
        for (i, body) in video.iter().enumerate() {
            write_tag(&mut out, TAG_VIDEO, i as u32 * 40, body);
        }
        for (i, body) in audio.iter().enumerate() {
            write_tag(&mut out, TAG_AUDIO, i as u32 * 23, body);
        }
        MemorySource::new(out)
    }

    fn refusal(src: &MemorySource) -> String {
        let index = FlvIndex::build(src).unwrap();
        match sample_movie(&index, src) {
            Err(e @ Error::UnsupportedFormat(_)) => e.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn codecs_an_mp4_for_browsers_cannot_carry_are_named() {
        // VP6 key and inter frames (CodecID 4), Sorenson H.263 (2).
        let vp6 = flv(&[&[0x14, 0, 0, 0], &[0x24, 0, 0, 0]], &[]);
        assert!(refusal(&vp6).contains("On2 VP6"), "{}", refusal(&vp6));
        let h263 = flv(&[&[0x12, 0, 0, 0]], &[]);
        assert!(refusal(&h263).contains("Sorenson H.263"));
        // Nellymoser (6) and Speex (11) audio.
        let nelly = flv(&[], &[&[0x62, 1, 2, 3]]);
        assert!(refusal(&nelly).contains("Nellymoser"));
        let speex = flv(&[], &[&[0xb2, 1, 2, 3]]);
        assert!(refusal(&speex).contains("Speex"));
    }

    #[test]
    fn audio_configurations() {
        // AAC LC, 44.1 kHz, stereo; 48 kHz mono; HE-AAC (explicit SBR).
        assert_eq!(aac_config(&[0x12, 0x10]), Some((2, 44100, 1024)));
        assert_eq!(aac_config(&[0x11, 0x88]), Some((1, 48000, 1024)));
        assert_eq!(
            aac_config(&[0x2b, 0x92, 0x08, 0x00]),
            Some((2, 44100, 2048))
        );
        // MPEG-1 Layer III 44.1 kHz joint stereo; MPEG-2 Layer III 22.05 kHz mono.
        assert_eq!(
            mp3_header(&[0xff, 0xfb, 0x90, 0x44]),
            Some((2, 44100, 1152))
        );
        assert_eq!(mp3_header(&[0xff, 0xf3, 0x90, 0xc4]), Some((1, 22050, 576)));
        assert_eq!(mp3_header(&[0x00, 0xfb, 0x90, 0x44]), None);
    }
}
