//! Exchanges: one HTTP request and the library's whole answer to it.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{
    c_str, guard, guard_value, handle, non_null, opt_c_str, put, Failure, FfiResult, Handle,
};
use super::media::ps_media;
use super::ps_status;
use super::request::{config_or_default, ps_options};
use super::stream::{fill_buffer, ps_fill_state, put_fill};
use crate::cache::{IndexCache, Pending};
use crate::exchange::Exchange;
use crate::plan::Piece;
use crate::source::FileSource;
use crate::stream::Take;

/// An exchange and the C form of its detail.
pub(crate) struct ExchangeCell {
    exchange: Exchange,
    detail: CString,
}

/// One HTTP request and, once answered, the library's whole answer: status,
/// every response header, and the body as pieces. Use from one thread at a
/// time. A descriptor lent with ps_exchange_open_fd must stay open until
/// the exchange is freed.
pub struct ps_exchange {
    magic: u64,
    pub(crate) inner: ExchangeCell,
}

handle!(ps_exchange, ExchangeCell, 0x7073_6578_6368_616e);

/// One run of body bytes: `length` bytes at `data` (bytes the library
/// holds) when `data` is not NULL, otherwise `length` bytes of the file from
/// `offset`.
#[repr(C)]
pub struct ps_piece {
    pub data: *const u8,
    pub offset: u64,
    pub length: u64,
}

/// One response header: name and value, borrowed from the exchange (each
/// also followed by a NUL in memory).
#[repr(C)]
pub struct ps_header {
    pub name: *const c_char,
    pub name_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// An answer's figures.
#[repr(C)]
pub struct ps_exchange_info {
    /// The HTTP status: 200, 204, 206, 304, 400, 403, 404, 405, 412, 415,
    /// 416 or 500.
    pub status: u32,
    /// 1 when the headers hold a Content-Length (its value below).
    pub has_content_length: u32,
    pub content_length: u64,
    /// Body bytes to send: 0 for HEAD, 204 and 304. An answer of 400 or
    /// above carries a short text the host may replace with its own error
    /// page.
    pub body_length: u64,
    /// The body's pacing: burst bytes, then bytes per second (0: unpaced).
    pub burst_bytes: u64,
    pub rate_bytes_per_s: u64,
    /// How many headers ps_exchange_header gives.
    pub header_count: u32,
    pub reserved: u32,
}

fn bytes<'a>(p: *const c_char, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(p, what)?;
    // SAFETY: non-null; the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

fn with_exchange(x: *mut ps_exchange, f: impl FnOnce(&mut ExchangeCell) -> FfiResult) -> ps_status {
    guard(|| f(&mut ps_exchange::check_mut(x)?.inner))
}

/// A request as the host received it: its method (`method_len` bytes,
/// case-sensitive: "GET", "HEAD", "OPTIONS"…) and its query string without
/// the '?' (`query_len` bytes; NULL with 0 for none). Neither need be
/// NUL-terminated; both are copied. Free with ps_exchange_free.
#[no_mangle]
pub extern "C" fn ps_exchange_new(
    method: *const c_char,
    method_len: usize,
    query: *const c_char,
    query_len: usize,
    out: *mut *mut ps_exchange,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let exchange = Exchange::new(
            bytes(method, method_len, "method")?,
            bytes(query, query_len, "query")?,
        );
        put(
            out,
            ps_exchange::new(ExchangeCell {
                exchange,
                detail: CString::default(),
            })
            .into_raw(),
        );
        Ok(())
    })
}

/// Hands over one request header. Pass every header, or at least Range,
/// If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
/// If-Range, Origin and Access-Control-Request-Method; the library keeps
/// those it reads (names in any case) and ignores the rest. A header sent
/// twice is joined with ", ", as HTTP defines it.
#[no_mangle]
pub extern "C" fn ps_exchange_set_header(
    exchange: *mut ps_exchange,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
) -> ps_status {
    with_exchange(exchange, |c| {
        c.exchange.header(
            bytes(name, name_len, "name")?,
            bytes(value, value_len, "value")?,
        );
        Ok(())
    })
}

/// `*wants` = 1 when the answer depends on the file (GET, HEAD): open it
/// with one of the ps_exchange_open_* calls before ps_exchange_respond.
/// 0: answer without opening anything (OPTIONS, other methods).
#[no_mangle]
pub extern "C" fn ps_exchange_wants_file(
    exchange: *const ps_exchange,
    wants: *mut u32,
) -> ps_status {
    guard(|| {
        non_null(wants, "wants")?;
        put(
            wants,
            u32::from(ps_exchange::check(exchange)?.inner.exchange.wants_file()),
        );
        Ok(())
    })
}

