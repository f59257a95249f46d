//! A small std-only HTTP/1.1 server on 127.0.0.1 for fault injection.
//!
//! It serves files from a directory (GET/HEAD, single-range `Range` support),
//! but a rule table can make successive requests for a path (or path prefix)
//! misbehave: error statuses, connections cut mid-body, lying Content-Length,
//! stalls, slow drips, HTML error pages posing as images. Every request is
//! recorded (before its response is sent) for assertions.
//!
//! ```ignore
//! let srv = fault_server(dir.path());
//! srv.on("/shard-0", [Behavior::Status(429, vec![("Retry-After".into(), "1".into())]), Behavior::ResetMidBody]);
//! // 1st request for /shard-0: 429; 2nd: cut mid-body; later ones: served normally.
//! ```

use std::collections::VecDeque;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Most connections handled at once; more get a 503 and are closed.
const MAX_CONNECTIONS: usize = 64;
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Serve the file normally (Range: `bytes=a-b`, `a-`, `-n`; 206/416).
    Serve,
    /// Answer with this status, these extra headers (e.g. `Retry-After`) and a short text body.
    Status(u16, Vec<(String, String)>),
    /// Send the normal headers and half of the body, then close the connection.
    ResetMidBody,
    /// Send the whole body under a Content-Length larger than it, then close.
    ShortBody,
    /// Send the normal headers, then nothing for this long, then close.
    Stall(Duration),
    /// Send the normal response `bytes_per_tick` bytes every `tick`.
    SlowDrip {
        bytes_per_tick: usize,
        tick: Duration,
    },
    /// Answer 200 with an HTML page but `Content-Type: image/png`.
    Html200,
    /// Serve normally, with one byte in the middle of the body flipped: damaged bytes under
    /// valid headers, which only a checksum catches.
    CorruptBody,
    /// Answer a `Range` request with 200 and the whole file, as a server without range
    /// support does.
    IgnoreRange,
    /// Send the normal response body in writes of these sizes in turn (cycling), each sent
    /// at once (`TCP_NODELAY`) and followed by a short pause, so the client receives the body
    /// in small chunks whose boundaries fall all over its structure.
    Pieces(Vec<usize>),
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
}

struct Rule {
    prefix: String,
    queue: VecDeque<Behavior>,
    /// Used once the queue is empty; `None` means `Serve`.
    always: Option<Behavior>,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
    active: AtomicUsize,
}

