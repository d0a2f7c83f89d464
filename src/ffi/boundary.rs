//! Status codes, the panic boundary, handle checks and the thread-local
//! error detail.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

use crate::error::Error;

/// Result of every call. The numbers are fixed: a retired value is never
/// reused, new values are only appended.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_status {
    PS_OK = 0,
    /// A required pointer argument was NULL.
    PS_ERR_NULL_ARG = 1,
    /// A bug inside the library was caught before it reached the caller.
    PS_ERR_PANIC = 2,
    /// A handle was freed already, or is not the kind the function takes.
    PS_ERR_BAD_HANDLE = 3,
    /// An argument is outside its domain (unknown enum value, bad window).
    PS_ERR_INVALID_ARG = 4,
    /// The output buffer is too small; the needed size was reported.
    PS_ERR_BUFFER_TOO_SMALL = 5,
    /// Reading the file or the caller's source failed.
    PS_ERR_IO = 6,
    /// The file does not exist or is not a regular file (HTTP 404).
    PS_ERR_NOT_FOUND = 7,
    /// The file may not be read (HTTP 403).
    PS_ERR_PERMISSION = 8,
    /// Not a container this library serves (HTTP 415).
    PS_ERR_UNSUPPORTED_FORMAT = 9,
    /// A recognised container, broken where it matters (HTTP 415).
    PS_ERR_MALFORMED_MEDIA = 10,
    /// A request parameter is garbage, negative, overflowing or repeated (HTTP 400).
    PS_ERR_BAD_REQUEST = 11,
    /// The start, end or byte range lies outside the stream (HTTP 416).
    PS_ERR_RANGE_NOT_SATISFIABLE = 12,
    /// The source ended before the planned range: the file shrank while served.
    PS_ERR_SOURCE_CHANGED = 13,
    /// ps_media_open_fd_borrowed_cached: the index is not cached, so opening
    /// would read the file. An answer for the host, not for its client.
    PS_ERR_NOT_CACHED = 14,
}

use ps_status::*;

/// A failed call: its status and the message for `ps_last_error`.
pub(crate) struct Failure {
    pub status: ps_status,
    pub message: String,
}

pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

impl Failure {
    pub fn new(status: ps_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(PS_ERR_NULL_ARG, format!("{what} is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(PS_ERR_INVALID_ARG, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let status = match &e {
            Error::NotFound(_) => PS_ERR_NOT_FOUND,
            Error::PermissionDenied(_) => PS_ERR_PERMISSION,
            Error::Io(_) => PS_ERR_IO,
            Error::UnsupportedFormat(_) => PS_ERR_UNSUPPORTED_FORMAT,
            Error::Malformed(_) => PS_ERR_MALFORMED_MEDIA,
            Error::BadRequest(_) => PS_ERR_BAD_REQUEST,
            Error::RangeNotSatisfiable(_) => PS_ERR_RANGE_NOT_SATISFIABLE,
            Error::SourceChanged(_) => PS_ERR_SOURCE_CHANGED,
            Error::InvalidArgument(_) => PS_ERR_INVALID_ARG,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = c);
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic): {text}")
}

/// Runs `body` behind the panic boundary and turns its outcome into a status.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult) -> ps_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => PS_OK,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.status
        }
        Err(payload) => {
            set_last_error(&panic_message(&payload));
            PS_ERR_PANIC
        }
    }
}

/// Runs `body` behind the panic boundary for exports that return no status;
/// a panic yields `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        set_last_error(&panic_message(&payload));
        fallback
    })
}

/// Writes `value` through an out-pointer (checked non-null by the caller).
pub(crate) fn put<T>(out: *mut T, value: T) {
    // SAFETY: callers check `out` for NULL before any work; the C caller
    // promises it points to writable storage for a T.
    unsafe { out.write(value) }
}

/// Fails unless every pointer is non-null.
pub(crate) fn non_null<T>(p: *const T, what: &str) -> FfiResult {
    if p.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(())
    }
}

/// A NUL-terminated string argument as UTF-8.
pub(crate) fn c_str<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    non_null(p, what)?;
    // SAFETY: non-null; the caller promises a NUL-terminated string that
    // outlives this call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// An optional NUL-terminated string argument (NULL means absent).
pub(crate) fn opt_c_str<'a>(p: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        c_str(p, what).map(Some)
    }
}