/// For hosts with an open-file cache that keeps a descriptor open across
/// requests and knows the file's inode, size and modification time in
/// seconds (nginx): with these, the ps_exchange_open_fd* calls take the
/// library's own earlier fstat of the same descriptor again, on the same
/// thread, while the three still match, instead of an fstat per request.
/// The identity the library uses is still its own fstat's.
#[no_mangle]
pub extern "C" fn ps_exchange_set_file_hint(
    exchange: *mut ps_exchange,
    inode: u64,
    size: u64,
    mtime_s: i64,
) -> ps_status {
    with_exchange(exchange, |c| {
        c.exchange.know_file(inode, size, mtime_s);
        Ok(())
    })
}

/// Opens the file at `path` (NUL-terminated UTF-8) and indexes it, or takes
/// its index from the process-wide cache. A failure (missing, forbidden,
/// not media) is not an error of this call: it becomes the answer.
/// Blocking file I/O.
#[no_mangle]
pub extern "C" fn ps_exchange_open_path(
    exchange: *mut ps_exchange,
    path: *const c_char,
) -> ps_status {
    with_exchange(exchange, |c| {
        let path = c_str(path, "path")?;
        c.exchange.open_path(std::path::Path::new(path));
        Ok(())
    })
}

/// Opens the regular file behind `fd`, which the host lends: the library
/// fstat's it (so every host hands it the same identity: device, inode,
/// size, modification time in ns), reads it with pread and never closes
/// it. `fd` must stay open on that file until the exchange is freed.
/// `name` (NUL-terminated, may be NULL) is the file's path or name: its
/// extension gives the Content-Type of a file served as stored. Indexes the
/// file when its index is not cached (blocking file I/O).
#[no_mangle]
pub extern "C" fn ps_exchange_open_fd(
    exchange: *mut ps_exchange,
    fd: i32,
    name: *const c_char,
) -> ps_status {
    with_exchange(exchange, |c| {
        let name = opt_c_str(name, "name")?;
        // SAFETY: the caller's promise, documented above.
        unsafe { c.exchange.open_fd(fd, name) };
        Ok(())
    })
}

/// As ps_exchange_open_fd, but without reading the file when its index is
/// not cached: then PS_ERR_NOT_CACHED, and the host builds the index where
/// it may block (ps_media_open_fd in a thread) and calls this again.
/// Makes one fstat and no other system call.
#[no_mangle]
pub extern "C" fn ps_exchange_open_fd_cached(
    exchange: *mut ps_exchange,
    fd: i32,
    name: *const c_char,
) -> ps_status {
    with_exchange(exchange, |c| {
        let name = opt_c_str(name, "name")?;
        // SAFETY: the caller's promise, documented on ps_exchange_open_fd.
        if unsafe { c.exchange.open_fd_cached(fd, name) } {
            Ok(())
        } else {
            Err(Failure::new(
                ps_status::PS_ERR_NOT_CACHED,
                "the file's index is not cached",
            ))
        }
    })
}

/// Takes a media the host opened (for instance on a thread that built its
/// index with ps_media_open_fd): the exchange shares its source and index,
/// so `media` may be freed right after. `name` as for ps_exchange_open_fd.
#[no_mangle]
pub extern "C" fn ps_exchange_open_media(
    exchange: *mut ps_exchange,
    media: *const ps_media,
    name: *const c_char,
) -> ps_status {
    with_exchange(exchange, |c| {
        let name = opt_c_str(name, "name")?;
        let media = &ps_media::check(media)?.inner;
        c.exchange.open_media(media, name);
        Ok(())
    })
}

/// An index build under way, as one request sees it: the request leads it
/// (runs it with ps_build_run where blocking is allowed) or has joined the
/// one another request leads. The requests of one file version share one
/// build, found by the library's cache. Its functions may be called from
/// the host's event loop and from the thread that runs it.
pub struct ps_build {
    magic: u64,
    pub(crate) inner: Pending<'static>,
}

