#!/usr/bin/env bash
# `export --format hf-parquet` and `mix` against what they replace, on the same bytes, in one run:
#
#   bash bench/export_mix.sh [WORKDIR]     (default: a fresh mktemp dir under /tmp, removed at the end)
#
# Generates a realistic synthetic release (bench/run.sh's generator: 0.7-1.5 MB PNG edits,
# 150-400 KB JPEG sources), converts it, then times, each the median of REPS runs:
#   - export --format hf-parquet, against export --format webdataset (the same records and
#     bytes into another container) and `cp -r` of the dataset (the disk's own copy rate);
#   - mix of two datasets (the two parts of a split conversion of the release) by hard links
#     and with --copy, against `cp -r` of both.
# Every write is followed by `sync`, inside the timing. Prints one markdown table.
# Environment: ROWS [200], SEED [42], REPS [3], KEEP=1 keeps WORKDIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
ROWS="${ROWS:-200}" SEED="${SEED:-42}" REPS="${REPS:-3}" KEEP="${KEEP:-0}"

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_workdir .editshard-bench bench/export_mix.sh "${1:-}"

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# timed CMD...: wall seconds of CMD followed by sync; output to /dev/null.
timed() {
    local t0
    t0=$(now)
    "$@" > /dev/null
    sync
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.4f\n", b - a }'
}
# rep NAME CLEAN CMD...: REPS timings of CMD, CLEAN (a path) removed before each.
rep() {
    local clean=$1
    shift
    for _ in $(seq "$REPS"); do
        rm -rf "$clean"
        timed "$@"
    done | median
}

echo "== building (release)" >&2
cargo build --release --quiet -p editshard-tools --bin gen_bench_release -p editshard-cli
BIN=$REPO/target/release/editshard
GEN=$REPO/target/release/gen_bench_release

echo "== generating $ROWS sft rows and converting them" >&2
"$GEN" "$W/rel" --sft "$ROWS" --preference 0 --multi-turn 0 --seed "$SEED" --realistic > /dev/null
"$BIN" convert "$W/rel" --out "$W/ds" --openimages-dir "$W/rel/openimages" \
    --openimages-csv "$W/rel/openimages/train-images-boxable-with-rotation.csv" > /dev/null
# The mix's sources: the two parts of a split conversion of the same release (disjoint records
# and ids, as two datasets have).
"$BIN" convert "$W/rel" --out "$W/parts" --part 0/2 --openimages-dir "$W/rel/openimages" \
    --openimages-csv "$W/rel/openimages/train-images-boxable-with-rotation.csv" > /dev/null
"$BIN" convert "$W/rel" --out "$W/parts" --part 1/2 --openimages-dir "$W/rel/openimages" \
    --openimages-csv "$W/rel/openimages/train-images-boxable-with-rotation.csv" > /dev/null
P0=$W/parts/part-0000-of-0002
P1=$W/parts/part-0001-of-0002
BYTES=$(du -sb "$W/ds" | awk '{ print $1 }')
PBYTES=$(du -sb "$P0" "$P1" | awk '{ s += $1 } END { print s }')

echo "== timing (median of $REPS)" >&2
CP=$(rep "$W/cp" cp -r "$W/ds" "$W/cp")
HF=$(rep "$W/hf" "$BIN" export "$W/ds" --to "$W/hf" --format hf-parquet)
WDS=$(rep "$W/wds" "$BIN" export "$W/ds" --to "$W/wds" --format webdataset)
CP2=$(rep "$W/cp2" sh -c "mkdir -p '$W/cp2' && cp -r '$P0' '$P1' '$W/cp2/'")
LINK=$(rep "$W/mixl" "$BIN" mix --out "$W/mixl" "$P0" "$P1")
COPY=$(rep "$W/mixc" "$BIN" mix --copy --out "$W/mixc" "$P0" "$P1")
HF_BYTES=$(du -sb "$W/hf/data" | awk '{ print $1 }')
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f MB/s", b / 1e6 / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }

cat << TABLE
$ROWS sft records, dataset $(awk -v b="$BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }'), hf-parquet files $(awk -v b="$HF_BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }')

| what | seconds | rate | speed relative to the baseline (higher is faster) |
|---|---|---|---|
| cp -r dataset + sync (baseline) | $CP | $(rate "$BYTES" "$CP") | 1.00 |
| export --format hf-parquet | $HF | $(rate "$BYTES" "$HF") | $(ratio "$HF" "$CP") of cp; $(ratio "$HF" "$WDS") of webdataset export |
| export --format webdataset | $WDS | $(rate "$BYTES" "$WDS") | $(ratio "$WDS" "$CP") of cp |
| cp -r two parts + sync (baseline) | $CP2 | $(rate "$PBYTES" "$CP2") | 1.00 |
| mix of the two parts (hard links, hashed) | $LINK | $(rate "$PBYTES" "$LINK") | $(ratio "$LINK" "$CP2") of cp |
| mix --copy of the two parts | $COPY | $(rate "$PBYTES" "$COPY") | $(ratio "$COPY" "$CP2") of cp |
TABLE
