//! A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, put in front of a real server
//! (s3s-fs): S3 faults without a fake S3.
//!
//! Requests are forwarded byte for byte (head and body unchanged apart from
//! `Connection: close`, which SigV4 does not sign), so the client signs for the proxy's
//! `Host` (`127.0.0.1:PROXY_PORT`) and s3s-fs checks the signature against the same header it
//! receives: point the client's endpoint at [`FaultProxy::endpoint`]. One request per
//! connection (each response says `Connection: close`).
//!
//! A fault plan picks what happens to successive requests matching a rule (method and a
//! substring of the path, query included), like the fault server's:
//!
//! ```ignore
//! let proxy = FaultProxy::start(s3.port);
//! proxy.on("GET", "/shard-00001.esd", [Fault::slow_down(), Fault::ResetMidBody]);
//! // 1st GET of that shard: 503 SlowDown (not forwarded); 2nd: cut mid-body; then served.
//! assert_eq!(proxy.pending(), 0); // every planned fault happened
//! ```

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request or response head.
const MAX_HEAD: usize = 64 << 10;
/// Largest body forwarded (test objects are small).
const MAX_BODY: usize = 256 << 20;

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and body (S3's XML error) without forwarding.
    Status(u16, String),
    /// Forward; send the response head and half the body, then close the connection.
    ResetMidBody,
    /// Forward; send the response head, then nothing for this long, then close.
    StallBody(Duration),
    /// Forward (the server acts on it), then close without any response: the client cannot
    /// know whether its request took effect.
    DropResponse,
    /// Answer with this redirect status and `Location: {base}{path}` (the request's path and
    /// query) without forwarding: the store sends the client elsewhere, e.g. to a CDN.
    Redirect(u16, String),
    /// Take the whole request, then answer nothing for this long (nothing is forwarded),
    /// then close: a store that stalls once a body has arrived.
    StallAnswer(Duration),
    /// Forward with one byte in the middle of the request body flipped (head unchanged):
    /// bytes damaged in flight, which the server must refuse by their checksum.
    DamageRequestBody,
}

impl Fault {
    /// S3's throttling answer: 503 SlowDown with its XML error body.
    pub fn slow_down() -> Fault {
        Fault::Status(
            503,
            s3_error("SlowDown", "Please reduce your request rate."),
        )
    }
    /// 500 InternalError with S3's XML error body.
    pub fn internal_error() -> Fault {
        Fault::Status(
            500,
            s3_error(
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
        )
    }
    /// 503 ServiceUnavailable with S3's XML error body.
    pub fn unavailable() -> Fault {
        Fault::Status(
            503,
            s3_error("ServiceUnavailable", "Please reduce your request rate."),
        )
    }
}

fn s3_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    )
}

/// One request as the proxy saw it, and the fault it got (`None`: forwarded untouched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
    /// Length of the request body the client sent.
    pub request_body: usize,
    /// Length of the response body the server sent (0 for a fault that answers itself; the
    /// whole body also when the fault cuts it short).
    pub response_body: usize,
}

struct Rule {
    method: String,
    path_contains: String,
    queue: VecDeque<Fault>,
    always: Option<Fault>,
}

