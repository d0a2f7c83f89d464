//! Media handles: open by path or through a caller's read callback.

use std::ffi::{c_char, c_void};
use std::io;
use std::sync::Arc;

use super::boundary::{
    c_str, copy_out_str, guard, guard_value, handle, non_null, opt_c_str, put, Failure, FfiResult,
    Handle,
};
use super::ps_status;
use crate::cache::IndexCache;
use crate::media::Media;
use crate::source::{ByteSource, FileSource, FileStat, SourceIdentity, SourceKey};

/// An opened media file and its keyframe index. Immutable: one handle may
/// be used from many threads at once. Plans and streams made from it keep
/// what they need, but the handle must outlive calls that take it.
pub struct ps_media {
    magic: u64,
    pub(crate) inner: Media,
}

handle!(ps_media, Media, 0x7073_6d65_6469_6121);

/// Reads up to `len` bytes at `offset` into `buf` and stores the count in
/// `*out_read` (0 only at the end of the data). Returns 0 on success, any
/// other value on failure. Called from whichever thread uses the media.
pub type ps_read_at_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        offset: u64,
        buf: *mut u8,
        len: usize,
        out_read: *mut usize,
    ) -> i32,
>;

/// Media information. Codec ids: for FLV its own (video CodecID: 2 Sorenson
/// H.263, 4 VP6, 7 AVC; audio SoundFormat: 2 MP3, 10 AAC); for MP4 the
/// sample entry's FourCC as a big-endian number ('avc1' = 0x61766331);
/// 0xFFFFFFFF when absent.
#[repr(C)]
pub struct ps_media_info {
    /// One of ps_format.
    pub format: u32,
    /// One of ps_index_origin.
    pub index_origin: u32,
    pub size: u64,
    /// Timestamp of the first audio/video frame, milliseconds.
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Average bits per second over the media data (0 if unknown).
    pub bitrate_bps: u64,
    pub keyframe_count: u64,
    /// 1 or 0.
    pub has_audio: u32,
    pub has_video: u32,
    pub video_codec: u32,
    pub audio_codec: u32,
    /// From metadata; 0 when not given.
    pub width: u32,
    pub height: u32,
    /// 1 when seek points are audio tags (no video in the file).
    pub seek_points_from_audio: u32,
    /// Samples the file flags as keyframes that are not seek points: their
    /// first picture depends on earlier ones (a non-IDR H.264 I picture).
    pub keyframe_flags_overruled: u32,
}

/// A container the library serves.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_format {
    PS_FORMAT_FLV = 1,
    /// MP4, QuickTime and other ISO BMFF files; cut by time only.
    PS_FORMAT_MP4 = 2,
}

/// Where the keyframe index came from.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_index_origin {
    /// The file's onMetaData keyframes, checked against the tags.
    PS_INDEX_METADATA = 1,
    /// onMetaData keyframes did not match the file; rebuilt by scanning.
    PS_INDEX_METADATA_STALE = 2,
    /// No keyframe metadata; built by scanning tag headers.
    PS_INDEX_SCANNED = 3,
}

/// Opens the file at `path` (NUL-terminated, UTF-8) and indexes it, or takes
/// its index from the process-wide cache when the file's device, inode, size
/// and modification time are unchanged. On success `*out` receives a handle
/// to release with ps_media_free. Blocking file I/O. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_media_open(path: *const c_char, out: *mut *mut ps_media) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let path = c_str(path, "path")?;
        let media = Media::open(path)?;
        put(out, ps_media::new(media).into_raw());
        Ok(())
    })
}

/// Opens the regular file behind `fd`, which the caller keeps: the library
/// reads through its own duplicate (closed by ps_media_free), so a host can
/// pass the descriptor of its open-file cache and skip a second open. Cached
/// like ps_media_open. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_media_open_fd(fd: i32, out: *mut *mut ps_media) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let media = Media::open_fd(fd)?;
        put(out, ps_media::new(media).into_raw());
        Ok(())
    })
}

/// Opens the regular file behind `fd`, which the caller lends: the library
/// reads it with pread and never closes it, and takes its size, device,
/// inode and modification time (ns) from the caller's fstat, so the call
/// makes no system call when the index is cached. `fd` must stay open on that
/// file until the media and every stream made from it are freed. For hosts
/// with an open-file cache (nginx). Thread-safe.
#[no_mangle]
pub extern "C" fn ps_media_open_fd_borrowed(
    fd: i32,
    size: u64,
    device: u64,
    inode: u64,
    mtime_ns: i64,
    out: *mut *mut ps_media,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let stat = lent_file(fd, size, device, inode, mtime_ns)?;
        // SAFETY: the caller's promise, documented above.
        let media = unsafe { Media::open_borrowed_fd(fd, stat) }?;
        put(out, ps_media::new(media).into_raw());
        Ok(())
    })
}

