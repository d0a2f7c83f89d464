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

use pseudostream::Exchange;

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
    config: pseudostream::Config,
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
        config: config.library,
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
        let is_head = head.method == "HEAD";
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
        let page_method = matches!(head.method.as_str(), "GET" | "HEAD");
        if let Some(page) = self
            .web
            .as_ref()
            .filter(|_| page_method)
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
        let resolved = request::resolve(&self.root, &decoded);
        if let (Ok(r), true) = (&resolved, page_method) {
            if r.path.is_dir() {
                let host_name = head
                    .header("host")
                    .filter(|h| index::plausible_host(h))
                    .unwrap_or_else(|| self.local.to_string());
                let page = index::page(&self.root, r, &host_name, &self.config.plan);
                let headers = [
                    ("Content-Type", "text/html; charset=utf-8".to_string()),
                    ("Content-Length", page.len().to_string()),
                ];
                let body = (!is_head).then_some(page.as_bytes());
                let bytes = send(conn, 200, &headers, body).unwrap_or(0);
                return Outcome::new(200, bytes);
            }
        }
        self.media(conn, head, resolved, query)
    }

    /// Everything about a media file's answer comes from the library.
    fn media(
        &self,
        conn: &mut TcpStream,
        head: &Head,
        resolved: Result<request::Resolved, u16>,
        query: &str,
    ) -> Outcome {
        let mut exchange = Exchange::new(head.method.as_bytes(), query.as_bytes());
        for (name, value) in head.headers() {
            exchange.header(name.as_bytes(), value.as_bytes());
        }
        if exchange.wants_file() {
            match &resolved {
                // Only regular files: opening a FIFO would block a worker.
                Ok(r) if r.path.is_file() => exchange.open_path(&r.path),
                Ok(_) => exchange.open_failed(libc::ENOENT, None),
                Err(403) => exchange.open_failed(libc::EACCES, None),
                Err(_) => exchange.open_failed(libc::ENOENT, None),
            }
        }
        exchange.respond(&self.config);
        let (Ok(info), Ok(headers), Ok(detail)) =
            (exchange.info(), exchange.headers(), exchange.detail())
        else {
            let bytes = send_text(conn, false, 500, &[], "no answer\n");
            return Outcome::new(500, bytes);
        };
        let headers: Vec<(&str, String)> =
            headers.iter().map(|(n, v)| (n, v.to_string())).collect();
        let note = (!detail.is_empty()).then(|| detail.to_string());
        let status = info.status;
        let outcome = |bytes, extra: Option<String>| {
            let o = Outcome::new(status, bytes);
            match extra.or_else(|| note.clone()) {
                Some(n) => o.note(n),
                None => o,
            }
        };
        if let Err(e) = send(conn, status, &headers, None) {
            return outcome(0, Some(format!("aborted: {e}")));
        }
        match host::pump(&mut exchange, conn) {
            (sent, None) => outcome(sent, None),
            (sent, Some(e @ PumpError::Media(_))) => {
                // Mid-body: the status is out; closing short tells the client.
                eprintln!("pseudostream: {}: {e}", head.target);
                outcome(sent, Some(format!("aborted: {e}")))
            }
            (sent, Some(e)) => outcome(sent, Some(format!("aborted: {e}"))),
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
