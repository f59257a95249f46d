//! Real servers for integration tests: nginx (static files with Range) and
//! s3s-fs (S3 with SigV4 checks), each on a private loopback port with its own
//! temporary directories, killed on drop.
//!
//! A missing binary is a hard failure (tests must not skip silently): run
//! `scripts/install-test-deps.sh`, or `scripts/test.sh`, which runs it.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to accept connections before the test fails.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

const INSTALL_HINT: &str = "run `scripts/install-test-deps.sh` (or `scripts/test.sh`) first";

/// A port that was free a moment ago on 127.0.0.1 (bind to port 0, read, release).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Waits until a TCP connect to 127.0.0.1:`port` succeeds; false after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Spawns a server on a fresh port (up to 3 tries, in case another process took
/// the port between `free_port` and the server's bind) and waits until it listens.
/// `make` builds the command for a port; `bound` tells from the server's own
/// files that it, not some other process, holds the port; `log` is read for
/// the failure message.
fn spawn_listening(
    what: &str,
    log: &Path,
    mut make: impl FnMut(u16) -> Command,
    bound: impl Fn(u16) -> bool,
) -> (Child, u16) {
    let mut last_err = String::new();
    for _ in 0..3 {
        let port = free_port();
        let mut child = make(port)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                last_err = format!("{what} exited with {status}: {}", read_lossy(log));
                break;
            }
            if bound(port) && wait_for_port(port, Duration::from_millis(100)) {
                return (child, port);
            }
            thread::sleep(Duration::from_millis(10));
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} did not listen on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?}: {}",
                    read_lossy(log)
                );
            }
        }
    }
    panic!("{what} failed to start: {last_err}");
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn stop_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// One line of nginx's access log, in the format `Nginx` configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub method: String,
    /// The request target as sent (path plus any query string).
    pub path: String,
    pub status: u16,
    /// The request's `Range` header, if it had one.
    pub range: Option<String>,
    /// Body bytes sent (`$body_bytes_sent`).
    pub bytes: u64,
    /// The request's `Authorization` header, if it had one.
    pub authorization: Option<String>,
    /// Its S3 signature headers `x-amz-date` and `x-amz-security-token`, if it had them.
    pub amz_date: Option<String>,
    pub amz_security_token: Option<String>,
}

/// What an nginx serves beyond its root: directives for its `server` block, and TLS.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// Written into the `server` block after `root` (e.g. `location` blocks).
    pub directives: String,
    /// Serve https with `tools/tls/` (see [`tls_ca_path`]).
    pub tls: bool,
}

/// The certificate authority that signed `tools/tls/localhost.pem` (for 127.0.0.1 and
/// localhost): what a client of an https test server is told to trust, e.g. with
/// `SSL_CERT_FILE`. Test-only keys, committed on purpose.
pub fn tls_ca_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/ca.pem")
}

/// nginx serving `root` on 127.0.0.1:`port`, with a private config and log.
pub struct Nginx {
    pub port: u16,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub root: PathBuf,
    pub access_log_path: PathBuf,
    child: Child,
    _prefix: TempDir,
}

impl Nginx {
    pub fn binary() -> PathBuf {
        find_on_path("nginx")
            .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
            .unwrap_or_else(|| {
                panic!("nginx not found on PATH or at /usr/sbin/nginx: {INSTALL_HINT}")
            })
    }

    pub fn start(root: &Path) -> Nginx {
        Self::start_site(root, &Site::default())
    }

