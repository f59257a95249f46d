//! The commands on a dataset hosted on the Hugging Face Hub (`hf://`), whose answers redirect
//! to a CDN: two real nginx on 127.0.0.1 (`editshard_tools::hub_cdn`), a hub that wants the
//! token and a CDN that refuses any credential. Also the README's "Host on the Hub or a CDN"
//! commands, as written.

use std::path::Path;
use std::process::{Command, Output};

use editshard_tools::cli::{s, text, tree};
use editshard_tools::hub_cdn::{HubCdn, TOKEN};
use editshard_tools::servers::{LogLine, tls_ca_path};

/// The sample release converted as the quick start does.
fn sample(out: &Path) {
    let ws = crate::workspace();
    let release = ws.join("examples/sample-release");
    let o = Command::new(crate::BIN)
        .args([
            "convert",
            s(&release),
            "--out",
            s(out),
            "--log-interval",
            "0",
        ])
        .arg("--openimages-csv")
        .arg(release.join("openimages/train-images-boxable-with-rotation.csv"))
        .arg("--openimages-dir")
        .arg(release.join("openimages"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// The binary with the hub's environment (`HF_ENDPOINT`, `HF_TOKEN` unless `token` is false,
/// `HF_HOME` empty).
fn run(servers: &HubCdn, home: &Path, token: bool, args: &[&str]) -> Output {
    let mut cmd = Command::new(crate::BIN);
    for (k, v) in servers.env(home) {
        if k != "HF_TOKEN" || token {
            cmd.env(k, v);
        }
    }
    if !token {
        cmd.env_remove("HF_TOKEN");
    }
    cmd.env_remove("HF_TOKEN_PATH").args(args).output().unwrap()
}

/// No credential reached the CDN; every hub request carried the token and was redirected.
fn assert_credentials_stayed_at_the_hub(hub: &[LogLine], cdn: &[LogLine]) {
    assert!(!hub.is_empty() && !cdn.is_empty());
    for l in hub {
        assert_eq!(
            l.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
        assert_eq!(l.status, 302, "{l:?}");
    }
    for l in cdn {
        assert_eq!(l.authorization, None, "a credential reached the CDN: {l:?}");
        assert!(matches!(l.status, 200 | 206), "{l:?}");
    }
}

#[test]
fn ls_cat_get_view_and_mirror_read_a_hub_dataset_through_its_cdn() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    sample(&ds);
    let servers = HubCdn::start(&ds);
    let home = tmp.path().join("hf-home");
    let loc = servers.location();

    let o = run(&servers, &home, true, &["ls", &loc, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let ls: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ls["records"], 36, "{ls}");

    let o = run(
        &servers,
        &home,
        true,
        &["cat", &loc, "--kind", "sft", "--fields", "id"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 12);

    let rec = tmp.path().join("rec");
    let id = "sft/images/positive-edit/4.png";
    let o = run(&servers, &home, true, &["get", &loc, id, "--out", s(&rec)]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec.join("record.json")).unwrap()).unwrap();
    assert_eq!(json["id"], id);

    // view: a report of sampled records, their images fetched through the CDN.
    let report = tmp.path().join("report.html");
    let args = [
        "view",
        &loc,
        "--report",
        s(&report),
        "--sample",
        "8",
        "--seed",
        "3",
    ];
    let o = run(&servers, &home, true, &args);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<article class=\"card").count(), 8);
    assert!(html.contains("src=\"data:image/"));

    let (hub, cdn) = servers.settled_logs();
    assert_credentials_stayed_at_the_hub(&hub, &cdn);
    assert!(
        cdn.iter().filter(|l| l.range.is_some()).count() >= 2,
        "records come as ranged reads: {cdn:#?}"
    );

    // mirror's source: a verified copy, byte for byte.
    let copy = tmp.path().join("copy");
    let o = run(&servers, &home, true, &["mirror", &loc, s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&servers, &home, true, &["verify", s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));
    let wanted: Vec<_> = tree(&ds)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".esd") || k == "manifest.json")
        .collect();
    let got: Vec<_> = tree(&copy)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".esd") || k == "manifest.json")
        .collect();
    assert_eq!(got, wanted);

    // --hf-token instead of HF_TOKEN; and without either, the hub's 401 and what to set.
    servers.hub.clear_log();
    servers.cdn.clear_log();
    let o = run(&servers, &home, false, &["ls", &loc, "--hf-token", TOKEN]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&servers, &home, false, &["ls", &loc]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("HTTP 401") && err.contains("hf://datasets/"),
        "{err}"
    );
    assert!(
        err.contains("hint: the Hub refused") && err.contains("HF_TOKEN"),
        "{err}"
    );
    let (hub, cdn) = servers.settled_logs();
    assert_eq!(hub.len(), 2, "{hub:#?}");
    assert_eq!(hub[1].authorization, None);
    assert_eq!(
        cdn.len(),
        1,
        "only the run with the token reached the CDN: {cdn:#?}"
    );
    assert_eq!(cdn[0].authorization, None);
}

/// The hub over https redirects to the CDN over plain http: refused, both URLs named, with
/// what to do, and the CDN never asked. The test CA is trusted through `SSL_CERT_FILE`.
#[test]
fn a_redirect_from_https_to_plain_http_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    sample(&ds);
    let servers = HubCdn::start_https_hub(&ds);
    let home = tmp.path().join("hf-home");
    let o = Command::new(crate::BIN)
        .envs(servers.env(&home))
        .env("SSL_CERT_FILE", tls_ca_path())
        .args(["ls", &servers.location()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let from = format!("{}/manifest.json", servers.resolve_url());
    let to = format!("{}/blobs/manifest.json?…", servers.cdn.url());
    assert!(
        err.contains(&format!(
            "refused the redirect from {from} to {to}: it goes from https to plain http"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: editshard never follows https to plain http"),
        "{err}"
    );
    let (hub, cdn) = servers.settled_logs();
    assert_eq!(hub.len(), 1, "the hub was reached over TLS: {hub:#?}");
    assert!(cdn.is_empty(), "{cdn:#?}");
}

/// The README's `editshard ... hf://datasets/ORG/NAME/pico ...` lines run as written against
/// the hub (the repository and the folder swapped for the test's; the revision example and
/// `view`, which serves until stopped, left out; an S3 destination made a local directory).
#[test]
fn the_readme_hub_commands_work_as_written() {
    let readme = std::fs::read_to_string(crate::workspace().join("README.md")).unwrap();
    let section = readme
        .split("## Host on the Hub or a CDN")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    sample(&ds);
    let servers = HubCdn::start(&ds);
    let home = tmp.path().join("hf-home");
    let mut ran = 0;
    for line in section.lines().filter(|l| l.starts_with("editshard ")) {
        let line = line.split(" # ").next().unwrap().trim();
        assert!(line.contains("hf://datasets/ORG/NAME"), "{line}");
        if line.contains('@') || line.starts_with("editshard view") {
            continue;
        }
        let args: Vec<String> = line
            .split_whitespace()
            .skip(1)
            .map(|a| match a {
                "hf://datasets/ORG/NAME/pico" => servers.location(),
                "rec/" => s(&tmp.path().join("rec")).to_string(),
                a if a.starts_with("s3://") => s(&tmp.path().join("mirror")).to_string(),
                a => a.to_string(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&servers, &home, true, &args);
        assert!(o.status.success(), "README: {line}: {}", text(&o));
        ran += 1;
    }
    assert_eq!(ran, 3, "ls, get and mirror");
    let (hub, cdn) = servers.settled_logs();
    assert_credentials_stayed_at_the_hub(&hub, &cdn);
}
