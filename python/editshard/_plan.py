"""Splitting a dataset into read tasks from its manifest alone.

With at least as many shards as tasks, each task reads whole consecutive shards (each shard's
footer is then fetched by one task only), the groups balanced by shard bytes. With fewer
shards than tasks, the records are cut into ranges of nearly equal counts, a range never
crossing a shard boundary it does not have to.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskPlan:
    """One read task: the global record indices ``[start, end)`` and what they cover."""

    start: int
    end: int
    shards: tuple[int, ...]  # indices of the shards the range touches
    bytes: int  # the shard bytes of those records (a part of a shard: in proportion)

    @property
    def records(self) -> int:
        return self.end - self.start


def plan_tasks(
    shard_records: Sequence[int], shard_bytes: Sequence[int], tasks: int
) -> list[TaskPlan]:
    """At most ``tasks`` (>= 1) task plans covering every record once, in order."""
    if len(shard_records) != len(shard_bytes):
        raise ValueError("shard_records and shard_bytes differ in length")
    total = sum(shard_records)
    if total == 0:
        return []
    tasks = max(1, min(int(tasks), total))
    starts = [0]
    for n in shard_records:
        starts.append(starts[-1] + n)
    nonempty = [s for s, n in enumerate(shard_records) if n > 0]
    if tasks <= len(nonempty):
        cuts = _shard_cuts(nonempty, shard_bytes, tasks)
        bounds = [(starts[nonempty[a]], starts[nonempty[b - 1] + 1]) for a, b in cuts]
    else:
        bounds = _record_cuts(starts, total, tasks)
    return [_task(lo, hi, starts, shard_bytes) for lo, hi in bounds]


def _shard_cuts(shards: list[int], shard_bytes: Sequence[int], tasks: int) -> list[tuple[int, int]]:
    """Groups of consecutive shards (positions in ``shards``), balanced by bytes; every
    group non-empty."""
    weights = [max(1, int(shard_bytes[s])) for s in shards]
    total = sum(weights)
    groups: list[tuple[int, int]] = []
    start = 0
    acc = 0
    for i, w in enumerate(weights):
        acc += w
        remaining_shards = len(weights) - (i + 1)
        remaining_groups = tasks - len(groups) - 1
        target = total * (len(groups) + 1) / tasks
        if remaining_groups > 0 and (acc >= target or remaining_shards == remaining_groups):
            groups.append((start, i + 1))
            start = i + 1
    groups.append((start, len(weights)))
    return groups


def _record_cuts(starts: list[int], total: int, tasks: int) -> list[tuple[int, int]]:
    """``tasks`` ranges of nearly equal record counts; a cut lands on a shard boundary when
    one lies within a quarter of a range of it."""
    size = total / tasks
    boundaries = starts[1:-1]
    cuts = [0]
    for k in range(1, tasks):
        cut = round(k * size)
        near = min(boundaries, key=lambda b: abs(b - cut), default=None)
        if near is not None and abs(near - cut) <= size / 4:
            cut = near
        cut = max(cut, cuts[-1] + 1)
        cuts.append(min(cut, total - (tasks - k)))
    cuts.append(total)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _task(lo: int, hi: int, starts: list[int], shard_bytes: Sequence[int]) -> TaskPlan:
    shards = []
    size = 0.0
    for s in range(len(starts) - 1):
        a, b = max(lo, starts[s]), min(hi, starts[s + 1])
        if a < b:
            shards.append(s)
            size += shard_bytes[s] * (b - a) / (starts[s + 1] - starts[s])
    return TaskPlan(lo, hi, tuple(shards), int(size))
