//! One HTTP exchange, decided whole by the library: the host hands over
//! the method, the query, the request headers and the file, and gets back
//! the status, every response header and a body of pieces to send (or to
//! have copied into its buffers) under the library's pacing. A host adds
//! only its own headers (Date, Server, Connection, chunking), and may put
//! its own error page in place of the library's short text on answers of
//! 400 and above.
//!
//! The order of decisions: the method (405; OPTIONS answered for CORS);
//! the file (404, 403; a file the library cannot read is 415, or served as
//! stored when the query asks for nothing); the query (400); the plan (416,
//! 415); the preconditions in RFC 9110 order (412, 304); Range (206, 416).

use std::sync::Arc;

use crate::cache::{IndexCache, Lookup, Pending};
use crate::config::{Config, Cors};
use crate::error::{Error, Result};
use crate::httpdate;
use crate::index::MediaIndex;
use crate::media::Media;
use crate::pacer::Pacer;
use crate::plan::{self, Body, Conditions, Part, Plan, Request};
use crate::query;
use crate::source::{ByteSource, FileSource};
use crate::stream::{Fill, Stream, Take};

/// The request headers the library reads; the rest are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Range,
    IfMatch,
    IfNoneMatch,
    IfRange,
    IfModifiedSince,
    IfUnmodifiedSince,
    Origin,
    RequestMethod,
}

const FIELDS: [(&str, Field); 8] = [
    ("range", Field::Range),
    ("if-match", Field::IfMatch),
    ("if-none-match", Field::IfNoneMatch),
    ("if-range", Field::IfRange),
    ("if-modified-since", Field::IfModifiedSince),
    ("if-unmodified-since", Field::IfUnmodifiedSince),
    ("origin", Field::Origin),
    ("access-control-request-method", Field::RequestMethod),
];

/// Response headers a cross-origin player reads (Content-Length is
/// safelisted, but older engines want it listed).
const EXPOSED: &str =
    "Content-Length, Content-Range, Accept-Ranges, ETag, X-Pseudostream-Start-Ms, X-Pseudostream-End-Ms";
/// Request headers a cross-origin player may send.
const ALLOWED_HEADERS: &str =
    "Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Options,
    Other,
}

/// The file behind the request, as far as it was opened.
enum File {
    NotOpened,
    /// Read, not yet indexed: `respond` may answer from a remembered answer
    /// without touching the index.
    Opened(Arc<dyn ByteSource>),
    /// Read, its index being built elsewhere (`open_fd_async`).
    Building(Arc<dyn ByteSource>),
    Failed(Error),
    /// Read, but not indexed: the reason, and the bytes to serve as stored.
    Unindexed(Arc<dyn ByteSource>, Error),
    Indexed(Media),
}

/// The response headers: names and values, each NUL-terminated in one
/// buffer so that C hosts can point at them.
#[derive(Debug, Default)]
pub struct Headers {
    text: Vec<u8>,
    /// (name start, name length, value start, value length)
    spans: Vec<(u32, u32, u32, u32)>,
}

impl Headers {
    /// Room for a media answer's headers without growing.
    fn new() -> Headers {
        Headers {
            text: Vec::with_capacity(640),
            spans: Vec::with_capacity(16),
        }
    }

    fn push_with(&mut self, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
        let name_at = self.text.len();
        self.text.extend_from_slice(name.as_bytes());
        self.text.push(0);
        let value_at = self.text.len();
        value(&mut self.text);
        let value_len = self.text.len() - value_at;
        self.text.push(0);
        self.spans.push((
            name_at as u32,
            name.len() as u32,
            value_at as u32,
            value_len as u32,
        ));
    }

    fn push(&mut self, name: &str, value: &str) {
        self.push_with(name, |out| out.extend_from_slice(value.as_bytes()));
    }

    fn push_number(&mut self, name: &str, v: u64) {
        self.push_with(name, |out| push_decimal(out, v));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Header `i`: its name and value, each followed by a NUL in memory.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(n, nl, v, vl) = self.spans.get(i)?;
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        Some((&self.text[n..n + nl], &self.text[v..v + vl]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).filter_map(|i| {
            let (n, v) = self.get(i)?;
            Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?))
        })
    }

    /// The value of the first header called `name` (any case).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The decided answer.
