//! Host options and requests.

use std::ffi::c_char;
use std::sync::OnceLock;

use super::boundary::{
    c_str, guard, guard_value, handle, non_null, put, Failure, FfiResult, Handle,
};
use super::ps_status;
use crate::config::Config;
use crate::plan::{Burst, Rate};
use crate::plan::{CutMode, MetadataMode, Options, Position, PrefixMode, Request, StartUnit};
use crate::query;

/// How a host serves: prefix mode, start unit, parameter names, pacing,
/// CORS, Cache-Control. Configure it once, then share it read-only between
/// threads; setters need exclusive access.
pub struct ps_options {
    magic: u64,
    pub(crate) inner: Config,
}

handle!(ps_options, Config, 0x7073_6f70_7469_6f6e);

/// One parsed request. Single-threaded while being built; read-only after.
pub struct ps_request {
    magic: u64,
    pub(crate) inner: Request,
}

handle!(ps_request, Request, 0x7073_7265_7175_6573);

/// What precedes the file bytes of a seek.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_prefix_mode {
    /// Raw file bytes from the exact offset (flv.js bstart/bend).
    PS_PREFIX_NONE = 0,
    /// The 13-byte FLV header (what nginx's flv module sends).
    PS_PREFIX_HEADER = 1,
    /// Header and codec configuration: a standalone, decodable stream. Default.
    PS_PREFIX_INIT = 2,
    /// Like INIT, plus an onMetaData describing the new stream.
    PS_PREFIX_FULL = 3,
}

/// Units of positions.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_unit {
    PS_UNIT_BYTES = 0,
    /// For the query's start/end parameters (ps_options_set_start_unit).
    PS_UNIT_SECONDS = 1,
    /// For positions set directly on a request.
    PS_UNIT_MILLISECONDS = 2,
}

/// Query parameters whose names a host may change.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_param {
    /// "start"
    PS_PARAM_START = 0,
    /// "end"
    PS_PARAM_END = 1,
    /// "ib": CDN jump-to-byte initial bytes
    PS_PARAM_INITIAL_BYTES = 2,
    /// "fs": CDN jump-to-byte file start
    PS_PARAM_FILE_START = 3,
    /// "bstart": flv.js byte start
    PS_PARAM_BYTE_START = 4,
    /// "bend": flv.js byte end (inclusive)
    PS_PARAM_BYTE_END = 5,
    /// "ri": burst bytes
    PS_PARAM_BURST = 6,
    /// "rs": sustained rate in kbit/s
    PS_PARAM_RATE = 7,
}

/// When files are served with their keyframes listed in a rewritten
/// onMetaData (a "virtual file"; byte positions then refer to it).
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_metadata_mode {
    /// Every file as stored.
    PS_METADATA_OFF = 0,
    /// Rewrite when keyframes are absent from the metadata or do not match
    /// the file. Default.
    PS_METADATA_MISSING = 1,
    /// Rewrite every file that has seek points.
    PS_METADATA_ALWAYS = 2,
}

fn prefix_mode(mode: u32) -> FfiResult<PrefixMode> {
    PrefixMode::from_u32(mode).ok_or_else(|| Failure::invalid(format!("prefix mode {mode}")))
}

fn position(unit: u32, value: u64) -> FfiResult<Position> {
    match unit {
        0 => Ok(Position::Bytes(value)),
        2 => Ok(Position::Millis(value)),
        1 => value
            .checked_mul(1000)
            .map(Position::Millis)
            .ok_or_else(|| Failure::invalid("seconds overflow")),
        _ => Err(Failure::invalid(format!("unit {unit}"))),
    }
}

/// The configuration behind `options`, or the defaults for NULL.
pub(crate) fn config_or_default<'a>(options: *const ps_options) -> FfiResult<&'a Config> {
    static DEFAULTS: OnceLock<Config> = OnceLock::new();
    if options.is_null() {
        return Ok(DEFAULTS.get_or_init(Config::default));
    }
    Ok(&ps_options::check(options)?.inner)
}