pub struct FaultServer {
    pub port: u16,
    pub root: PathBuf,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

/// Starts a fault-injection server serving files from `root`.
pub fn fault_server(root: &Path) -> FaultServer {
    FaultServer::start(root)
}

impl FaultServer {
    pub fn start(root: &Path) -> FaultServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let shared = Arc::new(Shared::default());
        let (sh, dir) = (shared.clone(), root.to_path_buf());
        let accept = thread::spawn(move || accept_loop(listener, sh, dir));
        FaultServer {
            port,
            root: root.to_path_buf(),
            shared,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues `behaviors` for successive requests whose path starts with `prefix`
    /// (the longest matching prefix wins; `"/"` matches everything). Once a
    /// queue is used up, requests get the rule's `always` behavior, or `Serve`.
    pub fn on(&self, prefix: &str, behaviors: impl IntoIterator<Item = Behavior>) {
        self.with_rule(prefix, |r| r.queue.extend(behaviors));
    }

    /// Every request for `prefix` gets `behavior` once its queue is used up.
    pub fn always(&self, prefix: &str, behavior: Behavior) {
        self.with_rule(prefix, |r| r.always = Some(behavior));
    }

    /// Drops all rules: everything is served normally again.
    pub fn clear_rules(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    fn with_rule(&self, prefix: &str, f: impl FnOnce(&mut Rule)) {
        let mut rules = self.shared.rules.lock().unwrap();
        if let Some(rule) = rules.iter_mut().find(|r| r.prefix == prefix) {
            return f(rule);
        }
        let mut rule = Rule {
            prefix: prefix.to_string(),
            queue: VecDeque::new(),
            always: None,
        };
        f(&mut rule);
        rules.push(rule);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Stops accepting, ends every connection (stalls and drips included) and joins the threads.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            for conn in accept.join().unwrap_or_default() {
                let _ = conn.join();
            }
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, root: PathBuf) -> Vec<JoinHandle<()>> {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                conns.retain(|h| !h.is_finished());
                if shared.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    let _ = write_head(&mut stream, 503, &[], 0, true);
                    continue;
                }
                shared.active.fetch_add(1, Ordering::SeqCst);
                let (sh, dir) = (shared.clone(), root.clone());
                conns.push(thread::spawn(move || {
                    let _ = handle_connection(stream, &sh, &dir);
                    sh.active.fetch_sub(1, Ordering::SeqCst);
                }));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
    conns
}

/// Reads one request head; `None` on EOF, idle timeout or stop.
fn read_head(stream: &mut TcpStream, shared: &Shared) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let started = Instant::now();
    while !buf.ends_with(b"\r\n\r\n") {
        if shared.stop.load(Ordering::SeqCst)
            || started.elapsed() > IDLE_TIMEOUT
            || buf.len() > 65536
        {
            return None;
        }
        match stream.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => buf.push(byte[0]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn handle_connection(mut stream: TcpStream, shared: &Shared, root: &Path) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL * 5))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    while let Some(head) = read_head(&mut stream, shared) {
        let mut lines = head.lines();
        let mut parts = lines.next().unwrap_or("").split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let (mut range, mut body_len, mut close) = (None, 0usize, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.to_string()),
                "content-length" => body_len = value.parse().unwrap_or(0),
                "connection" => close |= value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        std::io::copy(
            &mut (&mut stream).take(body_len as u64),
            &mut std::io::sink(),
        )?;
        let path = target.split('?').next().unwrap_or("/").to_string();
        shared.requests.lock().unwrap().push(Request {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
        });
        let behavior = next_behavior(shared, &path);
        let head_only = method == "HEAD";
        if !respond(
            &mut stream,
            shared,
            root,
            &path,
            range.as_deref(),
            head_only,
            behavior,
            close,
        )? {
            break;
        }
    }
    Ok(())
}

fn next_behavior(shared: &Shared, path: &str) -> Behavior {
    let mut rules = shared.rules.lock().unwrap();
    let rule = rules
        .iter_mut()
        .filter(|r| path.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len());
    match rule {
        Some(r) => r
            .queue
            .pop_front()
            .or_else(|| r.always.clone())
            .unwrap_or(Behavior::Serve),
        None => Behavior::Serve,
    }
}

/// The normal response for `path`: (status, extra headers, body).
fn serve(root: &Path, path: &str, range: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let rel = path.trim_start_matches('/');
    let data = if rel.split('/').any(|c| c == "..") {
        None
    } else {
        fs::read(root.join(rel)).ok()
    };
    let Some(data) = data else {
        return (404, vec![], b"not found\n".to_vec());
    };
    let len = data.len() as u64;
    let mut headers = vec![("Accept-Ranges".to_string(), "bytes".to_string())];
    let Some(spec) = range
        .and_then(|r| r.strip_prefix("bytes="))
        .filter(|s| !s.contains(','))
    else {
        return (200, headers, data); // no Range, or several ranges: ignore it, as RFC 9110 allows
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
    let parsed = match (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()) {
        (Some(s), Some(e)) if s <= e => Some((s, e.min(len.saturating_sub(1)))),
        (Some(s), None) if b.trim().is_empty() => Some((s, len.saturating_sub(1))),
        (None, Some(n)) if a.trim().is_empty() && n > 0 => {
            Some((len.saturating_sub(n), len.saturating_sub(1)))
        }
        _ => None,
    };
    match parsed {
        Some((s, e)) if s < len => {
            headers.push(("Content-Range".into(), format!("bytes {s}-{e}/{len}")));
            (206, headers, data[s as usize..=e as usize].to_vec())
        }
        _ => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            (416, headers, Vec::new())
        }
    }
}

fn write_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    content_length: usize,
    close: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {content_length}\r\n",
        reason(status)
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/octet-stream\r\n");
    }
    head.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "\r\n"
    });
    stream.write_all(head.as_bytes())
}