handle!(ps_build, Pending<'static>, 0x7073_6275_696c_6421);

/// For hosts that must not block on indexing (an event loop): opens the
/// regular file behind `fd` (lent, as for ps_exchange_open_fd) from the
/// cache. `*build` = NULL: the exchange has the file, or the reason it
/// cannot have it; go on to ps_exchange_respond. Otherwise `*build` is the
/// build of the file's index: when ps_build_leads says so, run it with
/// ps_build_run on a thread; otherwise register the request with
/// ps_build_add_waiter. Once it has ended, ps_exchange_open_build, then
/// ps_exchange_respond. Free the build with ps_build_free. One fstat, no
/// read.
#[no_mangle]
pub extern "C" fn ps_exchange_open_fd_async(
    exchange: *mut ps_exchange,
    fd: i32,
    name: *const c_char,
    build: *mut *mut ps_build,
) -> ps_status {
    with_exchange(exchange, |c| {
        non_null(build, "build")?;
        let name = opt_c_str(name, "name")?;
        // SAFETY: the caller's promise, documented on ps_exchange_open_fd.
        let pending = unsafe { c.exchange.open_fd_async(fd, name) };
        put(
            build,
            pending.map_or(std::ptr::null_mut(), |p| ps_build::new(p).into_raw()),
        );
        Ok(())
    })
}

/// `*leads` = 1 when this request runs the build (ps_build_run), 0 when
/// another request does.
#[no_mangle]
pub extern "C" fn ps_build_leads(build: *const ps_build, leads: *mut u32) -> ps_status {
    guard(|| {
        non_null(leads, "leads")?;
        put(leads, u32::from(ps_build::check(build)?.inner.leads()));
        Ok(())
    })
}

/// Runs a build this request leads, reading the file through `fd` (lent for
/// the call; it may be another descriptor of the same file, say one without
/// O_DIRECT). Blocking: call it where the host may block (a thread pool).
/// The index goes into the cache; the outcome, index or error, to every
/// request of the build. Returns PS_OK, or the build's error (the requests
/// learn it through ps_exchange_open_build).
#[no_mangle]
pub extern "C" fn ps_build_run(build: *const ps_build, fd: i32) -> ps_status {
    guard(|| {
        let pending = &ps_build::check(build)?.inner;
        // SAFETY: the caller lends `fd` for this call.
        let source = unsafe { FileSource::lend_fd(fd) };
        IndexCache::global().lead(pending, || {
            crate::media::Media::build_index(pending.identity(), &source?)
        })?;
        Ok(())
    })
}

/// Registers a waiting request by an opaque `token` of the host's (its
/// request, its event), which ps_build_take_waiters hands back once the
/// build has ended. `*added` = 0 when the build has ended already: go on at
/// once. Call from the event loop the build's end is handled in.
#[no_mangle]
pub extern "C" fn ps_build_add_waiter(
    build: *const ps_build,
    token: *mut c_void,
    added: *mut u32,
) -> ps_status {
    guard(|| {
        non_null(added, "added")?;
        let added_now = ps_build::check(build)?.inner.add_waiter(token as usize);
        put(added, u32::from(added_now));
        Ok(())
    })
}

/// Forgets a waiting request (it went away).
#[no_mangle]
pub extern "C" fn ps_build_remove_waiter(build: *const ps_build, token: *mut c_void) -> ps_status {
    guard(|| {
        ps_build::check(build)?.inner.remove_waiter(token as usize);
        Ok(())
    })
}

/// After ps_build_run has ended: up to `cap` tokens of the waiting
/// requests, taken off the build, into `tokens`; call until `*count` is 0.
#[no_mangle]
pub extern "C" fn ps_build_take_waiters(
    build: *const ps_build,
    tokens: *mut *mut c_void,
    cap: usize,
    count: *mut usize,
) -> ps_status {
    guard(|| {
        non_null(count, "count")?;
        let taken = ps_build::check(build)?.inner.take_waiters(cap);
        if !taken.is_empty() {
            non_null(tokens, "tokens")?;
        }
        for (i, t) in taken.iter().enumerate() {
            // SAFETY: at most `cap` tokens; the caller promises room for them.
            unsafe { tokens.add(i).write(*t as *mut c_void) };
        }
        put(count, taken.len());
        Ok(())
    })
}

/// After the build has ended: the exchange takes its outcome, the index (even
/// when the cache did not keep it) or the reason there is none.
#[no_mangle]
pub extern "C" fn ps_exchange_open_build(
    exchange: *mut ps_exchange,
    build: *const ps_build,
) -> ps_status {
    with_exchange(exchange, |c| {
        let pending = &ps_build::check(build)?.inner;
        c.exchange.open_built(pending);
        Ok(())
    })
}

/// Releases a build handle. NULL is a no-op. The build itself goes on for
/// the other requests; a leader's handle freed without ps_build_run ends
/// the build with an error for every request (waiters registered already
/// must then be woken by the host, as after ps_build_run).
#[no_mangle]
pub extern "C" fn ps_build_free(build: *mut ps_build) {
    guard_value((), || ps_build::free(build))
}

/// The host could not open the file; `error` is the errno (ENOENT,
/// ENOTDIR: 404; EACCES, EPERM, ELOOP, EMLINK: 403; others 500). `name` as
/// for ps_exchange_open_fd.
#[no_mangle]
pub extern "C" fn ps_exchange_open_failed(
    exchange: *mut ps_exchange,
    error: i32,
    name: *const c_char,
) -> ps_status {
    with_exchange(exchange, |c| {
        let name = opt_c_str(name, "name")?;
        c.exchange.open_failed(error, name);
        Ok(())
    })
}

/// Tells the exchange the options (NULL: defaults) it will be answered
/// under, before ps_exchange_open_fd_async or ps_exchange_open_fd_cached:
/// some requests need more than the file's index (an FLV asked for as MP4
/// needs its MP4 view, which the build then makes). Hosts that open
/// blocking (ps_exchange_open_path, ps_exchange_open_fd) need not call it.
#[no_mangle]
pub extern "C" fn ps_exchange_configure(
    exchange: *mut ps_exchange,
    options: *const ps_options,
) -> ps_status {
    with_exchange(exchange, |c| {
        let config = config_or_default(options)?;
        c.exchange.configure(config);
        Ok(())
    })
}

/// Decides the answer under `options` (NULL: defaults): the method, the
/// file, the query, the preconditions in RFC 9110 order, Range, CORS and
/// pacing. Call once. Afterwards read it with ps_exchange_get_info and
/// ps_exchange_header, and take the body with ps_exchange_pieces or
/// ps_exchange_fill.
#[no_mangle]
pub extern "C" fn ps_exchange_respond(
    exchange: *mut ps_exchange,
    options: *const ps_options,
) -> ps_status {
    with_exchange(exchange, |c| {
        let config = config_or_default(options)?;
        c.exchange.respond(config);
        let detail = c.exchange.detail()?;
        if !detail.is_empty() {
            c.detail = CString::new(detail.replace('\0', " ")).unwrap_or_default();
        }
        Ok(())
    })
}

/// Fills `*out` with the answer's figures.
#[no_mangle]
pub extern "C" fn ps_exchange_get_info(
    exchange: *const ps_exchange,
    out: *mut ps_exchange_info,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let x = &ps_exchange::check(exchange)?.inner.exchange;
        let i = x.info()?;
        put(
            out,
            ps_exchange_info {
                status: u32::from(i.status),
                has_content_length: u32::from(i.content_length.is_some()),
                content_length: i.content_length.unwrap_or(0),
                body_length: i.body_length,
                burst_bytes: i.burst_bytes,
                rate_bytes_per_s: i.rate_bytes_per_s,
                header_count: x.headers()?.len() as u32,
                reserved: 0,
            },
        );
        Ok(())
    })
}

