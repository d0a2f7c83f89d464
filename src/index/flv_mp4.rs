//! A file's MP4 view, cached apart from its own index: for an FLV, its
//! samples in the neutral model and the progressive MP4 of the whole file
//! (its `moov` built once per file version); for a file that is MP4
//! already, nothing more than its index.

use std::sync::Arc;

use super::{flv_samples, MediaIndex, MediaInfo};
use crate::error::Result;
use crate::fnv::digest;
use crate::format::mp4::progressive::{self, MdatLayout, TrackPart};
use crate::format::samples::{SampleMovie, TrackKind};
use crate::format::Format;
use crate::source::ByteSource;

/// An FLV as MP4.
#[derive(Debug)]
pub struct FlvAsMp4 {
    pub movie: Arc<SampleMovie>,
    /// The whole file as MP4: its head, shared by every response...
    pub head: Arc<[u8]>,
    pub head_digest: u64,
    /// ...and where each sample's bytes go in its `mdat` (part `i` is
    /// track `i` of the movie).
    pub mdat: Arc<MdatLayout>,
    pub mdat_digest: u64,
    pub duration_ms: u64,
    /// The first and last file bytes its samples take.
    pub span: (u64, u64),
}

/// What `MediaIndex::Mp4View` holds.
#[derive(Debug)]
pub struct Mp4ViewIndex {
    /// The file's own index.
    pub base: Arc<MediaIndex>,
    /// Its MP4 made from its samples (None: the file is MP4 already).
    pub flv: Option<FlvAsMp4>,
    pub info: MediaInfo,
}

impl Mp4ViewIndex {
    /// The MP4 view of the file `base` indexes.
    pub fn build(base: Arc<MediaIndex>, src: &dyn ByteSource) -> Result<Mp4ViewIndex> {
        let MediaIndex::Flv(flv_index) = &*base else {
            let info = base.info().clone();
            return Ok(Mp4ViewIndex {
                base,
                flv: None,
                info,
            });
        };
        let movie = flv_samples::sample_movie(flv_index, src)?;
        let parts: Vec<TrackPart> = movie.tracks.iter().map(TrackPart::whole).collect();
        let whole = progressive::write(&parts, None)?;
        let mut info = flv_index.info.clone();
        info.format = Format::Mp4;
        info.duration_ms = whole.duration_ms;
        info.has_video = movie
            .tracks
            .iter()
            .any(|t| t.kind == Some(TrackKind::Video));
        info.has_audio = movie
            .tracks
            .iter()
            .any(|t| t.kind == Some(TrackKind::Audio));
        let head: Arc<[u8]> = whole.head.into();
        Ok(Mp4ViewIndex {
            info,
            flv: Some(FlvAsMp4 {
                head_digest: digest(&head),
                head,
                mdat_digest: whole.mdat.digest(|i| &movie.tracks[i]),
                mdat: Arc::new(whole.mdat),
                duration_ms: whole.duration_ms,
                span: span(&movie),
                movie: Arc::new(movie),
            }),
            base,
        })
    }

    /// Heap bytes of the view itself (the base index is counted apart).
    pub fn cost_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.flv.as_ref().map_or(0, |f| {
                f.movie.cost_bytes() + f.head.len() + f.mdat.cost_bytes()
            })
    }

    pub fn content_type(&self) -> &'static str {
        match &self.flv {
            Some(_) if self.info.has_video => "video/mp4",
            Some(_) => "audio/mp4",
            None => self.base.content_type(),
        }
    }
}

fn span(movie: &SampleMovie) -> (u64, u64) {
    let samples = movie.tracks.iter().flat_map(|t| t.samples.iter());
    let from = samples.clone().map(|s| s.offset).min().unwrap_or(0);
    let to = samples
        .map(|s| s.offset + u64::from(s.size))
        .max()
        .unwrap_or(0);
    (from, to)
}
