"""A/B check of the core's fast path: this build against another build, rounds interleaved.

Usage (from the repository root, after ``python setup.py build_ext --inplace``)::

    # 1. build the commit to compare with, and keep its package somewhere
    git worktree add /tmp/base <commit> && (cd /tmp/base && python setup.py build_ext --inplace -q)
    mkdir -p /tmp/ab && cp -r /tmp/base/src/ringq /tmp/ab/ringq
    # 2. run both, rounds interleaved
    python benchmarks/ab_core.py /tmp/ab src --rounds 15

Each build runs in its own long-lived worker process (two builds of one compiled
module cannot share a process), started once; the parent asks them in turn, A then
B in even rounds and B then A in odd ones, so that machine noise hits both alike,
and only one runs at a time. Workloads: ``pair`` (one thread, put + get, maxsize
1024) and ``batch`` (put_many of 1000 items + get_many(1000), maxsize 1024).
Reports the median and the best items/s of each, their ratios B/A, and the
median of the per-round ratios (each from two runs adjacent in time); within
0.95-1.05 is "no regression". On a busy machine run it twice with A and B
swapped, and once A against a copy of A (an A/A run shows the noise floor).
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time


def pair(Queue, n: int) -> float:
    q = Queue(1024)
    put, get = q.put, q.get
    start = time.perf_counter()
    for i in range(n):
        put(i)
        get()
    return n / (time.perf_counter() - start)


def batch(Queue, n: int) -> float:
    q = Queue(1024)
    items = list(range(1000))
    put_many, get_many = q.put_many, q.get_many
    rounds = n // 1000
    start = time.perf_counter()
    for _ in range(rounds):
        put_many(items)
        get_many(1000)
    return rounds * 1000 / (time.perf_counter() - start)


WORKLOADS = {"pair": pair, "batch": batch}


def worker(path: str, cpu: int) -> int:
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        # Both workers on one CPU: they run in turn anyway, and share whatever else runs there.
        os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, os.path.abspath(path))
    import ringq._queue_c as core

    print(core.__file__, flush=True)
    for line in sys.stdin:
        name, size = line.split()
        gc.collect()
        print(WORKLOADS[name](core.Queue, int(size)), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="directory holding build A's ringq package (e.g. the old one)")
    parser.add_argument("b", help="directory holding build B's ringq package (e.g. src)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pairs", type=int, default=300_000)
    parser.add_argument("--batch-items", type=int, default=3_000_000)
    parser.add_argument("--cpu", type=int, default=-1,
                        help="pin both workers to this CPU (Linux; -1: no pinning)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.cpu)

    procs = {}
    for label, path in (("A", args.a), ("B", args.b)):
        procs[label] = subprocess.Popen(
            [sys.executable, __file__, "-", "-", "--worker", path, "--cpu", str(args.cpu)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        print(f"{label}: {procs[label].stdout.readline().strip()}")
    sizes = {"pair": args.pairs, "batch": args.batch_items}
    results = {(w, b): [] for w in WORKLOADS for b in procs}
    try:
        for r in range(args.rounds):
            order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
            for workload in WORKLOADS:
                for label in order:
                    proc = procs[label]
                    proc.stdin.write(f"{workload} {sizes[workload]}\n")
                    proc.stdin.flush()
                    results[(workload, label)].append(float(proc.stdout.readline()))
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    for workload in WORKLOADS:
        a = statistics.median(results[(workload, "A")])
        b = statistics.median(results[(workload, "B")])
        best_a = max(results[(workload, "A")])
        best_b = max(results[(workload, "B")])
        # Each round's B/A from runs adjacent in time: slow changes in the load cancel.
        paired = statistics.median(rb / ra for ra, rb in zip(results[(workload, "A")],
                                                             results[(workload, "B")]))
        print(f"{workload:6} median: A {a / 1e6:7.3f}  B {b / 1e6:7.3f} M items/s  B/A {b / a:.3f}   "
              f"best: B/A {best_b / best_a:.3f}   median of per-round B/A: {paired:.3f}  "
              f"({args.rounds} interleaved rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
