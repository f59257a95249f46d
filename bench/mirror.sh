#!/usr/bin/env bash
# `editshard mirror` against rclone (and HTTP streaming against curl), on the same dataset, in
# one run, alternating the two tools rep by rep so that the machine's load falls on both alike.
#
#   bash bench/mirror.sh [WORKDIR]     (default: a fresh mktemp dir under /tmp, removed at the end)
#
# Directions: local -> S3, S3 -> local, S3 -> S3 on the same endpoint (s3s-fs on 127.0.0.1,
# the harness's S3 server) within one bucket and into another one (both tools copy inside the
# store), checking an S3 copy (`verify --remote` and a mirror re-run against `rclone check`), and `Dataset::stream` over http:// from a private nginx against
# `curl` of the same shard files. Every command runs under /usr/bin/time -v (peak RSS). Prints
# a markdown table of medians, each ratio being rclone's (curl's) time over editshard's
# (above 1: editshard is faster), with each tool's CPU seconds (user + system) and those s3s-fs
# spent serving each run (the
# store shares the 2 cores: what it verifies costs the client's wall time).
#
# Environment (defaults in brackets): REPS [3]; JOBS [4] (`--jobs` / `--transfers`,
# `--s3-upload-concurrency`); SFT/PREFERENCE/MULTI_TURN [210/90/90] rows and PX [640] (noisy,
# incompressible images: ~750 MB); SHARD_SIZE [50MiB] (~15 shards); BUILD=0 uses binaries
# already built; PROFILE_DIR [target/profiling] where editshard, gen_bench_release and
# bench_read are; PERF=1 records `perf` profiles of one upload by each tool (in WORKDIR,
# KEEP=1 to keep them); KEEP=1 keeps WORKDIR; DOWN_ALT="ARGS" (e.g. "--range-streams 2") also
# times S3 -> local with those mirror arguments in every rep, as a row of its own (an A/B of a
# setting in one run).
# Needs: rclone (Debian's package), s3s-fs (scripts/install-test-deps.sh), nginx, curl.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
REPS="${REPS:-3}" JOBS="${JOBS:-4}" SHARD_SIZE="${SHARD_SIZE:-50MiB}"
SFT="${SFT:-210}" PREFERENCE="${PREFERENCE:-90}" MULTI_TURN="${MULTI_TURN:-90}" PX="${PX:-640}"
B="${PROFILE_DIR:-$REPO/target/profiling}"
export PATH="$HOME/.cache/editshard-tools/bin:/usr/sbin:$PATH"

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_workdir .editshard-bench-mirror bench/mirror.sh "${1:-}"
S3_PID=""
cleanup_all() {
    local rc=$?
    if [[ -n "$S3_PID" ]]; then
        kill "$S3_PID" 2> /dev/null || true
        wait "$S3_PID" 2> /dev/null || true
    fi
    (exit "$rc")
    bench_cleanup
}
trap cleanup_all EXIT

for tool in rclone s3s-fs curl /usr/bin/time; do
    command -v "$tool" > /dev/null || { echo "$tool not found (see bench/mirror.sh)" >&2; exit 1; }
done
if [[ "${BUILD:-1}" != 0 ]]; then
    CARGO_INCREMENTAL=0 cargo build --profile profiling --quiet -p editshard-tools \
        --bin gen_bench_release --bin bench_read -p editshard-cli --bin editshard
