"""Seed 000's worker pool: submit waits while the pool is full; each caller gets its
result, or its error, back.

``ringq.BoundedExecutor(4, 100)`` is the Go ``WorkerPool`` of 4 workers over a task
channel of 100: ``submit`` waits for room, the future carries the result or the
exception back to the submitter, and a failing task never kills its worker.

Run: python examples/worker_pool.py
"""
from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Dict, List, Tuple

import ringq


class FetchError(Exception):
    pass


def fetch(url: str) -> int:
    """Stands in for an HTTP GET: a status code, or an error for bad hosts."""
    time.sleep(0.001)
    if "invalid" in url:
        raise FetchError(f"cannot resolve {url}")
    return 200


def main(count: int = 40) -> Dict[str, Tuple[str, object]]:
    urls = [f"https://api.example.com/{i}" if i % 7 else f"https://invalid.example/{i}" for i in range(count)]
    outcome: Dict[str, Tuple[str, object]] = {}
    with ringq.BoundedExecutor(max_workers=4, max_pending=100) as pool:
        futures: List[Tuple[str, Future[int]]] = [(url, pool.submit(fetch, url)) for url in urls]
        for url, future in futures:
            try:
                status = future.result(timeout=30)
            except FetchError as error:  # the task's own exception, raised here
                print(f"Error fetching {url}: {error}")
                outcome[url] = ("error", error)
            else:
                print(f"Fetched {url}: {status}")
                outcome[url] = ("ok", status)
    return outcome


if __name__ == "__main__":
    main()