/// Response header `index` (0-based, below header_count): its name and
/// value, borrowed until the exchange is freed. Each is also followed by a
/// NUL in memory. The host writes every one of them, and adds only its own
/// (Date, Server, Connection, Transfer-Encoding).
#[no_mangle]
pub extern "C" fn ps_exchange_header(
    exchange: *const ps_exchange,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> ps_status {
    guard(|| {
        non_null(name, "name")?;
        non_null(name_len, "name_len")?;
        non_null(value, "value")?;
        non_null(value_len, "value_len")?;
        let headers = ps_exchange::check(exchange)?.inner.exchange.headers()?;
        let (n, v) = headers.get(index).ok_or_else(|| {
            Failure::invalid(format!(
                "header {index} of {} does not exist",
                headers.len()
            ))
        })?;
        put(name, n.as_ptr().cast());
        put(name_len, n.len());
        put(value, v.as_ptr().cast());
        put(value_len, v.len());
        Ok(())
    })
}

/// Every response header at once, into `headers` (room for `cap`; the
/// answer has `header_count` of them): as ps_exchange_header, in one call.
/// PS_ERR_BUFFER_TOO_SMALL, with the count needed in `*count`, when `cap`
/// is short.
#[no_mangle]
pub extern "C" fn ps_exchange_headers(
    exchange: *const ps_exchange,
    headers: *mut ps_header,
    cap: usize,
    count: *mut usize,
) -> ps_status {
    guard(|| {
        non_null(count, "count")?;
        let all = ps_exchange::check(exchange)?.inner.exchange.headers()?;
        if cap < all.len() {
            put(count, all.len());
            return Err(Failure::new(
                ps_status::PS_ERR_BUFFER_TOO_SMALL,
                format!("room for {cap} headers, {} needed", all.len()),
            ));
        }
        if !all.is_empty() {
            non_null(headers, "headers")?;
        }
        for i in 0..all.len() {
            let (n, v) = all.get(i).expect("below the count");
            let h = ps_header {
                name: n.as_ptr().cast(),
                name_len: n.len(),
                value: v.as_ptr().cast(),
                value_len: v.len(),
            };
            // SAFETY: i < cap; the caller promises room for `cap` headers.
            unsafe { headers.add(i).write(h) };
        }
        put(count, all.len());
        Ok(())
    })
}

/// Why the answer is what it is, for the host's log: the error of an
/// answer of 400 or above, or why a file was served as stored; "" when
/// there is nothing to say. NUL-terminated, borrowed until the exchange is
/// freed. It may name paths: do not send it to clients.
#[no_mangle]
pub extern "C" fn ps_exchange_detail(
    exchange: *const ps_exchange,
    detail: *mut *const c_char,
) -> ps_status {
    guard(|| {
        non_null(detail, "detail")?;
        put(detail, ps_exchange::check(exchange)?.inner.detail.as_ptr());
        Ok(())
    })
}

/// For hosts that send file pieces with sendfile: past the burst, a paced
/// batch that ends inside a file piece ends on a multiple of `page` there
/// (see ps_pacer_align_file_pages). Call before the first ps_exchange_pieces.
#[no_mangle]
pub extern "C" fn ps_exchange_align_file_pages(exchange: *mut ps_exchange, page: u64) -> ps_status {
    with_exchange(exchange, |c| Ok(c.exchange.align_file_pages(page)?))
}

/// The next pieces of the body, as far as pacing allows at `now_us` (the
/// host's monotonic clock in microseconds, any origin; or PS_NOW_UNPACED),
/// at most `cap` of them, into `pieces`. On PS_OK `*state` is PS_FILL_DATA with `*count`
/// pieces, PS_FILL_WAIT with `*wait_us` to wait, or PS_FILL_DONE. The
/// bytes of the pieces stay valid until the next call on this exchange or
/// its free: send all of a batch before asking for the next. Unpaced
/// bodies come in one batch when `cap` allows (a prefix and a file range
/// are two pieces).
#[no_mangle]
pub extern "C" fn ps_exchange_pieces(
    exchange: *mut ps_exchange,
    now_us: u64,
    pieces: *mut ps_piece,
    cap: usize,
    count: *mut usize,
    wait_us: *mut u64,
    state: *mut u32,
) -> ps_status {
    with_exchange(exchange, |c| {
        non_null(pieces, "pieces")?;
        non_null(count, "count")?;
        non_null(wait_us, "wait_us")?;
        non_null(state, "state")?;
        if cap == 0 {
            return Err(Failure::invalid("cap is 0"));
        }
        let mut n = 0usize;
        let taken = c.exchange.take_each(now_us, cap, |p| {
            let raw = match p {
                Piece::Bytes(b) => ps_piece {
                    data: b.as_ptr(),
                    offset: 0,
                    length: b.len() as u64,
                },
                Piece::File { offset, len } => ps_piece {
                    data: std::ptr::null(),
                    offset,
                    length: len,
                },
            };
            // SAFETY: at most `cap` pieces are handed out, and the caller
            // promises room for `cap`.
            unsafe { pieces.add(n).write(raw) };
            n += 1;
        })?;
        let (w, st) = match taken {
            Take::Pieces(..) => (0, ps_fill_state::PS_FILL_DATA),
            Take::Wait(us) => (us, ps_fill_state::PS_FILL_WAIT),
            Take::Done => (0, ps_fill_state::PS_FILL_DONE),
        };
        put(count, n);
        put(wait_us, w);
        put(state, st as u32);
        Ok(())
    })
}

/// The next body bytes copied into `buf` (`cap` > 0), file bytes read with
/// pread, as far as pacing allows at `now_us`: as ps_stream_fill.
#[no_mangle]
pub extern "C" fn ps_exchange_fill(
    exchange: *mut ps_exchange,
    buf: *mut u8,
    cap: usize,
    now_us: u64,
    written: *mut usize,
    wait_us: *mut u64,
    state: *mut u32,
) -> ps_status {
    with_exchange(exchange, |c| {
        let buf = fill_buffer(buf, cap, written, wait_us, state)?;
        let fill = c.exchange.fill(buf, now_us)?;
        put_fill(fill, written, wait_us, state);
        Ok(())
    })
}

/// Releases an exchange. NULL is a no-op.
#[no_mangle]
pub extern "C" fn ps_exchange_free(exchange: *mut ps_exchange) {
    guard_value((), || ps_exchange::free(exchange))
}
