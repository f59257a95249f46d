//! The README as a new user follows it: the quick start's sample, then the commands that look
//! at it (the `get` example's id must be in the sample), the install command, the exit codes
//! (the same as `--help`), and the test command's prerequisites and its fuzz-build message.

use std::path::Path;
use std::process::Command;

use editshard_tools::cli::{s, text};

fn readme() -> String {
    std::fs::read_to_string(crate::workspace().join("README.md")).unwrap()
}

/// The README's command lines that start with `editshard SUBCOMMAND`, comments removed.
fn commands(readme: &str, subcommand: &str) -> Vec<Vec<String>> {
    let prefix = format!("editshard {subcommand} ");
    readme
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let l = l.split(" # ").next().unwrap().trim();
            l.split_whitespace().skip(1).map(str::to_string).collect()
        })
        .collect()
}

#[test]
fn the_quick_start_and_its_sample_commands_work_as_written() {
    let readme = readme();
    // The quick start's conversion, with the binary under test and a private output.
    let first = readme
        .split("```bash\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .replace("\\\n", " ");
    let args: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(
        &args[..4],
        ["cargo", "run", "--release", "--"],
        "the first command is the quick start's conversion: {first}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sample-shards");
    let mut converted: Vec<String> = args[4..].iter().map(|a| a.to_string()).collect();
    let i = converted.iter().position(|a| a == "--out").unwrap();
    converted[i + 1] = s(&out).to_string();
    let o = Command::new(crate::BIN)
        .args(&converted)
        .args(["--log-interval", "0"])
        .current_dir(crate::workspace())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        readme.contains("Then run the whole test suite: `bash scripts/test.sh`"),
        "the second command"
    );

    // Every `editshard ls|stats|cat|get /tmp/sample-shards ...` line runs on it.
    let mut ran = 0;
    for sub in ["ls", "stats", "cat", "get"] {
        for mut cmd in commands(&readme, sub) {
            if cmd.get(1).map(String::as_str) != Some("/tmp/sample-shards") {
                continue;
            }
            cmd[1] = s(&out).to_string();
            let rec = tmp.path().join("rec");
            for a in cmd.iter_mut() {
                if a == "/tmp/rec" {
                    *a = s(&rec).to_string();
                }
            }
            let o = Command::new(crate::BIN).args(&cmd).output().unwrap();
            assert!(
                o.status.success(),
                "README: editshard {cmd:?}: {}",
                text(&o)
            );
            assert!(!o.stdout.is_empty(), "{cmd:?}");
            if sub == "get" {
                let mut files: Vec<String> = std::fs::read_dir(&rec)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                files.sort();
                let listed = readme
                    .lines()
                    .find(|l| l.starts_with("ls /tmp/rec"))
                    .unwrap()
                    .split(" # ")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                assert_eq!(files, listed, "the README lists what `get` writes");
            }
            ran += 1;
        }
    }
    assert_eq!(ran, 4, "ls, stats, cat and get on the sample");

    // The reading section's `get` example names an id of the sample too.
    for cmd in commands(&readme, "get") {
        let id = &cmd[1 + 1];
        if id.starts_with('#') {
            continue;
        }
        let o = Command::new(crate::BIN)
            .args(["cat", s(&out), "--fields", "id"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!("\"id\":\"{id}\"")),
            "README's get example {id} is not in the sample"
        );
    }
    // Ids are explained.
    assert!(readme.contains("`<subset>/<natural key>`"));
}

#[test]
fn install_exit_codes_and_test_prerequisites_are_documented() {
    let readme = readme();
    assert!(readme.contains("cargo install --locked --path ."));
    assert!(Path::new(&crate::workspace().join("src/main.rs")).exists());

    // The README's exit-code table says what `--help` says.
    let o = Command::new(crate::BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for code in ["0", "1", "2"] {
        assert!(
            readme.contains(&format!("\n| {code} | ")),
            "README: exit code {code}"
        );
        assert!(
            help.contains(&format!("\n  {code}  ")),
            "--help: exit code {code}"
        );
    }
    assert!(readme.contains("matched no record") && help.contains("matched no record"));

    // The test command's prerequisites, and a message before the long fuzz build.
    for needed in ["root", "nightly", "crates.io", "FUZZ_SECONDS=0"] {
        assert!(
            readme.contains(needed),
            "README must state the test prerequisite {needed:?}"
        );
    }
    let script = std::fs::read_to_string(crate::workspace().join("scripts/test.sh")).unwrap();
    let message = script
        .find("echo \"== building fuzz targets")
        .expect("test.sh announces the fuzz build");
    let build = script
        .find("cargo +nightly fuzz build")
        .expect("test.sh builds the fuzz targets");
    let first_run = script.find("cargo +nightly fuzz run").unwrap();
    assert!(message < build && build < first_run);

    // The long benchmark tables live in bench/README.md; the README links there.
    assert!(readme.contains("(bench/README.md)"));
    assert!(!readme.contains("| Measurement | editshard |"));
    let bench = std::fs::read_to_string(crate::workspace().join("bench/README.md")).unwrap();
    assert!(bench.contains("| Measurement | editshard |"));
}
