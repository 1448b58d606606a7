"""The "redis" group: ringq.redis.StreamQueue against a plain redis-py loop, on a real server.

The workload and its checks are in redis_streams.py (also runnable on its own, with
interleaved rounds and ratios: ``python benchmarks/redis_streams.py``). Skipped when
redis-py or the ``redis-server`` binary is missing.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import redis_streams

import _redis_server

WORKLOAD = "redis"
MESSAGES = 5_000
pytestmark = pytest.mark.benchmark(group=WORKLOAD)

_reason = _redis_server.skip_reason()


@pytest.fixture(scope="module")
def redis_client(tmp_path_factory: Any) -> Iterator[Any]:
    if _reason is not None:
        pytest.skip(_reason)
    with _redis_server.RedisServer(tmp_path_factory.mktemp("redis-bench")) as server:
        client = server.client()
        yield client
        client.close()


@pytest.mark.parametrize("variant", list(redis_streams.VARIANTS))
def test_redis(benchmark: Any, redis_client: Any, variant: str) -> None:
    items = redis_streams.payloads(MESSAGES)
    run = redis_streams.VARIANTS[variant]
    seconds = benchmark.pedantic(run, args=(redis_client, items), rounds=5, warmup_rounds=1)
    benchmark.extra_info.update({"variant": variant, "messages": MESSAGES,
                                 "messages_per_second": MESSAGES / seconds})
    assert seconds > 0
