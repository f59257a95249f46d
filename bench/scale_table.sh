#!/usr/bin/env bash
# The markdown growth tables of bench/scale.sh from its raw figures (one line of key=value per
# size), so that a table can be rebuilt from a kept `scale-results-DATE.txt`:
#
#   bash bench/scale_table.sh ROWS_FILE SHARD_SIZE SEED GETS
set -euo pipefail
ROWS_FILE=$1 SHARD_SIZE=$2 SEED=$3 GETS=$4
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
git diff --quiet HEAD -- crates tools 2> /dev/null || COMMIT="$COMMIT (+ uncommitted changes)"

echo "### Scale: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT"
echo
echo "Machine: $(nproc) cores ($CPU), $MEM RAM; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Releases from \`gen_bench_release --px 8\` (seed $SEED): PNG edits and JPEG sources of a few hundred"
echo "bytes each, so per-row costs dominate; \`--shard-size $SHARD_SIZE\`. HTTP: nginx on 127.0.0.1, requests"
echo "and bytes from its access log. Ratio rows divide each figure by the previous size's (rows grow by the"
echo "first column's ratio): linear growth has the same ratio as rows, a constant cost 1.00."
echo
awk -v gets="$GETS" '
function f(x, fmt) { return (x == "nan" || x == "") ? "n/a" : sprintf(fmt, x) }
function ratio(a, b) { return (a == "nan" || b == "nan" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
{
    n++
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[n, kv[1]] = kv[2] }
    # derived figures
    v[n, "conv_rps"] = v[n, "rows"] / v[n, "conv_s"]
    v[n, "manifest_pr"] = v[n, "manifest"] / v[n, "records"]
    v[n, "footer_pr"] = v[n, "footer_bytes"] / v[n, "records"]
    v[n, "rps"] = v[n, "shard_bytes"] / v[n, "records"]
    v[n, "rec_per_shard"] = v[n, "records"] / v[n, "shards"]
    v[n, "cat_us_pr"] = v[n, "cat_s"] * 1e6 / v[n, "records"]
}
END {
    split("rows records img_files shards rec_per_shard rps gen_s conv_s conv_rps conv_rss manifest manifest_pr footer_bytes", c1, " ")
    split("%d %d %d %d %.0f %.0f %.1f %.1f %.0f %.1f %d %.2f %d", f1, " ")
    print "| Rows | Records | Image files | Shards | Records / shard | Shard bytes / record | Generate (s) | Convert (s) | Convert rows/s | Convert peak RSS (MB) | manifest.json (bytes) | manifest bytes / record | Footers, all shards (bytes) |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (r = 1; r <= n; r++) {
        line = "|"
        for (i = 1; i <= 13; i++) line = line " " f(v[r, c1[i]], f1[i]) " |"
        print line
    }
    for (r = 2; r <= n; r++) {
        line = "| " v[r, "rows"] " / " v[r - 1, "rows"] ": " ratio(v[r, "rows"], v[r - 1, "rows"]) " |"
        for (i = 2; i <= 13; i++) line = line " " ratio(v[r, c1[i]], v[r - 1, c1[i]]) " |"
        print line
    }
    print ""
    split("rows open_req open_bytes open_ms cat_s cat_us_pr cat_req cat_bytes cat_rss get_p50 get_p99 get_rpr get_cand get_filter_us epoch_rps epoch_rss touch_anon", c2, " ")
    split("%d %.1f %d %.1f %.2f %.1f %d %d %.1f %.0f %.0f %.2f %.3f %.1f %.0f %.1f %.1f", f2, " ")
    print "| Rows | Open: requests | Open: bytes | Open (ms) | `cat` over HTTP (s) | `cat`: µs / record | `cat`: requests | `cat`: bytes | `cat` peak RSS (MB) | get by id p50 (µs) | get p99 (µs) | get: requests / record | get: shards checked / id | get: filter check (µs / id) | Shuffled epoch (records/s) | Epoch peak RSS (MB) | Every shard touched: RssAnon (MB) |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (r = 1; r <= n; r++) {
        line = "|"
        for (i = 1; i <= 17; i++) line = line " " f(v[r, c2[i]], f2[i]) " |"
        print line
    }
    for (r = 2; r <= n; r++) {
        line = "| " v[r, "rows"] " / " v[r - 1, "rows"] ": " ratio(v[r, "rows"], v[r - 1, "rows"]) " |"
        for (i = 2; i <= 17; i++) line = line " " ratio(v[r, c2[i]], v[r - 1, c2[i]]) " |"
        print line
    }
    if (v[n, "eh_rps"] != "nan") {
        print ""
        print "Shuffled epoch over HTTP:"
        for (r = 1; r <= n; r++)
            printf "%d rows: %.0f records/s, %d requests, peak RSS %.1f MB.\n", v[r, "rows"], v[r, "eh_rps"], v[r, "eh_req"], v[r, "eh_rss"]
    }
    print ""
    printf "get by id: %d random ids per size, fetched whole in one process after Dataset::open; requests / record counts everything after the manifest (footers the first time a shard is touched, then the records).\n", gets
}' "$ROWS_FILE"
