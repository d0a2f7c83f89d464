//! Seek plans: a request resolved against a media index into the bytes a
//! host sends: a body of pieces, most often a prefix the library owns and
//! then one range of the file.

pub mod body;
mod flv;
mod flv_mp4;
pub mod http;
mod mp4;
mod pacing;
mod prefix;
pub mod range;

pub use body::{Body, Piece};
pub(crate) use body::{Part, PieceRun};
pub use http::{Conditions, Response};
pub use pacing::{Burst, Pacing, Rate};
pub use prefix::Prefix;
pub use range::RangeOutcome;

use crate::error::{Error, Result};
use std::sync::Arc;

use crate::fnv::Fnv;
use crate::format::Format;
use crate::index::MediaIndex;
use crate::source::{ByteSource, SourceIdentity, SourceKey};

/// A point in the media: a byte offset in the file or a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Bytes(u64),
    Millis(u64),
    /// A `start`/`end` number from a query whose host counts in bytes:
    /// formats seeked by byte (FLV) read it as bytes, formats seeked only by
    /// time (MP4) as seconds. Either reading may be impossible (`12.5` is
    /// no byte offset).
    Unitless {
        bytes: Option<u64>,
        millis: Option<u64>,
    },
}

impl Position {
    /// This position as the format reads it.
    fn for_format(self, format: Format, name: &str) -> Result<Position> {
        match (self, format) {
            (Position::Unitless { bytes, .. }, Format::Flv) => {
                bytes.map(Position::Bytes).ok_or_else(|| {
                    Error::bad_request(format!("'{name}' must be a non-negative integer"))
                })
            }
            (Position::Unitless { millis, .. }, Format::Mp4) => millis
                .map(Position::Millis)
                .ok_or_else(|| Error::bad_request(format!("'{name}' overflows"))),
            (p, _) => Ok(p),
        }
    }
}

/// Where an MP4 cut's presentation begins. Numbers are part of the C ABI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u32)]
pub enum CutMode {
    /// At the requested time: an edit list hides the frames from the
    /// keyframe up to it (as `ffmpeg -ss T -c copy` does).
    #[default]
    Exact = 0,
    /// At the keyframe, with no pre-roll hidden, for players that ignore
    /// edit lists.
    Keyframe = 1,
}

