#!/usr/bin/env bash
# How editshard's per-row machinery grows with the number of rows: releases of 10,000, 100,000
# and the full Pico-Banana-400K row counts (257,730 sft, 56,473 preference, 72,000 multi-turn),
# with tiny but distinct images (8 px PNG edits and JPEG sources of a few hundred bytes each), so
# that what is measured is per row and per record, not per image byte.
#
#   bash bench/scale.sh [WORKDIR]      (default: a fresh mktemp dir under /tmp, removed at the end)
#
# At each size: generation time; convert wall time, rows/s and peak RSS; manifest.json bytes;
# cold open over HTTP (Dataset::open: requests, bytes, time); a metadata-only `editshard cat`
# over HTTP (time, requests, bytes, peak RSS); `get` by id over HTTP (p50/p99, requests per
# record); one full shuffled epoch through Dataset::reader from the directory (records/s, peak
# RSS); the anonymous memory (RssAnon) of a process that read one record of every shard
# (bench_footprint touch; bench/footprint.sh takes it to 4M records). HTTP is a private nginx on 127.0.0.1 whose access log counts requests and bytes. Prints
# a markdown growth table (one row per size, then the ratio of each size to the one before)
# and writes it to bench/scale-results-DATE.md. See bench/README.md ("Scale").
#
# Environment (defaults in brackets): SIZES ["10000 100000 full"] row counts, split like the
# release ("full" is exactly 257730/56473/72000); SEED [42]; SHARD_SIZE [512KiB] (tiny images:
# ~380 records a shard, close to what a 512 MiB shard of the real release holds); GETS [1000]
# ids fetched; OPEN_REPS [5]; EPOCH_HTTP [0] (1: also the epoch over HTTP); KEEP=1 keeps
# WORKDIR; RESULTS [bench/scale-results-DATE.md]; BIN_DIR [unset: build target/release]: take
# editshard, gen_bench_release, bench_scale and bench_footprint from there instead (e.g. copies, so that a
# build may run meanwhile). A full-size release is ~1M small files: a WORKDIR on tmpfs
# (/dev/shm) spares the disk (the shards' fsyncs are then free; per-row costs are what is
# measured here).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

SIZES="${SIZES:-10000 100000 full}" SEED="${SEED:-42}" SHARD_SIZE="${SHARD_SIZE:-512KiB}"
GETS="${GETS:-1000}" OPEN_REPS="${OPEN_REPS:-5}" EPOCH_HTTP="${EPOCH_HTTP:-0}" KEEP="${KEEP:-0}"
DATE=$(date -u +%Y-%m-%d)
RESULTS="${RESULTS:-$REPO/bench/scale-results-$DATE.md}"

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_workdir .editshard-scale bench/scale.sh "${1:-}"

