"""Seed 003's "Priority-Based Processing", with ringq.PriorityQueue.

The seed keeps three arrays (high, medium, low), defaults to "medium", rejects an
unknown priority, and serves the highest non-empty one first. Here that is one
bounded ``ringq.PriorityQueue(levels=3)``: level 0 is high, 1 medium (the default
level), 2 low. A burst of background work is queued, then urgent and normal jobs
arrive while workers are busy; the workers always take the most urgent job
waiting, and jobs of one priority run in the order they came (FIFO).

Run it::

    python examples/priority_jobs.py            # prints what ran, in order, and checks it
    python examples/priority_jobs.py --workers 4

It exits with status 1 if a job was lost, run twice, or served out of priority order.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from typing import List

import ringq

LEVELS = {"high": 0, "medium": 1, "low": 2}


@dataclass
class Job:
    name: str
    priority: str = "medium"
    seq: int = 0  # enqueue order, set by JobQueue


class JobQueue:
    """The seed's PriorityQueue API (enqueue with a priority name, dequeue, size) on ringq."""

    def __init__(self, maxsize: int = 100) -> None:
        self._q: ringq.PriorityQueue[Job] = ringq.PriorityQueue(levels=len(LEVELS), maxsize=maxsize)
        self._seq = 0
        self._seq_lock = threading.Lock()

    def enqueue(self, job: Job, priority: str = "medium") -> None:
        if priority not in LEVELS:
            raise ValueError(f"Invalid priority: {priority}")
        with self._seq_lock:
            self._seq += 1
            job.seq = self._seq
        job.priority = priority
        self._q.put(job, LEVELS[priority])  # waits while the queue is full: backpressure

    def dequeue(self, timeout: float | None = None) -> Job:
        """The oldest job of the highest non-empty priority; ShutDown once closed and drained."""
        return self._q.get(timeout=timeout)

    def close(self) -> None:
        self._q.shutdown()  # workers finish what is queued, then stop

    @property
    def size(self) -> int:
        return self._q.qsize()


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    jobs = JobQueue(maxsize=100)
    ran: List[Job] = []
    take_lock = threading.Lock()
    go = threading.Event()

    def worker() -> None:
        go.wait()
        while True:
            # Taking a job and noting it happen together, so `ran` is the exact order
            # in which the queue handed the jobs out.
            with take_lock:
                try:
                    job = jobs.dequeue()
                except ringq.ShutDown:
                    return  # closed and drained
                ran.append(job)
            time.sleep(0.002)  # "process" it, in parallel with the other workers

    # A burst of background work, queued before the workers start.
    for i in range(20):
        jobs.enqueue(Job(f"reindex-{i}"), "low")
    for i in range(10):
        jobs.enqueue(Job(f"report-{i}"))  # medium, the default
    try:
        jobs.enqueue(Job("typo"), "urgent")
    except ValueError as exc:
        print(f"rejected: {exc}")
    jobs.enqueue(Job("page-oncall"), "high")

    workers = [threading.Thread(target=worker) for _ in range(args.workers)]
    for t in workers:
        t.start()
    go.set()
    # Urgent work keeps arriving while the workers are busy: it overtakes the rest.
    for i in range(5):
        jobs.enqueue(Job(f"alert-{i}"), "high")
        time.sleep(0.002)
    jobs.close()
    for t in workers:
        t.join()

    print(f"{len(ran)} jobs ran with {args.workers} workers (ringq {ringq.IMPLEMENTATION}):")
    print("  " + ", ".join(f"{job.name}({job.priority[0]})" for job in ran))
    return 0 if check(ran) else 1


def check(ran: List[Job]) -> bool:
    """Every job ran once, FIFO within a priority, and the waiting high and medium jobs went first."""
    names = [job.name for job in ran]
    expected = [f"reindex-{i}" for i in range(20)] + [f"report-{i}" for i in range(10)]
    expected += ["page-oncall"] + [f"alert-{i}" for i in range(5)]
    problems = []
    if sorted(names) != sorted(expected):
        problems.append("jobs were lost or run twice")
    for priority in LEVELS:
        seqs = [job.seq for job in ran if job.priority == priority]
        if seqs != sorted(seqs):
            problems.append(f"{priority} jobs were not taken in arrival order: {seqs}")
    if names and names[0] != "page-oncall":
        problems.append(f"the first job taken was {names[0]}, not the waiting high one")
    if names and max(names.index(f"report-{i}") for i in range(10)) > min(
            names.index(f"reindex-{i}") for i in range(20)):
        problems.append("a low job was taken while medium jobs were waiting")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("ok: every job ran once, by priority, FIFO within a priority")
    return not problems


if __name__ == "__main__":
    sys.exit(main())
