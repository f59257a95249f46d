#!/usr/bin/env bash
# editshard against the physical limit and the formats users would pick instead, in one run.
#
#   bash bench/run.sh [WORKDIR]        (default: a fresh mktemp dir under /tmp, removed at the end)
#
# Generates a synthetic release deterministic by SEED (realistic image sizes, the real subsets'
# proportions), converts it, exports it as WebDataset tars, and measures against baselines taken
# in the same run: sequential read (cat, tar crate), random access (pread of the same bytes, warm
# and cold), metadata-only scan (full read), HTTP through a private nginx on 127.0.0.1 (curl),
# conversion (cp -r), bytes on disk (the raw release), peak RSS of every process. Every figure is
# the median of REPS repetitions. Prints a markdown table and writes it to bench/results-DATE.md.
# See bench/README.md for what each row means.
#
# Environment (defaults in brackets): ROWS [1000] total rows, split like Pico-Banana-400K
# (257,730 sft : 56,473 preference : 72,000 multi-turn); SEED [42]; REPS [7] repetitions of each
# read measurement; CONVERT_REPS [3]; SAMPLES [2000] warm random reads; COLD_SAMPLES [40] cold
# ones (each after emptying the page cache); HTTP_SAMPLES [300]; SHARD_SIZE [512MiB];
# KEEP=1 keeps WORKDIR; RELEASE=DIR reuses a release generated before (by this script with
# KEEP=1, or gen_bench_release --realistic) instead of generating one; RESULTS
# [bench/results-DATE.md]; BUILD=0 uses the release binaries already built; PROFILE [1] appends a `perf record`
# profile of each editshard measurement with a target (when `perf` is installed).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

ROWS="${ROWS:-1000}" SEED="${SEED:-42}" REPS="${REPS:-7}" CONVERT_REPS="${CONVERT_REPS:-3}"
SAMPLES="${SAMPLES:-2000}" COLD_SAMPLES="${COLD_SAMPLES:-40}" HTTP_SAMPLES="${HTTP_SAMPLES:-300}"
SHARD_SIZE="${SHARD_SIZE:-512MiB}" KEEP="${KEEP:-0}" PROFILE="${PROFILE:-1}"
DATE=$(date -u +%Y-%m-%d)
RESULTS="${RESULTS:-$REPO/bench/results-$DATE.md}"

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_workdir .editshard-bench bench/run.sh "${1:-}"