/// The plan options behind `options`, or the defaults for NULL.
pub(crate) fn options_or_default<'a>(options: *const ps_options) -> FfiResult<&'a Options> {
    Ok(&config_or_default(options)?.plan)
}

/// Runs `f` on the plan options behind `options`.
fn with_options(options: *mut ps_options, f: impl FnOnce(&mut Options) -> FfiResult) -> ps_status {
    guard(|| {
        let config = &mut ps_options::check_mut(options)?.inner;
        f(&mut config.plan)?;
        config.touch();
        Ok(())
    })
}

/// Runs `f` on the request behind `request`.
fn with_request(request: *mut ps_request, f: impl FnOnce(&mut Request) -> FfiResult) -> ps_status {
    guard(|| f(&mut ps_request::check_mut(request)?.inner))
}

/// New options with the defaults: prefix INIT, start in bytes, parameter
/// names start/end/ib/fs/bstart/bend/ri/rs, pacing off (burst 3 s of media
/// once a rate is set), client pacing (ri/rs) allowed. Free with
/// ps_options_free.
#[no_mangle]
pub extern "C" fn ps_options_new(out: *mut *mut ps_options) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        put(out, ps_options::new(Config::default()).into_raw());
        Ok(())
    })
}

/// Sets one option by name, from strings (NUL-terminated UTF-8): the one
/// vocabulary every host maps its configuration onto. Keys: prefix,
/// start_unit, metadata, cut, rate, burst, burst_bytes, burst_time,
/// burst_seconds, client_pacing, cors, cache_control, param (or
/// param_start … param_rs), mp4_max_moov_size, index_cache; read without
/// regard to case, with '-', '.' and ':' as '_' and camelCase as
/// snake_case. Values as the README lists them ("auto:1.25", "3s",
/// "64m", "https://a.example"). `mp4_max_moov_size` and `index_cache` are
/// process-wide and take effect at once (`options` may then be NULL). A bad
/// key or value is PS_ERR_INVALID_ARG, with a ps_last_error() that names
/// both, and changes nothing.
#[no_mangle]
pub extern "C" fn ps_options_set(
    options: *mut ps_options,
    key: *const c_char,
    value: *const c_char,
) -> ps_status {
    guard(|| {
        let key = c_str(key, "key")?;
        let value = c_str(value, "value")?;
        if options.is_null() {
            // Only process-wide keys apply without options.
            let mut scratch = Config::default();
            scratch.set(key, value)?;
            if scratch != Config::default() {
                return Err(Failure::invalid(format!(
                    "option '{key}' belongs to a ps_options: options is NULL"
                )));
            }
            return Ok(());
        }
        let config = &mut ps_options::check_mut(options)?.inner;
        let mut changed = config.clone();
        changed.set(key, value)?;
        *config = changed;
        Ok(())
    })
}

/// Lists every option key with the values it takes, one per line
/// (NUL-terminated), for a host's help text. Buffer rules as
/// ps_media_info_json.
#[no_mangle]
pub extern "C" fn ps_options_describe(
    buf: *mut c_char,
    cap: usize,
    written: *mut usize,
) -> ps_status {
    guard(|| super::boundary::copy_out_str(Config::describe().as_bytes(), buf, cap, written))
}

/// Releases options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn ps_options_free(options: *mut ps_options) {
    guard_value((), || ps_options::free(options))
}

/// Sets the default prefix mode (one of ps_prefix_mode).
#[no_mangle]
pub extern "C" fn ps_options_set_prefix_mode(options: *mut ps_options, mode: u32) -> ps_status {
    with_options(options, |o| {
        o.prefix = prefix_mode(mode)?;
        Ok(())
    })
}

