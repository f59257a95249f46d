//! `editshard view` as a user runs it: one command on a dataset in S3 (s3s-fs) serves the
//! gallery on loopback, and `--report` writes one self-contained HTML file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use editshard_tools::cli::{s, text};
use editshard_tools::servers::S3Server;

fn cmd(server: &S3Server, args: &[&str]) -> Command {
    let mut c = editshard_tools::cli::editshard_cmd(crate::BIN);
    c.args(args)
        .args(["--s3-endpoint", &server.endpoint])
        .env("AWS_ACCESS_KEY_ID", server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key);
    for v in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_SESSION_TOKEN",
    ] {
        c.env_remove(v);
    }
    c
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