/// As ps_media_open_fd_borrowed, but only when the file's index is in the
/// process-wide cache: reads nothing, makes no system call and never
/// blocks. Returns PS_ERR_NOT_CACHED, writing nothing, when opening would
/// have to build the index (it is not cached, or another call is building
/// it): a host that must not block then calls ps_media_open_fd_borrowed
/// with the same arguments where blocking is allowed (nginx: its thread
/// pool), and calls for one file made while it builds wait for that one
/// build. Same contract for `fd` on success. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_media_open_fd_borrowed_cached(
    fd: i32,
    size: u64,
    device: u64,
    inode: u64,
    mtime_ns: i64,
    out: *mut *mut ps_media,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let stat = lent_file(fd, size, device, inode, mtime_ns)?;
        // SAFETY: the caller's promise, documented above.
        let source = Arc::new(unsafe { FileSource::borrow_fd(fd, stat) });
        let media = Media::from_cache(source)?.ok_or_else(|| {
            Failure::new(
                ps_status::PS_ERR_NOT_CACHED,
                format!("the index of file descriptor {fd} (inode {inode}) is not cached"),
            )
        })?;
        put(out, ps_media::new(media).into_raw());
        Ok(())
    })
}

/// The caller's fstat of a lent descriptor, which must be one.
fn lent_file(fd: i32, size: u64, device: u64, inode: u64, mtime_ns: i64) -> FfiResult<FileStat> {
    if fd < 0 {
        return Err(Failure::invalid(format!("file descriptor {fd}")));
    }
    Ok(FileStat {
        size,
        device,
        inode,
        mtime_ns,
    })
}

/// Opens media through a caller-supplied byte source: `read_at(ctx, …)`
/// over `size` bytes. `identity` (NUL-terminated, may be NULL) names the
/// content for the index cache and validators, and `version` tells versions
/// of one identity apart (e.g. an mtime or generation number); with a NULL
/// identity nothing is cached. `ctx` must stay valid, and `read_at` callable
/// from any thread using the media, until the media and every stream made
/// from it are freed.
#[no_mangle]
pub extern "C" fn ps_media_open_source(
    read_at: ps_read_at_fn,
    ctx: *mut c_void,
    size: u64,
    identity: *const c_char,
    version: i64,
    out: *mut *mut ps_media,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let read_at = read_at.ok_or_else(|| Failure::null("read_at"))?;
        let key = opt_c_str(identity, "identity")?.map(|s| SourceKey::Named(s.to_string()));
        let source = CallbackSource {
            read_at,
            ctx,
            identity: SourceIdentity {
                key,
                size,
                mtime_ns: version,
            },
        };
        let media = Media::from_source(Arc::new(source))?;
        put(out, ps_media::new(media).into_raw());
        Ok(())
    })
}

/// Releases a media handle. NULL is a no-op. Must be called once, after the
/// last call that uses the handle.
#[no_mangle]
pub extern "C" fn ps_media_free(media: *mut ps_media) {
    guard_value((), || ps_media::free(media))
}

/// Fills `*out` with the media's information.
#[no_mangle]
pub extern "C" fn ps_media_get_info(media: *const ps_media, out: *mut ps_media_info) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let i = ps_media::check(media)?.inner.info();
        let absent = u32::MAX;
        put(
            out,
            ps_media_info {
                format: i.format as u32,
                index_origin: i.origin as u32,
                size: i.size,
                start_ms: i.start_ms,
                duration_ms: i.duration_ms,
                bitrate_bps: i.bitrate_bps,
                keyframe_count: i.keyframe_count as u64,
                has_audio: u32::from(i.has_audio),
                has_video: u32::from(i.has_video),
                video_codec: i.video_codec.unwrap_or(absent),
                audio_codec: i.audio_codec.unwrap_or(absent),
                width: i.width.unwrap_or(0),
                height: i.height.unwrap_or(0),
                seek_points_from_audio: u32::from(i.seek_points_from_audio),
                keyframe_flags_overruled: u32::try_from(i.keyframe_flags_overruled)
                    .unwrap_or(u32::MAX),
            },
        );
        Ok(())
    })
}