fi
BIN=$B/editshard

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print a[int((NR + 1) / 2)] }'; }
rss_mb() { awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.0f", $2 / 1024 }' "$1"; }
declare -A T S C
# CPU seconds s3s-fs (the store, on the same cores) has used so far (0 before it runs).
server_cpu() {
    if [[ -n "${S3_PID:-}" && -r /proc/$S3_PID/stat ]]; then
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$S3_PID/stat"
    else
        echo 0
    fi
}
# timed NAME CMD...: runs CMD under /usr/bin/time -v (output to $W/NAME.out); appends the wall
# seconds to T[NAME] and the peak RSS to $W/NAME.rss.
timed() {
    local name=$1 t0 t1
    shift
    local c0 c1
    c0=$(server_cpu)
    t0=$(now)
    /usr/bin/time -v -o "$W/$name.time" "$@" > "$W/$name.out" 2>&1 || {
        echo "$name failed:" >&2
        tail -5 "$W/$name.out" >&2
        exit 1
    }
    t1=$(now)
    c1=$(server_cpu)
    S[$name]+="$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }') "
    C[$name]+="$(awk -F: '/(User|System) time/ { s += $2 } END { printf "%.1f", s }' "$W/$name.time") "
    rss_mb "$W/$name.time" >> "$W/$name.rss"
    echo >> "$W/$name.rss"
    T[$name]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
}

if [[ -n "${DATASET:-}" ]]; then
    cp -r "$DATASET" "$W/ds"
else
    echo "== generating ($SFT/$PREFERENCE/$MULTI_TURN rows, ${PX}px noisy images)" >&2
    "$B/gen_bench_release" "$W/rel" --sft "$SFT" --preference "$PREFERENCE" \
        --multi-turn "$MULTI_TURN" --px "$PX" --noise > /dev/null
    "$BIN" convert "$W/rel" --out "$W/ds" --shard-size "$SHARD_SIZE" \
        --openimages-csv "$W/rel/openimages/train-images-boxable-with-rotation.csv" \
        --openimages-dir "$W/rel/openimages" --log-interval 3600 > /dev/null
    rm -rf "$W/rel"
fi
DS_BYTES=$(du -sb "$W/ds" | cut -f1)
SHARDS=$(find "$W/ds" -name '*.esd' | wc -l)
echo "   $DS_BYTES bytes in $SHARDS shards" >&2

echo "== s3s-fs on 127.0.0.1" >&2
mkdir -p "$W/s3"
S3_PORT=""
for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 40000))
    s3s-fs --host 127.0.0.1 --port "$p" --access-key AKBENCH --secret-key SKBENCH "$W/s3" \
        > "$W/s3s.log" 2>&1 &
    S3_PID=$!
    sleep 0.5
    if kill -0 "$S3_PID" 2> /dev/null; then S3_PORT=$p; break; fi
    S3_PID=""
