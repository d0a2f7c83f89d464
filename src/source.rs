//! Byte sources: where media bytes come from. Everything above this layer
//! reads through positioned reads (`pread`), never mmap, so a file truncated
//! while served ends the response with an error instead of a SIGBUS.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::path::Path;

use crate::error::{Error, Result};

/// What makes a source's bytes the same as last time, for the index cache and
/// for validators. `version` changes when the content may have changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// A file on a local file system.
    File { dev: u64, ino: u64 },
    /// A caller-named source (object storage key, origin URL).
    Named(String),
    /// A source's MP4 view (an FLV served as MP4): cached apart from the
    /// source's own index.
    Mp4View(Box<SourceKey>),
}

/// Identity of a source: the cache key plus a version stamp.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceIdentity {
    /// None for sources that must never be cached (anonymous memory).
    pub key: Option<SourceKey>,
    /// Size and modification time (ns) at open; a change means re-index.
    pub size: u64,
    pub mtime_ns: i64,
}

impl SourceIdentity {
    /// The identity of this source's MP4 view, same version.
    pub fn mp4_view(&self) -> SourceIdentity {
        SourceIdentity {
            key: self
                .key
                .as_ref()
                .map(|k| SourceKey::Mp4View(Box::new(k.clone()))),
            size: self.size,
            mtime_ns: self.mtime_ns,
        }
    }

    /// The source's own identity, for a view's.
    pub fn base(&self) -> SourceIdentity {
        match &self.key {
            Some(SourceKey::Mp4View(k)) => SourceIdentity {
                key: Some((**k).clone()),
                size: self.size,
                mtime_ns: self.mtime_ns,
            },
            _ => self.clone(),
        }
    }

    pub fn is_mp4_view(&self) -> bool {
        matches!(self.key, Some(SourceKey::Mp4View(_)))
    }
}

/// Random access to immutable bytes. Implementations must be usable from
/// several threads at once.
pub trait ByteSource: Send + Sync {
    /// Size in bytes at the time the source was opened.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`. Returns 0 only past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Identity used by the index cache and the ETag.
    fn identity(&self) -> SourceIdentity;
    /// A hint that `(offset, len)` ranges are about to be read, one small
    /// read each: a file asks the kernel for them all at once, so a cold
    /// disk serves them in parallel instead of one seek per read.
    fn prefetch(&self, _ranges: &[(u64, u64)]) {}
}

/// Reads as many bytes as exist at `offset`, up to `buf.len()`, retrying short
/// reads. Returns the count; fewer than `buf.len()` means the source ended.
pub fn read_full_at(src: &dyn ByteSource, offset: u64, buf: &mut [u8]) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(done)
}

/// A local file read with `pread`.
pub struct FileSource {
    descriptor: Descriptor,
    identity: SourceIdentity,
}

enum Descriptor {
    /// Closed with the source.
    Owned(File),
    /// The host's; it stays open while the source lives.
    Borrowed(RawFd),
}

/// What the host's `fstat` said of a descriptor it lends.
#[derive(Clone, Copy, Debug)]
pub struct FileStat {
    pub size: u64,
    pub device: u64,
    pub inode: u64,
    pub mtime_ns: i64,
}

impl FileSource {
    /// Opens a regular file for reading.
    pub fn open(path: &Path) -> Result<FileSource> {
        let shown = || path.display().to_string();
        // Non-blocking, so a FIFO cannot stall the open; regular files ignore it.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| Error::from_open(e, &shown()))?;
        FileSource::from_file(file, shown)
    }

