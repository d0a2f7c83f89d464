//! An opened media file: its source and its (cached) index. Immutable and
//! shareable across threads.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::cache::IndexCache;
use crate::error::Result;
use crate::index::flv_mp4::Mp4ViewIndex;
use crate::index::{Keyframe, MediaIndex, MediaInfo};
use crate::plan::{self, Options, Plan, Request};
use crate::source::{ByteSource, FileSource, FileStat, SourceIdentity};
use crate::stream::Stream;

/// A media file ready to plan requests against.
#[derive(Clone)]
pub struct Media {
    source: Arc<dyn ByteSource>,
    index: Arc<MediaIndex>,
}

impl Media {
    /// Opens a file, reusing the process-wide index cache.
    pub fn open(path: impl AsRef<Path>) -> Result<Media> {
        Media::from_source(Arc::new(FileSource::open(path.as_ref())?))
    }

    /// Opens the file behind a descriptor the caller keeps open (it is
    /// duplicated), reusing the process-wide index cache.
    pub fn open_fd(fd: std::os::unix::io::RawFd) -> Result<Media> {
        Media::from_source(Arc::new(FileSource::from_fd(fd)?))
    }

    /// Opens the file behind a descriptor the caller lends, as its `fstat`
    /// describes it (no system call; see `FileSource::borrow_fd`).
    ///
    /// # Safety
    /// As `FileSource::borrow_fd`: `fd` stays open on that file while the
    /// media, and every stream made from it, lives.
    pub unsafe fn open_borrowed_fd(fd: std::os::unix::io::RawFd, stat: FileStat) -> Result<Media> {
        // SAFETY: forwarded to our caller.
        Media::from_source(Arc::new(unsafe { FileSource::borrow_fd(fd, stat) }))
    }

    /// Opens any byte source through the process-wide cache (sources
    /// without a key are indexed every time).
    pub fn from_source(source: Arc<dyn ByteSource>) -> Result<Media> {
        Media::with_cache(source, IndexCache::global())
    }

    /// Opens a byte source only if its index is in the process-wide cache,
    /// reading nothing: `None` when opening would read the source to build
    /// one (not cached, or still being built by another call). For hosts
    /// that must not block and index elsewhere (nginx's thread pool).
    pub fn from_cache(source: Arc<dyn ByteSource>) -> Result<Option<Media>> {
        let Some(index) = IndexCache::global().get(&source.identity()) else {
            return Ok(None);
        };
        index.check_limits()?;
        Ok(Some(Media { source, index }))
    }

    /// A source and an index built for it (checked against today's limits).
    pub fn from_parts(source: Arc<dyn ByteSource>, index: Arc<MediaIndex>) -> Result<Media> {
        index.check_limits()?;
        Ok(Media { source, index })
    }

    /// Opens a byte source through a given cache.
    pub fn with_cache(source: Arc<dyn ByteSource>, cache: &IndexCache) -> Result<Media> {
        let index = cache.get_or_build(&source.identity(), || MediaIndex::build(&*source))?;
        index.check_limits()?;
        Ok(Media { source, index })
    }

    pub fn info(&self) -> &MediaInfo {
        self.index.info()
    }

    pub fn keyframes(&self) -> &[Keyframe] {
        self.index.keyframes()
    }

    pub fn index(&self) -> &MediaIndex {
        &self.index
    }

    pub fn source(&self) -> &Arc<dyn ByteSource> {
        &self.source
    }

    /// Resolves a request into what to send. An FLV asked for as MP4 is
    /// planned on its MP4 view, built (blocking) when not cached.
    pub fn plan(&self, options: &Options, request: &Request) -> Result<Plan> {
        if self.index.mp4_needs_view() && request.wants_mp4(options) {
            return self.mp4_view()?.plan(options, request);
        }
        plan::resolve(&self.index, &*self.source, options, request)
    }

