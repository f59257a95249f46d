"""Reading a dataset hosted on the Hugging Face Hub (``hf://``), whose ``resolve/`` URLs
redirect to a CDN: two real nginx servers on 127.0.0.1 (conftest.HubCdn)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HUB_TOKEN, TLS, HubCdn

import editshard


def test_hub_dataset_is_read_through_the_cdn(
    hub_cdn: HubCdn, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    ds = editshard.open(hub_cdn.location)
    local = editshard.open(sample)
    assert len(ds) == len(local)
    assert [r.id for r in ds] == [r.id for r in local]
    for i in (0, 7, len(local) - 1):
        assert ds[i].to_dict() == local[i].to_dict()
        assert bytes(ds[i].source.data) == bytes(local[i].source.data)  # type: ignore[arg-type]

    hub, cdn = hub_cdn.hub.fields(), hub_cdn.cdn.fields()
    assert hub and cdn
    # The token went to the hub, every time, and never to the CDN.
    assert all(f[2] == "302" and f[4] == f"Bearer {HUB_TOKEN}" for f in hub), hub
    assert all(f[4] == "-" and f[2] in ("200", "206") for f in cdn), cdn
    assert sum(1 for f in cdn if f[3] != "-") >= 3, "records come as ranged reads"
    # Each object's redirect is remembered: far fewer requests at the hub than at the CDN.
    assert len(hub) < len(cdn)


def test_hf_token_option_and_missing_token(hub_cdn: HubCdn) -> None:
    with pytest.raises(editshard.PermissionDeniedError) as err:
        editshard.open(hub_cdn.location)
    assert err.value.http_status == 401
    assert err.value.hint is not None and "HF_TOKEN" in err.value.hint
    assert hub_cdn.cdn.requests() == []
    ds = editshard.open(hub_cdn.location, hf_token=HUB_TOKEN, images="none")
    assert len(list(ds)) == len(ds)
    assert all(f[4] == "-" for f in hub_cdn.cdn.fields())


def test_https_to_plain_http_is_refused(sample: Path, tmp_path: Path) -> None:
    """The hub over https redirects to the CDN over plain http. The test CA is trusted
    through SSL_CERT_FILE, which is read from the environment when a client is made: the
    reader runs in a child process with it set."""
    servers = HubCdn(sample, tmp_path, https_hub=True)
    try:
        env = {
            **os.environ,
            "SSL_CERT_FILE": str(TLS / "ca.pem"),
            "HF_ENDPOINT": servers.hub.url,
            "HF_TOKEN": HUB_TOKEN,
            "HF_HOME": str(tmp_path / "hf-home"),
        }
        code = (
            "import sys, editshard\n"
            "try:\n"
            f"    editshard.open({servers.location!r}, retries=0)\n"
            "except editshard.StorageError as e:\n"
            "    print(e); print(e.hint); sys.exit(0)\n"
            "sys.exit('opened')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        hub_url = f"{servers.hub.url}/datasets/editshard-test/pico/resolve/main/manifest.json"
        assert f"refused the redirect from {hub_url} to {servers.cdn.url}/blobs/" in out.stdout
        assert "from https to plain http" in out.stdout
        # The hub was reached over TLS; the CDN never.
        assert [f[2] for f in servers.hub.fields()] == ["302"]
        assert servers.cdn.requests() == []
    finally:
        servers.stop()