/// The keyframe (seek point) at `index` (0-based, below keyframe_count):
/// its time in milliseconds and the file offset of its tag.
#[no_mangle]
pub extern "C" fn ps_media_keyframe(
    media: *const ps_media,
    index: u64,
    time_ms: *mut u64,
    offset: *mut u64,
) -> ps_status {
    guard(|| {
        non_null(time_ms, "time_ms")?;
        non_null(offset, "offset")?;
        let keyframes = ps_media::check(media)?.inner.keyframes();
        let k = usize::try_from(index)
            .ok()
            .and_then(|i| keyframes.get(i))
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "keyframe {index} of {} does not exist",
                    keyframes.len()
                ))
            })?;
        put(time_ms, k.time_ms);
        put(offset, k.offset);
        Ok(())
    })
}

/// Writes media information and the keyframe list as JSON (NUL-terminated)
/// into `buf` of `cap` bytes; `*written` receives the length without the NUL.
/// When `cap` is too small (or `buf` is NULL) returns PS_ERR_BUFFER_TOO_SMALL
/// with the needed capacity, NUL included, in `*written`.
#[no_mangle]
pub extern "C" fn ps_media_info_json(
    media: *const ps_media,
    buf: *mut c_char,
    cap: usize,
    written: *mut usize,
) -> ps_status {
    guard(|| {
        let json = ps_media::check(media)?.inner.info_json();
        copy_out_str(json.as_bytes(), buf, cap, written)
    })
}

/// Sets the byte budget of the process-wide index cache (default 64 MiB);
/// entries over it are evicted at once, 0 disables caching. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_cache_set_capacity(bytes: u64) -> ps_status {
    guard(|| {
        IndexCache::global().set_capacity(usize::try_from(bytes).unwrap_or(usize::MAX));
        Ok(())
    })
}

/// Sets the largest MP4 `moov` box read into memory (default 64 MiB; 0
/// restores it). Files with a larger one are refused with
/// PS_ERR_UNSUPPORTED_FORMAT (HTTP 415). Process-wide; thread-safe.
#[no_mangle]
pub extern "C" fn ps_mp4_set_moov_limit(bytes: u64) -> ps_status {
    guard(|| {
        crate::index::mp4::set_moov_limit(bytes);
        Ok(())
    })
}

/// Drops every cached index. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_cache_clear() -> ps_status {
    guard(|| {
        IndexCache::global().clear();
        Ok(())
    })
}

/// Reports the process-wide index cache's entries, bytes used, hits and
/// misses. Each out-pointer may be NULL to skip it. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_cache_stats(
    entries: *mut u64,
    bytes: *mut u64,
    hits: *mut u64,
    misses: *mut u64,
) -> ps_status {
    guard(|| {
        let s = IndexCache::global().stats();
        for (p, v) in [
            (entries, s.entries as u64),
            (bytes, s.bytes as u64),
            (hits, s.hits),
            (misses, s.misses),
        ] {
            if !p.is_null() {
                put(p, v);
            }
        }
        Ok(())
    })
}

/// A byte source backed by the host's callback.
struct CallbackSource {
    read_at: unsafe extern "C" fn(*mut c_void, u64, *mut u8, usize, *mut usize) -> i32,
    ctx: *mut c_void,
    identity: SourceIdentity,
}

// SAFETY: the host promises (in ps_media_open_source's contract) that the
// callback and its context may be used from any thread that uses the media.
unsafe impl Send for CallbackSource {}
unsafe impl Sync for CallbackSource {}

impl ByteSource for CallbackSource {
    fn size(&self) -> u64 {
        self.identity.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.identity.size || buf.is_empty() {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(self.identity.size - offset).unwrap_or(usize::MAX));
        let mut n = 0usize;
        // SAFETY: `buf` has at least `len` writable bytes; the callback's
        // contract is documented on ps_read_at_fn.
        let rc = unsafe { (self.read_at)(self.ctx, offset, buf.as_mut_ptr(), len, &mut n) };
        if rc != 0 {
            return Err(io::Error::other(format!(
                "read callback failed with {rc} at offset {offset}"
            )));
        }
        if n > len {
            return Err(io::Error::other(format!(
                "read callback reported {n} bytes for a {len}-byte buffer"
            )));
        }
        Ok(n)
    }

    fn identity(&self) -> SourceIdentity {
        self.identity.clone()
    }
}
