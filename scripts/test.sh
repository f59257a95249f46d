#!/usr/bin/env bash
# The one command that runs editshard's whole test suite:
#   bash scripts/test.sh
# It installs missing test dependencies (nginx, s3s-fs, cargo-fuzz, chromium), makes them
# findable by the tests, runs `cargo test` over the whole workspace with the CLI's
# test-hooks feature (unit, integration and doc tests; among them `editshard view`'s
# headless-chromium test), the Python package's pytest suite
# (python/tests), then the fuzz smoke runs (if any fuzz targets exist).
# Environment:
#   EDITSHARD_TOOLS  where cargo-built tools live (default ~/.cache/editshard-tools)
#   FUZZ_SECONDS     seconds per fuzz target in the smoke run (default 30; 0 skips)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export EDITSHARD_TOOLS="${EDITSHARD_TOOLS:-${HOME}/.cache/editshard-tools}"

bash scripts/install-test-deps.sh

# s3s-fs lives in $EDITSHARD_TOOLS/bin; nginx in /usr/sbin, which a non-root PATH may lack.
export PATH="$EDITSHARD_TOOLS/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH:/usr/sbin:/sbin"

echo "== cargo test"
test_log="$(mktemp)"
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --features editshard-cli/test-hooks 2>&1 | tee "$test_log"
# The Python package's own Rust crate of pixel work (python/pipeline; python/ is a workspace
# of its own, excluded from the root's).
cargo test --manifest-path python/Cargo.toml -p editshard-pipeline 2>&1 | tee -a "$test_log"

# The Python package's tests (python/tests), in the venv install-test-deps.sh prepared (it
# also installed the package from ./python). They convert the sample release with the CLI
# binary `cargo test` just built.
echo "== ruff (python/): formatting and lints"
"$EDITSHARD_TOOLS/pyenv/bin/ruff" format --check python/editshard python/tests python/examples
"$EDITSHARD_TOOLS/pyenv/bin/ruff" check python/editshard python/tests python/examples
echo "== pytest (python/tests)"
py_log="$(mktemp)"
trap 'rm -f "$test_log" "$py_log"' EXIT
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
export EDITSHARD_BIN="$target_dir/debug/editshard"
# `cargo test` above ran `editshard view`'s browser test (headless chromium); its screenshots
# are artifacts worth keeping from a CI run.
echo "== editshard view: browser screenshots in ${EDITSHARD_VIEW_SCREENSHOTS:-$(pwd)/target/view-screenshots}/"
"$EDITSHARD_TOOLS/pyenv/bin/python" -m pytest -q -p no:cacheprovider python/tests 2>&1 | tee "$py_log"
# Counted in the closing line with cargo's (same shape as cargo's summary lines).
py_passed="$(grep -Eo '[0-9]+ passed' "$py_log" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)"
echo "test result: ok. ${py_passed} passed; 0 failed; (pytest)" >> "$test_log"

# ---------------------------------------------------------------------------
# FUZZ SMOKE HOOK
# Each target listed by `cargo +nightly fuzz list` runs for FUZZ_SECONDS
# (default 30). Skipped when fuzz/Cargo.toml is absent or lists no targets.
# Keep (number of targets x FUZZ_SECONDS) + their build well inside CI's budget.
# ---------------------------------------------------------------------------
fuzz_smoke() {
    local seconds="${FUZZ_SECONDS:-30}"
    if [ ! -f fuzz/Cargo.toml ]; then
        echo "== fuzz smoke: skipped (no fuzz/Cargo.toml)"
        return 0
    fi
    if [ "$seconds" = "0" ]; then
        echo "== fuzz smoke: skipped (FUZZ_SECONDS=0)"
        return 0
    fi
    local targets
    targets="$(cargo +nightly fuzz list)"
    if [ -z "$targets" ]; then
        echo "== fuzz smoke: skipped (no fuzz targets)"
        return 0
    fi
    # Built here, in the open: `fuzz run` below logs to a file, and its first build is long.
    echo "== building fuzz targets (cargo +nightly fuzz build): about 5-7 minutes on 2 cores the first time"
    cargo +nightly fuzz build
    local t
    for t in $targets; do
        echo "== fuzz smoke: $t for ${seconds}s"
        # Committed seeds (fuzz/seeds/T, from the golden vectors and the sample release) are
        # read alongside the scratch corpus; new inputs go to fuzz/corpus/T (git-ignored).
        mkdir -p "fuzz/corpus/$t"
        local seeds=()
        [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
        # libFuzzer is chatty: keep its output in a log, print the summary, and the tail of
        # the log if the target failed (a crash input is then in fuzz/artifacts/$t/).
        local log="fuzz/smoke-$t.log"
        if ! cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
            -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
            > "$log" 2>&1; then
            tail -n 80 "$log"
            echo "== fuzz smoke: $t FAILED (full output: $log)"
            return 1
        fi
        grep -E '^Done [0-9]+ runs' "$log" || true
    done
}

fuzz_smoke

# One plain closing line for whoever reads the end of the log: the totals of `cargo test`
# (a failure would have stopped the script above).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$test_log"
