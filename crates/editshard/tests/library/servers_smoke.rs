//! Checks that the test harness itself works: real nginx and s3s-fs start and
//! answer, and each fault-server behavior is visible to a raw TCP client.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use editshard_tools::fault_server::{Behavior, Request, fault_server};
use editshard_tools::servers::{Nginx, S3Server, free_port, wait_for_port};

/// What a raw client got back: status, headers (names lower-cased), the body
/// bytes that arrived, and whether the read ended by EOF rather than timeout.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    eof: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .expect("content-length")
            .parse()
            .unwrap()
    }
}

/// Sends one `Connection: close` request and reads until EOF or until `read_for`
/// has passed (every socket operation has a timeout).
fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    read_for: Duration,
) -> Reply {
    let addr = ("127.0.0.1", port);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    let (mut buf, mut chunk, mut eof) = (Vec::new(), [0u8; 8192], false);
    let deadline = Instant::now() + read_for;
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                eof = true; // reset by peer counts as the end
                break;
            }
        }
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
        eof,
    }
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    raw_request(port, "GET", path, headers, Duration::from_secs(5))
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn dir_with_file(name: &str, data: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), data).unwrap();
    dir
}

#[test]
fn port_helpers() {
    let port = free_port();
    assert!(port > 0);
    assert!(
        !wait_for_port(port, Duration::from_millis(100)),
        "nothing should listen on a free port"
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(wait_for_port(port, Duration::from_secs(1)));
    drop(listener);
}

#[test]
fn nginx_serves_files_ranges_and_logs_each_request() {
    let data = sample(1000);
    let dir = dir_with_file("blob.bin", &data);
    let nginx = Nginx::start(dir.path());
    assert_eq!(nginx.url(), format!("http://127.0.0.1:{}", nginx.port));

    let full = get(nginx.port, "/blob.bin", &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, data);

    let part = get(nginx.port, "/blob.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(part.body, &data[10..20]);

    let suffix = get(nginx.port, "/blob.bin", &[("Range", "bytes=-5")]);
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, &data[995..]);

    let past_end = get(nginx.port, "/blob.bin", &[("Range", "bytes=5000-")]);
    assert_eq!(past_end.status, 416);

    assert_eq!(nginx.wait_for_requests(4), 4);
    let log = nginx.access_log();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("GET", "/blob.bin")
    );
    assert_eq!(
        (log[0].status, log[0].range.as_deref(), log[0].bytes),
        (200, None, 1000)
    );
    assert_eq!(
        (log[1].status, log[1].range.as_deref(), log[1].bytes),
        (206, Some("bytes=10-19"), 10)
    );
    assert_eq!(
        (log[2].status, log[2].range.as_deref(), log[2].bytes),
        (206, Some("bytes=-5"), 5)
    );
    assert_eq!(log[3].status, 416);

    nginx.clear_log();
    assert_eq!(nginx.request_count(), 0);
    assert_eq!(get(nginx.port, "/missing", &[]).status, 404);
    assert_eq!(nginx.wait_for_requests(1), 1);
    assert_eq!(nginx.access_log()[0].status, 404);
}

#[test]
fn s3s_fs_starts_and_refuses_unsigned_requests() {
    let s3 = S3Server::start();
    assert_eq!(s3.endpoint, format!("http://127.0.0.1:{}", s3.port));
    assert_eq!((s3.access_key, s3.secret_key), ("AKTEST", "SKTEST"));
    s3.create_bucket("bucket");
    assert!(s3.data_dir.join("bucket").is_dir());
    for path in ["/", "/bucket", "/bucket/key"] {
        let reply = get(s3.port, path, &[]);
        assert!(
            (400..500).contains(&reply.status),
            "{path}: status {}",
            reply.status
        );
        let body = String::from_utf8_lossy(&reply.body);
        assert!(body.contains("<Error>"), "{path}: {body}");
    }
}

#[test]
fn fault_server_serves_files_with_ranges() {
    let data = sample(100);
    let dir = dir_with_file("f.bin", &data);
    let srv = fault_server(dir.path());

    let r = get(srv.port, "/f.bin", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, data.as_slice()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let r = get(srv.port, "/f.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 10-19/100"))
    );
    assert_eq!(r.body, &data[10..20]);
    let r = get(srv.port, "/f.bin", &[("Range", "bytes=90-")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[90..]));
    let r = get(srv.port, "/f.bin", &[("Range", "bytes=-3")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[97..]));
    let r = get(srv.port, "/f.bin", &[("Range", "bytes=95-500")]);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 95-99/100"))
    );
    let r = get(srv.port, "/f.bin", &[("Range", "bytes=100-")]);
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */100"))
    );
    let r = raw_request(srv.port, "HEAD", "/f.bin", &[], Duration::from_secs(5));
    assert_eq!((r.status, r.content_length(), r.body.len()), (200, 100, 0));
    assert_eq!(get(srv.port, "/nope", &[]).status, 404);

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 8);
    let want = Request {
        method: "GET".into(),
        path: "/f.bin".into(),
        range: Some("bytes=10-19".into()),
    };
    assert_eq!(reqs[1], want);
    assert_eq!(reqs[0].range, None);
    srv.clear_requests();
    assert_eq!(srv.request_count(), 0);
}

