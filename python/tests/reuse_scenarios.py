"""Ways a training script keeps (part of) a pipeline batch while the DataLoader goes on; run one
per fresh process by test_pipeline_reuse_held.py: ``python reuse_scenarios.py NAME DATASET``.

Each scenario receives batches from a loader whose worker reuses the memory of dropped
batches, keeps something of one batch (``hold``), drives the remaining batches through
(dropping them) and then checks that what it kept still reads the pixels copied at receipt.
It prints ``reused N`` (how many later batches arrived in a buffer seen before, so that a run
in which nothing was reused, and so nothing could be overwritten, is told apart) and exits 0,
or raises when the held pixels changed."""

from __future__ import annotations

import copy
import gc
import io
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.utils.dlpack
from torch.utils.data import DataLoader

from editshard.torch import IterableEditDataset, Pipeline

HOLD_AT = 2


def loader(path: str, **kw: Any) -> DataLoader[Any]:
    pipe = Pipeline(48, crop="random", flip=0.5, dtype="float32", threads=1)
    ds = IterableEditDataset(path, batch_size=2, seed=5, pipeline=pipe)
    kw.setdefault("num_workers", 1)
    return DataLoader(ds, batch_size=None, **kw)


def inode(t: torch.Tensor) -> Any:
    """The shared-memory file behind a tensor received from a worker."""
    storage: Any = t.untyped_storage()
    if torch.multiprocessing.get_sharing_strategy() == "file_system":
        return storage._share_filename_cpu_()[1]  # its name (sharing by fd would copy it)
    fd, _ = storage._share_fd_cpu_()
    return os.fstat(fd).st_ino


# A scenario's hold: (batch) -> (what to keep, how to read the kept pixels as a tensor).
Hold = Callable[[dict[str, Any]], tuple[Any, Callable[[Any], torch.Tensor]]]


def _tensor(t: torch.Tensor) -> torch.Tensor:
    return t


