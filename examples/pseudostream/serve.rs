//! `serve DIR`: a small HTTP/1.1 server over std. A fixed pool of worker
//! threads takes connections from the accept loop through a rendezvous
//! channel, so when every worker is busy new connections wait in the
//! listen backlog. One request per connection (`Connection: close`).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use pseudostream::{query, Conditions, Error, Media, Options};

use crate::host::{self, Command, PumpError};
use crate::index;
use crate::request::{self, Head, HeadError};
use crate::web::{self, Web};

/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one write may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait, after our answer, for the client to close.
const LINGER: Duration = Duration::from_secs(1);

struct Server {
    root: PathBuf,
    options: Options,
    local: SocketAddr,
    web: Option<Web>,
}

/// What was answered, for the log line.
struct Outcome {
    status: u16,
    bytes: u64,
    note: Option<String>,
}

impl Outcome {
    fn new(status: u16, bytes: u64) -> Outcome {
        Outcome {
            status,
            bytes,
            note: None,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Outcome {
        self.note = Some(note.into());
        self
    }
}

pub fn run(args: &[OsString]) -> ExitCode {
    let config = match host::parse_args(args, Command::Serve) {
        Ok(c) => c,
        Err(e) => return crate::usage_error(&e),
    };
    let [dir] = config.positionals.as_slice() else {
        return crate::usage_error("serve takes exactly one DIR");
    };
    let root = match fs::canonicalize(dir) {
        Ok(r) if r.is_dir() => r,
        Ok(r) => return fail(&format!("{}: not a directory", r.display())),
        Err(e) => return fail(&format!("{}: {e}", PathBuf::from(dir).display())),
    };
    let web = match config.web.as_deref().map(Web::open).transpose() {
        Ok(w) => w,
        Err(e) => return fail(&e),
    };
    let listener = match TcpListener::bind(&config.addr) {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot listen on {}: {e}", config.addr)),
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(&format!("local address: {e}")),
    };
    eprintln!(
        "pseudostream: serving {} on http://{local}/ with {} worker threads",
        root.display(),
        config.threads
    );
    if let Some(w) = &web {
        eprintln!(
            "pseudostream: demo page from {} at http://{local}/ (assets under {})",
            w.dir().display(),
            web::PREFIX
        );
    }
    let server = Arc::new(Server {
        root,
        options: config.options,
        local,
        web,
    });

    // Capacity 0: a send completes only when a worker takes the connection.
    let (tx, rx) = mpsc::sync_channel::<TcpStream>(0);
    let rx = Arc::new(Mutex::new(rx));
    for n in 0..config.threads {
        let (server, rx) = (Arc::clone(&server), Arc::clone(&rx));
        let spawned = thread::Builder::new()
            .name(format!("worker-{n}"))
            .spawn(move || worker(&server, &rx));
        if let Err(e) = spawned {
            return fail(&format!("cannot start worker threads: {e}"));
        }
    }
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                if tx.send(conn).is_err() {
                    return fail("all workers are gone");
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, carry on.
                eprintln!("pseudostream: accept: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    ExitCode::SUCCESS
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("pseudostream: {msg}");
    ExitCode::FAILURE
}

fn worker(server: &Server, rx: &Mutex<mpsc::Receiver<TcpStream>>) {
    loop {
        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(conn) = next else { return };
        // A bug in one request must not cost the pool a thread.
        let handled = panic::catch_unwind(AssertUnwindSafe(|| server.connection(conn)));
        if handled.is_err() {
            eprintln!("pseudostream: a request handler panicked");
        }
    }
}

impl Server {
    fn connection(&self, mut conn: TcpStream) {
        let started = Instant::now();
        let peer = conn
            .peer_addr()
            .map_or_else(|_| "-".to_string(), |a| a.to_string());
        let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = conn.set_nodelay(true);

        // The Range header goes into the log line: players seek with it.
        let mut range = None;
        let (method, target, outcome) = match request::read_head(&mut conn, started + HEAD_TIMEOUT)
        {
            Ok(head) => {
                let outcome = self.request(&mut conn, &head);
                range = head.header("range");
                (head.method, head.target, outcome)
            }
            Err(HeadError::Gone) => return,
            Err(HeadError::Status(status, why)) => {
                let bytes = send_text(&mut conn, false, status, &[], &format!("{why}\n"));
                (
                    "-".to_string(),
                    "-".to_string(),
                    Outcome::new(status, bytes),
                )
            }
        };
        eprintln!(
            "{peer} {method} {target} {} {} {}ms{}{}",
            outcome.status,
            outcome.bytes,
            started.elapsed().as_millis(),
            range.map(|r| format!(" [Range: {r}]")).unwrap_or_default(),
            outcome.note.map(|n| format!(" ({n})")).unwrap_or_default()
        );
        linger(conn);
    }

    fn request(&self, conn: &mut TcpStream, head: &Head) -> Outcome {
        let is_head = match head.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => {
                let allow = [("Allow", "GET, HEAD".to_string())];
                let bytes = send_text(conn, false, 405, &allow, "only GET and HEAD\n");
                return Outcome::new(405, bytes);
            }
        };
        let reply = |conn: &mut TcpStream, status: u16, msg: &str| {
            let bytes = send_text(conn, is_head, status, &[], &format!("{msg}\n"));
            Outcome::new(status, bytes)
        };
        let Some((path, query)) = request::split_target(&head.target) else {
            return reply(conn, 400, "malformed request target");
        };
        let Some(decoded) = request::decode_path(path) else {
            return reply(conn, 400, "malformed path");
        };
        if let Some(page) = self
            .web
            .as_ref()
            .and_then(|w| w.route(&self.root, &decoded, query))
        {
            let headers = [
                ("Content-Type", page.content_type.to_string()),
                ("Content-Length", page.body.len().to_string()),
                ("Cache-Control", "no-cache".to_string()),
                ("X-Content-Type-Options", "nosniff".to_string()),
            ];
            let body = (!is_head).then_some(page.body.as_slice());
            let bytes = send(conn, page.status, &headers, body).unwrap_or(0);
            return Outcome::new(page.status, bytes);
        }
        let resolved = match request::resolve(&self.root, &decoded) {
            Ok(r) => r,
            Err(status) => return reply(conn, status, host::reason(status)),
        };
        let meta = match fs::metadata(&resolved.path) {
            Ok(m) => m,
            Err(_) => return reply(conn, 404, host::reason(404)),
        };
        if meta.is_dir() {
            let host_name = head
                .header("host")
                .filter(|h| index::plausible_host(h))
                .unwrap_or_else(|| self.local.to_string());
            let page = index::page(&self.root, &resolved, &host_name, &self.options);
            let headers = [
                ("Content-Type", "text/html; charset=utf-8".to_string()),
                ("Content-Length", page.len().to_string()),
            ];
            let body = (!is_head).then_some(page.as_bytes());
            let bytes = send(conn, 200, &headers, body).unwrap_or(0);
            return Outcome::new(200, bytes);
        }
        // Only regular files: opening a FIFO would block a worker.
        if !meta.is_file() {
            return reply(conn, 404, host::reason(404));
        }
        self.media(conn, head, is_head, &resolved.path, query)
    }

    /// Everything about which bytes to send comes from the plan and stream.
    fn media(
        &self,
        conn: &mut TcpStream,
        head: &Head,
        is_head: bool,
        path: &std::path::Path,
        query: &str,
    ) -> Outcome {
        let error = |conn: &mut TcpStream, e: &Error, size: Option<u64>| {
            let status = e.http_status();
            let mut headers = Vec::new();
            if let (416, Some(size)) = (status, size) {
                // A start past the end: no response exists, so report the file's length.
                headers.push(("Content-Range", format!("bytes */{size}")));
            }
            let body = format!("{}\n", host::public_message(e));
            let bytes = send_text(conn, is_head, status, &headers, &body);
            Outcome::new(status, bytes).note(e.to_string())
        };
        let media = match Media::open(path) {
            Ok(m) => m,
            Err(e) => return error(conn, &e, None),
        };
        let size = Some(media.info().size);
        let request = match query::parse(query.as_bytes(), &self.options) {
            Ok(r) => r,
            Err(e) => return error(conn, &e, size),
        };
        let plan = match media.plan(&self.options, &request) {
            Ok(p) => p,
            Err(e) => return error(conn, &e, size),
        };
        let (range, if_match, if_none_match, if_range) = (
            head.header("range"),
            head.header("if-match"),
            head.header("if-none-match"),
            head.header("if-range"),
        );
        let resp = plan.respond(&Conditions {
            range: range.as_deref(),
            if_match: if_match.as_deref(),
            if_none_match: if_none_match.as_deref(),
            if_range: if_range.as_deref(),
        });
        let headers = host::media_headers(&plan, &resp);
        match resp.status {
            200 | 206 => {}
            304 => return Outcome::new(304, send(conn, 304, &headers, None).unwrap_or(0)),
            s => {
                let body = format!("{}\n", host::reason(s));
                return Outcome::new(s, send_text(conn, is_head, s, &headers, &body));
            }
        }
        let mut stream = match media.stream(&plan, resp.first, resp.len) {
            Ok(s) => s,
            Err(e) => return error(conn, &e, size),
        };
        if let Err(e) = send(conn, resp.status, &headers, None) {
            return Outcome::new(resp.status, 0).note(format!("aborted: {e}"));
        }
        if is_head {
            return Outcome::new(resp.status, 0);
        }
        match host::pump(&mut stream, conn) {
            (sent, None) => Outcome::new(resp.status, sent),
            (sent, Some(e @ PumpError::Media(_))) => {
                // Mid-body: the status is out; closing short tells the client.
                eprintln!("pseudostream: {}: {e}", path.display());
                Outcome::new(resp.status, sent).note(format!("aborted: {e}"))
            }
            (sent, Some(e)) => Outcome::new(resp.status, sent).note(format!("aborted: {e}")),
        }
    }
}

/// Writes a status line, the common headers, `headers` and an optional
/// body. Returns the body bytes written.
fn send(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> io::Result<u64> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: pseudostream-example\r\nConnection: close\r\n",
        host::reason(status),
        request::http_date(SystemTime::now())
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    let body = body.unwrap_or_default();
    bytes.extend_from_slice(body);
    conn.write_all(&bytes)?;
    Ok(body.len() as u64)
}

/// A short text/plain answer (no body for HEAD). Returns body bytes written.
fn send_text(
    conn: &mut TcpStream,
    is_head: bool,
    status: u16,
    extra: &[(&str, String)],
    body: &str,
) -> u64 {
    let mut headers = vec![
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("Content-Length", body.len().to_string()),
    ];
    headers.extend(extra.iter().cloned());
    send(
        conn,
        status,
        &headers,
        (!is_head).then_some(body.as_bytes()),
    )
    .unwrap_or(0)
}

/// Half-closes and reads what the client still sends, briefly, so that
/// unread request bytes do not turn our close into a reset that could cut
/// off the end of the response.
fn linger(mut conn: TcpStream) {
    if conn.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 1 << 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match conn.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}