impl CutMode {
    pub fn from_u32(v: u32) -> Option<CutMode> {
        Some(match v {
            0 => CutMode::Exact,
            1 => CutMode::Keyframe,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CutMode::Exact => "exact",
            CutMode::Keyframe => "keyframe",
        }
    }

    pub fn parse(s: &str) -> Option<CutMode> {
        [CutMode::Exact, CutMode::Keyframe]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// What goes before the file bytes of a seek. Numbers are part of the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PrefixMode {
    /// Raw file bytes from the exact offset (flv.js `bstart`/`bend`).
    None = 0,
    /// The 13-byte FLV header, as nginx's flv module sends.
    Header = 1,
    /// Header and codec configuration: a standalone stream decoders accept.
    Init = 2,
    /// Like `Init`, plus an onMetaData describing the new stream.
    Full = 3,
}

impl PrefixMode {
    pub fn from_u32(v: u32) -> Option<PrefixMode> {
        Some(match v {
            0 => PrefixMode::None,
            1 => PrefixMode::Header,
            2 => PrefixMode::Init,
            3 => PrefixMode::Full,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            PrefixMode::None => "none",
            PrefixMode::Header => "header",
            PrefixMode::Init => "init",
            PrefixMode::Full => "full",
        }
    }

    pub fn parse(s: &str) -> Option<PrefixMode> {
        [
            PrefixMode::None,
            PrefixMode::Header,
            PrefixMode::Init,
            PrefixMode::Full,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }
}

/// When a file is served with a rewritten onMetaData listing its keyframes
/// (a "virtual file"). Numbers are part of the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MetadataMode {
    /// Every file as it is stored.
    Off = 0,
    /// Rewrite when the file's metadata has no keyframes, or keyframes that
    /// do not match the file.
    Missing = 1,
    /// Rewrite every file that has seek points.
    Always = 2,
}

impl MetadataMode {
    pub fn from_u32(v: u32) -> Option<MetadataMode> {
        Some(match v {
            0 => MetadataMode::Off,
            1 => MetadataMode::Missing,
            2 => MetadataMode::Always,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MetadataMode::Off => "off",
            MetadataMode::Missing => "missing",
            MetadataMode::Always => "always",
        }
    }

    pub fn parse(s: &str) -> Option<MetadataMode> {
        [
            MetadataMode::Off,
            MetadataMode::Missing,
            MetadataMode::Always,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }
}

/// Unit of the `start`/`end` query parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum StartUnit {
    /// Byte offsets: nginx, lighttpd, JW Player, Flowplayer.
    Bytes = 0,
    /// Seconds with up to millisecond precision: CDN jump-to-time.
    Seconds = 1,
}

/// Query parameter names a host listens to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamNames {
    pub start: String,
    pub end: String,
    /// CDN jump-to-byte: the first `ib` bytes of the file...
    pub initial_bytes: String,
    /// ...then the file from `fs`.
    pub file_start: String,
    /// flv.js `seekType: 'param'`: raw bytes from `bstart` to `bend` inclusive.
    pub byte_start: String,
    pub byte_end: String,
    /// Burst bytes.
    pub burst: String,
    /// Sustained rate, kbit/s.
    pub rate: String,
    /// What an FLV is served as: `flv` or `mp4`.
    pub format: String,
}

impl Default for ParamNames {
    fn default() -> Self {
        ParamNames {
            start: "start".into(),
            end: "end".into(),
            initial_bytes: "ib".into(),
            file_start: "fs".into(),
            byte_start: "bstart".into(),
            byte_end: "bend".into(),
            burst: "ri".into(),
            rate: "rs".into(),
            format: "format".into(),
        }
    }
}

/// How a host serves: defaults for requests that do not say otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub prefix: PrefixMode,
    pub start_unit: StartUnit,
    pub names: ParamNames,
    pub pacing: Pacing,
    /// Whether `ri`/`rs` in a request may set the pacing.
    pub client_pacing: bool,
    /// Whether files are served with keyframes listed in their metadata.
    pub metadata: MetadataMode,
    /// Where MP4 cuts begin to be presented.
    pub cut: CutMode,
    /// What FLV files are served as when a request does not say.
    pub flv_output: Output,
    /// Whether an MP4 stored with its `moov` after the media data is served
    /// whole with the `moov` first (as `qt-faststart` would lay it out).
    pub faststart: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: PrefixMode::Init,
            start_unit: StartUnit::Bytes,
            names: ParamNames::default(),
            pacing: Pacing::default(),
            client_pacing: true,
            metadata: MetadataMode::Missing,
            cut: CutMode::Exact,
            faststart: true,
            flv_output: Output::Flv,
        }
    }
}

/// Largest `ib` honoured: the prefix is held in memory.
pub const MAX_INITIAL_BYTES: u64 = 16 * 1024 * 1024;

/// One request, as parsed from a query or built by a host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub start: Option<Position>,
    /// Bytes: inclusive offset. Time: the cut ends before the first tag at or
    /// past it.
    pub end: Option<Position>,
    /// Overrides `Options::prefix`.
    pub prefix: Option<PrefixMode>,
    /// CDN jump-to-byte: these first bytes of the file form the prefix.
    pub initial_bytes: Option<u64>,
    pub burst_bytes: Option<u64>,
    pub rate_bytes_per_s: Option<u64>,
    /// Overrides `Options::flv_output`.
    pub output: Option<Output>,
}

impl Request {
    /// Whether an FLV is to be served as MP4 under `options`.
    pub fn wants_mp4(&self, options: &Options) -> bool {
        self.output.unwrap_or(options.flv_output) == Output::Mp4
    }
}

/// What an FLV file is served as. Numbers are part of the C ABI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u32)]
pub enum Output {
    /// As FLV (seeks, virtual file).
    #[default]
    Flv = 0,
    /// As a progressive MP4 made from its samples.
    Mp4 = 1,
}