/// Copies `bytes` and a terminating NUL into a caller buffer. `written`
/// receives the length without the NUL on success, or the capacity needed
/// (with the NUL) on PS_ERR_BUFFER_TOO_SMALL.
pub(crate) fn copy_out_str(
    bytes: &[u8],
    buf: *mut c_char,
    cap: usize,
    written: *mut usize,
) -> FfiResult {
    non_null(written, "written")?;
    if buf.is_null() || cap < bytes.len() + 1 {
        put(written, bytes.len() + 1);
        return Err(Failure::new(
            PS_ERR_BUFFER_TOO_SMALL,
            format!("buffer of {cap} bytes, {} needed", bytes.len() + 1),
        ));
    }
    // SAFETY: `buf` is non-null and the caller promises `cap` writable bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    put(written, bytes.len());
    Ok(())
}

/// Opaque handles start with a magic number, checked on every call, so a
/// freed or foreign pointer from a managed host becomes PS_ERR_BAD_HANDLE
/// rather than silent corruption (best effort: the memory may be reused).
pub(crate) trait Handle: Sized {
    const MAGIC: u64;
    const NAME: &'static str;
    fn magic(&self) -> u64;
    fn clear_magic(&mut self);

    fn check<'a>(p: *const Self) -> FfiResult<&'a Self> {
        non_null(p, Self::NAME)?;
        // SAFETY: non-null; the caller promises a pointer from this library.
        let r = unsafe { &*p };
        if r.magic() != Self::MAGIC {
            return Err(Failure::new(
                PS_ERR_BAD_HANDLE,
                format!("{} handle is freed or invalid", Self::NAME),
            ));
        }
        Ok(r)
    }

    fn check_mut<'a>(p: *mut Self) -> FfiResult<&'a mut Self> {
        Self::check(p)?;
        // SAFETY: checked above; the caller promises exclusive use for the call.
        Ok(unsafe { &mut *p })
    }

    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Frees a handle made by `into_raw`; NULL and bad handles are ignored.
    fn free(p: *mut Self) {
        if let Ok(h) = Self::check_mut(p) {
            h.clear_magic();
            // SAFETY: the pointer came from Box::into_raw and is freed once.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Gives an opaque handle type (a struct with `magic` and `inner` fields,
/// written out so cbindgen sees it) its constructor and handle checks.
macro_rules! handle {
    ($name:ident, $inner:ty, $magic:expr) => {
        impl $name {
            pub(crate) fn new(inner: $inner) -> Self {
                $name {
                    magic: $magic,
                    inner,
                }
            }
        }

        impl $crate::ffi::boundary::Handle for $name {
            const MAGIC: u64 = $magic;
            const NAME: &'static str = stringify!($name);
            fn magic(&self) -> u64 {
                self.magic
            }
            fn clear_magic(&mut self) {
                self.magic = 0;
            }
        }
    };
}
pub(crate) use handle;

/// The library version, e.g. "0.1.0". Static storage; never free it.
#[no_mangle]
pub extern "C" fn ps_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// A short English description of a status. Static storage; never free it.
#[no_mangle]
pub extern "C" fn ps_strerror(status: u32) -> *const c_char {
    let text: &'static str = match status {
        0 => "ok\0",
        1 => "a required argument is NULL\0",
        2 => "internal error (panic caught at the library boundary)\0",
        3 => "invalid or freed handle\0",
        4 => "invalid argument\0",
        5 => "buffer too small\0",
        6 => "i/o error\0",
        7 => "not found\0",
        8 => "permission denied\0",
        9 => "unsupported media format\0",
        10 => "malformed media\0",
        11 => "bad request\0",
        12 => "range not satisfiable\0",
        13 => "source changed while serving\0",
        14 => "index not cached\0",
        _ => "unknown status\0",
    };
    text.as_ptr().cast()
}

/// The HTTP status a host should answer with for `status`: 200 for PS_OK,
/// 400, 403, 404, 415, 416, or 500 for the rest.
#[no_mangle]
pub extern "C" fn ps_status_http(status: u32) -> u32 {
    match status {
        0 => 200,
        7 => 404,
        8 => 403,
        9 | 10 => 415,
        11 => 400,
        12 => 416,
        _ => 500,
    }
}

/// Details of the most recent failure on the calling thread, as a
/// NUL-terminated UTF-8 string ("" if none). The pointer stays valid until
/// the next failing call on this thread; copy it if you keep it.
#[no_mangle]
pub extern "C" fn ps_last_error() -> *const c_char {
    static EMPTY: &CStr = c"";
    guard_value(EMPTY.as_ptr(), || {
        LAST_ERROR.with(|slot| slot.borrow().as_ptr())
    })
}
