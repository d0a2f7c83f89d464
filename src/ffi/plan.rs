//! Plans: what to send for one request, and HTTP semantics over them.

use std::ffi::{c_char, CString};

use super::boundary::{
    copy_out_str, guard, guard_value, handle, non_null, opt_c_str, put, Failure, Handle,
};
use super::media::ps_media;
use super::ps_status;
use super::request::{options_or_default, ps_options, ps_request};
use crate::plan::{Conditions, Plan, Request, Response};

/// A plan together with its ETag as a C string.
pub(crate) struct PlanCell {
    pub plan: Plan,
    etag: CString,
}

/// What to send for one request: prefix bytes owned by the plan, then one
/// file range. Immutable: share it freely between threads.
pub struct ps_plan {
    magic: u64,
    pub(crate) inner: PlanCell,
}

handle!(ps_plan, PlanCell, 0x7073_706c_616e_2121);

/// A plan's figures.
#[repr(C)]
pub struct ps_plan_info {
    /// Bytes in the whole response: prefix_length + (file_to - file_from).
    pub length: u64,
    pub prefix_length: u64,
    /// The file range [file_from, file_to) sent after the prefix.
    pub file_from: u64,
    pub file_to: u64,
    /// Media time the response starts and ends at, milliseconds.
    pub start_ms: u64,
    pub end_ms: u64,
    /// Pacing resolved for this media: burst bytes, then bytes per second
    /// (0 = unpaced). What a response gets is in ps_response.
    pub burst_bytes: u64,
    pub rate_bytes_per_s: u64,
    /// 1 when the response is the file exactly as stored (0 for a virtual
    /// file with rewritten metadata).
    pub whole_file: u32,
    /// One of ps_format.
    pub format: u32,
}

/// The answer to a request's preconditions and Range.
#[repr(C)]
pub struct ps_response {
    /// HTTP status: 200, 206, 304, 412 or 416.
    pub status: u32,
    pub reserved: u32,
    /// The window of the plan's response to send (0, 0 for 304/412/416).
    pub first: u64,
    pub length: u64,
    /// How to pace this window: burst_bytes from its first byte, then
    /// rate_bytes_per_s (0 = unpaced). The library's one policy: every
    /// 200/206 body is paced by its plan, Range and If-Range included;
    /// 304/412/416 get 0. ps_stream_new applies the same pacing; hosts that
    /// send with sendfile pass these to ps_pacer_new.
    pub burst_bytes: u64,
    pub rate_bytes_per_s: u64,
}

/// Where a window of the response comes from.
#[repr(C)]
pub struct ps_slice {
    /// Prefix bytes [prefix_from, prefix_to) (see ps_plan_prefix)...
    pub prefix_from: u64,
    pub prefix_to: u64,
    /// ...then file bytes [file_from, file_to).
    pub file_from: u64,
    pub file_to: u64,
}

/// Resolves `request` (NULL: the whole file) against `media` under `options`
/// (NULL: defaults). Reads a few tag headers when the request has an end.
/// Errors: PS_ERR_RANGE_NOT_SATISFIABLE for starts past the end or reversed
/// start/end, PS_ERR_BAD_REQUEST for out-of-limit values. On success `*out`
/// receives a plan to free with ps_plan_free. Thread-safe.
#[no_mangle]
pub extern "C" fn ps_plan_new(
    media: *const ps_media,
    options: *const ps_options,
    request: *const ps_request,
    out: *mut *mut ps_plan,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let media = &ps_media::check(media)?.inner;
        let options = options_or_default(options)?;
        let default_request = Request::default();
        let request = if request.is_null() {
            &default_request
        } else {
            &ps_request::check(request)?.inner
        };
        let plan = media.plan(options, request)?;
        let etag = CString::new(plan.etag.clone()).map_err(|_| Failure::invalid("etag"))?;
        put(out, ps_plan::new(PlanCell { plan, etag }).into_raw());
        Ok(())
    })
}

/// Releases a plan. NULL is a no-op.
#[no_mangle]
pub extern "C" fn ps_plan_free(plan: *mut ps_plan) {
    guard_value((), || ps_plan::free(plan))
}

/// Fills `*out` with the plan's figures.
#[no_mangle]
pub extern "C" fn ps_plan_get_info(plan: *const ps_plan, out: *mut ps_plan_info) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let p = &ps_plan::check(plan)?.inner.plan;
        put(
            out,
            ps_plan_info {
                length: p.len(),
                prefix_length: p.prefix.len() as u64,
                file_from: p.file_from,
                file_to: p.file_to,
                start_ms: p.start_ms,
                end_ms: p.end_ms,
                burst_bytes: p.burst_bytes,
                rate_bytes_per_s: p.rate_bytes_per_s,
                whole_file: u32::from(p.whole_file),
                format: p.format as u32,
            },
        );
        Ok(())
    })
}