    /// Reads through a duplicate of a descriptor the caller keeps (a host's
    /// open-file cache), sparing a second path lookup and open.
    pub fn from_fd(fd: RawFd) -> Result<FileSource> {
        let shown = || format!("file descriptor {fd}");
        // SAFETY: fcntl with F_DUPFD_CLOEXEC only reads `fd`; an invalid one
        // fails with EBADF, checked below.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(Error::InvalidArgument(format!(
                "{}: {}",
                shown(),
                io::Error::last_os_error()
            )));
        }
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let file = unsafe { File::from_raw_fd(dup) };
        FileSource::from_file(file, shown)
    }

    /// Reads through the caller's descriptor of a regular file, as the
    /// caller's `fstat` describes it: no system call at all. For hosts with
    /// an open-file cache (nginx), per request.
    ///
    /// # Safety
    /// `fd` must stay open, on the same file, for as long as the source (and
    /// every media and stream holding it) lives. A wrong `stat` gives wrong
    /// answers or read errors, never memory unsafety.
    pub unsafe fn borrow_fd(fd: RawFd, stat: FileStat) -> FileSource {
        FileSource {
            descriptor: Descriptor::Borrowed(fd),
            identity: SourceIdentity {
                key: Some(SourceKey::File {
                    dev: stat.device,
                    ino: stat.inode,
                }),
                size: stat.size,
                mtime_ns: stat.mtime_ns,
            },
        }
    }

    /// Reads through a descriptor the caller lends, as the library's own
    /// `fstat` of it describes the file: every host hands the library the
    /// same identity (device, inode, size, modification time in ns).
    ///
    /// # Safety
    /// As `borrow_fd`: `fd` stays open, on the same file, while the source
    /// lives.
    pub unsafe fn lend_fd(fd: RawFd) -> Result<FileSource> {
        let stat = fstat(fd)?;
        // SAFETY: forwarded to our caller.
        Ok(unsafe { FileSource::borrow_fd(fd, stat) })
    }

    /// As `lend_fd`, for hosts whose open-file cache knows the file's inode,
    /// size and modification time in seconds (nginx): the library's last
    /// `fstat` of this descriptor on this thread is taken again while those
    /// three still match it, which spares a system call per request (most
    /// of a microsecond on a virtual machine) when the host keeps the
    /// descriptor open across requests.
    ///
    /// # Safety
    /// As `lend_fd`.
    pub unsafe fn lend_fd_known(
        fd: RawFd,
        inode: u64,
        size: u64,
        mtime_s: i64,
    ) -> Result<FileSource> {
        let known = |st: &FileStat| {
            st.inode == inode && st.size == size && st.mtime_ns.div_euclid(1_000_000_000) == mtime_s
        };
        let remembered = LENT.with(|m| m.borrow().get(&fd).copied().filter(|s| known(s)));
        let stat = match remembered {
            Some(stat) => stat,
            None => {
                let stat = fstat(fd)?;
                if known(&stat) {
                    LENT.with(|m| {
                        let mut m = m.borrow_mut();
                        if m.len() >= LENT_MAX {
                            m.clear();
                        }
                        m.insert(fd, stat);
                    });
                }
                stat
            }
        };
        // SAFETY: forwarded to our caller.
        Ok(unsafe { FileSource::borrow_fd(fd, stat) })
    }

    fn from_file(file: File, shown: impl Fn() -> String) -> Result<FileSource> {
        let meta = file.metadata().map_err(|e| Error::from_open(e, &shown()))?;
        if !meta.is_file() {
            return Err(Error::NotFound(format!("{} (not a regular file)", shown())));
        }
        let identity = SourceIdentity {
            key: Some(SourceKey::File {
                dev: meta.dev(),
                ino: meta.ino(),
            }),
            size: meta.len(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        };
        Ok(FileSource {
            descriptor: Descriptor::Owned(file),
            identity,
        })
    }
}

impl ByteSource for FileSource {
    fn size(&self) -> u64 {
        self.identity.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match &self.descriptor {
            Descriptor::Owned(file) => file.read_at(buf, offset),
            Descriptor::Borrowed(fd) => {
                let offset = libc::off_t::try_from(offset)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                // SAFETY: `buf` is valid for `buf.len()` writable bytes; the
                // descriptor's validity is the lender's promise (borrow_fd).
                let n = unsafe { libc::pread(*fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }
        }
    }

    fn identity(&self) -> SourceIdentity {
        self.identity.clone()
    }

    fn prefetch(&self, ranges: &[(u64, u64)]) {
        let fd = match &self.descriptor {
            Descriptor::Owned(file) => file.as_raw_fd(),
            Descriptor::Borrowed(fd) => *fd,
        };
        for &(offset, len) in ranges {
            let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len))
            else {
                continue;
            };
            // SAFETY: posix_fadvise only advises the kernel about `fd`; an
            // error (a descriptor that is not a file) changes nothing.
            unsafe { libc::posix_fadvise(fd, offset, len, libc::POSIX_FADV_WILLNEED) };
        }
    }
}

/// Descriptors a thread lent with what their last `fstat` said
/// (`FileSource::lend_fd_known`); emptied when it grows past `LENT_MAX`.
const LENT_MAX: usize = 4096;

thread_local! {
    static LENT: std::cell::RefCell<crate::fnv::FastMap<RawFd, FileStat>> =
        std::cell::RefCell::new(crate::fnv::FastMap::default());
}

/// What `fstat` says of a descriptor that must be a regular file.
fn fstat(fd: RawFd) -> Result<FileStat> {
    let shown = || format!("file descriptor {fd}");
    // SAFETY: fstat only writes the struct; a bad descriptor is EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EBADF) {
            Error::InvalidArgument(format!("{}: {e}", shown()))
        } else {
            Error::from_open(e, &shown())
        });
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::NotFound(format!("{} (not a regular file)", shown())));
    }
    Ok(FileStat {
        size: st.st_size as u64,
        device: st.st_dev,
        inode: st.st_ino,
        mtime_ns: st.st_mtime.saturating_mul(1_000_000_000) + st.st_mtime_nsec,
    })
}

/// Bytes held in memory; never cached unless given a name.
pub struct MemorySource {
    bytes: Vec<u8>,
    name: Option<String>,
}

impl MemorySource {
    /// Anonymous bytes: indexed on every open.
    pub fn new(bytes: Vec<u8>) -> MemorySource {
        MemorySource { bytes, name: None }
    }

    /// Named bytes: cached under `name` and their length.
    pub fn named(bytes: Vec<u8>, name: impl Into<String>) -> MemorySource {
        MemorySource {
            bytes,
            name: Some(name.into()),
        }
    }
}

impl ByteSource for MemorySource {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.bytes.len() as u64;
        if offset >= len {
            return Ok(0);
        }
        let start = offset as usize;
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }

    fn identity(&self) -> SourceIdentity {
        SourceIdentity {
            key: self.name.clone().map(SourceKey::Named),
            size: self.bytes.len() as u64,
            mtime_ns: 0,
        }
    }
}
