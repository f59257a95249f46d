//! Releases written by an attacker, served over HTTP: they must not make `convert` read local
//! files, leak their contents, or fetch anything outside the release and `--map-url` prefixes.

use std::fs;
use std::path::Path;

use editshard_tools::convert_support::*;
use editshard_tools::fault_server::fault_server;
use editshard_tools::release::{GeneratedRelease, ReleaseSpec, Subset, generate_release};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn release(dir: &Path, sft: usize) -> GeneratedRelease {
    generate_release(
        dir,
        &ReleaseSpec {
            sft,
            preference: 0,
            multi_turn: 0,
            seed: 71,
            image_px: 16,
            faults: false,
        },
    )
    .unwrap()
}

/// Rewrites sft.jsonl, letting `edit` change row `i` (0-based).
fn edit_rows(rel: &GeneratedRelease, edit: impl Fn(usize, &mut serde_json::Map<String, Value>)) {
    let path = rel.jsonl(Subset::Sft);
    let mut out = String::new();
    for (i, line) in fs::read_to_string(&path).unwrap().lines().enumerate() {
        let mut row: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        edit(i, &mut row);
        out.push_str(&serde_json::to_string(&row).unwrap());
        out.push('\n');
    }
    fs::write(path, out).unwrap();
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[test]
fn a_release_cannot_make_convert_read_local_files_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = release(&tmp.path().join("rel"), 4);
    let private = tmp.path().join("private");
    fs::create_dir_all(&private).unwrap();
    // A real image the user never meant to publish, and a file of secrets.
    let photo = private.join("photo.png");
    fs::copy(rel.path(&rel.rows[3].output_image.clone().unwrap()), &photo).unwrap();
    fs::write(
        private.join("secrets.env"),
        "AWS_SECRET_ACCESS_KEY=hunter2\n",
    )
    .unwrap();
    let outside = tmp.path().join("outside.png");
    fs::copy(&photo, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, private.join("link.png")).unwrap();
    let named = [
        photo.clone(),
        private.join("secrets.env"),
        private.join("link.png"),
    ];
    edit_rows(&rel, |i, row| {
        if let Some(p) = named.get(i) {
            row.insert("local_input_image".into(), p.to_str().unwrap().into());
        }
    });
    let server = fault_server(&rel.root);
    let base = server.url();
    let source_sha = |line: u64| {
        let row = rel
            .rows_of(Subset::Sft)
            .find(|r| r.line as u64 == line)
            .unwrap();
        sha(&fs::read(rel.flickr_path_for(&row.source_url).unwrap()).unwrap())
    };

    // A remote release: every local_input_image is ignored, the sources come from their URLs.
    let out = tmp.path().join("remote");
    let args = strings(&[
        &format!("{base}/"),
        "--out",
        out.to_str().unwrap(),
        "--map-url",
        &format!("https://={base}/flickr/"),
    ]);
    let o = convert(crate::BIN, &args);
    let shown = text(&o);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("local paths ignored"), "{shown}");
    assert!(!shown.contains("hunter2"));
    let converted = records(&out);
    assert_eq!(converted.len(), 4);
    for r in &converted {
        assert_eq!(
            r.source.sha256,
            source_sha(r.provenance.line.unwrap()),
            "{}",
            r.id
        );
    }
    for f in walk(&out) {
        assert!(
            !String::from_utf8_lossy(&fs::read(&f).unwrap()).contains("hunter2"),
            "{} quotes the secret file",
            f.display()
        );
    }

    // With --local-images-root, paths inside it are read; the link leading out of it is not,
    // and the secret file is rejected as not an image without being quoted.
    let out = tmp.path().join("allowed");
    let mut args = strings(&[
        &format!("{base}/"),
        "--out",
        out.to_str().unwrap(),
        "--map-url",
        &format!("https://={base}/flickr/"),
        "--local-images-root",
        private.to_str().unwrap(),
        "--allow-failures",
    ]);
    args.push("--subsets".into());
    args.push("sft".into());
    let o = convert(crate::BIN, &args);
    let shown = text(&o);
    assert!(o.status.success(), "{shown}");
    let by_line: std::collections::HashMap<u64, [u8; 32]> = records(&out)
        .iter()
        .map(|r| (r.provenance.line.unwrap(), r.source.sha256))
        .collect();
    assert_eq!(by_line[&1], sha(&fs::read(&photo).unwrap()));
    assert!(
        !by_line.contains_key(&2),
        "the secrets file is not an image"
    );
    assert_eq!(
        by_line[&3],
        source_sha(3),
        "the link out of the root was not read"
    );
    let failures = failures(&out);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["reason"], "invalid-image");
    assert!(
        !failures[0].to_string().contains("hunter2"),
        "{}",
        failures[0]
    );
    assert!(!shown.contains("hunter2"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn percent_encoded_dot_segments_cannot_leave_the_release_or_the_mapped_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    // The server's root holds the release in rel/ and a file beside it that must stay unread.
    let root = tmp.path().join("root");
    let rel = release(&root.join("rel"), 5);
    fs::write(
        root.join("secret.png"),
        fs::read(rel.path(&rel.rows[0].output_image.clone().unwrap())).unwrap(),
    )
    .unwrap();
    edit_rows(&rel, |i, row| match i {
        0 => {
            row.insert(
                "output_image".into(),
                "images/%2e%2e/%2e%2e/secret.png".into(),
            );
        }
        1 => {
            row.insert("output_image".into(), "images/..%2f..%2fsecret.png".into());
        }
        2 => {
            row.insert(
                "open_image_input_url".into(),
                "https://farm1.staticflickr.com/%2e%2e/%2e%2e/%2e%2e/secret.png".into(),
            );
        }
        // Decoded by the server, not by the URL parser.
        3 => {
            row.insert(
                "open_image_input_url".into(),
                "https://farm1.staticflickr.com/1/..%2f..%2f..%2f..%2fsecret.png".into(),
            );
        }
        _ => {}
    });
    let server = fault_server(&root);
    let base = server.url();
    let out = tmp.path().join("out");
    let o = convert(
        crate::BIN,
        &strings(&[
            &format!("{base}/rel/"),
            "--out",
            out.to_str().unwrap(),
            "--map-url",
            &format!("https://={base}/rel/flickr/"),
            "--allow-failures",
        ]),
    );
    assert!(o.status.success(), "{}", text(&o));
    let failures = failures(&out);
    let unsafe_lines: Vec<u64> = failures
        .iter()
        .filter(|f| f["reason"] == "unsafe-path")
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(unsafe_lines, [1, 2, 3, 4], "{failures:?}");
    for r in server.requests() {
        assert!(
            r.path.starts_with("/rel/"),
            "requested {} outside the release",
            r.path
        );
        assert!(!r.path.contains("secret"), "requested {}", r.path);
    }
    assert_eq!(records(&out).len(), 1);
}
