"""Read-task planning from a manifest's shard table (editshard._plan; no Ray needed)."""

from __future__ import annotations

import itertools

import pytest

from editshard._plan import plan_tasks


def covered(plans: list) -> list[int]:  # type: ignore[type-arg]
    return [i for p in plans for i in range(p.start, p.end)]


@pytest.mark.parametrize("tasks", [1, 2, 3, 4, 5, 7, 12, 36, 100])
def test_every_record_once_in_order(tasks: int) -> None:
    records = [12, 5, 0, 9, 10]
    plans = plan_tasks(records, [n * 1000 for n in records], tasks)
    assert covered(plans) == list(range(sum(records)))
    assert 1 <= len(plans) <= min(tasks, sum(records))
    assert all(p.records > 0 for p in plans)


def test_whole_shards_when_there_are_enough() -> None:
    records = [10, 10, 10, 10, 10, 10]
    plans = plan_tasks(records, [100] * 6, 3)
    assert [(p.start, p.end) for p in plans] == [(0, 20), (20, 40), (40, 60)]
    assert [p.shards for p in plans] == [(0, 1), (2, 3), (4, 5)]
    # No shard is read by two tasks.
    shards = list(itertools.chain.from_iterable(p.shards for p in plans))
    assert len(shards) == len(set(shards))


def test_groups_balanced_by_bytes() -> None:
    # One big shard and many small ones: the big one gets a task of its own.
    plans = plan_tasks([10, 10, 10, 10, 10], [1000, 100, 100, 100, 100], 2)
    assert [p.shards for p in plans] == [(0,), (1, 2, 3, 4)]
    assert [p.bytes for p in plans] == [1000, 400]


def test_ranges_inside_shards_when_tasks_outnumber_shards() -> None:
    plans = plan_tasks([100, 20], [10_000, 2_000], 6)
    assert len(plans) == 6
    assert covered(plans) == list(range(120))
    # A cut near the shard boundary lands on it: no task reads from both shards.
    assert all(len(p.shards) == 1 for p in plans)
    assert sum(p.bytes for p in plans) == pytest.approx(12_000, abs=6)


def test_empty_and_tiny() -> None:
    assert plan_tasks([], [], 4) == []
    assert plan_tasks([0, 0], [16, 16], 4) == []
    plans = plan_tasks([1], [50], 8)
    assert [(p.start, p.end, p.shards, p.bytes) for p in plans] == [(0, 1, (0,), 50)]
    with pytest.raises(ValueError):
        plan_tasks([1, 2], [3], 1)