impl Output {
    pub fn name(self) -> &'static str {
        match self {
            Output::Flv => "flv",
            Output::Mp4 => "mp4",
        }
    }

    pub fn parse(s: &str) -> Option<Output> {
        [Output::Flv, Output::Mp4]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// What a host sends for one request.
#[derive(Clone, Debug)]
pub struct Plan {
    pub format: Format,
    pub content_type: &'static str,
    /// Bytes before the file range (header, codec configuration, metadata).
    pub prefix: Prefix,
    /// The file range `[file_from, file_to)` the body goes on with. Most
    /// plans send it as stored; a fragmented MP4 cut replaces a few fields
    /// in it (see `body`).
    pub file_from: u64,
    pub file_to: u64,
    /// The bytes to send, as pieces: the prefix, then the file range (as
    /// stored, or with fields replaced).
    pub body: Body,
    /// Media time the response starts and ends at, milliseconds: the
    /// source's time at the response's 0 (a player adds it to its clock to
    /// show the source's time), and where the response ends.
    pub start_ms: u64,
    pub end_ms: u64,
    /// Pacing resolved against the media: burst bytes, then bytes per second
    /// (0 = unpaced).
    pub burst_bytes: u64,
    pub rate_bytes_per_s: u64,
    /// Strong validator, quoted; differs between plans of one file and
    /// between versions of the file.
    pub etag: String,
    /// The response is the file as it is on disk.
    pub whole_file: bool,
    /// The file's modification time, seconds since the epoch, when the
    /// source is a file (the Last-Modified of every response made from it).
    pub last_modified: Option<i64>,
}

impl PartialEq for Plan {
    /// Plans are equal when they send the same bytes the same way; the
    /// body is what the other fields describe.
    fn eq(&self, other: &Plan) -> bool {
        self.format == other.format
            && self.content_type == other.content_type
            && self.prefix == other.prefix
            && self.file_from == other.file_from
            && self.file_to == other.file_to
            && self.start_ms == other.start_ms
            && self.end_ms == other.end_ms
            && self.burst_bytes == other.burst_bytes
            && self.rate_bytes_per_s == other.rate_bytes_per_s
            && self.etag == other.etag
            && self.whole_file == other.whole_file
            && self.last_modified == other.last_modified
    }
}

impl Eq for Plan {}

/// Where a byte window of a plan's response comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// Prefix bytes `[prefix_from, prefix_to)`.
    pub prefix_from: usize,
    pub prefix_to: usize,
    /// Then file bytes `[file_from, file_to)`.
    pub file_from: u64,
    pub file_to: u64,
}

impl Plan {
    /// Length of the whole response.
    pub fn len(&self) -> u64 {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Applies a Range header to this response.
    pub fn range(&self, header: Option<&str>) -> RangeOutcome {
        range::resolve(header, self.len())
    }

    /// The prefix and file bytes that make up `len` bytes from `first`, for
    /// plans whose body is the prefix and the file range as stored (every
    /// plan but a fragmented MP4 cut, whose pieces only the body lists).
    pub fn slice(&self, first: u64, len: u64) -> Result<Slice> {
        if !self.body.is_prefix_and_range() {
            return Err(Error::InvalidArgument(
                "this response is not its prefix and one file range as stored: take its \
                 pieces from the body (ps_exchange_pieces, ps_stream_fill)"
                    .into(),
            ));
        }
        let end = first
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "window {first}+{len} outside a response of {} bytes",
                    self.len()
                ))
            })?;
        let plen = self.prefix.len() as u64;
        Ok(Slice {
            prefix_from: first.min(plen) as usize,
            prefix_to: end.min(plen) as usize,
            file_from: self.file_from + first.saturating_sub(plen),
            file_to: self.file_from + end.saturating_sub(plen),
        })
    }
}

/// Resolves a request against a media index.
pub(crate) fn resolve(
    index: &MediaIndex,
    src: &dyn ByteSource,
    options: &Options,
    request: &Request,
) -> Result<Plan> {
    if let MediaIndex::Mp4View(view) = index {
        // A view planned for a request that wants the file as it is.
        if view.flv.is_none() || !request.wants_mp4(options) {
            return resolve(&view.base, src, options, request);
        }
    }
    let info = index.info();
    let mut request = request.clone();
    request.start = request
        .start
        .map(|p| p.for_format(info.format, &options.names.start))
        .transpose()?;
    request.end = request
        .end
        .map(|p| p.for_format(info.format, &options.names.end))
        .transpose()?;
    let request = &request;
    let mode = request.prefix.unwrap_or(options.prefix);
    let cut = match index {
        MediaIndex::Flv(flv_index) => {
            flv::resolve(flv_index, src, request, mode, options.metadata)?
        }
        MediaIndex::Mp4(mp4_index) => {
            mp4::resolve(mp4_index, src, request, options.cut, options.faststart)?
        }
        MediaIndex::Mp4View(view) => match &view.flv {
            Some(flv) => flv_mp4::resolve(flv, request, options.cut)?,
            None => return resolve(&view.base, src, options, request),
        },
    };
    let (burst_bytes, rate_bytes_per_s) =
        pacing(options, request, info.bitrate_bps, cut.prefix.len() as u64);
    let whole_file = cut.prefix.is_empty()
        && cut.from == 0
        && cut.to == info.size
        && matches!(cut.rest, Rest::Stored);
    let mut body = Body::new();
    body.push(Part::Bytes(cut.prefix.clone()));
    match cut.rest {
        Rest::Stored => body.push(Part::File {
            from: cut.from,
            to: cut.to,
        }),
        Rest::Patched(run) => body.push(Part::Run(run)),
        Rest::Laid(parts) => parts.into_iter().for_each(|p| body.push(p)),
    }
    let identity = src.identity();
    let etag = etag(&identity, &body, whole_file);
    let last_modified = last_modified(&identity);
    Ok(Plan {
        format: info.format,
        content_type: index.content_type(),
        prefix: cut.prefix,
        file_from: cut.from,
        file_to: cut.to,
        body,
        start_ms: cut.start_ms,
        end_ms: cut.end_ms,
        burst_bytes,
        rate_bytes_per_s,
        etag,
        whole_file,
        last_modified,
    })
}

