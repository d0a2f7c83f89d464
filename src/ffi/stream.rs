//! Streams (buffers filled under a pacing clock) and stand-alone pacers.

use super::boundary::{guard, guard_value, handle, non_null, put, Failure, Handle};
use super::media::ps_media;
use super::plan::ps_plan;
use super::ps_status;
use crate::pacer::{Allowance, Pacer};
use crate::stream::{Fill, Stream};

/// Produces one response, or one window of it. Use from one thread at a
/// time. It keeps its own reference to the media's bytes, so it may
/// outlive the ps_media and ps_plan it was made from (but not a callback
/// source's context).
pub struct ps_stream {
    magic: u64,
    pub(crate) inner: Stream,
}

handle!(ps_stream, Stream, 0x7073_7374_7265_616d);

/// A pacing clock alone, for hosts that send with sendfile: asks how many
/// bytes may go now. Use from one thread at a time.
pub struct ps_pacer {
    magic: u64,
    pub(crate) inner: Pacer,
}

handle!(ps_pacer, Pacer, 0x7073_7061_6365_7221);

/// What ps_stream_fill did.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_fill_state {
    /// `*written` bytes were put in the buffer.
    PS_FILL_DATA = 0,
    /// Ahead of schedule: nothing written; call again after `*wait_us`.
    PS_FILL_WAIT = 1,
    /// The response is complete.
    PS_FILL_DONE = 2,
}

/// A stream of `length` bytes from `first` of `plan`'s response (use the
/// window from ps_plan_respond, or 0 and the plan's length), paced as the
/// plan says. Free with ps_stream_free.
#[no_mangle]
pub extern "C" fn ps_stream_new(
    media: *const ps_media,
    plan: *const ps_plan,
    first: u64,
    length: u64,
    out: *mut *mut ps_stream,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let media = &ps_media::check(media)?.inner;
        let plan = &ps_plan::check(plan)?.inner.plan;
        let stream = media.stream(plan, first, length)?;
        put(out, ps_stream::new(stream).into_raw());
        Ok(())
    })
}

/// Replaces the stream's pacing: burst bytes then bytes per second (0 =
/// unpaced). A stream is already paced by the library's policy (see
/// ps_response); this is for tools and tests, not for host policy.
#[no_mangle]
pub extern "C" fn ps_stream_set_pacing(
    stream: *mut ps_stream,
    burst_bytes: u64,
    rate_bytes_per_s: u64,
) -> ps_status {
    guard(|| {
        ps_stream::check_mut(stream)?
            .inner
            .set_pacing(burst_bytes, rate_bytes_per_s);
        Ok(())
    })
}

/// Fills `buf` (`cap` > 0 bytes) with the next bytes of the response as far
/// as pacing allows at `now_us`, the caller's monotonic clock in
/// microseconds (any origin, never going backwards). Never sleeps. On
/// PS_OK, `*state` is PS_FILL_DATA with `*written` bytes, PS_FILL_WAIT with
/// `*wait_us` to wait, or PS_FILL_DONE; the other out-values are 0. A file
/// that shrank under the stream gives PS_ERR_SOURCE_CHANGED: end the
/// response (the bytes already sent are a prefix of it).
#[no_mangle]
pub extern "C" fn ps_stream_fill(
    stream: *mut ps_stream,
    buf: *mut u8,
    cap: usize,
    now_us: u64,
    written: *mut usize,
    wait_us: *mut u64,
    state: *mut u32,
) -> ps_status {
    guard(|| {
        let buf = fill_buffer(buf, cap, written, wait_us, state)?;
        let s = ps_stream::check_mut(stream)?;
        let fill = s.inner.fill(buf, now_us)?;
        put_fill(fill, written, wait_us, state);
        Ok(())
    })
}

/// The caller's buffer of a fill call, once its out-parameters are checked.
pub(crate) fn fill_buffer<'a>(
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
    wait_us: *mut u64,
    state: *mut u32,
) -> Result<&'a mut [u8], Failure> {
    non_null(buf, "buf")?;
    non_null(written, "written")?;
    non_null(wait_us, "wait_us")?;
    non_null(state, "state")?;
    if cap == 0 {
        return Err(Failure::invalid("cap is 0"));
    }
    // SAFETY: non-null; the caller promises `cap` writable bytes for the
    // call.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf, cap) })
}