    /// nginx serving `root` with `site`'s directives (and TLS, if asked).
    pub fn start_site(root: &Path, site: &Site) -> Nginx {
        let bin = Self::binary();
        let tls_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tls");
        let (listen_tls, tls_files) = if site.tls {
            (
                " ssl",
                format!(
                    "ssl_certificate {};\n        ssl_certificate_key {};",
                    tls_dir.join("localhost.pem").display(),
                    tls_dir.join("localhost.key").display()
                ),
            )
        } else {
            ("", String::new())
        };
        let root = root.canonicalize().expect("nginx root must exist");
        let prefix = tempfile::tempdir().expect("tempdir");
        let p = prefix.path();
        let access_log_path = p.join("access.log");
        let error_log = p.join("error.log");
        let conf = p.join("nginx.conf");
        let pid_file = p.join("nginx.pid");
        let make = |port| {
            // master_process off: one process, so killing the child stops it all
            // (and it keeps root's rights to read files in private temp dirs).
            let config = format!(
                r#"daemon off;
master_process off;
worker_processes 1;
{user}
pid {pid};
error_log {err} warn;
events {{ worker_connections 256; }}
http {{
    log_format editshard '$request_method\t$request_uri\t$status\t$http_range\t$body_bytes_sent\t$http_authorization\t$http_x_amz_date\t$http_x_amz_security_token';
    access_log {acc} editshard;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 30s;
    server {{
        listen 127.0.0.1:{port}{listen_tls};
        server_name localhost;
        root {root};
        {tls_files}
        {directives}
    }}
}}
"#,
                user = if running_as_root() { "user root;" } else { "" },
                p = p.display(),
                pid = pid_file.display(),
                err = error_log.display(),
                acc = access_log_path.display(),
                root = root.display(),
                directives = site.directives,
            );
            fs::write(&conf, config).expect("write nginx.conf");
            let _ = fs::remove_file(&error_log);
            let _ = fs::remove_file(&pid_file);
            let mut cmd = Command::new(&bin);
            cmd.arg("-c")
                .arg(&conf)
                .arg("-p")
                .arg(p)
                .arg("-e")
                .arg(&error_log);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd
        };
        // nginx writes its pid file only once it has bound its listening socket.
        let (child, port) = spawn_listening("nginx", &error_log, make, |_| pid_file.exists());
        Nginx {
            port,
            scheme: if site.tls { "https" } else { "http" },
            root,
            access_log_path,
            child,
            _prefix: prefix,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// The access log so far. nginx writes a line when a request finishes, which
    /// can be just after the client has its last byte: see `wait_for_requests`.
    pub fn access_log(&self) -> Vec<LogLine> {
        read_lossy(&self.access_log_path)
            .lines()
            .filter_map(parse_log_line)
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.access_log().len()
    }

    /// Waits (up to 5 s) until the log holds at least `n` lines and returns the count.
    pub fn wait_for_requests(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let count = self.request_count();
            if count >= n || Instant::now() > deadline {
                return count;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Empties the access log (nginx appends, so truncating is safe).
    pub fn clear_log(&self) {
        fs::write(&self.access_log_path, b"").expect("truncate access log");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn parse_log_line(line: &str) -> Option<LogLine> {
    let mut f = line.split('\t');
    let method = f.next()?.to_string();
    let path = f.next()?.to_string();
    let status = f.next()?.parse().ok()?;
    let range = match f.next()? {
        "-" => None,
        r => Some(r.to_string()),
    };
    let bytes = f.next()?.parse().ok()?;
    let mut header = || match f.next() {
        None | Some("-") => None,
        Some(a) => Some(a.to_string()),
    };
    let authorization = header();
    let amz_date = header();
    let amz_security_token = header();
    Some(LogLine {
        method,
        path,
        status,
        range,
        bytes,
        authorization,
        amz_date,
        amz_security_token,
    })
}

/// s3s-fs on 127.0.0.1:`port`, storing data in a fresh temporary directory.
/// Requests must be SigV4-signed with `access_key`/`secret_key` (region any,
/// e.g. `us-east-1`; path-style addressing).
pub struct S3Server {
    pub port: u16,
    pub endpoint: String,
    pub access_key: &'static str,
    pub secret_key: &'static str,
    pub data_dir: PathBuf,
    child: Child,
    _data: TempDir,
    _logs: TempDir,
}

impl S3Server {
    /// `$EDITSHARD_TOOLS/bin/s3s-fs`, then `~/.cache/editshard-tools/bin/s3s-fs`, then PATH.
    pub fn binary() -> PathBuf {
        let tools = std::env::var_os("EDITSHARD_TOOLS").map(PathBuf::from);
        let home =
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/editshard-tools"));
        [tools, home]
            .into_iter()
            .flatten()
            .map(|dir| dir.join("bin/s3s-fs"))
            .find(|p| p.is_file())
            .or_else(|| find_on_path("s3s-fs"))
            .unwrap_or_else(|| {
                panic!("s3s-fs not found in $EDITSHARD_TOOLS/bin, ~/.cache/editshard-tools/bin or PATH: {INSTALL_HINT}")
            })
    }

    pub fn start() -> S3Server {
        let bin = Self::binary();
        let data = tempfile::tempdir().expect("tempdir");
        let logs = tempfile::tempdir().expect("tempdir");
        let data_dir = data.path().to_path_buf();
        let log = logs.path().join("s3s-fs.log");
        let (access_key, secret_key) = ("AKTEST", "SKTEST");
        let make = |port: u16| {
            let out = fs::File::create(&log).expect("create s3s-fs log");
            let err = out.try_clone().expect("clone log handle");
            let mut cmd = Command::new(&bin);
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", access_key, "--secret-key", secret_key])
                .arg(&data_dir)
                .env("RUST_LOG", "warn,s3s_fs=info")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            cmd
        };
        // s3s-fs logs this line once its listener is bound.
        let bound =
            |port: u16| read_lossy(&log).contains(&format!("running at http://127.0.0.1:{port}"));
        let (child, port) = spawn_listening("s3s-fs", &log, make, bound);
        S3Server {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            data_dir,
            child,
            _data: data,
            _logs: logs,
        }
    }

    /// Creates bucket `name`. s3s-fs keeps each bucket as a directory of its data
    /// dir and finds buckets by looking there, so making the directory is enough.
    pub fn create_bucket(&self, name: &str) {
        fs::create_dir(self.data_dir.join(name))
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
    }

    /// Path of an object's file on disk (for tests that corrupt or inspect objects).
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.data_dir.join(bucket).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}
