//! `editshard view` as a user runs it: one command on a dataset in S3 (s3s-fs) serves the
//! gallery on loopback, and `--report` writes one self-contained HTML file; `--image-memory`
//! bounds the server's memory under a burst of huge thumbnails, and `--allow-host` adds a host
//! name to the few it answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use editshard_tools::cli::{s, text};
use editshard_tools::servers::S3Server;

fn cmd(server: &S3Server, args: &[&str]) -> Command {
    editshard_tools::cli::editshard_s3_cmd(crate::BIN, &server.endpoint, server, args)
}

/// GET `path` from 127.0.0.1:`port` with plain HTTP/1.1: (status, body).
fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..head_end]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, reply[head_end + 4..].to_vec())
}

/// Stops the server when the test ends, however it ends.
struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn one_command_browses_a_dataset_in_s3() {
    let server = S3Server::start();
    server.create_bucket("datasets");
    let dir = tempfile::tempdir().unwrap();
    editshard_tools::view_fixture::write(&dir.path().join("ds"), 40);
    let url = "s3://datasets/pico/view";
    let o = cmd(&server, &["mirror", s(&dir.path().join("ds")), url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    let mut child = cmd(&server, &["view", url, "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = Killed(child);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    // Loopback by default, no warning.
    let port: u16 = line
        .split("at http://127.0.0.1:")
        .nth(1)
        .unwrap_or_else(|| panic!("no serving line: {line}"))
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let (status, body) = get(port, "/");
    assert_eq!(status, 200);
    let html = String::from_utf8(body).unwrap();
    assert_eq!(html.matches("<article class=\"card").count(), 24);
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let (status, thumb) = get(port, "/thumb/1/2");
    assert_eq!(status, 200);
    assert!(thumb.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG thumbnail");
    let (status, _) = get(port, "/record/2");
    assert_eq!(status, 200);

    let report = dir.path().join("report.html");
    let o = cmd(
        &server,
        &[
            "view",
            url,
            "--report",
            s(&report),
            "--sample",
            "8",
            "--seed",
            "3",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<article class=\"card").count(), 8);
    assert!(html.contains("src=\"data:image/jpeg;base64,"));
    assert!(!html.contains("src=\"/") && !html.contains("src=\"http"));
}

/// GET `path` with the `Host` header `host`: the status.
fn status_for_host(port: u16, path: &str, host: &str) -> u16 {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    String::from_utf8_lossy(&reply)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer for {path}"))
}

/// A field of `/proc/PID/status`, in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// `--image-memory` bounds the server's memory under a burst of thumbnail requests for
/// images 48 MB decoded (each answered 200 or 503, the server serving after), and
/// `--allow-host` adds a host name to the ones served; any other is refused.
#[test]
fn image_memory_and_allowed_hosts() {
    use editshard::record::{Image, Kind, Record, Turn};
    const BUDGET: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    let huge =
        Image::from_bytes(editshard_tools::huge_images::black_png(4000, 4000).into()).unwrap();
    let mut w = editshard::write::DatasetWriter::create(&ds).unwrap();
    for i in 0..8 {
        w.append(&Record::new(
            format!("sft/huge-{i}"),
            Kind::Sft,
            huge.clone(),
            vec![Turn::new(huge.clone())],
        ))
        .unwrap();
    }
    w.finish().unwrap();

    let mut child = editshard_tools::cli::editshard_cmd(crate::BIN)
        .args(["view", s(&ds), "--port", "0", "--image-memory", "64MiB"])
        .args(["--allow-host", "dataset-box.lan"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let _guard = Killed(child);
    let mut stderr = BufReader::new(stderr);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // Read to the end, so that a line the server writes later finds its pipe open.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let port: u16 = line
        .split("at http://127.0.0.1:")
        .nth(1)
        .unwrap_or_else(|| panic!("no serving line: {line}"))
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    assert_eq!(status_for_host(port, "/record/1/json", "evil.example"), 403);
    assert_eq!(status_for_host(port, "/record/1/json", "other.lan:80"), 403);
    assert_eq!(
        status_for_host(port, "/record/1/json", "dataset-box.lan:8080"),
        200
    );
    assert_eq!(status_for_host(port, "/", "localhost"), 200);

    let before = proc_status(pid, "VmRSS:");
    let burst: Vec<_> = (0..64)
        .map(|n| {
            std::thread::spawn(move || {
                status_for_host(
                    port,
                    &format!("/thumb/{}/{}", n % 8, n / 8 % 2),
                    "127.0.0.1",
                )
            })
        })
        .collect();
    let statuses: Vec<u16> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = proc_status(pid, "VmHWM:");
    eprintln!(
        "64 requests: {} answered 200, {} 503; RSS {} MB before, peak {} MB",
        statuses.iter().filter(|&&s| s == 200).count(),
        statuses.iter().filter(|&&s| s == 503).count(),
        before >> 20,
        peak >> 20
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        peak <= before + BUDGET + (48 << 20),
        "peak RSS {} MB, {} MB before, a {} MB budget",
        peak >> 20,
        before >> 20,
        BUDGET >> 20
    );
    assert_eq!(status_for_host(port, "/", "127.0.0.1"), 200);
    assert_eq!(status_for_host(port, "/thumb/7/1", "127.0.0.1"), 200);
}