/// The file as stored, for a file no format can index: nothing to seek or
/// rewrite, but Range, validators and a fixed pacing rate apply (an `auto`
/// rate has no bitrate to go by, so it leaves the file unpaced).
pub fn as_stored(
    src: &dyn ByteSource,
    content_type: &'static str,
    options: &Options,
    request: &Request,
) -> Plan {
    let size = src.size();
    let mut body = Body::new();
    body.push(Part::File { from: 0, to: size });
    let identity = src.identity();
    let (burst_bytes, rate_bytes_per_s) = pacing(options, request, 0, 0);
    Plan {
        format: if content_type == "video/x-flv" {
            Format::Flv
        } else {
            Format::Mp4
        },
        content_type,
        prefix: Prefix::empty(),
        file_from: 0,
        file_to: size,
        body: body.clone(),
        start_ms: 0,
        end_ms: 0,
        burst_bytes,
        rate_bytes_per_s,
        etag: etag(&identity, &body, true),
        whole_file: true,
        last_modified: last_modified(&identity),
    }
}

fn last_modified(identity: &SourceIdentity) -> Option<i64> {
    match identity.key {
        Some(SourceKey::File { .. }) => Some(identity.mtime_ns.div_euclid(1_000_000_000)),
        _ => None,
    }
}

/// A `start`/`end` of a format cut by time, in ms (`what` names the
/// format for the error).
fn seconds(p: Option<Position>, name: &str, what: &str) -> Result<Option<u64>> {
    match p {
        None => Ok(None),
        Some(Position::Millis(t)) => Ok(Some(t)),
        Some(_) => Err(Error::bad_request(format!(
            "{what} is cut by time: '{name}' must be in seconds"
        ))),
    }
}

/// What a format's resolver decides.
pub(crate) struct Cut {
    pub prefix: Prefix,
    pub from: u64,
    pub to: u64,
    /// What follows the prefix.
    pub rest: Rest,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The body of a cut after its prefix.
pub(crate) enum Rest {
    /// The file range `[from, to)` as stored.
    Stored,
    /// `[from, to)` with fields replaced.
    Patched(Arc<dyn PieceRun>),
    /// Parts in an order of the cut's own (a file laid out anew); `from`
    /// and `to` are the first and last file bytes they send.
    Laid(Vec<Part>),
}

/// Burst and rate in bytes for this media: host configuration, overridden by
/// the request's `ri`/`rs` where the host allows it. A burst in media time
/// comes on top of the prefix (an MP4 cut's moov can be most of a burst).
fn pacing(options: &Options, request: &Request, bitrate_bps: u64, prefix: u64) -> (u64, u64) {
    let from_client = |v: Option<u64>| v.filter(|_| options.client_pacing);
    let burst = from_client(request.burst_bytes).unwrap_or(match options.pacing.burst {
        Burst::Bytes(n) => n,
        Burst::MediaMillis(ms) => mul_div(bitrate_bps, ms, 8000).saturating_add(prefix),
    });
    let rate = from_client(request.rate_bytes_per_s).unwrap_or(match options.pacing.rate {
        Rate::Off => 0,
        Rate::BytesPerSecond(n) => n,
        Rate::Auto { permille } => mul_div(bitrate_bps, u64::from(permille), 8000),
    });
    (burst, rate)
}

fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    u64::try_from(u128::from(a) * u128::from(b) / u128::from(c)).unwrap_or(u64::MAX)
}

