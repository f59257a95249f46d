"""Shared fixtures: the sample release converted with the editshard CLI, and real servers
(nginx for HTTP, s3s-fs for S3) on 127.0.0.1, as the Rust tests start them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample-release"
TOOLS = Path(os.environ.get("EDITSHARD_TOOLS", Path.home() / ".cache" / "editshard-tools"))
INSTALL_HINT = "run scripts/install-test-deps.sh (or scripts/test.sh) first"


def editshard_bin() -> Path:
    """The CLI: $EDITSHARD_BIN, else built with cargo (release)."""
    env = os.environ.get("EDITSHARD_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--bin", "editshard"],
        cwd=REPO,
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    return target / "release" / "editshard"


def tool_bin(name: str) -> Path:
    """A test program of the `editshard-tools` crate (tools/src/bin): beside the CLI when it
    was built there, else built with cargo into the CLI's target directory and profile."""
    cli = editshard_bin()
    beside = cli.parent / name
    if not beside.exists():
        release = ["--release"] if cli.parent.name == "release" else []
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "editshard-tools", "--bin", name, *release],
            cwd=REPO,
            check=True,
            env={**os.environ, "CARGO_TARGET_DIR": str(cli.parent.parent)},
        )
    return beside


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(editshard_bin()), *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def cli() -> Path:
    return editshard_bin()


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory, cli: Path) -> Path:
    """The 36-record sample release as an editshard dataset of several shards."""
    out = tmp_path_factory.mktemp("sample") / "ds"
    subprocess.run(
        [
            str(cli),
            "convert",
            str(SAMPLE),
            "--out",
            str(out),
            "--openimages-csv",
            str(SAMPLE / "openimages" / "train-images-boxable-with-rotation.csv"),
            "--openimages-dir",
            str(SAMPLE / "openimages"),
            "--shard-size",
            "12000",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(out / ".editshard-work", ignore_errors=True)
    return out


@pytest.fixture(scope="session")
def big_sample(tmp_path_factory: pytest.TempPathFactory, cli: Path) -> Path:
    """The sample release with every image replaced by a larger noise image of the same
    format (about 0.5 MB each): a dataset of ~50 MB for the memory test."""
    import numpy as np
    from PIL import Image as PILImage

    release = tmp_path_factory.mktemp("big-release") / "release"
    shutil.copytree(SAMPLE, release)
    rng = np.random.default_rng(0)
    for path in sorted(release.rglob("*")):
        if path.suffix in (".png", ".jpg"):
            pixels = rng.integers(0, 256, (420, 420, 3), dtype=np.uint8)
            fmt = "PNG" if path.suffix == ".png" else "JPEG"
            PILImage.fromarray(pixels).save(path, fmt, **({"quality": 98} if fmt == "JPEG" else {}))
    out = tmp_path_factory.mktemp("big") / "ds"
    subprocess.run(
        [
            str(cli),
            "convert",
            str(release),
            "--out",
            str(out),
            "--openimages-csv",
            str(release / "openimages" / "train-images-boxable-with-rotation.csv"),
            "--openimages-dir",
            str(release / "openimages"),
            "--shard-size",
            "8000000",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(out / ".editshard-work", ignore_errors=True)
    return out


@pytest.fixture()
def sample_copy(sample: Path, tmp_path: Path) -> Path:
    """A private copy of the sample dataset, to damage."""
    dst = tmp_path / "ds"
    shutil.copytree(sample, dst)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


TLS = REPO / "tools" / "tls"  # test-only certificate for 127.0.0.1, signed by ca.pem


class Nginx:
    """nginx on 127.0.0.1 serving ``root``. ``directives`` go into its ``server`` block; with
    them the access log has one line per request: method, target, status, Range and
    Authorization (``-`` when absent), tab-separated. ``tls`` serves https (tools/tls)."""

    def __init__(self, root: Path, prefix: Path, directives: str = "", tls: bool = False) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            pytest.fail(f"nginx not found: {INSTALL_HINT}")
        self.root = root
        self.access_log = prefix / "access.log"
        self.port = free_port()
        conf = prefix / "nginx.conf"
        temp = prefix / "tmp"
        temp.mkdir()
        self.scheme = "https" if tls else "http"
        log = (
            "log_format fields '$request_method\\t$request_uri\\t$status\\t$http_range\\t"
            "$http_authorization';\n"
            f"    access_log {self.access_log} fields;"
            if directives
            else f"access_log {self.access_log};"
        )
        listen = f"127.0.0.1:{self.port}" + (" ssl" if tls else "")
        if tls:
            directives += (
                f"\n        ssl_certificate {TLS / 'localhost.pem'};"
                f"\n        ssl_certificate_key {TLS / 'localhost.key'};"
            )
        conf.write_text(
            f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{}}
http {{
    {log}
    client_body_temp_path {temp};
    proxy_temp_path {temp};
    fastcgi_temp_path {temp};
    uwsgi_temp_path {temp};
    scgi_temp_path {temp};
    server {{
        listen {listen};
        root {root};
        {directives}
    }}
}}
"""
        )
        args = [binary, "-c", str(conf), "-p", str(prefix)]
        if os.geteuid() == 0:
            args += ["-g", "user root;"]
        # No pipes: nginx's worker processes would inherit them.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_port(self.port):
            self.stop()
            error_log = prefix / "error.log"
            pytest.fail(
                f"nginx did not start: {error_log.read_text() if error_log.exists() else ''}"
            )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def fields(self) -> list[list[str]]:
        """The log lines of a server started with ``directives``, split into their fields."""
        return [line.split("\t") for line in self.requests()]

    def requests(self) -> list[str]:
        time.sleep(0.05)  # nginx writes the log line after the response
        if not self.access_log.exists():
            return []
        return [line for line in self.access_log.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        # SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture()
def nginx(sample: Path, tmp_path: Path) -> Iterator[Nginx]:
    root = tmp_path / "www"
    shutil.copytree(sample, root / "ds")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    server = Nginx(root, prefix)
    yield server
    server.stop()


HUB_REPO = "editshard-test/pico"
HUB_TOKEN = "hf_editshardTestToken"


class HubCdn:
    """The Hugging Face Hub in front of its CDN (see testing.md): the hub answers
    ``/datasets/{HUB_REPO}/resolve/main/PATH`` only with ``Authorization: Bearer {HUB_TOKEN}``
    (else 401), with a 302 to the CDN's ``/blobs/PATH?X-Amz-Signature=x``; the CDN serves the
    dataset there and refuses (400) any request with an Authorization header."""

    def __init__(self, dataset: Path, prefix: Path, https_hub: bool = False) -> None:
        (prefix / "cdn").mkdir()
        (prefix / "hub").mkdir()
        self.cdn = Nginx(
            dataset,
            prefix / "cdn",
            f"location /blobs/ {{ if ($http_authorization) {{ return 400; }} alias {dataset}/; }}",
        )
        self.hub = Nginx(
            dataset,
            prefix / "hub",
            f"location ~ ^/datasets/{HUB_REPO}/resolve/main/(.*)$ {{ "
            f'if ($http_authorization != "Bearer {HUB_TOKEN}") {{ return 401; }} '
            f"return 302 {self.cdn.url}/blobs/$1?X-Amz-Signature=x; }} "
            "location / { return 404; }",
            tls=https_hub,
        )

    location = f"hf://datasets/{HUB_REPO}"

    def stop(self) -> None:
        self.hub.stop()
        self.cdn.stop()


@pytest.fixture()
def hub_cdn(sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubCdn]:
    """The sample dataset behind a hub and its CDN; HF_ENDPOINT names the hub, HF_TOKEN is
    unset and HF_HOME empty (no token file of the machine's user is read)."""
    servers = HubCdn(sample, tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", servers.hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
    yield servers
    servers.stop()


class S3:
    access_key = "AKTEST"
    secret_key = "SKTEST"

    def __init__(self, data: Path) -> None:
        binary = TOOLS / "bin" / "s3s-fs"
        if not binary.exists():
            pytest.fail(f"s3s-fs not found at {binary}: {INSTALL_HINT}")
        self.data = data
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                str(binary),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--access-key",
                self.access_key,
                "--secret-key",
                self.secret_key,
                str(data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_port(self.port):
            self.proc.kill()
            pytest.fail("s3s-fs did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture()
def s3(sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    """s3s-fs serving bucket `bucket` with the sample dataset at prefix `ds` (s3s-fs stores
    objects as files: a directory under its root is a bucket). Credentials in AWS_* vars."""
    data = tmp_path / "s3"
    shutil.copytree(sample, data / "bucket" / "ds")
    server = S3(data)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    yield server
    server.stop()