/// Sleeps up to `d`, waking early if the server stops. False if it stopped.
fn pause(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
    !shared.stop.load(Ordering::SeqCst)
}

/// Sends the response; returns whether the connection may serve another request.
#[allow(clippy::too_many_arguments)]
fn respond(
    s: &mut TcpStream,
    shared: &Shared,
    root: &Path,
    path: &str,
    range: Option<&str>,
    head_only: bool,
    behavior: Behavior,
    close: bool,
) -> std::io::Result<bool> {
    let range = range.filter(|_| behavior != Behavior::IgnoreRange);
    let (status, headers, mut full) = serve(root, path, range);
    // HEAD: the headers (Content-Length included) a GET would get, no body.
    let (n, body) = (full.len(), if head_only { &full[..0] } else { &full[..] });
    match behavior {
        Behavior::Serve => {
            write_head(s, status, &headers, n, close)?;
            s.write_all(body)?;
            return Ok(!close);
        }
        Behavior::Status(code, extra) => {
            let text = format!("{code} {}\n", reason(code));
            let text = if head_only { "" } else { text.as_str() };
            let mut extra = extra;
            if !extra
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                extra.push(("Content-Type".into(), "text/plain".into()));
            }
            write_head(s, code, &extra, text.len(), true)?;
            s.write_all(text.as_bytes())?;
        }
        Behavior::ResetMidBody => {
            write_head(s, status, &headers, n, true)?;
            s.write_all(&body[..body.len() / 2])?;
        }
        Behavior::ShortBody => {
            write_head(s, status, &headers, n + n / 2 + 1, true)?;
            s.write_all(body)?;
        }
        Behavior::Stall(d) => {
            write_head(s, status, &headers, n, true)?;
            s.flush()?;
            pause(shared, d);
        }
        Behavior::SlowDrip {
            bytes_per_tick,
            tick,
        } => {
            write_head(s, status, &headers, n, true)?;
            for chunk in body.chunks(bytes_per_tick.max(1)) {
                if !pause(shared, tick) {
                    break;
                }
                s.write_all(chunk)?;
            }
        }
        Behavior::CorruptBody | Behavior::IgnoreRange => {
            if behavior == Behavior::CorruptBody && !head_only && !full.is_empty() {
                let middle = full.len() / 2;
                full[middle] ^= 0x20;
            }
            let body = if head_only { &full[..0] } else { &full[..] };
            write_head(s, status, &headers, n, close)?;
            s.write_all(body)?;
            return Ok(!close);
        }
        Behavior::Pieces(sizes) => {
            write_head(s, status, &headers, n, true)?;
            s.set_nodelay(true)?;
            let sizes = if sizes.is_empty() { vec![1] } else { sizes };
            let mut at = 0;
            for size in sizes.iter().cycle() {
                if at >= body.len() || !pause(shared, Duration::from_micros(200)) {
                    break;
                }
                let end = (at + size.max(&1)).min(body.len());
                s.write_all(&body[at..end])?;
                at = end;
            }
        }
        Behavior::Html200 => {
            let page = b"<!DOCTYPE html><html><head><title>Oops</title></head><body>Not an image</body></html>\n";
            let page: &[u8] = if head_only { b"" } else { page };
            let ct = vec![("Content-Type".to_string(), "image/png".to_string())];
            write_head(s, 200, &ct, page.len(), true)?;
            s.write_all(page)?;
        }
    }
    let _ = s.flush();
    let _ = s.shutdown(std::net::Shutdown::Both);
    Ok(false)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