/// Borrows the prefix bytes: `*data` (NULL when empty) and `*len` stay
/// valid until the plan is freed. Zero-copy for hosts that send it as is.
#[no_mangle]
pub extern "C" fn ps_plan_prefix(
    plan: *const ps_plan,
    data: *mut *const u8,
    len: *mut usize,
) -> ps_status {
    guard(|| {
        non_null(data, "data")?;
        non_null(len, "len")?;
        let prefix = &ps_plan::check(plan)?.inner.plan.prefix;
        put(
            data,
            if prefix.is_empty() {
                std::ptr::null()
            } else {
                prefix.as_ptr()
            },
        );
        put(len, prefix.len());
        Ok(())
    })
}

/// Borrows the plan's strong ETag, quoted and NUL-terminated; valid until
/// the plan is freed. It differs between plans and between file versions.
#[no_mangle]
pub extern "C" fn ps_plan_etag(plan: *const ps_plan, etag: *mut *const c_char) -> ps_status {
    guard(|| {
        non_null(etag, "etag")?;
        put(etag, ps_plan::check(plan)?.inner.etag.as_ptr());
        Ok(())
    })
}

/// Borrows the Content-Type of the response ("video/x-flv", "video/mp4",
/// "audio/mp4" or "video/quicktime"). Static storage.
#[no_mangle]
pub extern "C" fn ps_plan_content_type(
    plan: *const ps_plan,
    content_type: *mut *const c_char,
) -> ps_status {
    guard(|| {
        non_null(content_type, "content_type")?;
        let ct: &'static str = match ps_plan::check(plan)?.inner.plan.content_type() {
            "video/x-flv" => "video/x-flv\0",
            "video/mp4" => "video/mp4\0",
            "audio/mp4" => "audio/mp4\0",
            "video/quicktime" => "video/quicktime\0",
            _ => "application/octet-stream\0",
        };
        put(content_type, ct.as_ptr().cast());
        Ok(())
    })
}

/// Evaluates the request's Range, If-Match, If-None-Match and If-Range
/// header values (NUL-terminated; NULL when the header is absent) in RFC 9110
/// order, for GET or HEAD, and fills `*out`: 200 (whole response), 206 (a
/// window), 304, 412 or 416. Several ranges or a malformed Range header are
/// ignored (200), as RFC 9110 allows.
#[no_mangle]
pub extern "C" fn ps_plan_respond(
    plan: *const ps_plan,
    range: *const c_char,
    if_match: *const c_char,
    if_none_match: *const c_char,
    if_range: *const c_char,
    out: *mut ps_response,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let p = &ps_plan::check(plan)?.inner.plan;
        let c = Conditions {
            range: opt_c_str(range, "range")?,
            if_match: opt_c_str(if_match, "if_match")?,
            if_none_match: opt_c_str(if_none_match, "if_none_match")?,
            if_range: opt_c_str(if_range, "if_range")?,
            ..Conditions::default()
        };
        let r = p.respond(&c);
        put(
            out,
            ps_response {
                status: u32::from(r.status),
                reserved: 0,
                first: r.first,
                length: r.len,
                burst_bytes: r.burst_bytes,
                rate_bytes_per_s: r.rate_bytes_per_s,
            },
        );
        Ok(())
    })
}

/// Writes the Content-Range value for a 206 or 416 response (e.g.
/// "bytes 0-99/1000", or "bytes" then an asterisk and "/1000" for 416) into
/// `buf`, NUL-terminated; other
/// statuses give an empty string. Buffer rules as ps_media_info_json.
#[no_mangle]
pub extern "C" fn ps_plan_content_range(
    plan: *const ps_plan,
    response: *const ps_response,
    buf: *mut c_char,
    cap: usize,
    written: *mut usize,
) -> ps_status {
    guard(|| {
        non_null(response, "response")?;
        let p = &ps_plan::check(plan)?.inner.plan;
        // SAFETY: non-null; the caller promises a ps_response.
        let r = unsafe { &*response };
        let r = Response {
            status: u16::try_from(r.status).map_err(|_| Failure::invalid("status"))?,
            first: r.first,
            len: r.length,
            burst_bytes: r.burst_bytes,
            rate_bytes_per_s: r.rate_bytes_per_s,
        };
        let value = p.content_range(&r).unwrap_or_default();
        copy_out_str(value.as_bytes(), buf, cap, written)
    })
}

/// Where `length` bytes from `first` of the response come from: a part of
/// the prefix, then a file range. For hosts that send the file part with
/// sendfile. PS_ERR_INVALID_ARG when the window is outside the response.
#[no_mangle]
pub extern "C" fn ps_plan_slice(
    plan: *const ps_plan,
    first: u64,
    length: u64,
    out: *mut ps_slice,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let s = ps_plan::check(plan)?.inner.plan.slice(first, length)?;
        put(
            out,
            ps_slice {
                prefix_from: s.prefix_from as u64,
                prefix_to: s.prefix_to as u64,
                file_from: s.file_from,
                file_to: s.file_to,
            },
        );
        Ok(())
    })
}
