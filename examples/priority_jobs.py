"""Seed 003's priority queue: urgent work first, FIFO within a priority.

The JavaScript original keeps three arrays and makes the consumer re-check them in
a recursive retry loop. ``ringq.PriorityQueue(levels=3)`` is one bounded queue
with three FIFO levels: ``get()`` returns the oldest item of the most urgent
non-empty level, items are never compared with each other, and ``shutdown()``
lets the consumer drain every level (in priority order) before its loop ends.

Run: python examples/priority_jobs.py
"""
from __future__ import annotations

import threading
from typing import Dict, List

import ringq

PRIORITY: Dict[str, int] = {"high": 0, "medium": 1, "low": 2}


def main(jobs_per_level: int = 5) -> List[str]:
    q: ringq.PriorityQueue[str] = ringq.PriorityQueue(levels=3, maxsize=100)
    # Enqueue a mix, least urgent first, before the consumer runs.
    for i in range(jobs_per_level):
        for level in ("low", "medium", "high"):
            q.put(f"{level}-{i}", PRIORITY[level])
    q.shutdown()  # no more jobs: the consumer drains what is queued, then stops

    processed: List[str] = []

    def consumer() -> None:
        for job in q:  # most urgent first; FIFO within a level
            processed.append(job)

    worker = threading.Thread(target=consumer)
    worker.start()
    worker.join()
    for job in processed:
        print("Processing:", job)
    return processed


if __name__ == "__main__":
    main()
