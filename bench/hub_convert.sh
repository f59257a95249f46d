#!/usr/bin/env bash
# `editshard convert --preset instructpix2pix` against the dataset's own Parquet files: bytes
# (the shards against the Parquet files), speed against `cp -r` + `sync` of the same files
# (the disk's own copy rate; the two alternate, page cache warm for both, convert fsyncs its
# shards), and the converter's peak RSS. Target (issue 24): the median ratio >= 0.5 of cp -r.
#
#   bash bench/hub_convert.sh [WORKDIR]      (default: a mktemp dir under /tmp, removed at the end)
#
# Environment: FILES [2], ROWS [400] per file, GROUP [100] rows per row group, IMAGE [200000]
# bytes per image (the Hub copy's average), REPS [5] (each side; medians are reported),
# KEEP=1 keeps WORKDIR, PROFILE [release] the cargo profile (`profiling` keeps line tables for
# `perf`), BUILD=0 uses the binaries already built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FILES="${FILES:-2}" ROWS="${ROWS:-400}" GROUP="${GROUP:-100}" IMAGE="${IMAGE:-200000}"
REPS="${REPS:-5}" KEEP="${KEEP:-0}" PROFILE="${PROFILE:-release}"
# shellcheck source=bench/lib.sh
source bench/lib.sh
W="${1:-$(mktemp -d /tmp/editshard-hub-bench.XXXXXX)}"
mkdir -p "$W"
[[ "$KEEP" == 1 ]] || trap 'rm -rf "$W"' EXIT

if [[ "${BUILD:-1}" != 0 ]]; then
    cargo build --profile "$PROFILE" -q -p editshard-cli --bin editshard -p editshard-tools --bin gen_hub_bench
fi
BIN=target/$PROFILE/editshard
rm -rf "$W/src" && "target/$PROFILE/gen_hub_bench" "$W/src" "$FILES" "$ROWS" "$GROUP" "$IMAGE" 2> /dev/null
pq_bytes=$(cat "$W"/src/data/*.parquet | wc -c)
cat "$W"/src/data/*.parquet > /dev/null # warm the page cache

echo "== convert --preset instructpix2pix against cp -r + sync, $REPS each, alternating" >&2
vs_cp "$REPS" "$pq_bytes" "$W" "$W/src/data" \
    /usr/bin/time -f '%M' -o "$W/rss" "$BIN" convert --preset instructpix2pix "$W/src" --out "$W/out"
rss_kib=$(cat "$W/rss")
ds_bytes=$(cat "$W"/out/*.esd | wc -c)
records=$(grep -o '"records": *[0-9]*' "$W/out/manifest.json" | head -1 | grep -o '[0-9]*$')

printf '| what | value |\n|---|---|\n'
printf '| input | %s Parquet files, %s rows in %s-row row groups, %s-byte images |\n' "$FILES" "$((FILES * ROWS))" "$GROUP" "$IMAGE"
printf '| Parquet bytes | %s |\n' "$pq_bytes"
printf '| dataset bytes (shards) | %s (%.4f of the Parquet bytes) |\n' "$ds_bytes" "$(echo "$ds_bytes / $pq_bytes" | bc -l)"
printf '| records | %s |\n' "$records"
printf '| `cp -r` + `sync` of the Parquet files (median) | %.3f s (%.0f MB/s) |\n' "$CP_S" "$(echo "$pq_bytes / $CP_S / 1000000" | bc -l)"
printf '| convert --preset instructpix2pix (median) | %.3f s (%.0f MB/s, %.0f rows/s) |\n' "$CONV_S" "$(echo "$pq_bytes / $CONV_S / 1000000" | bc -l)" "$(echo "$FILES * $ROWS / $CONV_S" | bc -l)"
printf '| convert speed / cp -r speed (median of %s ratios) | %s |\n' "$REPS" "$RATIO"
printf '| convert peak RSS (last run) | %s MiB |\n' "$((rss_kib / 1024))"
