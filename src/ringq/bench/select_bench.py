"""Workloads for ringq.select(): waiting on 4 queues at once, against the ways people do it today.

Not part of the default ``python -m ringq bench`` run; ask for them by name::

    python -m ringq bench --workload select,select_latency --rounds 9

The entries:

``ringq.select``
    4 ``ringq.Queue`` sources; the consumer calls ``ringq.select(*sources)``.
``poll get_nowait + 1 ms sleep``
    4 ``queue.Queue`` sources; the consumer tries ``get_nowait()`` on each in turn
    and sleeps 1 ms when all four are empty (the polling loop of goless and of
    many hand-written consumers).
``forwarding threads``
    4 ``queue.Queue`` sources, each drained by its own forwarding thread into one
    shared ``queue.Queue`` of ``(source, item)``; the consumer gets from the shared
    queue. The best hand-rolled alternative found: it blocks instead of polling,
    at the cost of a thread and an extra hand-off per source.

``select``
    4 producer threads each put *n*/4 ints into their own source (maxsize 1024),
    then a ``None``; the consumer receives until it has seen the 4 ``None``. It
    must receive every int exactly once.
``select_latency``
    One thread sends ``i`` to source ``i % 4`` and waits for the consumer to send
    it back on a reply queue (the entry's own queue type): the latency of one
    wake-up through the select, in microseconds per round trip.
"""
from __future__ import annotations

import queue
import time
from typing import Any, Callable, Dict, List, Tuple

from .peers import QueueKind
from .workloads import (
    DEFAULT_TIMEOUT,
    ITEMS_PER_S,
    MAXSIZE,
    SENTINEL,
    Metric,
    Trial,
    WorkloadError,
    WorkloadSpec,
    _items_per_second,
    workload_table,
)

__all__ = ["SELECT_KINDS", "SELECT_WORKLOADS", "SOURCES", "WORKLOADS", "prepare_select", "prepare_select_latency"]

SOURCES = 4
RINGQ_SELECT = "ringq.select"
POLLING = "poll get_nowait + 1 ms sleep"
FORWARDING = "forwarding threads"
POLL_SLEEP = 0.001


def _ringq_queue(maxsize: int) -> Any:
    import ringq

    return ringq.Queue(maxsize)


SELECT_KINDS = [
    QueueKind(RINGQ_SELECT, _ringq_queue),
    QueueKind(POLLING, queue.Queue),
    QueueKind(FORWARDING, queue.Queue),
]


_ThreadBody = Tuple[str, Callable[[], None]]


def _receiver(kind: QueueKind, sources: List[Any]) -> Tuple[Callable[[], Any], List[_ThreadBody], List[Any]]:
    """(receive() -> item from any source, extra thread bodies, extra queues) for *kind*."""
    if kind.name == RINGQ_SELECT:
        import ringq

        select = ringq.select

        def receive() -> Any:
            return select(*sources)[1]

        return receive, [], []
    if kind.name == POLLING:
        gets = [q.get_nowait for q in sources]
        Empty = queue.Empty
        sleep = time.sleep

        def receive() -> Any:
            while True:
                for get in gets:
                    try:
                        return get()
                    except Empty:
                        pass
                sleep(POLL_SLEEP)

        return receive, [], []
    shared: Any = queue.Queue(MAXSIZE)

    def forwarder(k: int, source: Any) -> Callable[[], None]:
        def forward() -> None:
            get, put = source.get, shared.put
            while True:
                item = get()
                put((k, item))
                if item is SENTINEL:
                    break
        return forward

    get_shared = shared.get

    def receive() -> Any:
        return get_shared()[1]

    bodies = [(f"forwarder{k}", forwarder(k, q)) for k, q in enumerate(sources)]
    return receive, bodies, [shared]


def prepare_select(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """4 producers, one consumer that waits on all 4 sources."""
    per = max(1, n_items // SOURCES)
    total = per * SOURCES
    sources = [kind(MAXSIZE) for _ in range(SOURCES)]
    receive, extra, extra_queues = _receiver(kind, sources)
    got: Dict[str, int] = {}

    def producer(k: int) -> Callable[[], None]:
        def produce() -> None:
            put = sources[k].put
            for i in range(k * per, (k + 1) * per):
                put(i)
            put(SENTINEL)
        return produce

    def consume() -> None:
        count = total_sum = ends = 0
        rcv = receive
        while ends < SOURCES:
            item = rcv()
            if item is SENTINEL:
                ends += 1
                continue
            count += 1
            total_sum += item
        got["count"], got["sum"] = count, total_sum

    def verify() -> None:
        if got.get("count") != total or got.get("sum") != total * (total - 1) // 2:
            raise WorkloadError(f"{kind.name}: select: received {got.get('count')} items "
                                f"(sum {got.get('sum')}), not 0..{total - 1:,} once each")

    bodies = [(f"producer{k}", producer(k)) for k in range(SOURCES)] + [("consumer", consume)] + extra
    return Trial(kind, sources + extra_queues, bodies, verify, _items_per_second(total), timeout)


def prepare_select_latency(kind: QueueKind, n_round_trips: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """Round trips: one thread sends to source i % 4, the consumer answers on a reply queue."""
    sources = [kind(1) for _ in range(SOURCES)]
    replies = kind(1)
    receive, extra, extra_queues = _receiver(kind, sources)
    outcome: Dict[str, int] = {}

    def ping() -> None:
        sends = [q.put for q in sources]
        answer = replies.get
        mismatches = 0
        for i in range(n_round_trips):
            sends[i % SOURCES](i)
            if answer() != i:
                mismatches += 1
        for send in sends:
            send(SENTINEL)
        outcome["mismatches"] = mismatches

    def pong() -> None:
        rcv, send = receive, replies.put
        ends = 0
        while ends < SOURCES:
            item = rcv()
            if item is SENTINEL:
                ends += 1
                continue
            send(item)

    def verify() -> None:
        if outcome.get("mismatches") != 0:
            raise WorkloadError(f"{kind.name}: select_latency: {outcome.get('mismatches')} of "
                                f"{n_round_trips:,} replies differed from the int sent")

    def figures(seconds: float) -> Dict[str, float]:
        return {"seconds": seconds, "us_per_round_trip": seconds / n_round_trips * 1e6}

    bodies = [("ping", ping), ("pong", pong)] + extra
    return Trial(kind, sources + [replies] + extra_queues, bodies, verify, figures, timeout)


#: This group, for :mod:`ringq.bench.registry`.
WORKLOADS: Dict[str, WorkloadSpec] = workload_table(
    WorkloadSpec(
        "select", "4 producers, 1 consumer waiting on all 4 sources, {size} ints, maxsize 1024",
        "items", (ITEMS_PER_S,), prepare_select,
        default_size=200_000, quick_size=20_000, pytest_size=10_000, scalable=False,
        entries=lambda kinds: list(SELECT_KINDS), reference=POLLING, in_default_run=False),
    WorkloadSpec(
        "select_latency", "round trips through one of 4 sources and a reply queue, "
        "{size} round trips", "round trips",
        (Metric("us_per_round_trip", "us/round trip", higher_is_better=False, fmt="{:,.2f}"),),
        prepare_select_latency,
        default_size=2_000, quick_size=500, pytest_size=500, scalable=False,
        entries=lambda kinds: list(SELECT_KINDS), reference=FORWARDING, in_default_run=False),
)
#: The name this group's table had before the registry (kept for older imports).
SELECT_WORKLOADS = WORKLOADS