/// A strong validator. The file as stored gets nginx's static one
/// (modification time and size in hex), so a CDN that fetched it from a
/// static server keeps its validator; any other body adds a digest of what
/// determines its bytes. Neither depends on the device or inode, which
/// differ between the machines of a fleet serving the same files.
fn etag(id: &SourceIdentity, body: &Body, whole_file: bool) -> String {
    // Written by hand: this runs once per request on every host.
    let mut tag = String::with_capacity(2 + 16 + 1 + 16 + 1 + 16);
    tag.push('"');
    if whole_file && matches!(id.key, Some(SourceKey::File { .. })) {
        push_hex(&mut tag, id.mtime_ns.div_euclid(1_000_000_000) as u64, 1);
        tag.push('-');
        push_hex(&mut tag, id.size, 1);
        tag.push('"');
        return tag;
    }
    let mut h = Fnv::new();
    if let Some(SourceKey::Named(name)) = &id.key {
        h.write(name.as_bytes());
    }
    body.digest(&mut h);
    push_hex(&mut tag, id.mtime_ns as u64, 1);
    tag.push('-');
    push_hex(&mut tag, id.size, 1);
    tag.push('-');
    push_hex(&mut tag, h.finish(), 16);
    tag.push('"');
    tag
}

/// Lower-case hex of `v`, at least `min_digits` long.
fn push_hex(out: &mut String, v: u64, min_digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(min_digits) as usize;
    let mut buf = [0u8; 16];
    for (i, b) in buf[..digits].iter_mut().rev().enumerate() {
        *b = HEX[((v >> (i * 4)) & 0xf) as usize];
    }
    // ASCII digits: valid UTF-8.
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn plan(prefix: usize, from: u64, to: u64) -> Plan {
        let prefix: Prefix = vec![7; prefix].into();
        let mut body = Body::new();
        body.push(Part::Bytes(prefix.clone()));
        body.push(Part::File { from, to });
        Plan {
            format: Format::Flv,
            content_type: "video/x-flv",
            prefix,
            file_from: from,
            file_to: to,
            body,
            start_ms: 0,
            end_ms: 0,
            burst_bytes: 0,
            rate_bytes_per_s: 0,
            etag: String::new(),
            whole_file: false,
            last_modified: None,
        }
    }

    #[test]
    fn slices_cross_the_prefix_boundary() {
        let p = plan(13, 1000, 2000);
        assert_eq!(p.len(), 1013);
        let s = p.slice(0, 1013).unwrap();
        assert_eq!(
            (s.prefix_from, s.prefix_to, s.file_from, s.file_to),
            (0, 13, 1000, 2000)
        );
        let s = p.slice(10, 10).unwrap();
        assert_eq!(
            (s.prefix_from, s.prefix_to, s.file_from, s.file_to),
            (10, 13, 1000, 1007)
        );
        let s = p.slice(20, 5).unwrap();
        assert_eq!(
            (s.prefix_from, s.prefix_to, s.file_from, s.file_to),
            (13, 13, 1007, 1012)
        );
        assert!(p.slice(1000, 14).is_err());
        assert!(p.slice(u64::MAX, 2).is_err());
    }

    #[test]
    fn hex_matches_format() {
        for v in [0u64, 1, 15, 16, 255, 0xdead_beef, u64::MAX] {
            let mut a = String::new();
            push_hex(&mut a, v, 1);
            assert_eq!(a, format!("{v:x}"));
            let mut b = String::new();
            push_hex(&mut b, v, 16);
            assert_eq!(b, format!("{v:016x}"));
        }
    }

    #[test]
    fn pacing_resolution() {
        let mut o = Options::default();
        let r = Request::default();
        assert_eq!(pacing(&o, &r, 800_000, 0), (300_000, 0));
        assert_eq!(pacing(&o, &r, 800_000, 13), (300_013, 0));
        o.pacing.rate = Rate::Auto { permille: 1250 };
        assert_eq!(pacing(&o, &r, 800_000, 0), (300_000, 125_000));
        let r = Request {
            burst_bytes: Some(5),
            rate_bytes_per_s: Some(7),
            ..Request::default()
        };
        assert_eq!(pacing(&o, &r, 800_000, 0), (5, 7));
        o.client_pacing = false;
        assert_eq!(pacing(&o, &r, 800_000, 0), (300_000, 125_000));
    }
}
