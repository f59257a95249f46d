#!/usr/bin/env bash
# `editshard convert --preset instructpix2pix` against the dataset's own Parquet files:
# bytes (the shards against the Parquet files) and speed (convert against `cat` of the same
# files, page cache warm for both), with the converter's peak RSS.
#
#   bash bench/hub_convert.sh [WORKDIR]      (default: a mktemp dir under /tmp, removed at the end)
#
# Environment: FILES [2], ROWS [400] per file, GROUP [100] rows per row group, IMAGE [200000]
# bytes per image (the Hub copy's average), REPS [3] (medians are reported), KEEP=1 keeps WORKDIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FILES="${FILES:-2}" ROWS="${ROWS:-400}" GROUP="${GROUP:-100}" IMAGE="${IMAGE:-200000}"
REPS="${REPS:-3}" KEEP="${KEEP:-0}"
W="${1:-$(mktemp -d /tmp/editshard-hub-bench.XXXXXX)}"
mkdir -p "$W"
[[ "$KEEP" == 1 ]] || trap 'rm -rf "$W"' EXIT

# The converter in release; the generator in the dev profile (its speed is not measured).
cargo build --release -q -p editshard-cli --bin editshard
cargo build -q -p editshard-tools --bin gen_hub_bench
BIN=target/release/editshard
rm -rf "$W/src" && target/debug/gen_hub_bench "$W/src" "$FILES" "$ROWS" "$GROUP" "$IMAGE" 2> /dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

cat "$W"/src/data/*.parquet > /dev/null # warm the page cache
cat_s=$(for _ in $(seq "$REPS"); do
    t0=$(now); cat "$W"/src/data/*.parquet > /dev/null; t1=$(now)
    echo "$t1 - $t0" | bc -l
done | median)
conv=()
for i in $(seq "$REPS"); do
    rm -rf "$W/out"
    t0=$(now)
    /usr/bin/time -f '%M' -o "$W/rss" "$BIN" convert --preset instructpix2pix "$W/src" --out "$W/out" > /dev/null
    t1=$(now)
    conv+=("$(echo "$t1 - $t0" | bc -l) $(cat "$W/rss")")
done
conv_s=$(printf '%s\n' "${conv[@]}" | awk '{print $1}' | median)
rss_kib=$(printf '%s\n' "${conv[@]}" | awk '{print $2}' | sort -n | tail -1)
pq_bytes=$(cat "$W"/src/data/*.parquet | wc -c)
ds_bytes=$(cat "$W"/out/*.esd | wc -c)
records=$(grep -o '"records": *[0-9]*' "$W/out/manifest.json" | head -1 | grep -o '[0-9]*$')

printf '| what | value |\n|---|---|\n'
printf '| input | %s Parquet files, %s rows in %s-row row groups, %s-byte images |\n' "$FILES" "$((FILES * ROWS))" "$GROUP" "$IMAGE"
printf '| Parquet bytes | %s |\n' "$pq_bytes"
printf '| dataset bytes (shards) | %s (%.4f of the Parquet bytes) |\n' "$ds_bytes" "$(echo "$ds_bytes / $pq_bytes" | bc -l)"
printf '| records | %s |\n' "$records"
printf '| `cat` of the Parquet files (warm) | %.3f s (%.0f MB/s) |\n' "$cat_s" "$(echo "$pq_bytes / $cat_s / 1000000" | bc -l)"
printf '| convert --preset instructpix2pix | %.3f s (%.0f MB/s, %.0f rows/s) |\n' "$conv_s" "$(echo "$pq_bytes / $conv_s / 1000000" | bc -l)" "$(echo "$FILES * $ROWS / $conv_s" | bc -l)"
printf '| convert speed / cat speed | %.3f |\n' "$(echo "$cat_s / $conv_s" | bc -l)"
printf '| convert peak RSS | %s MiB |\n' "$((rss_kib / 1024))"
