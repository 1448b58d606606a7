"""A/B check of the single-thread fast path: two builds of ringq, measured side by side.

    python benchmarks/fastpath_ab.py OLD_SRC [NEW_SRC] [--rounds 21]

OLD_SRC (and NEW_SRC, by default this checkout's ``src``) hold an importable
``ringq`` with its compiled core built in place (``python setup.py build_ext
--inplace``). The old package is copied under another name so that both load in
one interpreter; rounds then alternate old and new, and the report gives the
median over rounds of each figure and of the per-round ratio new/old:

* ``pair``  ns per ``q.put(i); q.get()`` (maxsize 1024);
* ``batch`` ns per item of ``q.put_many(list_of_1000); q.get_many(1000)``.
"""
import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time


def pair(q, n=50000):
    put, get = q.put, q.get
    t = time.perf_counter()
    for i in range(n):
        put(i)
        get()
    return (time.perf_counter() - t) / n * 1e9


ITEMS = list(range(1000))


def batch(q, n=100):
    put_many, get_many = q.put_many, q.get_many
    t = time.perf_counter()
    for _ in range(n):
        put_many(ITEMS)
        get_many(1000)
    return (time.perf_counter() - t) / (n * 1000) * 1e9


def load(src, name):
    tmp = tempfile.mkdtemp(prefix="ringq-ab-")
    shutil.copytree(os.path.join(src, "ringq"), os.path.join(tmp, name),
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "bench"))
    sys.path.insert(0, tmp)
    mod = importlib.import_module(f"{name}._queue_c")
    return mod.Queue


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=here)
    ap.add_argument("--rounds", type=int, default=21)
    a = ap.parse_args()
    kinds = {"old": load(a.old, "ringq_ab_old"), "new": load(a.new, "ringq_ab_new")}
    figures = {(k, m): [] for k in kinds for m in ("pair", "batch")}
    ratios = {"pair": [], "batch": []}
    for k, cls in kinds.items():  # warm up
        pair(cls(1024), 10000)
        batch(cls(1024), 20)
    for r in range(a.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        got = {}
        for k in order:
            q = kinds[k](1024)
            got[k, "pair"] = pair(q)
            got[k, "batch"] = batch(q)
        for key, v in got.items():
            figures[key].append(v)
        for m in ratios:
            ratios[m].append(got["new", m] / got["old", m])
    for m in ("pair", "batch"):
        old = statistics.median(figures["old", m])
        new = statistics.median(figures["new", m])
        print(f"{m:6s} old {old:7.1f} ns  new {new:7.1f} ns  median ratio new/old {statistics.median(ratios[m]):.3f}")


if __name__ == "__main__":
    main()
