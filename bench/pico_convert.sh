#!/usr/bin/env bash
# `editshard convert` of a synthetic Pico-Banana release from local files (sources through
# `--openimages-dir`) against `cp -r` + `sync` of the same inputs (`images/`, `openimages/`,
# `jsonl/`): the two alternate, page cache warm for both, convert fsyncs its shards. The
# conversion row of bench/run.sh alone, repeated. Target (issue 24): median ratio >= 0.8.
#
#   bash bench/pico_convert.sh [WORKDIR]     (default: a mktemp dir under /tmp, removed at the end)
#
# Environment: ROWS [400] (split like the release), SEED [42], REPS [5] (each side),
# SHARD_SIZE [512MiB], KEEP=1, PROFILE [release], BUILD=0 (as bench/hub_convert.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS="${ROWS:-400}" SEED="${SEED:-42}" REPS="${REPS:-5}" SHARD_SIZE="${SHARD_SIZE:-512MiB}"
KEEP="${KEEP:-0}" PROFILE="${PROFILE:-release}"
# shellcheck source=bench/lib.sh
source bench/lib.sh
W="${1:-$(mktemp -d /tmp/editshard-pico-bench.XXXXXX)}"
mkdir -p "$W"
[[ "$KEEP" == 1 ]] || trap 'rm -rf "$W"' EXIT

if [[ "${BUILD:-1}" != 0 ]]; then
    cargo build --profile "$PROFILE" -q -p editshard-cli --bin editshard -p editshard-tools --bin gen_bench_release
fi
BIN=target/$PROFILE/editshard
SFT=$(awk -v r="$ROWS" 'BEGIN { printf "%d", r * 257730 / 386203 + 0.5 }')
PREF=$(awk -v r="$ROWS" 'BEGIN { printf "%d", r * 56473 / 386203 + 0.5 }')
REL=$W/rel
[[ -d "$REL" ]] || "target/$PROFILE/gen_bench_release" "$REL" --sft "$SFT" --preference "$PREF" \
    --multi-turn "$((ROWS - SFT - PREF))" --seed "$SEED" --realistic > /dev/null
bytes=$(du -sb "$REL/images" "$REL/openimages" "$REL/jsonl" | awk '{ s += $1 } END { print s }')
cat "$REL"/images/*/* "$REL"/openimages/train_0/* > /dev/null # warm the page cache

echo "== convert ($ROWS rows) against cp -r + sync, $REPS each, alternating" >&2
vs_cp "$REPS" "$bytes" "$W" "$REL/images $REL/openimages $REL/jsonl" \
    /usr/bin/time -f '%M' -o "$W/rss" "$BIN" convert "$REL" --out "$W/out" --shard-size "$SHARD_SIZE" \
    --openimages-csv "$REL/openimages/train-images-boxable-with-rotation.csv" \
    --openimages-dir "$REL/openimages" --log-interval 3600
printf '| what | value |\n|---|---|\n'
printf '| input | %s rows, %s bytes (images, openimages, jsonl) |\n' "$ROWS" "$bytes"
printf '| `cp -r` + `sync` (median) | %.3f s (%.0f MB/s) |\n' "$CP_S" "$(awk -v b="$bytes" -v t="$CP_S" 'BEGIN { print b / t / 1e6 }')"
printf '| convert (median) | %.3f s (%.0f MB/s) |\n' "$CONV_S" "$(awk -v b="$bytes" -v t="$CONV_S" 'BEGIN { print b / t / 1e6 }')"
printf '| convert speed / cp -r speed (median of %s ratios) | %s |\n' "$REPS" "$RATIO"
printf '| convert peak RSS (last run) | %s MiB |\n' "$(($(cat "$W/rss") / 1024))"
