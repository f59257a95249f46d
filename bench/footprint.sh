#!/usr/bin/env bash
# What a reader process holds once it has touched every shard, as the dataset grows: the
# anonymous memory (RssAnon: heap, not the page cache that maps the shards, which every
# process on the node shares) of `bench_footprint touch`, which opens a local dataset, reads
# one record of every shard (so every footer is loaded, as in a shuffled epoch), then reads
# GETS random records' metadata (their p50 is reported); and with PYTHON, the same from
# Python (bench/footprint.py: `ds[i]` with images="none"); "at start" is after the open
# (Rust) or after `import editshard` (Python). Datasets come from `bench_footprint synth`: records shaped
# like the release's, with images of a few dozen bytes, written straight through
# DatasetWriter, ~556 records a shard as the real release's 512 MiB shards hold (4M records
# take minutes and ~1.2 GB).
#
#   bash bench/footprint.sh [WORKDIR]   (default: a fresh mktemp dir under /tmp, removed at the end)
#
# Environment (defaults in brackets): SIZES ["100000 386203 4000000"] records; BUDGETS
# ["default 256"] footer cache budgets in MiB (`DatasetOptions::footer_cache_bytes`; "default"
# leaves the default, 16 MiB; 256 was the default before); DICT_KIB [unset] the prepared
# dictionaries' budget in KiB (`format::set_prepared_dictionary_budget`; default 1024);
# GETS [2000]; BIN_DIR [unset: build target/release] where bench_footprint is; BASE_BIN_DIR
# [unset] a baseline build's bench_footprint (e.g. of main), measured in the same run on the
# same datasets; PYTHON [unset] a Python that imports editshard (e.g. with PYTHONPATH set to
# a wheel's install): bench/footprint.py is then measured too, at the default budget; KEEP=1
# keeps WORKDIR. Prints a markdown table (see bench/README.md, "Reader memory").
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
SIZES="${SIZES:-100000 386203 4000000}" BUDGETS="${BUDGETS:-default 16}" GETS="${GETS:-2000}"
KEEP="${KEEP:-0}"

W=${1:-$(mktemp -d /tmp/editshard-footprint.XXXXXX)}
mkdir -p "$W"
cleanup() { if [[ "$KEEP" != 1 && -z "${1:-}" ]]; then rm -rf "$W"; fi; }
trap cleanup EXIT

if [[ -n "${BIN_DIR:-}" ]]; then
    B=$(realpath "$BIN_DIR")
else
    cargo build --release --quiet -p editshard-tools --bin bench_footprint
    B=$REPO/target/release
fi
BINS="new=$B/bench_footprint"
[[ -n "${BASE_BIN_DIR:-}" ]] && BINS="base=$(realpath "$BASE_BIN_DIR")/bench_footprint $BINS"
val() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }

echo "| Records | Shards | Footers on disk (bytes / record) | Process | Footer budget (MiB) | Footers kept | RssAnon at start (MB) | RssAnon, every shard touched (MB) | RssAnon after $GETS random reads (MB) | Random metadata read p50 (µs) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for N in $SIZES; do
    D=$W/d$N
    if [[ ! -f $D/manifest.json ]]; then
        rm -rf "$D"
        "$B/bench_footprint" synth "$D" --records "$N" > "$W/synth-$N.txt"
    fi
    FOOT=$(grep -o '"footer_length": *[0-9]*' "$D/manifest.json" | awk -F: '{ s += $2 } END { print s + 0 }')
    for BIN in $BINS; do
        for BUDGET in $BUDGETS; do
            args=(touch "$D" --gets "$GETS")
            [[ $BUDGET != default ]] && args+=(--cache-mib "$BUDGET")
            [[ -n "${DICT_KIB:-}" ]] && args+=(--dict-kib "$DICT_KIB")
            out=$W/touch-$N-${BIN%%=*}-$BUDGET.txt
            "${BIN#*=}" "${args[@]}" > "$out"
            awk -v n="$N" -v shards="$(val "$out" shards)" -v foot="$FOOT" -v bin="Rust ${BIN%%=*}" \
                -v budget="$BUDGET" -v kept="$(val "$out" footers_cached)" \
                -v o="$(val "$out" rss_anon_open_kib)" \
                -v a="$(val "$out" rss_anon_touched_kib)" -v g="$(val "$out" rss_anon_after_gets_kib)" \
                -v us="$(val "$out" random_metadata_get_p50_us)" \
                'BEGIN { printf "| %d | %d | %.1f | %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n", n, shards, foot / n, bin, budget, kept, o / 1024, a / 1024, g / 1024, us }'
        done
    done
    if [[ -n "${PYTHON:-}" ]]; then
        for BUDGET in $BUDGETS; do
            pargs=("$D" --gets "$GETS")
            [[ $BUDGET != default ]] && pargs+=(--cache-mib "$BUDGET")
            out=$W/touch-$N-python-$BUDGET.txt
            "$PYTHON" "$REPO/bench/footprint.py" "${pargs[@]}" > "$out"
            awk -v n="$N" -v shards="$(val "$out" shards)" -v foot="$FOOT" -v budget="$BUDGET" \
                -v o="$(val "$out" py_rss_anon_imported_kib)" \
                -v a="$(val "$out" py_rss_anon_touched_kib)" -v g="$(val "$out" py_rss_anon_after_gets_kib)" \
                -v us="$(val "$out" py_random_get_p50_us)" \
                'BEGIN { printf "| %d | %d | %.1f | Python | %s | | %.1f | %.1f | %.1f | %.1f |\n", n, shards, foot / n, budget, o / 1024, a / 1024, g / 1024, us }'
        done
    fi
done