struct Answer {
    status: u16,
    headers: Arc<Headers>,
    /// The Content-Length the headers state (None: no such header).
    content_length: Option<u64>,
    /// The body the host sends (empty for HEAD and bodyless answers).
    stream: Option<Stream>,
    /// Why, for the host's log: the error, or why a file was served as
    /// stored. Paths are included.
    detail: String,
}

/// One request and, once `respond` has run, its answer.
pub struct Exchange {
    method: Method,
    query: Vec<u8>,
    /// Values of the fields the library reads, joined with ", " when sent
    /// more than once (which makes a single-valued field invalid).
    values: [Option<String>; FIELDS.len()],
    file: File,
    /// The name of the file as the host knows it: its extension chooses
    /// the Content-Type of a file served as stored.
    name: Option<String>,
    /// What the host's open-file cache knows of a lent descriptor: inode,
    /// size, modification time in seconds (`FileSource::lend_fd_known`).
    known: Option<(u64, u64, i64)>,
    /// The request wants an FLV as MP4 (`configure`): opening without
    /// blocking looks for the file's MP4 view.
    mp4_view: bool,
    answer: Option<Answer>,
}

/// Figures of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub status: u16,
    /// The Content-Length header's value, when there is one.
    pub content_length: Option<u64>,
    /// Bytes of body to send now (0 for HEAD, 204, 304).
    pub body_length: u64,
    /// Pacing of the body: burst bytes, then bytes per second (0: unpaced).
    pub burst_bytes: u64,
    pub rate_bytes_per_s: u64,
}

impl Exchange {
    /// A request as received: its method (case-sensitive, as HTTP has it)
    /// and its query string without the '?'.
    pub fn new(method: &[u8], query: &[u8]) -> Exchange {
        let method = match method {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"OPTIONS" => Method::Options,
            _ => Method::Other,
        };
        Exchange {
            method,
            query: query.to_vec(),
            values: Default::default(),
            file: File::NotOpened,
            name: None,
            known: None,
            mp4_view: false,
            answer: None,
        }
    }

    /// Tells the exchange the configuration it will be answered under,
    /// before the file is opened without blocking: the request may need
    /// more than the file's index (an FLV asked for as MP4 needs its MP4
    /// view), and the build the host runs must make it. Hosts that open
    /// blocking need not call it.
    pub fn configure(&mut self, config: &Config) {
        self.mp4_view =
            query::parse(&self.query, &config.plan).is_ok_and(|r| r.wants_mp4(&config.plan));
    }

    /// The identity the file's index is cached under for this request.
    fn cache_identity(&self, source: &dyn ByteSource) -> crate::source::SourceIdentity {
        let identity = source.identity();
        if self.mp4_view {
            identity.mp4_view()
        } else {
            identity
        }
    }

    /// What the host knows of the descriptor it will lend (its open-file
    /// cache's inode, size and modification time in seconds): the library
    /// then takes its own earlier `fstat` of that descriptor again while
    /// they match, instead of calling it per request.
    pub fn know_file(&mut self, inode: u64, size: u64, mtime_s: i64) {
        self.known = Some((inode, size, mtime_s));
    }

    /// A lent descriptor as a source (see `know_file`).
    ///
    /// # Safety
    /// As `FileSource::lend_fd`.
    unsafe fn lend(&self, fd: i32) -> Result<FileSource> {
        match self.known {
            // SAFETY: forwarded to our caller.
            Some((inode, size, mtime_s)) => unsafe {
                FileSource::lend_fd_known(fd, inode, size, mtime_s)
            },
            // SAFETY: forwarded to our caller.
            None => unsafe { FileSource::lend_fd(fd) },
        }
    }

    /// A request header (any name, any case; those the library does not
    /// read are ignored).
    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        let Some(i) = FIELDS
            .iter()
            .position(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        else {
            return;
        };
        let value = String::from_utf8_lossy(value);
        let value = value.trim();
        match &mut self.values[i] {
            Some(v) => {
                v.push_str(", ");
                v.push_str(value);
            }
            slot => *slot = Some(value.to_string()),
        }
    }