/// Sets the unit of the start/end query parameters: PS_UNIT_BYTES (default)
/// or PS_UNIT_SECONDS.
#[no_mangle]
pub extern "C" fn ps_options_set_start_unit(options: *mut ps_options, unit: u32) -> ps_status {
    with_options(options, |o| {
        o.start_unit = match unit {
            0 => StartUnit::Bytes,
            1 => StartUnit::Seconds,
            _ => return Err(Failure::invalid(format!("start unit {unit}"))),
        };
        Ok(())
    })
}

/// Renames a query parameter (one of ps_param); an empty name turns the
/// parameter off. `name` is NUL-terminated UTF-8 and copied. A name another
/// parameter already has is PS_ERR_INVALID_ARG (rename that one first).
#[no_mangle]
pub extern "C" fn ps_options_set_param_name(
    options: *mut ps_options,
    param: u32,
    name: *const c_char,
) -> ps_status {
    with_options(options, |o| {
        let name = c_str(name, "name")?.to_string();
        let n = &mut o.names;
        let taken = [
            &n.start,
            &n.end,
            &n.initial_bytes,
            &n.file_start,
            &n.byte_start,
            &n.byte_end,
            &n.burst,
            &n.rate,
        ]
        .iter()
        .enumerate()
        .any(|(i, other)| i as u32 != param && !name.is_empty() && **other == name);
        if taken {
            return Err(Failure::invalid(format!(
                "parameter name '{name}' is already used by another parameter"
            )));
        }
        let slot = match param {
            0 => &mut n.start,
            1 => &mut n.end,
            2 => &mut n.initial_bytes,
            3 => &mut n.file_start,
            4 => &mut n.byte_start,
            5 => &mut n.byte_end,
            6 => &mut n.burst,
            7 => &mut n.rate,
            _ => return Err(Failure::invalid(format!("parameter {param}"))),
        };
        *slot = name;
        Ok(())
    })
}

/// Sets the pacing burst in bytes.
#[no_mangle]
pub extern "C" fn ps_options_set_burst_bytes(options: *mut ps_options, bytes: u64) -> ps_status {
    with_options(options, |o| {
        o.pacing.burst = Burst::Bytes(bytes);
        Ok(())
    })
}

/// Sets the pacing burst in milliseconds of media (via the average bitrate).
#[no_mangle]
pub extern "C" fn ps_options_set_burst_ms(options: *mut ps_options, media_ms: u64) -> ps_status {
    with_options(options, |o| {
        o.pacing.burst = Burst::MediaMillis(media_ms);
        Ok(())
    })
}

/// Sets a fixed sustained rate in bytes per second; 0 turns pacing off.
#[no_mangle]
pub extern "C" fn ps_options_set_rate(options: *mut ps_options, bytes_per_s: u64) -> ps_status {
    with_options(options, |o| {
        o.pacing.rate = if bytes_per_s == 0 {
            Rate::Off
        } else {
            Rate::BytesPerSecond(bytes_per_s)
        };
        Ok(())
    })
}

/// Sets the sustained rate to the media's average bitrate times
/// `permille`/1000 (1250 = 1.25×, the usual choice); 0 is invalid.
#[no_mangle]
pub extern "C" fn ps_options_set_rate_auto(options: *mut ps_options, permille: u32) -> ps_status {
    with_options(options, |o| {
        if permille == 0 {
            return Err(Failure::invalid("auto rate factor 0"));
        }
        o.pacing.rate = Rate::Auto { permille };
        Ok(())
    })
}

/// Sets when files are served with keyframes listed in a rewritten
/// onMetaData (one of ps_metadata_mode; default PS_METADATA_MISSING). Such a
/// "virtual file" is the file's header, an onMetaData with keyframes,
/// duration and filesize in its own byte coordinates, then the file's tags
/// unchanged; every byte position a client sends refers to it.
#[no_mangle]
pub extern "C" fn ps_options_set_metadata(options: *mut ps_options, mode: u32) -> ps_status {
    with_options(options, |o| {
        o.metadata = MetadataMode::from_u32(mode)
            .ok_or_else(|| Failure::invalid(format!("metadata mode {mode}")))?;
        Ok(())
    })
}

