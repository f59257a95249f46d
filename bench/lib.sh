# Shared by the bench scripts (source it after `set -euo pipefail`): the work directory and a
# private nginx on 127.0.0.1 whose access log counts requests and bytes.

# bench_workdir MARKER SCRIPT [DIR]: sets W to DIR, or to a fresh directory under /tmp, leaves
# the file MARKER in it, and sets the traps that clean up (bench_cleanup). DIR is emptied
# first only if it is empty already or holds MARKER (a directory SCRIPT made before): nothing
# else is ever deleted.
bench_workdir() {
    local marker=$1 script=$2 dir=${3:-}
    if [[ -n "$dir" ]]; then
        W=$(realpath -m "$dir")
        if [[ -e "$W" && -n "$(ls -A "$W" 2> /dev/null)" && ! -e "$W/$marker" ]]; then
            echo "$W exists and is not empty (and not a previous $script directory)" >&2
            exit 2
        fi
        rm -rf "$W"
        mkdir -p "$W"
    else
        W=$(mktemp -d "/tmp/${marker#.}.XXXXXX")
    fi
    touch "$W/$marker"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# On exit (also on failure or Ctrl-C): nginx stopped, W removed unless KEEP=1, the exit
# status kept.
bench_cleanup() {
    local rc=$?
    stop_nginx
    if [[ "${KEEP:-0}" != 1 ]]; then
        rm -rf "$W"
    else
        echo "kept $W" >&2
    fi
    exit "$rc"
}

NGINX_PID=""
# start_nginx PROBE: serves $W on a free port of 127.0.0.1, config and logs in $W/nginx
# (NG); sets PORT once a GET of $W/PROBE succeeds (within 5 s; five ports are tried).
start_nginx() {
    local probe=$1 user_line="" p
    NG=$W/nginx
    mkdir -p "$NG"
    local nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x "$nginx_bin" ]] || { echo "nginx not found (apt-get install -y nginx-light)" >&2; exit 1; }
    [[ $(id -u) == 0 ]] && user_line="user root;"
    PORT=""
    for _ in 1 2 3 4 5; do
        p=$((20000 + RANDOM % 40000))
        cat > "$NG/nginx.conf" << EOF
daemon off;
master_process off;
worker_processes 1;
$user_line
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 256; }
http {
    log_format bench '\$request_method\t\$request_uri\t\$status\t\$http_range\t\$body_bytes_sent';
    access_log $NG/access.log bench;
    client_body_temp_path $NG/client_body;
    proxy_temp_path $NG/proxy;
    fastcgi_temp_path $NG/fastcgi;
    uwsgi_temp_path $NG/uwsgi;
    scgi_temp_path $NG/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 30s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$p;
        server_name localhost;
        root $W;
    }
}
EOF
        rm -f "$NG/nginx.pid"
        "$nginx_bin" -c "$NG/nginx.conf" -p "$NG" -e "$NG/error.log" < /dev/null > /dev/null 2>&1 &
        NGINX_PID=$!
        for _ in $(seq 50); do # up to 5 s
            if [[ -s "$NG/nginx.pid" ]] && curl -fsS -o /dev/null "http://127.0.0.1:$p/$probe" 2> /dev/null; then
                PORT=$p
                return 0
            fi
            kill -0 "$NGINX_PID" 2> /dev/null || break
            sleep 0.1
        done
        stop_nginx
    done
    echo "nginx did not start: $(cat "$NG/error.log" 2> /dev/null)" >&2
    exit 1
}
stop_nginx() {
    if [[ -n "$NGINX_PID" ]] && kill -0 "$NGINX_PID" 2> /dev/null; then
        kill "$NGINX_PID" 2> /dev/null || true
        wait "$NGINX_PID" 2> /dev/null || true
    fi
    NGINX_PID=""
}
# nginx logs a request once it is finished: wait (bounded) for the count to settle.
settle() {
    local n=-1 m
    for _ in $(seq 20); do
        m=$(wc -l < "$NG/access.log")
        [[ $m == "$n" ]] && break
        n=$m
        sleep 0.1
    done
}
log_reqs() { settle; wc -l < "$NG/access.log"; }
log_bytes() { awk -F'\t' '{ s += $5 } END { print s + 0 }' "$NG/access.log"; }
clear_log() { settle; : > "$NG/access.log"; }

# vs_cp REPS BYTES OUT_DIR CP_SOURCES CONVERT_CMD...: alternates `cp -r CP_SOURCES OUT_DIR/cp/`
# + `sync` (the disk's own copy rate) with CONVERT_CMD (which must write into OUT_DIR/out and
# fsync its output), REPS times each, pending writes flushed before every timing. Prints one
# line per repetition (both times, the ratio cp/convert of that repetition, the load average)
# and sets CP_S, CONV_S (median seconds) and RATIO (median of the per-repetition ratios), so
# that a loaded machine's drift moves both sides of a ratio together. CP_SOURCES is one
# string of paths separated by spaces.
vs_cp() {
    local reps=$1 bytes=$2 dir=$3 sources=$4
    shift 4
    local cp=() conv=() ratios=() t0 t1 c v r src
    read -r -a src <<< "$sources"
    for r in $(seq "$reps"); do
        rm -rf "$dir/cp" "$dir/out"
        sync
        mkdir -p "$dir/cp"
        t0=$(date +%s.%N)
        cp -r "${src[@]}" "$dir/cp/"
        sync
        t1=$(date +%s.%N)
        c=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
        rm -rf "$dir/cp"
        sync
        t0=$(date +%s.%N)
        "$@" > /dev/null
        t1=$(date +%s.%N)
        v=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
        cp+=("$c") conv+=("$v") ratios+=("$(awk -v c="$c" -v v="$v" 'BEGIN { printf "%.3f", c / v }')")
        printf '  rep %s: cp -r + sync %s s (%.0f MB/s), convert %s s (%.0f MB/s), ratio %s, load %s\n' \
            "$r" "$c" "$(awk -v b="$bytes" -v t="$c" 'BEGIN { print b / t / 1e6 }')" \
            "$v" "$(awk -v b="$bytes" -v t="$v" 'BEGIN { print b / t / 1e6 }')" \
            "${ratios[-1]}" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
    done
    local med='sort -g | awk "{ a[NR] = \$1 } END { print a[int((NR + 1) / 2)] }"'
    CP_S=$(printf '%s\n' "${cp[@]}" | eval "$med")
    CONV_S=$(printf '%s\n' "${conv[@]}" | eval "$med")
    RATIO=$(printf '%s\n' "${ratios[@]}" | eval "$med")
}
