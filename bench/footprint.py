"""The Python half of bench/footprint.sh: what a Python reader process (a DataLoader worker)
holds once it has touched every shard of a local dataset.

    python bench/footprint.py DATASET [--gets N] [--cache-mib N]

Opens DATASET with ``editshard.open(DATASET, images="none")``, reads the first record of every
shard (so every footer is loaded, as in a shuffled epoch), then N random records, timing each.
Prints ``key=value`` lines: the process's anonymous memory (``RssAnon`` of /proc/self/status,
KiB) after importing editshard, after opening, after touching every shard and after the
random reads, and the random reads' p50 in microseconds.
"""

from __future__ import annotations

import argparse
import random
import time


def rss_anon_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument(
        "--cache-mib", type=int, default=None, help="footer_cache_bytes in MiB"
    )
    args = parser.parse_args()

    import editshard

    imported = rss_anon_kib()
    options = (
        {} if args.cache_mib is None else {"footer_cache_bytes": args.cache_mib << 20}
    )
    ds = editshard.open(args.dataset, images="none", **options)
    opened = rss_anon_kib()
    first = 0
    for n in ds.shard_records:
        ds[first]
        first += n
    touched = rss_anon_kib()
    rng = random.Random(42)
    times = []
    for _ in range(args.gets):
        i = rng.randrange(len(ds))
        t = time.perf_counter()
        ds[i]
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"records={len(ds)}")
    print(f"shards={len(ds.shard_records)}")
    print(f"py_rss_anon_imported_kib={imported}")
    print(f"py_rss_anon_open_kib={opened}")
    print(f"py_rss_anon_touched_kib={touched}")
    print(f"py_rss_anon_after_gets_kib={rss_anon_kib()}")
    if times:
        print(f"py_random_get_p50_us={times[len(times) // 2] * 1e6:.1f}")


if __name__ == "__main__":
    main()
