"""Compare the fast path of two ringq source trees side by side, in one run.

    python benchmarks/compare_builds.py OLD_SRC NEW_SRC [--rounds 9] [--impl cython|python]

OLD_SRC and NEW_SRC are directories that contain a ``ringq`` package (built in
place). Each round runs one child interpreter per tree, alternating which goes
first, and times two workloads: ``pair`` (put(i) + get() in one thread) and
``batch`` (put_many of a 1000-item list + get_many(1000)). It prints the median
ns per item of each tree and the ratio new/old. Used to check that a change to
the core does not slow its fast path; the machine's load moves both trees alike.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
impl = sys.argv[1]
if impl == "cython":
    from ringq._queue_c import Queue
else:
    from ringq._queue_py import Queue
N_PAIR = int(sys.argv[2])
N_BATCH = int(sys.argv[3])

def pair():
    q = Queue(1024)
    put, get = q.put, q.get
    t = time.perf_counter()
    for i in range(N_PAIR):
        put(i)
        get()
    return (time.perf_counter() - t) / N_PAIR

def batch():
    q = Queue(1024)
    items = list(range(1000))
    t = time.perf_counter()
    for _ in range(N_BATCH):
        q.put_many(items)
        q.get_many(1000)
    return (time.perf_counter() - t) / (N_BATCH * 1000)

pair(); batch()  # warm up
print(json.dumps({"pair": min(pair() for _ in range(3)), "batch": min(batch() for _ in range(3))}))
"""


def run(src, impl, n_pair, n_batch):
    env = dict(os.environ, PYTHONPATH=src)
    env.pop("RINGQ_NO_EXTENSIONS", None)
    out = subprocess.run([sys.executable, "-c", CHILD, impl, str(n_pair), str(n_batch)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--impl", choices=["cython", "python"], default="cython")
    a = ap.parse_args()
    n_pair, n_batch = (300_000, 300) if a.impl == "cython" else (100_000, 100)
    figures = {"old": [], "new": []}
    for r in range(a.rounds):
        order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
        for which in order:
            figures[which].append(run(getattr(a, which), a.impl, n_pair, n_batch))
    for workload in ("pair", "batch"):
        old = statistics.median(f[workload] for f in figures["old"]) * 1e9
        new = statistics.median(f[workload] for f in figures["new"]) * 1e9
        print(f"{a.impl:7s} {workload:6s} old {old:8.1f} ns/item  new {new:8.1f} ns/item  "
              f"new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