#[derive(Default)]
struct Plan {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

impl Plan {
    /// The fault for this request: the first rule that matches and has one.
    /// Also records the request in `seen` (its response's length is filled in later).
    fn pick(&mut self, method: &str, path: &str, request_body: usize) -> (Option<Fault>, usize) {
        let fault = self
            .rules
            .iter_mut()
            .filter(|r| (r.method == "*" || r.method == method) && path.contains(&r.path_contains))
            .find_map(|r| r.queue.pop_front().or_else(|| r.always.clone()));
        self.seen.push(Seen {
            method: method.to_string(),
            path: path.to_string(),
            fault: fault.clone(),
            request_body,
            response_body: 0,
        });
        (fault, self.seen.len() - 1)
    }
}

/// The running proxy; stopped when dropped.
pub struct FaultProxy {
    pub port: u16,
    plan: Arc<Mutex<Plan>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        // Bound with std so that a proxy can start inside another runtime (an async test).
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let shared = plan.clone();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((client, _)) = listener.accept().await {
                let plan = shared.clone();
                tokio::spawn(async move {
                    let _ = handle(client, upstream_port, &plan).await;
                });
            }
        });
        FaultProxy {
            port,
            plan,
            runtime: Some(runtime),
        }
    }

    /// The endpoint clients use (`--s3-endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues `faults` for successive requests with this method (`"*"`: any) whose path
    /// (query included) contains `path_contains`. Rules are tried in the order they were
    /// added; requests no rule has a fault for are forwarded untouched.
    pub fn on(&self, method: &str, path_contains: &str, faults: impl IntoIterator<Item = Fault>) {
        self.with_rule(method, path_contains, |r| r.queue.extend(faults));
    }

    /// Every matching request gets `fault` once the rule's queue is used up.
    pub fn always(&self, method: &str, path_contains: &str, fault: Fault) {
        self.with_rule(method, path_contains, |r| r.always = Some(fault));
    }

    fn with_rule(&self, method: &str, path_contains: &str, f: impl FnOnce(&mut Rule)) {
        let mut plan = self.plan.lock().unwrap();
        if let Some(r) = plan
            .rules
            .iter_mut()
            .find(|r| r.method == method && r.path_contains == path_contains)
        {
            return f(r);
        }
        let mut rule = Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            queue: VecDeque::new(),
            always: None,
        };
        f(&mut rule);
        plan.rules.push(rule);
    }

    /// Drops every rule: everything is forwarded untouched again.
    pub fn clear_rules(&self) {
        self.plan.lock().unwrap().rules.clear();
    }

    /// Queued faults not yet used (0 once every planned fault happened).
    pub fn pending(&self) -> usize {
        self.plan
            .lock()
            .unwrap()
            .rules
            .iter()
            .map(|r| r.queue.len())
            .sum()
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.plan.lock().unwrap().seen.clone()
    }

    /// Bytes of request bodies and of response bodies so far: what passed through clients.
    pub fn body_bytes(&self) -> (usize, usize) {
        self.seen().iter().fold((0, 0), |(a, b), s| {
            (a + s.request_body, b + s.response_body)
        })
    }

    /// How many requests got a fault.
    pub fn faults_injected(&self) -> usize {
        self.seen().iter().filter(|s| s.fault.is_some()).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A parsed message head: the raw lines and the declared body length.
struct Head {
    lines: Vec<String>,
    content_length: usize,
    chunked: bool,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.lines[1..].iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The head again, with `Connection: close` instead of any `Connection` header.
    fn closing(&self) -> Vec<u8> {
        let mut out = String::new();
        for l in &self.lines {
            let name = l.split_once(':').map(|(k, _)| k.trim());
            if name.is_some_and(|k| k.eq_ignore_ascii_case("connection")) {
                continue;
            }
            out.push_str(l);
            out.push_str("\r\n");
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Reads a head (up to the blank line); the bytes read past it are returned too.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Head, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("head too long"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    let mut head = Head {
        lines,
        content_length: 0,
        chunked: false,
    };
    head.content_length = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    head.chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    Ok(Some((head, buf[end + 4..].to_vec())))
}

async fn read_body(
    stream: &mut TcpStream,
    mut body: Vec<u8>,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    if len > MAX_BODY {
        return Err(std::io::Error::other("body too large"));
    }
    let mut chunk = vec![0u8; 64 << 10];
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok(body)
}

async fn respond(client: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await
}

async fn redirect(client: &mut TcpStream, status: u16, location: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    client.write_all(head.as_bytes()).await?;
    client.shutdown().await
}

async fn handle(
    mut client: TcpStream,
    upstream_port: u16,
    plan: &Mutex<Plan>,
) -> std::io::Result<()> {
    let Some((head, early)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let mut request_line = head.lines[0].split(' ');
    let method = request_line.next().unwrap_or("").to_string();
    let path = request_line.next().unwrap_or("").to_string();
    if head.chunked {
        // Not needed by object_store (its bodies are sized); said loudly if that changes.
        return respond(
            &mut client,
            501,
            "fault proxy: chunked request bodies unsupported",
        )
        .await;
    }
    let mut body = read_body(&mut client, early, head.content_length).await?;
    let (fault, index) = plan.lock().unwrap().pick(&method, &path, body.len());
    if fault == Some(Fault::DamageRequestBody) && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0x01;
    }
    if let Some(Fault::Status(status, text)) = &fault {
        return respond(&mut client, *status, text).await;
    }
    if let Some(Fault::StallAnswer(d)) = &fault {
        tokio::time::sleep(*d).await;
        return client.shutdown().await;
    }
    if let Some(Fault::Redirect(status, base)) = &fault {
        return redirect(&mut client, *status, &format!("{base}{path}")).await;
    }

    let mut upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).await?;
    upstream.write_all(&head.closing()).await?;
    upstream.write_all(&body).await?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("upstream sent no head"))?;
    let text = String::from_utf8_lossy(&response[..split]).into_owned();
    let reply_head = Head {
        lines: text.split("\r\n").map(str::to_string).collect(),
        content_length: 0,
        chunked: false,
    }
    .closing();
    let reply_body = &response[split + 4..];
    plan.lock().unwrap().seen[index].response_body = reply_body.len();
    match fault {
        None | Some(Fault::DamageRequestBody) => {
            client.write_all(&reply_head).await?;
            client.write_all(reply_body).await?;
        }
        Some(Fault::ResetMidBody) => {
            client.write_all(&reply_head).await?;
            client
                .write_all(&reply_body[..reply_body.len() / 2])
                .await?;
        }
        Some(Fault::StallBody(d)) => {
            client.write_all(&reply_head).await?;
            client.flush().await?;
            tokio::time::sleep(d).await;
        }
        Some(Fault::DropResponse)
        | Some(Fault::Status(..))
        | Some(Fault::Redirect(..))
        | Some(Fault::StallAnswer(_)) => {}
    }
    client.shutdown().await
}