/// Where MP4 cuts begin to be presented.
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum ps_cut_mode {
    /// At the requested start: edit lists hide the frames from the keyframe
    /// up to it. Default.
    PS_CUT_EXACT = 0,
    /// At the keyframe at or before the start, with nothing hidden, for
    /// players that ignore edit lists.
    PS_CUT_KEYFRAME = 1,
}

/// Sets where MP4 cuts begin (one of ps_cut_mode; default PS_CUT_EXACT).
/// Either way the data starts at a keyframe and every track starts with it.
#[no_mangle]
pub extern "C" fn ps_options_set_cut_mode(options: *mut ps_options, mode: u32) -> ps_status {
    with_options(options, |o| {
        o.cut =
            CutMode::from_u32(mode).ok_or_else(|| Failure::invalid(format!("cut mode {mode}")))?;
        Ok(())
    })
}

/// Whether requests may set pacing with ri/rs (1, default) or not (0).
#[no_mangle]
pub extern "C" fn ps_options_set_client_pacing(options: *mut ps_options, allow: u32) -> ps_status {
    with_options(options, |o| {
        o.client_pacing = allow != 0;
        Ok(())
    })
}

/// Parses a query string (`len` bytes, without the leading '?', need not be
/// NUL-terminated; NULL with len 0 is an empty query) under `options` (NULL:
/// defaults). Garbage, negative, overflowing or repeated values give
/// PS_ERR_BAD_REQUEST. On success `*out` receives a request to free with
/// ps_request_free.
#[no_mangle]
pub extern "C" fn ps_request_parse(
    options: *const ps_options,
    query: *const c_char,
    len: usize,
    out: *mut *mut ps_request,
) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        let options = options_or_default(options)?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            non_null(query, "query")?;
            // SAFETY: non-null; the caller promises `len` readable bytes.
            unsafe { std::slice::from_raw_parts(query.cast::<u8>(), len) }
        };
        let request = query::parse(bytes, options)?;
        put(out, ps_request::new(request).into_raw());
        Ok(())
    })
}

/// A request for the whole file, to refine with the setters below.
#[no_mangle]
pub extern "C" fn ps_request_new(out: *mut *mut ps_request) -> ps_status {
    guard(|| {
        non_null(out, "out")?;
        put(out, ps_request::new(Request::default()).into_raw());
        Ok(())
    })
}

/// Releases a request. NULL is a no-op.
#[no_mangle]
pub extern "C" fn ps_request_free(request: *mut ps_request) {
    guard_value((), || ps_request::free(request))
}

/// Sets the start: PS_UNIT_BYTES (file offset), PS_UNIT_SECONDS or
/// PS_UNIT_MILLISECONDS (media time).
#[no_mangle]
pub extern "C" fn ps_request_set_start(
    request: *mut ps_request,
    unit: u32,
    value: u64,
) -> ps_status {
    with_request(request, |r| {
        r.start = Some(position(unit, value)?);
        Ok(())
    })
}

/// Sets the end: bytes are an inclusive offset; times end before the first
/// tag at or past them.
#[no_mangle]
pub extern "C" fn ps_request_set_end(request: *mut ps_request, unit: u32, value: u64) -> ps_status {
    with_request(request, |r| {
        r.end = Some(position(unit, value)?);
        Ok(())
    })
}

/// Overrides the options' prefix mode for this request.
#[no_mangle]
pub extern "C" fn ps_request_set_prefix_mode(request: *mut ps_request, mode: u32) -> ps_status {
    with_request(request, |r| {
        r.prefix = Some(prefix_mode(mode)?);
        Ok(())
    })
}

/// CDN jump-to-byte: the response begins with the file's first `bytes`
/// bytes, then continues at the (snapped) start.
#[no_mangle]
pub extern "C" fn ps_request_set_initial_bytes(request: *mut ps_request, bytes: u64) -> ps_status {
    with_request(request, |r| {
        r.initial_bytes = Some(bytes);
        Ok(())
    })
}