done
[[ -n "$S3_PORT" ]] || { echo "s3s-fs did not start: $(cat "$W/s3s.log")" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=AKBENCH AWS_SECRET_ACCESS_KEY=SKBENCH AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENV_AUTH=false
export RCLONE_CONFIG_S3_ACCESS_KEY_ID=AKBENCH RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=SKBENCH
export RCLONE_CONFIG_S3_ENDPOINT=$AWS_ENDPOINT_URL RCLONE_CONFIG_S3_REGION=us-east-1
export RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true RCLONE_CONFIG=/dev/null
# rclone's S3 client refuses to start with a CA bundle set (the endpoint is plain http).
unset AWS_CA_BUNDLE
rclone mkdir s3:bench
rclone mkdir s3:bench2
# The source of the S3 -> * rows, uploaded once, each shard in one PUT (parts larger than the
# shards): s3s-fs keeps an object's CRC-64/NVME only for a one-PUT upload, where S3 keeps it
# for multipart uploads too (FULL_OBJECT), so this is how S3 itself would hold the source.
# With the default 16 MiB parts, s3s-fs reports no CRC and the store copies are read back
# (the S3 -> S3 rows then equal --verify-after-copy's).
"$BIN" mirror "$W/ds" s3://bench/src --jobs "$JOBS" --part-size 64 > /dev/null
RC=(--transfers "$JOBS" --checkers "$JOBS" --s3-upload-concurrency "$JOBS")
# Removes what a rep wrote (keeps the disk use to ~3 copies).
drop() { rm -rf "$W/s3/bench/$1" "$W/s3/bench2/$1" "$W/down"; }

for r in $(seq "$REPS"); do
    echo "== rep $r/$REPS (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    sync
    timed up_e "$BIN" mirror "$W/ds" "s3://bench/e$r" --jobs "$JOBS"
    drop "e$r"
    sync
    timed up_r rclone copy "$W/ds" "s3:bench/r$r" "${RC[@]}"
    drop "r$r"
    sync
    timed down_e "$BIN" mirror s3://bench/src "$W/down" --jobs "$JOBS"
    drop x
    sync
    timed down_r rclone copy s3:bench/src/ "$W/down" "${RC[@]}"
    drop x
    if [[ -n "${DOWN_ALT:-}" ]]; then
        sync
        # shellcheck disable=SC2086 # DOWN_ALT is a list of arguments
        timed down_a "$BIN" mirror s3://bench/src "$W/down" --jobs "$JOBS" $DOWN_ALT
        drop x
    fi
    sync
    timed s2s_e "$BIN" mirror s3://bench/src "s3://bench/e$r" --jobs "$JOBS"
    drop "e$r"
    sync
    timed s2s_r rclone copy s3:bench/src/ "s3:bench/r$r" "${RC[@]}"
    drop "r$r"
    sync
    # Another bucket: editshard streams (down and up again); rclone still copies in the store.
    timed s2b_e "$BIN" mirror s3://bench/src "s3://bench2/e$r" --jobs "$JOBS"
    drop "e$r"
    sync
    timed s2b_r rclone copy s3:bench/src/ "s3:bench2/r$r" "${RC[@]}"
    drop "r$r"
    # Is the S3 copy intact? editshard by the CRCs the store reports (a HEAD per shard),
    # rclone check by the local files' MD5s against the store's ETags.
    timed verify_e "$BIN" verify s3://bench/src --remote
    timed rerun_e "$BIN" mirror "$W/ds" s3://bench/src --jobs "$JOBS"
    timed verify_r rclone check "$W/ds" s3:bench/src/ --include "*.esd" --include manifest.json "${RC[@]}"
    echo "   up ${T[up_e]} / ${T[up_r]}; down ${T[down_e]} / ${T[down_r]}; s3->s3 ${T[s2s_e]} / ${T[s2s_r]}; s3->other bucket ${T[s2b_e]} / ${T[s2b_r]}" >&2
done

if [[ "${PERF:-0}" == 1 ]] && command -v perf > /dev/null; then
    echo "== perf profiles of one upload each" >&2
    perf record -F 499 -g -o "$W/perf-up_e.data" -- "$BIN" mirror "$W/ds" s3://bench/pe \
        --jobs "$JOBS" > /dev/null 2>&1
    perf record -F 499 -g -o "$W/perf-up_r.data" -- rclone copy "$W/ds" s3:bench/pr \
        "${RC[@]}" > /dev/null 2>&1
    for t in up_e up_r; do
        perf report -i "$W/perf-$t.data" --no-children --sort dso,sym --percent-limit 2 \
            --stdio 2> /dev/null | grep -v '^$' | grep '%' | head -25 > "$W/perf-$t.txt" || true
        echo "-- $t" >&2
        cat "$W/perf-$t.txt" >&2
    done
    drop pe
    drop pr
fi

echo "== HTTP stream (nginx) against curl" >&2
start_nginx ds/manifest.json
URL=http://127.0.0.1:$PORT/ds
CURL_ARGS=()
while IFS= read -r f; do CURL_ARGS+=(-o /dev/null "$URL/${f#"$W/ds/"}"); done \
    < <(find "$W/ds" -name '*.esd' | sort)
for r in $(seq "$REPS"); do
    timed http_e "$B/bench_read" stream "$URL" --reps 1
    timed http_c curl -fsS "${CURL_ARGS[@]}"
done

med() { tr ' ' '\n' <<< "${T[$1]}" | grep . | median; }
rss() { grep . "$W/$1.rss" | sort -n | tail -1; }
smed() { tr ' ' '\n' <<< "${S[$1]}" | grep . | median; }
cmed() { tr ' ' '\n' <<< "${C[$1]}" | grep . | median; }
row() {
    local what=$1 e=$2 base=$3 name=$4 es bs
    es=$(med "$e")
    bs=$(med "$base")
    printf '| %s | %s s (%s) | %s MB | %s s | %s s | %s %s s (%s) | %s MB | %s s | %s s | %s |\n' \
        "$what" "$es" "${T[$e]% }" "$(rss "$e")" "$(cmed "$e")" "$(smed "$e")" "$name" "$bs" \
        "${T[$base]% }" "$(rss "$base")" "$(cmed "$base")" "$(smed "$base")" \
        "$(awk -v a="$bs" -v b="$es" 'BEGIN { printf "%.2f", a / b }')"
}
echo
echo "$DS_BYTES bytes in $SHARDS shards, --jobs $JOBS, $REPS reps (median, then each run), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$REPO" rev-parse --short HEAD)"
echo
echo "| direction | editshard | peak RSS | CPU | store CPU | baseline | peak RSS | CPU | store CPU | baseline / editshard |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row "local -> S3" up_e up_r rclone
row "S3 -> local" down_e down_r rclone
[[ -z "${DOWN_ALT:-}" ]] || row "S3 -> local, $DOWN_ALT" down_a down_r rclone
row "S3 -> S3, one bucket" s2s_e s2s_r rclone
row "S3 -> S3, another bucket" s2b_e s2b_r rclone
row "verify the S3 copy (\`verify --remote\` / \`rclone check\`)" verify_e verify_r rclone
row "mirror again, all present (/ \`rclone check\`)" rerun_e verify_r rclone
row "HTTP stream (nginx)" http_e http_c curl