    /// Whether the answer depends on the file (GET and HEAD). Otherwise the
    /// host may call `respond` without opening it.
    pub fn wants_file(&self) -> bool {
        matches!(self.method, Method::Get | Method::Head)
    }

    /// Opens the file at `path` and indexes it (or takes its index from the
    /// cache). Blocking file I/O.
    pub fn open_path(&mut self, path: &std::path::Path) {
        self.name = Some(path.to_string_lossy().into_owned());
        match FileSource::open(path) {
            Ok(source) => self.file = File::Opened(Arc::new(source)),
            Err(e) => self.file = File::Failed(e),
        }
    }

    /// Reads the file behind `fd`, which the host lends (it must stay open
    /// while the exchange lives), and indexes it or takes its index from
    /// the cache. `name` is the file's path or name, for its extension.
    ///
    /// # Safety
    /// `fd` stays open on the same file until the exchange is dropped.
    pub unsafe fn open_fd(&mut self, fd: i32, name: Option<&str>) {
        self.name = name.map(str::to_string);
        // SAFETY: forwarded to our caller.
        match unsafe { self.lend(fd) } {
            Ok(source) => self.file = File::Opened(Arc::new(source)),
            Err(e) => self.file = File::Failed(e),
        }
    }

    /// As `open_fd`, but only when the file's index is cached: false, with
    /// nothing read, when it would have to be built (the host builds it
    /// where it may block, then calls again).
    ///
    /// # Safety
    /// As `open_fd`.
    pub unsafe fn open_fd_cached(&mut self, fd: i32, name: Option<&str>) -> bool {
        self.name = name.map(str::to_string);
        // SAFETY: forwarded to our caller.
        let source: Arc<dyn ByteSource> = match unsafe { self.lend(fd) } {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.file = File::Failed(e);
                return true;
            }
        };
        let cached = IndexCache::global().get(&self.cache_identity(&*source));
        match cached.map(|index| Media::from_parts(Arc::clone(&source), index)) {
            Some(Ok(media)) => {
                self.file = File::Indexed(media);
                true
            }
            None => false,
            Some(Err(e)) => {
                self.file = File::Unindexed(source, e);
                true
            }
        }
    }

    /// As `open_fd`, without blocking: the file's index from the cache, or
    /// the build of it that the host must wait for (and run, when it
    /// leads it) before `open_built`. None when the exchange has the file,
    /// or the reason it cannot have it.
    ///
    /// # Safety
    /// As `open_fd`.
    pub unsafe fn open_fd_async(
        &mut self,
        fd: i32,
        name: Option<&str>,
    ) -> Option<Pending<'static>> {
        self.name = name.map(str::to_string);
        // SAFETY: forwarded to our caller.
        let source: Arc<dyn ByteSource> = match unsafe { self.lend(fd) } {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.file = File::Failed(e);
                return None;
            }
        };
        match IndexCache::global().lookup(&self.cache_identity(&*source)) {
            Lookup::Cached(index) => {
                self.take_index(source, Ok(index));
                None
            }
            Lookup::Pending(p) => {
                self.file = File::Building(source);
                Some(p)
            }
        }
    }

    /// The build `open_fd_async` handed out has ended: the exchange takes
    /// its outcome (without reading the file again, even when the cache did
    /// not keep the index).
    pub fn open_built(&mut self, pending: &Pending) {
        let File::Building(source) = &self.file else {
            return;
        };
        let source = Arc::clone(source);
        match pending.outcome() {
            Some(outcome) => self.take_index(source, outcome),
            None => {
                self.file = File::Failed(Error::InvalidArgument(
                    "the index build has not ended".into(),
                ))
            }
        }
    }

    fn take_index(&mut self, source: Arc<dyn ByteSource>, index: Result<Arc<MediaIndex>>) {
        self.file = match index.and_then(|i| Media::from_parts(Arc::clone(&source), i)) {
            Ok(media) => File::Indexed(media),
            Err(e @ (Error::UnsupportedFormat(_) | Error::Malformed(_))) => {
                File::Unindexed(source, e)
            }
            Err(e) => File::Failed(e),
        };
    }

    /// The host could not open the file: `errno` says why (ENOENT and
    /// ENOTDIR: 404; EACCES, ELOOP, EMLINK: 403; others 500).
    pub fn open_failed(&mut self, errno: i32, name: Option<&str>) {
        self.name = name.map(str::to_string);
        let what = name.unwrap_or("the file").to_string();
        self.file = File::Failed(match errno {
            libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG => Error::NotFound(what),
            libc::EACCES | libc::EPERM | libc::ELOOP | libc::EMLINK => {
                Error::PermissionDenied(what)
            }
            _ => Error::Io(std::io::Error::from_raw_os_error(errno)),
        });
    }

    /// Takes a media the host opened (say, on a thread that built its
    /// index): the exchange shares its source and index.
    pub fn open_media(&mut self, media: &Media, name: Option<&str>) {
        self.name = name.map(str::to_string);
        self.file = match media.index().check_limits() {
            Ok(()) => File::Indexed(media.clone()),
            Err(e) => File::Unindexed(std::sync::Arc::clone(media.source()), e),
        };
    }

    /// Opens any byte source (tests, tools, callback sources).
    pub fn open_source(&mut self, source: Arc<dyn ByteSource>, name: Option<&str>) {
        self.name = name.map(str::to_string);
        self.file = File::Opened(source);
    }

    fn index(&mut self, source: Arc<dyn ByteSource>) {
        self.file = match Media::from_source(Arc::clone(&source)) {
            Ok(media) => File::Indexed(media),
            Err(e @ (Error::UnsupportedFormat(_) | Error::Malformed(_))) => {
                File::Unindexed(source, e)
            }
            Err(e) => File::Failed(e),
        };
    }

    fn value(&self, field: Field) -> Option<&str> {
        let i = FIELDS.iter().position(|(_, f)| *f == field)?;
        self.values[i].as_deref()
    }

    /// Decides the answer under `config`. Call once, after the file was
    /// opened (when `wants_file`).
    ///
    /// A request without Range, validators or CORS headers is answered the
    /// same way each time for one file version, configuration and query: its
    /// answer is remembered (per thread, a few dozen, bounded in bytes) and
    /// served again without parsing, planning or formatting anything.
    pub fn respond(&mut self, config: &Config) {
        let key = self.memo_key(config);
        let remembered = key.as_ref().and_then(memo::get);
        let mut answer = match (remembered, &self.file) {
            (Some(prepared), File::Opened(source)) => prepared.answer(Arc::clone(source)),
            _ => {
                if let File::Opened(source) = &self.file {
                    let source = Arc::clone(source);
                    self.index(source);
                }
                let answer = self.decide(config);
                if let Some(key) = key {
                    memo::put(key, &answer);
                }
                answer
            }
        };
        if self.method == Method::Head {
            answer.stream = None;
        }
        self.answer = Some(answer);
    }

    /// What a remembered answer to this request would be filed under.
    fn memo_key(&self, config: &Config) -> Option<memo::Key> {
        if !matches!(self.method, Method::Get | Method::Head)
            || self.values.iter().any(Option::is_some)
        {
            return None;
        }
        let identity = match &self.file {
            File::Opened(source) => source.identity(),
            _ => return None,
        };
        identity.key.as_ref()?;
        Some(memo::Key::new(identity, config.generation(), &self.query))
    }

    fn decide(&self, config: &Config) -> Answer {
        let mut headers = Headers::new();
        match self.method {
            Method::Get | Method::Head => {}
            Method::Options if config.cors != Cors::Off => {
                // A preflight (or a plain OPTIONS): what may be asked.
                headers.push("Allow", "GET, HEAD, OPTIONS");
                if self.cors(config, &mut headers) {
                    headers.push("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
                    headers.push("Access-Control-Allow-Headers", ALLOWED_HEADERS);
                    headers.push("Access-Control-Max-Age", "86400");
                }
                return Answer {
                    status: 204,
                    headers: Arc::new(headers),
                    content_length: None,
                    stream: None,
                    detail: String::new(),
                };
            }
            Method::Options | Method::Other => {
                let allow = if config.cors == Cors::Off {
                    "GET, HEAD"
                } else {
                    "GET, HEAD, OPTIONS"
                };
                return self.error(config, 405, "method not allowed".into(), Some(allow), None);
            }
        }
        let (media, request) = match &self.file {
            File::NotOpened | File::Opened(_) | File::Building(_) => {
                return self.failure(
                    config,
                    Error::InvalidArgument("no file was opened for this request".into()),
                    None,
                )
            }
            File::Failed(e) => return self.failure(config, e.duplicate(), None),
            File::Unindexed(source, why) => {
                return self.unindexed(config, source, why);
            }
            File::Indexed(media) => match query::parse(&self.query, &config.plan) {
                Ok(r) => (media, r),
                Err(e) => return self.failure(config, e, None),
            },
        };
        match media.plan(&config.plan, &request) {
            Ok(plan) => self.answer_plan(config, media.source(), plan, String::new()),
            Err(e) => {
                // A start past the end: no response exists, so report the
                // file's length.
                let size = media.info().size;
                self.failure(config, e, Some(size))
            }
        }
    }

    /// A file the library cannot read: served as stored when the query
    /// asks for nothing the library would do, otherwise the reason (415).
    fn unindexed(&self, config: &Config, source: &Arc<dyn ByteSource>, why: &Error) -> Answer {
        let request = match query::parse(&self.query, &config.plan) {
            Ok(r) => r,
            Err(e) => return self.failure(config, e, None),
        };
        let asks = Request {
            burst_bytes: None,
            rate_bytes_per_s: None,
            ..request.clone()
        };
        if asks != Request::default() {
            return self.failure(config, why.duplicate(), None);
        }
        let content_type = content_type_by_name(self.name.as_deref());
        let plan = plan::as_stored(&**source, content_type, &config.plan, &request);
        self.answer_plan(config, source, plan, format!("served as stored: {why}"))
    }

    fn answer_plan(
        &self,
        config: &Config,
        source: &Arc<dyn ByteSource>,
        plan: Plan,
        detail: String,
    ) -> Answer {
        let c = Conditions {
            range: self.value(Field::Range),
            if_match: self.value(Field::IfMatch),
            if_none_match: self.value(Field::IfNoneMatch),
            if_range: self.value(Field::IfRange),
            if_modified_since: self.value(Field::IfModifiedSince),
            if_unmodified_since: self.value(Field::IfUnmodifiedSince),
        };
        let r = plan.respond(&c);
        let total = plan.len();
        let mut h = Headers::new();
        match r.status {
            200 | 206 => {
                h.push("Content-Type", plan.content_type());
                h.push_number("Content-Length", r.len);
                if r.status == 206 {
                    h.push_with("Content-Range", |out| {
                        out.extend_from_slice(b"bytes ");
                        push_decimal(out, r.first);
                        out.push(b'-');
                        push_decimal(out, r.first + r.len - 1);
                        out.push(b'/');
                        push_decimal(out, total);
                    });
                }
                h.push("Accept-Ranges", "bytes");
                h.push("ETag", &plan.etag);
                if let Some(t) = plan.last_modified {
                    h.push_with("Last-Modified", |out| httpdate::write(out, t));
                }
                if let Some(cc) = &config.cache_control {
                    h.push("Cache-Control", cc);
                }
                h.push_number("X-Pseudostream-Start-Ms", plan.start_ms);
                h.push_number("X-Pseudostream-End-Ms", plan.end_ms);
                self.cors(config, &mut h);
                let stream = Stream::over(
                    Arc::clone(source),
                    plan.body,
                    r.first,
                    r.len,
                    Pacer::new(r.burst_bytes, r.rate_bytes_per_s),
                );
                match stream {
                    Ok(s) => Answer {
                        status: r.status,
                        headers: Arc::new(h),
                        content_length: Some(r.len),
                        stream: Some(s),
                        detail,
                    },
                    Err(e) => self.failure(config, e, None),
                }
            }
            304 => {
                // RFC 9110 §15.4.5: the validator and what guides caches.
                h.push("ETag", &plan.etag);
                if let Some(cc) = &config.cache_control {
                    h.push("Cache-Control", cc);
                }
                self.cors(config, &mut h);
                Answer {
                    status: 304,
                    headers: Arc::new(h),
                    content_length: None,
                    stream: None,
                    detail,
                }
            }
            416 => self.error(
                config,
                416,
                "range not satisfiable: the Range lies outside the response".into(),
                None,
                Some(total),
            ),
            status => self.error(config, status, "precondition failed".into(), None, None),
        }
    }

    /// An error answer for `e`; `size` gives a 416 its Content-Range.
    fn failure(&self, config: &Config, e: Error, size: Option<u64>) -> Answer {
        let status = e.http_status();
        let public = match &e {
            Error::NotFound(_) => "not found".to_string(),
            Error::PermissionDenied(_) => "forbidden".to_string(),
            Error::Io(_) | Error::SourceChanged(_) | Error::InvalidArgument(_) => {
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut a = self.error(config, status, public, None, size.filter(|_| status == 416));
        a.detail = e.to_string();
        a
    }

    /// A short text answer with its status.
    fn error(
        &self,
        config: &Config,
        status: u16,
        text: String,
        allow: Option<&str>,
        unsatisfiable_length: Option<u64>,
    ) -> Answer {
        let mut h = Headers::new();
        let mut body = text.clone().into_bytes();
        body.push(b'\n');
        h.push("Content-Type", "text/plain; charset=utf-8");
        h.push_number("Content-Length", body.len() as u64);
        if let Some(len) = unsatisfiable_length {
            h.push_with("Content-Range", |out| {
                out.extend_from_slice(b"bytes */");
                push_decimal(out, len);
            });
        }
        if let Some(allow) = allow {
            h.push("Allow", allow);
        }
        self.cors(config, &mut h);
        let length = body.len() as u64;
        let mut b = Body::new();
        b.push(Part::Bytes(body.into()));
        let stream = Stream::over(
            Arc::new(crate::source::MemorySource::new(Vec::new())),
            b,
            0,
            length,
            Pacer::new(0, 0),
        )
        .ok();
        Answer {
            status,
            headers: Arc::new(h),
            content_length: Some(length),
            stream,
            detail: text,
        }
    }

    /// The CORS headers of an answer; true when the origin is allowed.
    fn cors(&self, config: &Config, h: &mut Headers) -> bool {
        let origin = self.value(Field::Origin);
        let allowed = match &config.cors {
            Cors::Off => return false,
            Cors::Any => {
                h.push("Access-Control-Allow-Origin", "*");
                true
            }
            Cors::Origins(list) => {
                let hit = origin.filter(|o| list.iter().any(|a| a.eq_ignore_ascii_case(o)));
                if let Some(o) = hit {
                    h.push("Access-Control-Allow-Origin", o);
                }
                hit.is_some()
            }
        };
        let preflight = self.method == Method::Options;
        if allowed && !preflight {
            h.push("Access-Control-Expose-Headers", EXPOSED);
        }
        if matches!(config.cors, Cors::Origins(_)) {
            h.push("Vary", "Origin");
        }
        allowed
    }

    fn answer(&self) -> Result<&Answer> {
        self.answer
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("the exchange has not been answered".into()))
    }

    fn answer_mut(&mut self) -> Result<&mut Answer> {
        self.answer
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("the exchange has not been answered".into()))
    }

    pub fn info(&self) -> Result<Info> {
        let a = self.answer()?;
        let (body_length, burst, rate) = match &a.stream {
            Some(s) => (s.remaining(), s.burst_bytes(), s.rate()),
            None => (0, 0, 0),
        };
        Ok(Info {
            status: a.status,
            content_length: a.content_length,
            body_length,
            burst_bytes: burst,
            rate_bytes_per_s: rate,
        })
    }

    pub fn headers(&self) -> Result<&Headers> {
        Ok(&self.answer()?.headers)
    }

    /// Why the answer is what it is, for the host's log (empty when there
    /// is nothing to say). May name paths.
    pub fn detail(&self) -> Result<&str> {
        Ok(&self.answer()?.detail)
    }

    /// Replaces the pacing the library chose, for tools that want the bytes
    /// at once (the CLI's `cut`); hosts have no need of it.
    pub fn set_pacing(&mut self, burst_bytes: u64, rate_bytes_per_s: u64) {
        if let Some(Some(s)) = self.answer.as_mut().map(|a| a.stream.as_mut()) {
            s.set_pacing(burst_bytes, rate_bytes_per_s);
        }
    }

    /// See `Stream::align_file_pages`.
    pub fn align_file_pages(&mut self, page: u64) -> Result<()> {
        if let Some(s) = &mut self.answer_mut()?.stream {
            s.align_file_pages(page);
        }
        Ok(())
    }

    /// The next pieces of the body (see `Stream::take_each`).
    pub fn take_each(
        &mut self,
        now_us: u64,
        max_pieces: usize,
        each: impl FnMut(plan::Piece<'_>),
    ) -> Result<Take> {
        match &mut self.answer_mut()?.stream {
            Some(s) => s.take_each(now_us, max_pieces, each),
            None => Ok(Take::Done),
        }
    }

    /// The next body bytes copied into `buf` (see `Stream::fill`).
    pub fn fill(&mut self, buf: &mut [u8], now_us: u64) -> Result<Fill> {
        match &mut self.answer_mut()?.stream {
            Some(s) => s.fill(buf, now_us),
            None => Ok(Fill::Done),
        }
    }
}

/// Answers remembered per thread: for a file version, a configuration and
/// a query (requests with no header the answer depends on), the headers
/// and the body's parts, shared with the answers made from them.
mod memo {
    use std::cell::RefCell;
    use std::sync::Arc;

    use super::{Answer, Headers};
    use crate::fnv::Fnv;
    use crate::pacer::Pacer;
    use crate::plan::Body;
    use crate::source::{ByteSource, SourceIdentity, SourceKey};
    use crate::stream::Stream;

    /// Answers kept per thread.
    const ENTRIES: usize = 64;
    /// Bytes of bodies' own prefixes kept per thread (an MP4 cut's `moov`
    /// can be megabytes: such answers are made each time).
    const BYTES: usize = 4 << 20;
    const ONE_MAX: usize = 256 << 10;

    #[derive(PartialEq, Eq)]
    pub(super) struct Key {
        hash: u64,
        identity: SourceIdentity,
        generation: u64,
        moov_limit: u64,
        query: Box<[u8]>,
    }

    impl Key {
        pub(super) fn new(identity: SourceIdentity, generation: u64, query: &[u8]) -> Key {
            let mut h = Fnv::new();
            fn key(h: &mut Fnv, k: &SourceKey) {
                match k {
                    SourceKey::File { dev, ino } => {
                        h.write(&dev.to_le_bytes());
                        h.write(&ino.to_le_bytes());
                    }
                    SourceKey::Named(n) => h.write(n.as_bytes()),
                    SourceKey::Mp4View(k) => {
                        h.write(b"mp4 view");
                        key(h, k);
                    }
                }
            }
            if let Some(k) = &identity.key {
                key(&mut h, k);
            }
            h.write(&identity.size.to_le_bytes());
            h.write(&identity.mtime_ns.to_le_bytes());
            h.write(&generation.to_le_bytes());
            // The one process-wide setting an answer depends on.
            h.write(&crate::index::mp4::moov_limit().to_le_bytes());
            h.write(query);
            Key {
                hash: h.finish(),
                identity,
                generation,
                moov_limit: crate::index::mp4::moov_limit(),
                query: query.into(),
            }
        }
    }

    pub(super) struct Prepared {
        headers: Arc<Headers>,
        content_length: Option<u64>,
        body: Body,
        first: u64,
        len: u64,
        burst: u64,
        rate: u64,
        cost: usize,
    }

    impl Prepared {
        /// The answer again, its body read from `source` (the same file
        /// version, opened for this request).
        pub(super) fn answer(&self, source: Arc<dyn ByteSource>) -> Answer {
            let stream = Stream::over(
                source,
                self.body.clone(),
                self.first,
                self.len,
                Pacer::new(self.burst, self.rate),
            )
            .ok();
            Answer {
                status: 200,
                headers: Arc::clone(&self.headers),
                content_length: self.content_length,
                stream,
                detail: String::new(),
            }
        }
    }

    struct Memo {
        entries: Vec<(Key, Arc<Prepared>, u64)>,
        bytes: usize,
        clock: u64,
    }

    thread_local! {
        static MEMO: RefCell<Memo> = const {
            RefCell::new(Memo {
                entries: Vec::new(),
                bytes: 0,
                clock: 0,
            })
        };
    }

    pub(super) fn get(key: &Key) -> Option<Arc<Prepared>> {
        MEMO.with(|m| {
            let mut m = m.borrow_mut();
            m.clock += 1;
            let now = m.clock;
            let e = m.entries.iter_mut().find(|e| e.0 == *key)?;
            e.2 = now;
            Some(Arc::clone(&e.1))
        })
    }

    /// Keeps a plain 200 answer (no detail to log, a body of modest own
    /// size), pushing out the least recently used ones as needed.
    pub(super) fn put(key: Key, answer: &Answer) {
        let Some(stream) = &answer.stream else {
            return;
        };
        if answer.status != 200 || !answer.detail.is_empty() {
            return;
        }
        let body = stream.body().clone();
        let cost = body.owned_bytes() + answer.headers.text.len() + key.query.len() + 256;
        if cost > ONE_MAX {
            return;
        }
        let (first, len) = stream.window();
        let prepared = Prepared {
            headers: Arc::clone(&answer.headers),
            content_length: answer.content_length,
            body,
            first,
            len,
            burst: stream.burst_bytes(),
            rate: stream.rate(),
            cost,
        };
        MEMO.with(|m| {
            let mut m = m.borrow_mut();
            while !m.entries.is_empty() && (m.entries.len() >= ENTRIES || m.bytes + cost > BYTES) {
                let oldest = (0..m.entries.len())
                    .min_by_key(|&i| m.entries[i].2)
                    .unwrap_or(0);
                let (_, gone, _) = m.entries.swap_remove(oldest);
                m.bytes -= gone.cost;
            }
            m.clock += 1;
            let now = m.clock;
            m.bytes += cost;
            m.entries.push((key, Arc::new(prepared), now));
        });
    }
}

/// The Content-Type of a file served as stored, by its extension.
fn content_type_by_name(name: Option<&str>) -> &'static str {
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("flv") => "video/x-flv",
        Some("mp4" | "m4v" | "f4v") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("mov") => "video/quicktime",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;

    fn flv(tags: usize) -> Vec<u8> {
        let mut out = Vec::new();
        crate::format::flv::tag::write_stream_header(&mut out, false, true);
        for i in 0..tags {
            crate::format::flv::tag::write_tag(&mut out, 9, i as u32 * 40, &[0x17, 1, 0, 0, 0, 7]);
        }
        out
    }

    fn answer(
        source: &Arc<dyn ByteSource>,
        config: &Config,
        query: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut x = Exchange::new(b"GET", query.as_bytes());
        for (n, v) in headers {
            x.header(n.as_bytes(), v.as_bytes());
        }
        x.open_source(Arc::clone(source), Some("a.flv"));
        x.respond(config);
        let status = x.info().unwrap().status;
        let h = x
            .headers()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut body = Vec::new();
        let mut buf = [0u8; 4096];
        while let Fill::Data(n) = x.fill(&mut buf, 0).unwrap() {
            body.extend_from_slice(&buf[..n]);
        }
        (status, h, body)
    }

    #[test]
    fn remembered_answers_are_the_answers_and_follow_changes() {
        let source: Arc<dyn ByteSource> =
            Arc::new(MemorySource::named(flv(50), "exchange-memo.flv"));
        let mut config = Config::default();
        let first = answer(&source, &config, "start=400", &[]);
        assert_eq!(first.0, 200);
        assert_eq!(answer(&source, &config, "start=400", &[]), first);
        // A Range is answered afresh, from the same plan.
        let ranged = answer(&source, &config, "start=400", &[("Range", "bytes=1-3")]);
        assert_eq!((ranged.0, &ranged.2[..]), (206, &first.2[1..4]));
        // A changed configuration is a new answer.
        config.set("cache_control", "max-age=9").unwrap();
        let cached = answer(&source, &config, "start=400", &[]);
        assert!(cached
            .1
            .contains(&("Cache-Control".into(), "max-age=9".into())));
        assert_eq!(cached.2, first.2);
        // So is another version of the file under the same name.
        let shorter = answer(&source, &config, "", &[]);
        let longer: Arc<dyn ByteSource> =
            Arc::new(MemorySource::named(flv(60), "exchange-memo.flv"));
        let other = answer(&longer, &config, "", &[]);
        assert!(other.2.len() > shorter.2.len());
        assert!(other.2.ends_with(&flv(60)[flv(50).len()..]));
    }
}
