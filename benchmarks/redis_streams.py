"""The ``redis`` workload: messages/s through ringq.redis.StreamQueue against a plain redis-py loop.

Both sides do the same work with the same guarantees: every message is JSON-encoded,
XADDed to a stream, read through a consumer group (so it sits in the PEL until acked),
decoded, checked and acknowledged. The job runs in chunks of ``--batch`` messages (put
a chunk, then read and ack it), in one thread, against one server:

* ``StreamQueue``: ``put_many(chunk)`` (pipelined XADDs), ``get_many(batch)`` (one
  XREADGROUP COUNT batch) and ``ack_many(got)`` (one XACK for the batch);
* ``StreamQueue maxlen``: the same with ``maxlen=2*batch``, so every put_many goes
  through the bounded-put Lua script (lag check and XADDs in one atomic call);
* ``plain redis-py loop``: per message XADD, XREADGROUP COUNT 1, XACK: three round trips.

Rounds are interleaved (round r runs every variant once, in an order rotated by r) and
each figure is the median of the rounds; every round uses fresh streams and verifies
that every message arrived exactly once, in order.

    python benchmarks/redis_streams.py                     # starts its own redis-server
    python benchmarks/redis_streams.py --url redis://127.0.0.1:6379/0 --messages 20000

``benchmarks/test_redis.py`` runs the same functions under pytest-benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List

MESSAGES = 20_000
BATCH = 500


def payloads(n: int) -> List[Dict[str, Any]]:
    return [{"request_id": f"web-1-{i}", "level": "ERROR" if i % 10 == 0 else "INFO",
             "message": "Request processed by web-1"} for i in range(n)]


def _fresh(client: Any) -> str:
    return f"bench-{uuid.uuid4().hex[:10]}"


def _verify(received: List[Any], items: List[Dict[str, Any]], who: str) -> None:
    if received != items:
        raise AssertionError(f"{who}: {len(received)} messages received, expected {len(items)} in order")


def run_streamqueue(client: Any, items: List[Dict[str, Any]], batch: int = BATCH,
                    maxlen: bool = False) -> float:
    from ringq.redis import StreamQueue

    stream = _fresh(client)
    q = StreamQueue(client, stream, "g", "c", maxlen=2 * batch if maxlen else None)
    received: List[Any] = []
    t0 = time.perf_counter()
    for start in range(0, len(items), batch):
        q.put_many(items[start:start + batch])
        want = min(batch, len(items) - start)
        while want:
            got = q.get_many(want, timeout=10)
            received.extend(m.data for m in got)
            q.ack_many(got)
            want -= len(got)
    seconds = time.perf_counter() - t0
    _verify(received, items, "StreamQueue")
    if q.pending():
        raise AssertionError("StreamQueue: messages left unacknowledged")
    client.delete(stream)
    return seconds


def run_plain_loop(client: Any, items: List[Dict[str, Any]], batch: int = BATCH) -> float:
    stream = _fresh(client)
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    received: List[Any] = []
    t0 = time.perf_counter()
    for start in range(0, len(items), batch):
        for item in items[start:start + batch]:
            client.xadd(stream, {"d": json.dumps(item)})
        for _ in range(min(batch, len(items) - start)):
            reply = client.xreadgroup("g", "c", {stream: ">"}, count=1, block=10_000)
            entry_id, fields = reply[0][1][0]
            received.append(json.loads(fields[b"d"]))
            client.xack(stream, "g", entry_id)
    seconds = time.perf_counter() - t0
    _verify(received, items, "plain loop")
    client.delete(stream)
    return seconds


VARIANTS: Dict[str, Callable[..., float]] = {
    "StreamQueue put_many/get_many+ack": run_streamqueue,
    "StreamQueue maxlen (Lua put)": lambda client, items, batch=BATCH: run_streamqueue(client, items, batch, True),
    "plain redis-py XADD/XREADGROUP/XACK loop": run_plain_loop,
}
REFERENCE = "plain redis-py XADD/XREADGROUP/XACK loop"


def bench(client: Any, messages: int, batch: int, rounds: int, out: Any = sys.stdout) -> Dict[str, float]:
    items = payloads(messages)
    names = list(VARIANTS)
    for name in names:  # warm-up, unrecorded
        VARIANTS[name](client, items[: min(len(items), 2 * batch)], batch)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].append(VARIANTS[name](client, items, batch))
    rates = {name: messages / statistics.median(ts) for name, ts in times.items()}
    print(f"redis: {messages:,} messages, chunks of {batch}, median of {rounds} interleaved rounds", file=out)
    print(f"  {'variant':<42} {'messages/s':>12} {'vs plain loop':>14} {'spread':>8}", file=out)
    for name in names:
        ts = times[name]
        spread = (max(ts) - min(ts)) / 2 / statistics.median(ts)
        print(f"  {name:<42} {rates[name]:>12,.0f} {rates[name] / rates[REFERENCE]:>13.2f}x "
              f"{spread:>7.1%}", file=out)
    return rates


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description="ringq.redis.StreamQueue vs a plain redis-py loop")
    parser.add_argument("--url", help="a Redis server; default: start redis-server in a temp dir")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    import redis

    if args.url:
        bench(redis.Redis.from_url(args.url), args.messages, args.batch, args.rounds)
        return 0
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import _redis_server

    reason = _redis_server.skip_reason()
    if reason:
        print(f"redis benchmark skipped: {reason}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp, _redis_server.RedisServer(tmp) as server:
        client = server.client()
        bench(client, args.messages, args.batch, args.rounds)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
