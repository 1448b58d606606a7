"""Seed 003's API request queue: at most N requests a second, each caller gets its
response back.

The original takes up to 10 requests, sends them, then sleeps a whole second, so a
request waits up to a second for nothing and bursts hit the API in lumps. Here a
token bucket (``ringq.RateLimiter``) lets each request go as soon as the rate
allows, a bounded pool (``ringq.BoundedExecutor``) holds the queue of 100 waiting
requests, and each ``request()`` returns a future of the response.

Run: python examples/rate_limited_requests.py
"""
from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any, Dict, List

import ringq


class RequestQueue:
    def __init__(self, rate_limit: float = 10, burst: int = 10, max_pending: int = 100) -> None:
        self._limiter = ringq.RateLimiter(rate=rate_limit, burst=burst)
        self._pool = ringq.BoundedExecutor(max_workers=4, max_pending=max_pending)

    def request(self, url: str, **options: Any) -> Future[Dict[str, Any]]:
        """Queue a request (waits while 100 are queued); the future holds the response."""
        return self._pool.submit(self._send, url, options)

    def _send(self, url: str, options: Dict[str, Any]) -> Dict[str, Any]:
        with self._limiter:  # waits exactly as long as the rate needs, no sleep loop
            return fetch(url, options)

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> "RequestQueue":  # noqa: PYI034 - a final, simple class
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def fetch(url: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Stands in for the HTTP call."""
    return {"url": url, "status": 200, "sent_at": time.monotonic()}


def main(count: int = 30, rate_limit: float = 50, burst: int = 5) -> List[float]:
    start = time.monotonic()
    with RequestQueue(rate_limit=rate_limit, burst=burst) as api:
        futures = [api.request(f"/api/data/{i}") for i in range(count)]
        responses = [f.result(timeout=60) for f in futures]
    sent = sorted(r["sent_at"] - start for r in responses)
    elapsed = time.monotonic() - start
    print(f"{count} requests at <= {rate_limit:g}/s (bursts of {burst}) took {elapsed:.2f} s")
    return sent


if __name__ == "__main__":
    main()