START=$(date +%s.%N)
now() { date +%s.%N; }
log() { printf '== %s (%.0f s)\n' "$*" "$(awk -v a="$START" -v b="$(now)" 'BEGIN { print b - a }')" >&2; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print a[int((NR + 1) / 2)] }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# key=value lines -> value of one key
val() { awk -F= -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "nan" }' "$1"; }
rss_mb() { awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.1f", $2 / 1024 }' "$1"; }

# timed NAME CMD...: runs CMD under /usr/bin/time -v, stdout to $W/NAME.out (or to $OUT if
# set); prints wall seconds.
timed() {
    local name=$1
    shift
    local t0 t1
    t0=$(now)
    /usr/bin/time -v -o "$W/$name.time" "$@" > "${OUT:-$W/$name.out}"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

log "building (release)"
[[ "${BUILD:-1}" == 0 ]] || cargo build --release --quiet -p editshard-tools --bin gen_bench_release --bin bench_read -p editshard-cli --bin editshard
BIN=$REPO/target/release/editshard
GEN=$REPO/target/release/gen_bench_release
BR=$REPO/target/release/bench_read

SFT=$(calc "%d" "$ROWS * 257730 / 386203 + 0.5")
PREF=$(calc "%d" "$ROWS * 56473 / 386203 + 0.5")
MT=$((ROWS - SFT - PREF))
log "generating the release: $SFT sft, $PREF preference, $MT multi-turn rows, seed $SEED"
REL=$W/rel
if [[ -n "${RELEASE:-}" ]]; then
    # A release generated before with the same ROWS and SEED (the fingerprint below says which).
    ln -s "$(realpath "$RELEASE")" "$REL"
    GEN_S=0
else
    GEN_S=$(timed gen "$GEN" "$REL" --sft "$SFT" --preference "$PREF" --multi-turn "$MT" --seed "$SEED" --realistic)
    cat "$W/gen.out" >&2
fi
# The raw release as users download it: JSONL plus every image once (edits and sources).
RAW_IMG=$(du -sb "$REL/images" "$REL/openimages/train_0" | awk '{ s += $1 } END { print s }')
RAW_JSONL=$(du -sb "$REL/jsonl" | awk '{ print $1 }')
RAW=$((RAW_IMG + RAW_JSONL))
# Allocated on the file system (blocks), where each loose file rounds up to a whole block.
RAW_ALLOC=$(du -s -B1 "$REL/images" "$REL/openimages/train_0" "$REL/jsonl" | awk '{ s += $1 } END { print s }')
N_IMG=$(find "$REL/images" "$REL/openimages/train_0" -type f | wc -l)
FINGERPRINT=$(cd "$REL" && { cat jsonl/*.jsonl; find images openimages/train_0 -type f -printf '%P %s\n' | LC_ALL=C sort; } | sha256sum | cut -c1-16)
sync

log "conversion vs cp -r ($CONVERT_REPS repetitions)"
CP_T=() CONV_T=() CP_RSS=0 CONV_RSS=0
for r in $(seq "$CONVERT_REPS"); do
    rm -rf "$W/cp" "$W/ds"
    sync
    mkdir -p "$W/cp"
    t0=$(now)
    /usr/bin/time -v -o "$W/cp.time" cp -r "$REL/images" "$REL/openimages" "$REL/jsonl" "$W/cp/"
    sync
    t1=$(now)
    CP_T+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
    CP_RSS=$(rss_mb "$W/cp.time")
    rm -rf "$W/cp"
    sync
    CONV_T+=("$(timed convert "$BIN" convert "$REL" --out "$W/ds" --shard-size "$SHARD_SIZE" \
        --openimages-csv "$REL/openimages/train-images-boxable-with-rotation.csv" \
        --openimages-dir "$REL/openimages" --log-interval 3600)")
    CONV_RSS=$(rss_mb "$W/convert.time")
    echo "   rep $r: cp -r + sync ${CP_T[-1]} s, convert ${CONV_T[-1]} s" >&2
done
cat "$W/convert.out" >&2
CP_S=$(printf '%s\n' "${CP_T[@]}" | median)
CONV_S=$(printf '%s\n' "${CONV_T[@]}" | median)
DS=$W/ds
"$BR" manifest "$DS" > "$W/manifest.out"
RECORDS=$(val "$W/manifest.out" records)
SHARDS=$(val "$W/manifest.out" shards)
SHARD_BYTES=$(val "$W/manifest.out" shard_bytes)
DS_BYTES=$(du -sb "$DS" | awk '{ print $1 }')
DS_ALLOC=$(du -s -B1 "$DS" | awk '{ print $1 }')
IMG_STORED_BYTES=$(val "$W/manifest.out" image_bytes_stored)
DEDUP_SAVED=$(($(val "$W/manifest.out" image_bytes_referenced) - $(val "$W/manifest.out" image_bytes_stored)))
IMG_REF=$(val "$W/manifest.out" images_referenced)
IMG_STORED=$(val "$W/manifest.out" images_stored)

log "export --format webdataset"
"$BIN" export "$DS" --to "$W/wds" --format webdataset > "$W/export.out"
WDS_BYTES=$(du -sb "$W/wds" | awk '{ print $1 }')

log "sequential reads from the page cache ($REPS repetitions each)"
mapfile -t SHARD_FILES < <(awk -F'"' '/"path":/ { print $4 }' "$DS/manifest.json")
(cd "$DS" && cat "${SHARD_FILES[@]}") > /dev/null
cat "$W"/wds/*.tar > /dev/null
CAT_T=()
for _ in $(seq "$REPS"); do
    CAT_T+=("$(cd "$DS" && OUT=/dev/null timed cat cat "${SHARD_FILES[@]}")")
done
CAT_S=$(printf '%s\n' "${CAT_T[@]}" | median)
CAT_RSS=$(rss_mb "$W/cat.time")
for m in plain frames sync reader async framed; do
    timed "$m" "$BR" "$m" "$DS" --reps "$REPS" > /dev/null
done
timed tar "$BR" tar "$W/wds" --reps "$REPS" > /dev/null
for m in sync reader async framed tar; do
    [[ $(val "$W/$m.out" records) == "$RECORDS" ]] || { echo "$m read $(val "$W/$m.out" records) records, expected $RECORDS" >&2; exit 1; }
done

log "random access ($SAMPLES warm, $COLD_SAMPLES cold samples)"
timed random "$BR" random "$DS" --samples "$SAMPLES" --cold-samples "$COLD_SAMPLES" > /dev/null
# Everything back into the page cache for what follows.
(cd "$DS" && cat "${SHARD_FILES[@]}") > /dev/null

log "metadata-only scan vs full read (local)"
timed meta "$BR" meta "$DS" --reps "$REPS" > /dev/null
timed stream "$BR" stream "$DS" --reps "$REPS" > /dev/null

log "HTTP through nginx on 127.0.0.1"
start_nginx ds/manifest.json
URL=http://127.0.0.1:$PORT/ds

CURL_ARGS=()
for f in "${SHARD_FILES[@]}"; do CURL_ARGS+=(-o /dev/null "$URL/$f"); done
CURL_T=()
for _ in $(seq "$REPS"); do
    CURL_T+=("$(timed curl curl -fsS "${CURL_ARGS[@]}")")
done
CURL_S=$(printf '%s\n' "${CURL_T[@]}" | median)
CURL_RSS=$(rss_mb "$W/curl.time")
clear_log
timed hstream "$BR" stream "$URL" --reps "$REPS" > /dev/null
HS_REQ=$(calc "%.1f" "$(log_reqs) / $REPS")
HS_BYTES=$(calc "%d" "$(log_bytes) / $REPS")
clear_log
timed hmeta "$BR" meta "$URL" --reps "$REPS" > /dev/null
HM_REQ=$(calc "%.1f" "$(log_reqs) / $REPS")
HM_BYTES=$(calc "%d" "$(log_bytes) / $REPS")
clear_log
timed hget "$BR" get "$URL" --samples "$HTTP_SAMPLES" > /dev/null
HG_REQ=$(log_reqs)
HG_OPEN=$((1 + SHARDS)) # manifest + at most one footer per shard
# The HTTP stream's profile is recorded while nginx runs, and reported with the others below.
if [[ "$PROFILE" == 1 ]] && command -v perf > /dev/null; then
    perf record -q -F 499 -o "$W/hstream.perf" -- "$BR" stream "$URL" --reps 3 > /dev/null 2> "$W/hstream.perf.log" || rm -f "$W/hstream.perf"
fi
stop_nginx

log "writing results"
TOTAL_S=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
MB() { calc "%.1f" "$1 / 1e6"; }
# bytes as kB below 1 MB
KB() { if (($1 < 1000000)); then echo "$(calc "%.1f" "$1 / 1e3") kB"; else echo "$(MB "$1") MB"; fi; }
mbps() { calc "%.0f" "$1 / 1e6 / $2"; }
r2() { calc "%.2f" "$1"; }
mark() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }

PLAIN_S=$(val "$W/plain.out" plain_s)
SYNC_S=$(val "$W/sync.out" sync_s)
ASYNC_S=$(val "$W/async.out" async_s)
READER_S=$(val "$W/reader.out" reader_s)
FRAMED_S=$(val "$W/framed.out" framed_s)
TAR_S=$(val "$W/tar.out" tar_s)
TAR_BYTES=$(val "$W/tar.out" bytes)
R=$W/random.out
WG50=$(val "$R" warm_get_p50_us) WG99=$(val "$R" warm_get_p99_us)
WP50=$(val "$R" warm_pread_p50_us) WP99=$(val "$R" warm_pread_p99_us)
WM50=$(val "$R" warm_meta_p50_us) WM99=$(val "$R" warm_meta_p99_us)
WMP50=$(val "$R" warm_meta_pread_p50_us) WMP99=$(val "$R" warm_meta_pread_p99_us)
MA50=$(val "$R" meta_alone_p50_us) MA99=$(val "$R" meta_alone_p99_us)
MAP50=$(val "$R" meta_pread_alone_p50_us) MAP99=$(val "$R" meta_pread_alone_p99_us)
FG50=$(val "$R" first_get_p50_us) FG99=$(val "$R" first_get_p99_us)
CG50=$(val "$R" cold_get_p50_us) CG99=$(val "$R" cold_get_p99_us)
CP50=$(val "$R" cold_pread_p50_us) CP99=$(val "$R" cold_pread_p99_us)
REC_MEAN=$(val "$R" record_mean_bytes)
COLD_METHOD=$(val "$R" cold_method)
META_S=$(val "$W/meta.out" meta_s) META_RCHAR=$(val "$W/meta.out" rchar_per_rep)
STREAM_S=$(val "$W/stream.out" stream_s) STREAM_RCHAR=$(val "$W/stream.out" rchar_per_rep)
HS_S=$(val "$W/hstream.out" stream_s) HM_S=$(val "$W/hmeta.out" meta_s)
HG50=$(val "$W/hget.out" get_p50_us) HG99=$(val "$W/hget.out" get_p99_us)
HG_SPLIT=$(val "$W/hget.out" split_records) HG_PRED=$(val "$W/hget.out" predicted_requests)
FRAMES_S=$(val "$W/frames.out" frames_s) N_FRAMES=$(val "$W/frames.out" frames)
LARGEST_FRAME=$(val "$W/frames.out" largest_frame)
CONV_BYTES=$(du -sb "$REL/images" "$REL/openimages" "$REL/jsonl" | awk '{ s += $1 } END { print s }')

CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
git diff --quiet HEAD -- src 2> /dev/null || COMMIT="$COMMIT (+ uncommitted changes in src/)"

{
    echo "### Results: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT"
    echo
    echo "Machine: $(nproc) cores ($CPU), $MEM RAM, Linux $(uname -r), $(df -P "$W" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$W"))."
    echo "Release: $RECORDS rows ($SFT sft, $PREF preference, $MT multi-turn; seed $SEED, fingerprint $FINGERPRINT),"
    echo "$N_IMG image files, $(MB "$RAW") MB raw ($(MB "$RAW_IMG") MB images + $(MB "$RAW_JSONL") MB JSONL), generated in $(calc "%.0f" "$GEN_S") s;"
    echo "$SHARDS shard(s), $(MB "$SHARD_BYTES") MB. Medians of $REPS repetitions (conversion: $CONVERT_REPS); whole run $TOTAL_S s."
    echo
    echo "| Measurement | editshard | Baseline (same run) | Ratio | Target | Peak RSS (editshard / baseline) |"
    echo "|---|---|---|---|---|---|"
    echo "| Sequential read, sync \`MappedShardReader\` (local shard mapped, zero-copy), CRC on, page cache | $(mbps "$SHARD_BYTES" "$SYNC_S") MB/s | \`cat\` $(mbps "$SHARD_BYTES" "$CAT_S") MB/s | $(r2 "$CAT_S / $SYNC_S") of cat | >= 0.9 of cat: $(mark "$CAT_S / $SYNC_S >= 0.9") | $(rss_mb "$W/sync.time") / $CAT_RSS MB |"
    echo "| Sequential read, async \`Dataset::stream\` of the local directory (mapped, populated ahead on a blocking thread), CRC on | $(mbps "$SHARD_BYTES" "$ASYNC_S") MB/s | \`cat\` $(mbps "$SHARD_BYTES" "$CAT_S") MB/s | $(r2 "$CAT_S / $ASYNC_S") of cat | >= 0.9 of cat: $(mark "$CAT_S / $ASYNC_S >= 0.9") | $(rss_mb "$W/async.time") / $CAT_RSS MB |"
    echo "| Sequential read, sync \`ShardReader\` over a \`std::fs::File\` (any \`Read\`: one copy), CRC on | $(mbps "$SHARD_BYTES" "$READER_S") MB/s | \`cat\` $(mbps "$SHARD_BYTES" "$CAT_S") MB/s | $(r2 "$CAT_S / $READER_S") of cat | (reference) | $(rss_mb "$W/reader.time") / $CAT_RSS MB |"
    echo "| Sequential read, async \`FramedRead<tokio::fs::File, ShardDecoder>\` (any \`AsyncRead\`: two copies), CRC on | $(mbps "$SHARD_BYTES" "$FRAMED_S") MB/s | \`cat\` $(mbps "$SHARD_BYTES" "$CAT_S") MB/s | $(r2 "$CAT_S / $FRAMED_S") of cat | (reference) | $(rss_mb "$W/framed.time") / $CAT_RSS MB |"
    echo "| Same $RECORDS records from WebDataset tars (\`tar\` crate, JSON parsed) | sync $(calc "%.0f" "$RECORDS / $SYNC_S") records/s | tar $(calc "%.0f" "$RECORDS / $TAR_S") records/s ($(mbps "$TAR_BYTES" "$TAR_S") MB/s of $(MB "$TAR_BYTES") MB of tars) | $(r2 "$TAR_S / $SYNC_S")x tar's speed | faster than tar: $(mark "$TAR_S > $SYNC_S") | $(rss_mb "$W/sync.time") / $(rss_mb "$W/tar.time") MB |"
    echo "| Plain \`read\` of the shards, 1 MiB buffer, in process | $(mbps "$SHARD_BYTES" "$PLAIN_S") MB/s | \`cat\` $(mbps "$SHARD_BYTES" "$CAT_S") MB/s | $(r2 "$CAT_S / $PLAIN_S") of cat (sync reader: $(r2 "$PLAIN_S / $SYNC_S") of this) | (reference) | $(rss_mb "$W/plain.time") / $CAT_RSS MB |"
    echo "| Every frame read into one frame-sized buffer, no CRC ($N_FRAMES frames, mean $(MB "$((SHARD_BYTES / N_FRAMES))") MB, largest $(MB "$LARGEST_FRAME") MB) | $(mbps "$SHARD_BYTES" "$FRAMES_S") MB/s | \`cat\` $(mbps "$SHARD_BYTES" "$CAT_S") MB/s | $(r2 "$CAT_S / $FRAMES_S") of cat (sync reader: $(r2 "$FRAMES_S / $SYNC_S") of this) | (reference) | $(rss_mb "$W/frames.time") / $CAT_RSS MB |"
    echo "| Random access, one whole record (mean $(MB "$REC_MEAN") MB), warm, p50 / p99 | $WG50 / $WG99 µs | \`pread\` of the same bytes $WP50 / $WP99 µs | $(r2 "$WG50 / $WP50") / $(r2 "$WG99 / $WP99") | p50 <= 1.0x pread: $(mark "$WG50 <= $WP50") | $(rss_mb "$W/random.time") MB |"
    echo "| Random access, first read of each record in the process (its pages mapped, its images' SHA-256 computed), p50 / p99 | $FG50 / $FG99 µs | warm \`pread\` of the same bytes $WP50 / $WP99 µs | $(r2 "$FG50 / $WP50") / $(r2 "$FG99 / $WP99") | (report) | (same process) |"
    echo "| Random access, one record's metadata (no image bytes), warm, reads back to back (a metadata scan, a filter), p50 / p99 | $MA50 / $MA99 µs | \`pread\` of its metadata block $MAP50 / $MAP99 µs | $(r2 "$MA50 / $MAP50") / $(r2 "$MA99 / $MAP99") | p50 < 15 µs: $(mark "$MA50 < 15") | (same process) |"
    echo "| Random access, one record's metadata, each read right after a whole record (2 MB through the CPU caches: the decompressor's state comes back from memory), p50 / p99 | $WM50 / $WM99 µs | \`pread\` of its metadata block $WMP50 / $WMP99 µs | $(r2 "$WM50 / $WMP50") / $(r2 "$WM99 / $WMP99") | (report) | (same process) |"
    echo "| Random access, one whole record, cold ($COLD_METHOD before each read), p50 / p99 | $(calc "%.2f" "$CG50 / 1000") / $(calc "%.2f" "$CG99 / 1000") ms | cold \`pread\` of the same bytes $(calc "%.2f" "$CP50 / 1000") / $(calc "%.2f" "$CP99 / 1000") ms | $(r2 "$CG50 / $CP50") / $(r2 "$CG99 / $CP99") | (report) | (same process) |"
    echo "| Metadata-only scan, local (\`Dataset::reader\`, \`Images::None\`, as \`editshard cat\`; shards read with \`pread\`, \`map_local: false\`, so that \`rchar\` counts the bytes) | $(calc "%.1f" "$META_S * 1000") ms, $(KB "$META_RCHAR") read | full read (\`Dataset::stream\`) $(calc "%.0f" "$STREAM_S * 1000") ms, $(MB "$STREAM_RCHAR") MB read | $(calc "%.3f" "$META_S / $STREAM_S") of the time, $(calc "%.4f" "$META_RCHAR / $STREAM_RCHAR") of the bytes | (report) | $(rss_mb "$W/meta.time") / $(rss_mb "$W/stream.time") MB |"
    echo "| HTTP streaming (\`Dataset::stream\`, nginx on 127.0.0.1) | $(mbps "$SHARD_BYTES" "$HS_S") MB/s, $HS_REQ requests for $RECORDS records ($(calc "%.3f" "$HS_REQ / $RECORDS")/record) | \`curl\` of the shards $(mbps "$SHARD_BYTES" "$CURL_S") MB/s, $SHARDS requests | $(r2 "$CURL_S / $HS_S") of curl | >= 1.0 of curl: $(mark "$CURL_S / $HS_S >= 1.0") | $(rss_mb "$W/hstream.time") / $CURL_RSS MB |"
    echo "| HTTP metadata-only scan | $(calc "%.0f" "$HM_S * 1000") ms, $HM_REQ requests, $(KB "$HM_BYTES") transferred | HTTP full stream: $(MB "$HS_BYTES") MB transferred | $(calc "%.4f" "$HM_BYTES / $HS_BYTES") of the bytes | (report) | $(rss_mb "$W/hmeta.time") MB |"
    echo "| HTTP random access, $HTTP_SAMPLES single records (\`Dataset::get\`), p50 / p99 | $(calc "%.2f" "$HG50 / 1000") / $(calc "%.2f" "$HG99 / 1000") ms, $HG_REQ requests | 1 request per record + $HG_OPEN to open (manifest, footers) | $(calc "%.3f" "($HG_REQ - $HG_OPEN) / $HTTP_SAMPLES") requests/record after opening ($HG_SPLIT records split into metadata + image ranges; the span rule predicts $HG_PRED requests) | (report) | $(rss_mb "$W/hget.time") MB |"
    echo "| Conversion from local files (header validation, SHA-256, fsync) | $(mbps "$CONV_BYTES" "$CONV_S") MB/s ($(calc "%.1f" "$CONV_S") s) | \`cp -r\` + \`sync\` $(mbps "$CONV_BYTES" "$CP_S") MB/s ($(calc "%.1f" "$CP_S") s) | $(r2 "$CP_S / $CONV_S") of cp -r | >= 0.8 of cp -r: $(mark "$CP_S / $CONV_S >= 0.8") | $CONV_RSS / $CP_RSS MB |"
    echo "| Bytes on disk: dataset directory (shards + manifest) | $(MB "$DS_BYTES") MB | raw release $(MB "$RAW") MB | $(calc "%.4f" "$DS_BYTES / $RAW") ($(calc "%+.2f" "($DS_BYTES - $RAW) / 1e6") MB) | below raw: $(mark "$DS_BYTES < $RAW") | |"
    echo "| Allocated blocks (\`du -B1\`): dataset directory | $(MB "$DS_ALLOC") MB | raw release, $N_IMG loose files + JSONL: $(MB "$RAW_ALLOC") MB | $(calc "%.4f" "$DS_ALLOC / $RAW_ALLOC") | (report) | |"
    echo "| Container overhead: metadata, framing, index, manifest (dataset minus stored image bytes) | $(KB "$((DS_BYTES - IMG_STORED_BYTES))") | the release's JSONL $(KB "$RAW_JSONL") | $(calc "%.2f" "($DS_BYTES - $IMG_STORED_BYTES) / $RAW_JSONL") | (report) | |"
    echo "| Bytes on disk without the shared-image saving ($IMG_REF images referenced, $IMG_STORED stored) | $(MB "$((DS_BYTES + DEDUP_SAVED))") MB | raw release $(MB "$RAW") MB | $(calc "%.3f" "($DS_BYTES + $DEDUP_SAVED) / $RAW") | (report) | |"
    echo "| Bytes on disk: WebDataset tars of the same records | $(MB "$WDS_BYTES") MB | raw release $(MB "$RAW") MB | $(calc "%.3f" "$WDS_BYTES / $RAW") | (report) | |"
} > "$W/results.md"

# Where the time goes in each editshard measurement with a target: one more run of each under
# `perf record` (sampling, not timed), its hottest symbols appended to the results. This is
# what a row marked missed is explained by.
profile() {
    local name=$1 what=$2
    shift 2
    perf record -q -F 499 -o "$W/$name.perf" -- "$@" > /dev/null 2> "$W/$name.perf.log" || return 0
    report_profile "$name" "$what"
}
# report_profile NAME WHAT: the hottest symbols of $W/NAME.perf, if it was recorded.
report_profile() {
    local name=$1 what=$2
    [[ -s "$W/$name.perf" ]] || return 0
    echo
    echo "$what (\`perf record -F 499\`, then \`perf report --no-children --sort dso,sym\`; symbols over 2% of samples):"
    echo
    echo '```text'
    perf report -i "$W/$name.perf" --stdio --no-children --sort dso,sym --percent-limit 2 2> /dev/null |
        grep -E '^ +[0-9.]+%' | head -14 | sed -E 's/ +/ /g; s/^ //'
    echo '```'
}
if [[ "$PROFILE" == 1 ]] && command -v perf > /dev/null; then
    log "profiles (perf record)"
    (cd "$DS" && cat "${SHARD_FILES[@]}") > /dev/null
    {
        echo
        echo "#### Profiles"
        profile sync "Sequential sync read (\`bench_read sync\`)" "$BR" sync "$DS" --reps 3
        profile async "Sequential async stream (\`bench_read async\`)" "$BR" async "$DS" --reps 3
        profile random "Random access, warm (\`bench_read random\`, no cold samples)" "$BR" random "$DS" --samples "$SAMPLES" --cold-samples 0
        report_profile hstream "HTTP streaming (\`bench_read stream\` through nginx, recorded while it ran; nginx itself not sampled)"
        rm -rf "$W/ds-prof"
        profile convert "Conversion (\`editshard convert\`, one run)" "$BIN" convert "$REL" --out "$W/ds-prof" \
            --shard-size "$SHARD_SIZE" --openimages-csv "$REL/openimages/train-images-boxable-with-rotation.csv" \
            --openimages-dir "$REL/openimages" --log-interval 3600
        rm -rf "$W/ds-prof" "$W"/*.perf
    } >> "$W/results.md"
fi

cat "$W/results.md"
cp "$W/results.md" "$RESULTS"
echo >&2
echo "written to $RESULTS" >&2
