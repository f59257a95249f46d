"""Whatever a training script keeps of a batch (a view, a NumPy array, a DLPack capsule, the
storage alone, a copy, a tensor in a garbage cycle, ...) reads the same pixels while the
DataLoader's worker goes on reusing the memory of dropped batches: each way in a fresh
process (reuse_scenarios.py), through real DataLoader workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import reuse_scenarios
import torch
from test_pipeline_reuse import many_ds  # noqa: F401 - the module's dataset fixture

HERE = Path(__file__).parent
NEEDS_REUSE = {
    "one_worker",
    "prefetch_8",
    "persistent",
    "spawn",
    "forkserver",
    "timeout",
    "file_system",
}


def scenario(name: str, dataset: Path) -> int:
    """Runs a scenario in a fresh interpreter; how many batches reused an earlier buffer."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(HERE / "reuse_scenarios.py"), name, str(dataset)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return int(proc.stdout.strip().splitlines()[-1].split()[1])


@pytest.mark.parametrize("name", sorted(reuse_scenarios.HOLDS))
def test_what_a_script_keeps_is_never_overwritten(many_ds: Path, name: str) -> None:  # noqa: F811
    reused = scenario(name, many_ds)
    if name == "list_across_steps":
        # One row of every batch from the third on kept: only the first two were reused.
        assert 0 < reused <= reuse_scenarios.HOLD_AT
    else:
        # Other batches were reused meanwhile: the worker wrote memory again, just not this.
        assert reused > 0


@pytest.mark.parametrize("name", sorted(reuse_scenarios.LOADERS))
def test_loader_settings_never_overwrite_a_held_view(many_ds: Path, name: str) -> None:  # noqa: F811
    if name == "pin_memory" and not torch.cuda.is_available():
        pytest.skip("pin_memory needs an accelerator; without one DataLoader ignores it")
    reused = scenario(name, many_ds)
    if name in NEEDS_REUSE:
        assert reused > 0


@pytest.mark.parametrize("name", sorted(reuse_scenarios.SPECIAL))
def test_forks_and_dead_workers_never_change_a_held_batch(many_ds: Path, name: str) -> None:  # noqa: F811
    assert scenario(name, many_ds) > 0
