#!/usr/bin/env bash
# Conversion throughput from local files, next to `cp -r` of the same files in the same run,
# and peak RSS of a 10K-row conversion.
#
#   bash bench/convert_throughput.sh [WORKDIR]      (default /tmp/editshard-bench; nothing is committed)
#
# Environment: SFT, PREFERENCE, MULTI_TURN, PX (size of the throughput release; defaults give
# ~300 rows and ~0.5 GB of incompressible images), RSS_ROWS_SFT/PREF/MT (the 10K-row release).
# Both timings include getting the bytes to disk (`sync` after cp; convert fsyncs each shard)
# and start with the source files in the page cache (they were just written), so the two
# numbers compare the work done, not the disk's read speed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

W="${1:-/tmp/editshard-bench}"
SFT="${SFT:-120}" PREFERENCE="${PREFERENCE:-50}" MULTI_TURN="${MULTI_TURN:-50}" PX="${PX:-640}"

cargo build --release --quiet -p editshard-tools --bin gen_bench_release -p editshard-cli
BIN=target/release/editshard
GEN=target/release/gen_bench_release

rm -rf "$W"
mkdir -p "$W"
echo "== generating the throughput release ($SFT/$PREFERENCE/$MULTI_TURN rows, ${PX}px, noisy images)"
"$GEN" "$W/rel" --sft "$SFT" --preference "$PREFERENCE" --multi-turn "$MULTI_TURN" --px "$PX" --noise
BYTES=$(du -sb "$W/rel/images" "$W/rel/openimages/train_0" | awk '{s += $1} END {print s}')
sync

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1e6 / t }'; }

echo "== cp -r of the same image files"
t0=$(now)
mkdir -p "$W/cp"
cp -r "$W/rel/images" "$W/rel/openimages/train_0" "$W/cp/"
sync
t1=$(now)
CP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

echo "== editshard convert (sources from the Open Images dir, edits from the release dir)"
t0=$(now)
"$BIN" convert "$W/rel" --out "$W/out" \
    --openimages-csv "$W/rel/openimages/train-images-boxable-with-rotation.csv" \
    --openimages-dir "$W/rel/openimages" --log-interval 3600 > "$W/convert-summary.txt"
t1=$(now)
CONV_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
cat "$W/convert-summary.txt"

echo "== 10K rows for peak RSS (small images)"
"$GEN" "$W/rel10k" --sft "${RSS_ROWS_SFT:-5000}" --preference "${RSS_ROWS_PREF:-2500}" \
    --multi-turn "${RSS_ROWS_MT:-2500}" --px 16 > /dev/null
/usr/bin/time -v "$BIN" convert "$W/rel10k" --out "$W/out10k" \
    --openimages-csv "$W/rel10k/openimages/train-images-boxable-with-rotation.csv" \
    --openimages-dir "$W/rel10k/openimages" --log-interval 3600 > "$W/rss-summary.txt" 2> "$W/rss-time.txt"
RSS_KB=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$W/rss-time.txt")
ROWS10K=$(awk '/records written/ { print $3 }' "$W/rss-summary.txt")
RSS_WALL=$(awk -F'): ' '/Elapsed \(wall clock\)/ { print $2 }' "$W/rss-time.txt")

echo
echo "== results ($(nproc) cores)"
printf '  image bytes            %s MB\n' "$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')"
printf '  cp -r + sync           %.2f s  %s MB/s\n' "$CP_S" "$(mbps "$BYTES" "$CP_S")"
printf '  editshard convert      %.2f s  %s MB/s\n' "$CONV_S" "$(mbps "$BYTES" "$CONV_S")"
printf '  peak RSS, %s records  %s MB (wall %s)\n' "$ROWS10K" "$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')" "$RSS_WALL"