START=$(date +%s.%N)
now() { date +%s.%N; }
log() { printf '== %s (%.0f s)\n' "$*" "$(awk -v a="$START" -v b="$(now)" 'BEGIN { print b - a }')" >&2; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# key=value lines -> value of one key
val() { awk -F= -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "nan" }' "$1"; }
rss_mb() { awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.1f", $2 / 1024 }' "$1"; }
# timed NAME CMD...: CMD under /usr/bin/time -v (its report in $W/NAME.time), stdout to
# $W/NAME.out (or $OUT); prints wall seconds.
timed() {
    local name=$1
    shift
    local t0 t1
    t0=$(now)
    /usr/bin/time -v -o "$W/$name.time" "$@" > "${OUT:-$W/$name.out}"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

if [[ -n "${BIN_DIR:-}" ]]; then
    B=$(realpath "$BIN_DIR")
else
    log "building (release)"
    # One command: built separately, the two packages unify their dependencies' features
    # differently and each rebuild the other's.
    cargo build --release --quiet -p editshard-tools --bin gen_bench_release --bin bench_scale \
        --bin bench_footprint -p editshard-cli --bin editshard
    B=$REPO/target/release
fi
BIN=$B/editshard
GEN=$B/gen_bench_release
BS=$B/bench_scale
FP=$B/bench_footprint

start_nginx .editshard-scale
URL=http://127.0.0.1:$PORT/ds

# One line of key=value per size, for the table.
ROWS_FILE=$W/rows.txt
: > "$ROWS_FILE"
for SIZE in $SIZES; do
    if [[ $SIZE == full ]]; then
        SFT=257730 PREF=56473 MT=72000
    else
        SFT=$(calc "%d" "$SIZE * 257730 / 386203 + 0.5")
        PREF=$(calc "%d" "$SIZE * 56473 / 386203 + 0.5")
        MT=$((SIZE - SFT - PREF))
    fi
    ROWS=$((SFT + PREF + MT))
    REL=$W/rel DS=$W/ds
    rm -rf "$REL" "$DS"
    log "$ROWS rows: generating ($SFT sft, $PREF preference, $MT multi-turn, seed $SEED, 8 px images)"
    GEN_S=$(timed gen "$GEN" "$REL" --sft "$SFT" --preference "$PREF" --multi-turn "$MT" --seed "$SEED" --px 8)
    cat "$W/gen.out" >&2
    IMG_FILES=$(find "$REL/images" "$REL/openimages/train_0" -type f | wc -l)
    IMG_BYTES=$(find "$REL/images" "$REL/openimages/train_0" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    sync

    log "$ROWS rows: convert"
    CONV_S=$(timed convert "$BIN" convert "$REL" --out "$DS" --shard-size "$SHARD_SIZE" \
        --openimages-csv "$REL/openimages/train-images-boxable-with-rotation.csv" \
        --openimages-dir "$REL/openimages" --log-interval 3600)
    CONV_RSS=$(rss_mb "$W/convert.time")
    tail -n 12 "$W/convert.out" >&2
    MANIFEST_BYTES=$(stat -c %s "$DS/manifest.json")
    SHARDS=$(awk -F'"' '/"path":/ { n++ } END { print n + 0 }' "$DS/manifest.json")
    RECORDS=$(awk '/records written/ { print $3; exit }' "$W/convert.out")
    SHARD_BYTES=$(cat "$DS"/*.esd | wc -c)
    # Sum of the shard footers (index frame + trailer) as the manifest states them.
    FOOTER_BYTES=$(grep -o '"footer_length": *[0-9]*' "$DS/manifest.json" | awk -F: '{ s += $2 } END { print s + 0 }')

    log "$ROWS rows: cold open over HTTP ($OPEN_REPS times)"
    clear_log
    timed open "$BS" open "$URL" --reps "$OPEN_REPS" > /dev/null
    OPEN_REQ=$(calc "%.1f" "$(log_reqs) / $OPEN_REPS")
    OPEN_BYTES=$(calc "%d" "$(log_bytes) / $OPEN_REPS")
    OPEN_MS=$(calc "%.1f" "$(val "$W/open.out" open_p50_us) / 1000")

    log "$ROWS rows: metadata-only cat over HTTP"
    clear_log
    CAT_S=$(OUT=/dev/null timed cat "$BIN" cat "$URL")
    CAT_REQ=$(log_reqs)
    CAT_BYTES=$(log_bytes)
    CAT_RSS=$(rss_mb "$W/cat.time")

    log "$ROWS rows: $GETS gets by id over HTTP"
    OUT=$W/ids.txt timed ids "$BS" ids "$DS" --samples "$GETS" --seed "$SEED" > /dev/null
    clear_log
    timed get "$BS" get "$URL" "$W/ids.txt" > /dev/null
    GET_REQ=$(log_reqs)
    GET_BYTES=$(log_bytes)
    # Requests after the manifest, per record: footers (one per shard first touched) and records.
    GET_RPR=$(calc "%.2f" "($GET_REQ - 1) / $GETS")

    log "$ROWS rows: one shuffled epoch through Dataset::reader (local)"
    EPOCH_S=$(timed epoch "$BS" epoch "$DS" --seed "$SEED")
    EPOCH_RSS=$(rss_mb "$W/epoch.time")
    EPOCH_RPS=$(val "$W/epoch.out" records_per_s)
    EH_RPS=nan EH_RSS=nan EH_REQ=nan
    if [[ $EPOCH_HTTP == 1 ]]; then
        log "$ROWS rows: one shuffled epoch through Dataset::reader (HTTP)"
        clear_log
        timed hepoch "$BS" epoch "$URL" --seed "$SEED" > /dev/null
        EH_RPS=$(val "$W/hepoch.out" records_per_s)
        EH_RSS=$(rss_mb "$W/hepoch.time")
        EH_REQ=$(log_reqs)
    fi

    log "$ROWS rows: anonymous memory of a reader that touched every shard (local)"
    "$FP" touch "$DS" > "$W/touch.out"
    TOUCH_ANON=$(calc "%.1f" "$(val "$W/touch.out" rss_anon_touched_kib) / 1024")

    G=$W/get.out
    {
        echo "rows=$ROWS records=$RECORDS img_files=$IMG_FILES img_bytes=$IMG_BYTES gen_s=$GEN_S"
        echo "conv_s=$CONV_S conv_rss=$CONV_RSS shards=$SHARDS shard_bytes=$SHARD_BYTES footer_bytes=$FOOTER_BYTES"
        echo "manifest=$MANIFEST_BYTES open_req=$OPEN_REQ open_bytes=$OPEN_BYTES open_ms=$OPEN_MS"
        echo "cat_s=$CAT_S cat_req=$CAT_REQ cat_bytes=$CAT_BYTES cat_rss=$CAT_RSS"
        echo "get_p50=$(val "$G" get_p50_us) get_p99=$(val "$G" get_p99_us) get_first=$(val "$G" first_get_us)"
        echo "get_req=$GET_REQ get_bytes=$GET_BYTES get_rpr=$GET_RPR get_cand=$(val "$G" candidate_shards_per_id)"
        echo "get_filter_us=$(val "$G" filter_check_us_per_id) get_rss=$(rss_mb "$W/get.time")"
        echo "epoch_s=$EPOCH_S epoch_rps=$EPOCH_RPS epoch_rss=$EPOCH_RSS eh_rps=$EH_RPS eh_rss=$EH_RSS eh_req=$EH_REQ"
        echo "touch_anon=$TOUCH_ANON"
    } | tr '\n' ' ' >> "$ROWS_FILE"
    echo >> "$ROWS_FILE"
    tail -n 1 "$ROWS_FILE" >&2
    if [[ "$KEEP" != 1 ]]; then
        rm -rf "$REL" "$DS"
    else
        mv "$REL" "$W/rel-$ROWS"
        mv "$DS" "$W/ds-$ROWS"
    fi
done
stop_nginx

log "writing results"
bash "$REPO/bench/scale_table.sh" "$ROWS_FILE" "$SHARD_SIZE" "$SEED" "$GETS" > "$W/results.md"
cat "$W/results.md"
cp "$W/results.md" "$RESULTS"
cp "$ROWS_FILE" "${RESULTS%.md}.txt"
echo >&2
echo "written to $RESULTS (raw figures: ${RESULTS%.md}.txt)" >&2