/// A fill's outcome in its out-parameters (the others 0).
pub(crate) fn put_fill(fill: Fill, written: *mut usize, wait_us: *mut u64, state: *mut u32) {
    let (n, wait, st) = match fill {
        Fill::Data(n) => (n, 0, ps_fill_state::PS_FILL_DATA),
        Fill::Wait(us) => (0, us, ps_fill_state::PS_FILL_WAIT),
        Fill::Done => (0, 0, ps_fill_state::PS_FILL_DONE),
    };
    put(written, n);
    put(wait_us, wait);
    put(state, st as u32);
}

/// Bytes the stream has still to deliver.
#[no_mangle]
pub extern "C" fn ps_stream_remaining(stream: *const ps_stream, out: *mut u64) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        put(out, ps_stream::check(stream)?.inner.remaining());
        Ok(())
    })
}

/// Releases a stream. NULL is a no-op.
#[no_mangle]
pub extern "C" fn ps_stream_free(stream: *mut ps_stream) {
    guard_value((), || ps_stream::free(stream))
}

/// A pacer allowing `burst_bytes` at once, then `rate_bytes_per_s` (0 =
/// unpaced). Its clock starts at the first ps_pacer_allow.
#[no_mangle]
pub extern "C" fn ps_pacer_new(
    burst_bytes: u64,
    rate_bytes_per_s: u64,
    out: *mut *mut ps_pacer,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        put(
            out,
            ps_pacer::new(Pacer::new(burst_bytes, rate_bytes_per_s)).into_raw(),
        );
        Ok(())
    })
}

/// How many of `want` bytes may be sent at `now_us`: `*allowed` > 0 with
/// `*wait_us` 0, or `*allowed` 0 and the microseconds to wait. Report what
/// was actually sent with ps_pacer_consume.
#[no_mangle]
pub extern "C" fn ps_pacer_allow(
    pacer: *mut ps_pacer,
    now_us: u64,
    want: u64,
    allowed: *mut u64,
    wait_us: *mut u64,
) -> ps_status {
    guard(|| {
        non_null(allowed, "allowed")?;
        non_null(wait_us, "wait_us")?;
        let p = ps_pacer::check_mut(pacer)?;
        let (a, w) = match p.inner.allow(now_us, want) {
            Allowance::Send(n) => (n, 0),
            Allowance::Wait(us) => (0, us),
        };
        put(allowed, a);
        put(wait_us, w);
        Ok(())
    })
}

/// For hosts that send the file part with sendfile: past the burst, ends
/// every piece but the last on a multiple of `page` (the system's page
/// size; 0 = off) in the file. The paced window is `prefix_bytes` of the
/// prefix, then the file from `file_from` (ps_plan_slice's prefix length
/// and file_from). Linux sendfile pushes a piece from the middle of a page
/// in two writes, and flv.js 1.6 and mpegts.js 1.8 mishandle a read that
/// ends on a lone FLV tag. The schedule is unchanged. Call it before the
/// first ps_pacer_allow.
#[no_mangle]
pub extern "C" fn ps_pacer_align_file_pages(
    pacer: *mut ps_pacer,
    prefix_bytes: u64,
    file_from: u64,
    page: u64,
) -> ps_status {
    guard(|| {
        ps_pacer::check_mut(pacer)?
            .inner
            .align_file_pages(prefix_bytes, file_from, page);
        Ok(())
    })
}

/// Records `sent` bytes as sent.
#[no_mangle]
pub extern "C" fn ps_pacer_consume(pacer: *mut ps_pacer, sent: u64) -> ps_status {
    guard(|| {
        ps_pacer::check_mut(pacer)?.inner.consume(sent);
        Ok(())
    })
}

/// Releases a pacer. NULL is a no-op.
#[no_mangle]
pub extern "C" fn ps_pacer_free(pacer: *mut ps_pacer) {
    guard_value((), || ps_pacer::free(pacer))
}