def hold_view(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return b["source"][1:, :, 3:], _tensor


def hold_as_strided(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    t = b["source"]
    return t.as_strided((4, 5), (7, 2), 11), _tensor


def hold_one_tensor(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return b["output"], _tensor


def hold_numpy(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return b["source"].numpy(), lambda a: torch.from_numpy(np.array(a))


def hold_memoryview(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return memoryview(b["source"].numpy()), lambda m: torch.from_numpy(np.array(m))


def hold_np_from_dlpack(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return np.from_dlpack(b["source"]), lambda a: torch.from_numpy(np.array(a))


def hold_dlpack_capsule(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    # The capsule alone (no Python tensor) while the loader goes on: consumed at the end.
    kept = {"capsule": torch.utils.dlpack.to_dlpack(b["source"]), "copy": b["source"].clone()}

    def read(k: dict[str, Any]) -> torch.Tensor:
        if "final" not in k:  # at receipt and each step the copy; the capsule once, at the end
            return k["copy"]  # type: ignore[no-any-return]
        return torch.from_dlpack(k["capsule"])

    return kept, read


def hold_torch_from_dlpack(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return torch.from_dlpack(b["source"][:, 1]), _tensor


def _from_storage(s: Any) -> torch.Tensor:
    return torch.empty(0, dtype=torch.float32).set_(s)


def hold_storage(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return b["source"].untyped_storage(), _from_storage


def hold_typed_storage(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return b["source"].storage(), lambda s: torch.tensor(s.tolist())


def hold_share_memory(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return b["source"].share_memory_(), _tensor


def hold_copy(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return copy.copy(b), lambda c: c["source"]


def hold_deepcopy(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return (copy.deepcopy(b), b["source"]), lambda k: torch.cat([k[0]["source"], k[1]])


def hold_torch_save(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    buf = io.BytesIO()
    torch.save(b, buf)
    # Loadable with torch.load's default weights_only=True.
    return (buf, b["source"]), lambda k: torch.cat(
        [torch.load(io.BytesIO(k[0].getvalue()))["source"], k[1]]
    )


def hold_pickle(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    data = pickle.dumps(b)
    return (data, b["source"]), lambda k: torch.cat([pickle.loads(k[0])["source"], k[1]])


class _Resurrect:
    kept: ClassVar[list[Any]] = []

    def __del__(self) -> None:
        _Resurrect.kept.append(self.t)


def hold_gc_cycle(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    # The batch, its tensor and its storage in a reference cycle, freed by gc later, whose
    # __del__ keeps the tensor: it must stay intact.
    r = _Resurrect()
    r.t = b["source"]  # type: ignore[attr-defined]
    r.s = b["source"].untyped_storage()  # type: ignore[attr-defined]
    r.b = b  # type: ignore[attr-defined]
    r.me = r  # type: ignore[attr-defined]
    return None, lambda _: _Resurrect.kept[0]


def hold_traceback_cycle(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    # A storage kept by a frame in a cycle with its exception (collected late), while the
    # tensor itself lives on.
    def frame(t: torch.Tensor) -> None:
        s = t.untyped_storage()  # noqa: F841 - kept by the frame
        try:
            raise ValueError
        except ValueError as e:
            err = e  # noqa: F841 - the cycle frame -> err -> traceback -> frame

    t = b["source"]
    frame(t)
    return t, _tensor


def hold_list_across_steps(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    return [b["source"][0]], lambda k: torch.stack(k)


HOLDS: dict[str, Hold] = {
    name[len("hold_") :]: f for name, f in globals().items() if name.startswith("hold_")
}


def run(path: str, hold: Hold, loader_kw: dict[str, Any], epochs: int = 1) -> int:
    dl = loader(path, **loader_kw)
    kept: Any = None
    read: Callable[[Any], torch.Tensor] = _tensor
    expected: torch.Tensor | None = None
    seen: set[Any] = set()
    later: set[Any] = set()
    held_ino: Any = None
    reused = 0
    for epoch in range(epochs):
        for k, b in enumerate(dl):
            ino = inode(b["source"])
            if epoch == 0 and k == HOLD_AT:
                held_ino = ino
                kept, read = hold(b)
                del b
                gc.collect()
                expected = read(kept).clone()
            else:
                reused += ino in seen
                if expected is not None:
                    later.add(ino)
                if isinstance(kept, list) and epoch == 0 and k > HOLD_AT:
                    kept.append(b["source"][0])  # list_across_steps keeps one of each
                    expected = torch.cat([expected, b["source"][0][None].clone()])  # type: ignore[list-item]
                del b
            seen.add(ino)
            if expected is not None:
                assert torch.equal(read(kept), expected), f"held pixels changed at {epoch}/{k}"
    gc.collect()
    assert expected is not None
    if isinstance(kept, dict) and "capsule" in kept:
        kept["final"] = True  # the DLPack capsule: consumed now
    assert torch.equal(read(kept), expected), "held pixels changed"
    assert held_ino not in later, "a held batch's memory was handed out again"
    return reused


LOADERS: dict[str, dict[str, Any]] = {
    "one_worker": {},
    "two_workers": {"num_workers": 2},
    "prefetch_8": {"prefetch_factor": 8},
    "pin_memory": {"pin_memory": True},
    "persistent": {"persistent_workers": True},
    "spawn": {"multiprocessing_context": "spawn"},
    "forkserver": {"multiprocessing_context": "forkserver"},
    "timeout": {"timeout": 60},
    "file_system": {},
}


def main() -> None:
    name, path = sys.argv[1], sys.argv[2]
    if name == "file_system":  # the strategy often chosen against "too many open files"
        torch.multiprocessing.set_sharing_strategy("file_system")
    if name in SPECIAL:
        reused = SPECIAL[name](path)
    elif name in HOLDS:
        reused = run(path, HOLDS[name], {})
    else:
        kw = LOADERS[name]
        reused = run(path, hold_view, kw, epochs=3 if name == "persistent" else 1)
    print(f"reused {reused}")


def fork_child_reads(path: str) -> int:
    """A child forked while the parent holds a batch reads it after the parent dropped it and
    the worker went on (the DataLoader's own workers never do; a user's process may)."""
    it = iter(loader(path))
    b = next(it)
    view = b["source"][1:]
    expected = view.clone()
    del b
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: waits for the parent, then reads
        os.close(w)
        os.read(r, 1)
        os._exit(0 if torch.equal(view, expected) else 3)
    os.close(r)
    del view
    gc.collect()
    seen: set[Any] = set()
    reused = 0
    for b in it:
        ino = inode(b["source"])
        reused += ino in seen
        seen.add(ino)
        del b
    os.write(w, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child saw the pixels change"
    return reused


def second_loader_forks(path: str) -> int:
    """A second DataLoader's workers forked while a batch is held (a validation loop)."""
    state: dict[str, int] = {"k": 0}

    def hold(b: dict[str, Any]) -> tuple[Any, Callable[[Any], torch.Tensor]]:
        kept = b["source"][1:]
        assert list(DataLoader(range(4), num_workers=1)) == [torch.tensor(i) for i in range(4)]
        state["k"] += 1
        return kept, _tensor

    return run(path, hold, {})


def worker_killed(path: str) -> int:
    """A worker killed while the main process holds one of its batches; a new loader's worker
    (a new pool) then goes through every batch."""
    it = iter(loader(path, timeout=30))
    for _ in range(HOLD_AT):
        next(it)
    view = next(it)["source"][1:]
    expected = view.clone()
    # Without torch's SIGCHLD handler, which raises at any point: next() reports the death.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    worker = it._workers[0]  # type: ignore[attr-defined]
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    try:
        while True:
            next(it)
    except (RuntimeError, StopIteration):
        pass
    del it
    gc.collect()
    seen: set[Any] = set()
    reused = 0
    for b in loader(path):
        ino = inode(b["source"])
        reused += ino in seen
        seen.add(ino)
        del b
    assert torch.equal(view, expected), "held pixels changed"
    return reused


SPECIAL: dict[str, Callable[[str], int]] = {
    "worker_killed": worker_killed,
    "fork_child_reads": fork_child_reads,
    "second_loader_forks": second_loader_forks,
}


if __name__ == "__main__":
    main()
