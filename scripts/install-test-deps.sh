#!/usr/bin/env bash
# Installs the external programs editshard's tests need, skipping whatever is
# already present (safe to run repeatedly):
#   - nginx       (Debian nginx-light)   static HTTP server with Range support
#   - s3s-fs      (crates.io, pinned)    S3-compatible server that checks SigV4
#   - cargo-fuzz  (crates.io)            for the fuzz smoke runs
#   - chromium, chromium-driver (Debian) the headless browser `editshard view`'s tests drive
#                                        over WebDriver (never a downloaded browser build)
# Tools built with cargo go to $EDITSHARD_TOOLS (default ~/.cache/editshard-tools),
# except cargo-fuzz, which goes to cargo's usual bin directory.
set -euo pipefail

TOOLS="${EDITSHARD_TOOLS:-${HOME}/.cache/editshard-tools}"
S3S_FS_VERSION="0.14.1" # newer s3s-fs releases need a newer rustc than stable 1.95

log() { printf '[install-test-deps] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

have_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

if have_nginx; then
    log "nginx: present"
else
    log "nginx: installing nginx-light with apt-get"
    start=$SECONDS
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light
    log "nginx: installed in $((SECONDS - start)) s"
fi

# `editshard view`'s browser test (crates/view/tests/view/browser.rs) drives Debian's
# chromium through Debian's chromedriver (the same version, from the same source package).
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    log "chromium + chromedriver: present"
else
    log "chromium + chromedriver: installing with apt-get"
    start=$SECONDS
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
    log "chromium + chromedriver: installed in $((SECONDS - start)) s"
fi

if [ -x "$TOOLS/bin/s3s-fs" ]; then
    log "s3s-fs: present at $TOOLS/bin/s3s-fs"
else
    log "s3s-fs: building s3s-fs@$S3S_FS_VERSION into $TOOLS (about 2.5 min on 2 cores)"
    start=$SECONDS
    mkdir -p "$TOOLS"
    cargo install "s3s-fs@$S3S_FS_VERSION" --locked --features binary --root "$TOOLS"
    log "s3s-fs: installed in $((SECONDS - start)) s"
fi

if cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz: present"
else
    log "cargo-fuzz: installing (about 1 min)"
    start=$SECONDS
    cargo install cargo-fuzz --locked
    log "cargo-fuzz: installed in $((SECONDS - start)) s"
fi

# Python package (python/): a virtual environment at $TOOLS/pyenv with PyTorch (the CPU-only
# wheel when its index is reachable, else PyPI's, which brings CUDA libraries), torchvision,
# torchdata,
# NumPy, Pillow, pytest, mypy, ruff, Hugging Face datasets (for its example, and for the
# CLI test that loads `export --format hf-parquet` with it: export_hf.rs), zstandard
# (spec/walk_shard.py decompresses metadata with it) and Ray Data (`ray[data]`, for
# editshard.ray's tests: python/tests/test_ray.py); then the
# package itself, built from ./python by pip (maturin; cargo's incremental build keeps
# re-installs quick).
PYENV="$TOOLS/pyenv"
if [ ! -x "$PYENV/bin/python" ]; then
    log "python: creating $PYENV"
    "${PYTHON:-python3}" -m venv "$PYENV"
    "$PYENV/bin/pip" install -q --upgrade pip
fi
if "$PYENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    log "python: torch present"
else
    start=$SECONDS
    if "$PYENV/bin/python" -c "import urllib.request; urllib.request.urlopen('https://download.pytorch.org/whl/cpu/', timeout=10)" >/dev/null 2>&1; then
        log "python: installing torch (CPU-only wheel)"
        "$PYENV/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu
    else
        log "python: the PyTorch CPU index is unreachable; installing torch from PyPI (~3 GB)"
        "$PYENV/bin/pip" install -q torch
    fi
    log "python: torch installed in $((SECONDS - start)) s"
fi
# torchvision: python/tests/test_pipeline.py checks editshard.torch.Pipeline's resampling
# against its v2 transforms. Its wheels pin one torch version: keep the installed one, from
# the index it came from.
if ! "$PYENV/bin/python" -c "import torchvision" >/dev/null 2>&1; then
    torch_version="$("$PYENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")"
    if "$PYENV/bin/python" -c "import torch, sys; sys.exit(0 if '+cpu' in torch.__version__ else 1)"; then
        "$PYENV/bin/pip" install -q torchvision "torch==$torch_version" --index-url https://download.pytorch.org/whl/cpu
    else
        "$PYENV/bin/pip" install -q torchvision "torch==$torch_version"
    fi
    log "python: torchvision installed"
fi
# webdataset: bench/python_pipeline.py can run in this venv too (its peers without MDS/LitData).
"$PYENV/bin/pip" install -q numpy pillow pytest mypy ruff torchdata datasets zstandard webdataset "ray[data]"
log "python: building and installing ./python"
start=$SECONDS
"$PYENV/bin/pip" install -q ./python
log "python: editshard package installed in $((SECONDS - start)) s"
