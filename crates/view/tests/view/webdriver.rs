//! A minimal W3C WebDriver client (JSON over HTTP) for Debian's chromedriver driving Debian's
//! headless chromium: enough to load pages, run a script, click and take screenshots. No
//! browser is downloaded; a missing chromedriver fails the test with the install hint.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const HINT: &str = "install chromium and chromium-driver: run `scripts/install-test-deps.sh`";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path).find_map(|dir| {
                candidates
                    .iter()
                    .filter_map(|c| Path::new(c).file_name())
                    .map(|n| dir.join(n))
                    .find(|p| p.is_file())
            })
        })
}

impl Driver {
    pub async fn start() -> Driver {
        editshard::net::ensure_tls_provider();
        let driver = find(&["/usr/bin/chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found: {HINT}"));
        let browser =
            find(&["/usr/bin/chromium"]).unwrap_or_else(|| panic!("chromium not found: {HINT}"));
        let port = editshard_tools::servers::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting chromedriver: {e}"));
        assert!(
            editshard_tools::servers::wait_for_port(port, Duration::from_secs(20)),
            "chromedriver did not listen on 127.0.0.1:{port}"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            _profile: profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--hide-scrollbars", "--no-first-run",
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ]
            }
        }}});
        let created = driver.call("POST", "/session", caps).await;
        driver.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        driver
    }

    /// A WebDriver command; returns its `value`, panicking on a WebDriver error.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, value) = self.try_call(method, path, body).await;
        assert!(
            status < 300,
            "WebDriver {method} {path} failed ({status}): {value}"
        );
        value
    }

    async fn try_call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.client.get(&url),
            "DELETE" => self.client.delete(&url),
            _ => self
                .client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string()),
        };
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let status = res.status().as_u16();
        let v: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        (status, v["value"].clone())
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({ "url": url }))
            .await;
    }

    pub async fn exec(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                &self.s("/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element for {css}: {v}"))
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.call("POST", &self.s(&format!("/element/{el}/click")), json!({}))
            .await;
    }

    /// True while a JavaScript dialog (alert) is open: escaping failed if one ever is.
    pub async fn alert_open(&self) -> bool {
        self.try_call("GET", &self.s("/alert/text"), Value::Null)
            .await
            .0
            < 300
    }

    /// Polls `script` (which returns a boolean) until true; panics after 20 s.
    pub async fn wait_for(&self, script: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.exec(script).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn screenshot(&self, path: &Path) {
        let v = self.call("GET", &self.s("/screenshot"), Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(path, png).unwrap();
    }

    pub async fn quit(mut self) {
        let s = self.s("");
        let _ = self.try_call("DELETE", &s, Value::Null).await;
        self.session.clear();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // After a panic the session is still open: ending it (a plain blocking DELETE, as
        // Drop cannot await) makes chromedriver close the browser, which killing chromedriver
        // alone would leave running. After `quit` the connection simply fails.
        if !self.session.is_empty() {
            delete_blocking(&self.base, &format!("/session/{}", self.session));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn delete_blocking(base: &str, path: &str) {
    use std::io::{Read, Write};
    let Some(addr) = base.strip_prefix("http://") else {
        return;
    };
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let request = format!("DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_ok() {
        let _ = conn.read_to_end(&mut Vec::new());
    }
}