    /// The file as MP4: for an FLV, its MP4 view from the process-wide
    /// cache (built when missing); any other file as it is.
    pub fn mp4_view(&self) -> Result<Media> {
        if !self.index.mp4_needs_view() {
            return Ok(self.clone());
        }
        let identity = self.source.identity().mp4_view();
        let index = IndexCache::global().get_or_build(&identity, || {
            Mp4ViewIndex::build(Arc::clone(&self.index), &*self.source)
                .map(|v| MediaIndex::Mp4View(Box::new(v)))
        })?;
        Ok(Media {
            source: Arc::clone(&self.source),
            index,
        })
    }

    /// Builds the index an identity names, reading `source`: the file's
    /// own, or its MP4 view (on top of its own index, taken from the
    /// process-wide cache or built). What a host's build thread runs.
    pub fn build_index(identity: &SourceIdentity, source: &dyn ByteSource) -> Result<MediaIndex> {
        if !identity.is_mp4_view() {
            return MediaIndex::build(source);
        }
        let base =
            IndexCache::global().get_or_build(&identity.base(), || MediaIndex::build(source))?;
        Ok(MediaIndex::Mp4View(Box::new(Mp4ViewIndex::build(
            base, source,
        )?)))
    }

    /// A stream of `len` bytes from `first` of `plan`'s response.
    pub fn stream(&self, plan: &Plan, first: u64, len: u64) -> Result<Stream> {
        Stream::new(Arc::clone(&self.source), plan, first, len)
    }

    /// Media information and the keyframe list as JSON, for player-side
    /// lookup tables and tools.
    pub fn info_json(&self) -> String {
        let i = self.info();
        let opt = |v: Option<u32>| v.map_or("null".to_string(), |v| v.to_string());
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"format\":\"{}\",\"size\":{},\"start_ms\":{},\"duration_ms\":{},\
             \"has_audio\":{},\"has_video\":{},\"video_codec\":{},\"audio_codec\":{},\
             \"width\":{},\"height\":{},\"bitrate_bps\":{},\"index_origin\":\"{}\",\
             \"seek_points_from_audio\":{},\"keyframe_count\":{},\
             \"keyframe_flags_overruled\":{},",
            i.format.name(),
            i.size,
            i.start_ms,
            i.duration_ms,
            i.has_audio,
            i.has_video,
            opt(i.video_codec),
            opt(i.audio_codec),
            opt(i.width),
            opt(i.height),
            i.bitrate_bps,
            i.origin.name(),
            i.seek_points_from_audio,
            i.keyframe_count,
            i.keyframe_flags_overruled,
        );
        match self.index.virtual_head() {
            Some(h) => {
                let _ = write!(
                    s,
                    "\"virtual_head_bytes\":{},\"virtual_size\":{},\"virtual_listed\":{},",
                    h.len(),
                    h.virtual_size(i.size),
                    h.listed
                );
            }
            None => s.push_str("\"virtual_head_bytes\":null,"),
        }
        self.index.write_format_json(&mut s);
        s.push_str("\"keyframes\":[");
        for (n, k) in self.keyframes().iter().enumerate() {
            let sep = if n == 0 { "" } else { "," };
            let _ = write!(
                s,
                "{sep}{{\"time_ms\":{},\"offset\":{}}}",
                k.time_ms, k.offset
            );
        }
        s.push_str("]}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;

    #[test]
    fn from_cache_opens_only_what_another_open_indexed() {
        let mut flv = Vec::new();
        crate::format::flv::tag::write_stream_header(&mut flv, false, true);
        crate::format::flv::tag::write_tag(&mut flv, 9, 0, &[0x12, 0, 0]);
        let name = format!("media-from-cache-{}", std::process::id());
        let source =
            || -> Arc<dyn ByteSource> { Arc::new(MemorySource::named(flv.clone(), &name)) };
        assert!(Media::from_cache(source()).unwrap().is_none());
        let opened = Media::from_source(source()).unwrap();
        let cached = Media::from_cache(source()).unwrap().expect("cached now");
        assert!(std::ptr::eq(cached.index(), opened.index()));
        let anonymous: Arc<dyn ByteSource> = Arc::new(MemorySource::new(flv.clone()));
        assert!(Media::from_cache(anonymous).unwrap().is_none());
    }
}