#[test]
fn fault_server_keeps_connections_alive() {
    let dir = dir_with_file("k.bin", b"0123456789");
    let srv = fault_server(dir.path());
    let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = "GET /k.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(format!("{req}{req}").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while got.windows(10).filter(|w| w == b"0123456789").count() < 2 {
        let n = s
            .read(&mut chunk)
            .expect("second response on the same connection");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(srv.request_count(), 2);
}

#[test]
fn fault_server_behaviors_are_observable() {
    let data = sample(4000);
    let dir = dir_with_file("obj", &data);
    let srv = fault_server(dir.path());
    let retry = vec![("Retry-After".to_string(), "2".to_string())];
    srv.on(
        "/obj",
        [
            Behavior::Status(429, retry),
            Behavior::Status(503, vec![]),
            Behavior::ResetMidBody,
            Behavior::ShortBody,
            Behavior::Stall(Duration::from_secs(2)),
            Behavior::SlowDrip {
                bytes_per_tick: 1000,
                tick: Duration::from_millis(100),
            },
            Behavior::Html200,
        ],
    );

    let r = get(srv.port, "/obj", &[]);
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    assert_eq!(get(srv.port, "/obj", &[]).status, 503);

    let r = get(srv.port, "/obj", &[]);
    assert_eq!((r.status, r.content_length()), (200, 4000));
    assert!(
        r.eof && r.body.len() < 4000,
        "reset: got {} bytes",
        r.body.len()
    );
    assert_eq!(r.body, &data[..r.body.len()]);

    let r = get(srv.port, "/obj", &[]);
    assert!(r.eof && r.content_length() > r.body.len(), "short body");
    assert_eq!(r.body, data);

    let r = raw_request(srv.port, "GET", "/obj", &[], Duration::from_millis(300));
    assert_eq!(r.status, 200);
    assert!(
        !r.eof && r.body.is_empty(),
        "stall sent {} bytes",
        r.body.len()
    );

    let started = Instant::now();
    let r = get(srv.port, "/obj", &[]);
    assert_eq!(r.body, data);
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "drip took {:?}",
        started.elapsed()
    );

    let r = get(srv.port, "/obj", &[]);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/png"))
    );
    assert!(r.body.starts_with(b"<!DOCTYPE html>"));

    // Queue used up: back to normal; ranges still apply under a behavior.
    assert_eq!(get(srv.port, "/obj", &[]).body, data);
    srv.on("/obj", [Behavior::ResetMidBody]);
    let r = get(srv.port, "/obj", &[("Range", "bytes=0-99")]);
    assert_eq!((r.status, r.content_length()), (206, 100));
    assert_eq!(r.body.len(), 50);
    assert_eq!(srv.request_count(), 9);
    assert!(srv.requests().iter().all(|q| q.path == "/obj"));
}

#[test]
fn fault_server_rules_pick_longest_prefix_and_repeat() {
    let dir = dir_with_file("a.bin", b"abc");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/b.bin"), b"xyz").unwrap();
    let srv = fault_server(dir.path());
    srv.always("/", Behavior::Status(500, vec![]));
    srv.always("/sub/", Behavior::Status(404, vec![]));
    srv.on("/sub/b.bin", [Behavior::Serve]);
    assert_eq!(get(srv.port, "/a.bin", &[]).status, 500);
    assert_eq!(get(srv.port, "/sub/b.bin", &[]).body, b"xyz");
    assert_eq!(
        get(srv.port, "/sub/b.bin", &[]).status,
        200,
        "exact rule has no `always`: serves"
    );
    assert_eq!(get(srv.port, "/sub/other", &[]).status, 404);
    srv.clear_rules();
    assert_eq!(get(srv.port, "/a.bin", &[]).body, b"abc");
}

#[test]
fn fault_server_stop_ends_stalled_connections() {
    let dir = dir_with_file("s", b"stall");
    let mut srv = fault_server(dir.path());
    srv.always("/s", Behavior::Stall(Duration::from_secs(60)));
    let port = srv.port;
    let client =
        std::thread::spawn(move || raw_request(port, "GET", "/s", &[], Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.request_count() == 0 {
        assert!(Instant::now() < deadline, "request never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    srv.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        started.elapsed()
    );
    let r = client.join().unwrap();
    assert!(r.eof, "the stalled connection should be closed by stop()");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after stop"
    );
}
