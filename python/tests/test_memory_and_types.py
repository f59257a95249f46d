"""RSS stays bounded while reading the dataset many times over; the public surface
type-checks with mypy."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
from pathlib import Path

from editshard.torch import IterableEditDataset

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "editshard"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_rss_bounded_over_many_epochs(big_sample: Path) -> None:
    sample = big_sample
    ds = IterableEditDataset(sample, batch_size=4, seed=1, prefetch_bytes=16 << 20)
    total_bytes = 0

    def epoch(e: int) -> None:
        nonlocal total_bytes
        ds.set_epoch(e)
        for rec in ds:
            for img in rec.images():
                total_bytes += img.len
                assert img.data is not None and len(img.data) == img.len

    for e in range(3):  # warm up: runtime, allocator pools
        epoch(e)
    gc.collect()
    start = rss_mib()
    samples = []
    for e in range(3, 18):
        epoch(e)
        gc.collect()
        samples.append(rss_mib())
    end = max(samples)
    size = sum(p.stat().st_size for p in sample.rglob("*") if p.is_file()) / 2**20
    print(
        f"\nRSS {start:.1f} MiB after 3 epochs, at most {end:.1f} MiB over the next 15, after "
        f"reading {total_bytes / 2**20:.0f} MiB of images in all (18 epochs of a {size:.1f} MiB "
        f"dataset); last epoch {samples[-1]:.1f} MiB"
    )
    # Bounded: no growth with the bytes read (glibc's per-thread arenas make RSS wander by
    # some tens of MiB; a leak of the images would add ~40 MiB per epoch).
    assert end - start < 80


def test_mypy_on_public_surface() -> None:
    mypy = shutil.which("mypy") or str(Path(sys.executable).parent / "mypy")
    result = subprocess.run(
        [mypy, "--config-file", str(HERE / "mypy.ini"), str(PACKAGE), str(HERE / "typed_usage.py")],
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
