"""Workloads for ringq.PriorityQueue and ringq.Broadcast, each against its stdlib way.

Not part of the default ``python -m ringq bench`` run; ask for them by name::

    python -m ringq bench --workload priority,broadcast,broadcast_mt --rounds 9

``priority``
    One thread, blocks of 8: put 8 items at priorities 0-2 (a fixed mixed pattern),
    then get 8, maxsize 1024. ringq: ``put(item, priority)``. queue.PriorityQueue:
    ``put((priority, seq, item))`` with a running counter ``seq``, the stdlib
    recipe that keeps it FIFO within a priority and never compares items; it gets
    ``[2]`` of each tuple. Each block must come back in (priority, arrival) order.
``broadcast``
    One thread publishes *n* ints to 4 subscribers whose queues hold all of them
    (nothing waits: this is the cost of the publish itself). ringq:
    ``Broadcast.publish(i)``. The references put each item into 4 queues with
    ``put`` (bound methods, in a loop). Every subscriber must then hold ``0..n-1``.
``broadcast_mt``
    The same fan-out with 4 consumer threads, maxsize 1024 per subscriber and
    backpressure (``overflow="block"``); the publisher ends with a ``None`` that
    every consumer stops on. Every consumer must receive ``0..n-1`` in order.
"""
from __future__ import annotations

import itertools
import queue
from typing import Any, Callable, Dict, List, Tuple

from .peers import QueueKind
from .workloads import (
    DEFAULT_TIMEOUT,
    ITEMS_PER_S,
    MAXSIZE,
    SENTINEL,
    Trial,
    WorkloadError,
    WorkloadSpec,
    _items_per_second,
    relay_until_sentinel,
    workload_table,
)

__all__ = [
    "BROADCAST_KINDS",
    "PRIORITY_BLOCK",
    "PRIORITY_KINDS",
    "PRIORITY_LEVELS",
    "SUBSCRIBERS",
    "TOOLKIT_WORKLOADS",
    "WORKLOADS",
    "prepare_broadcast",
    "prepare_broadcast_mt",
    "prepare_priority",
]

PRIORITY_LEVELS = 3
#: Items put, then got, per block of the priority workload.
PRIORITY_BLOCK = 8
SUBSCRIBERS = 4

RINGQ_PRIORITY = "ringq.PriorityQueue"
STDLIB_PRIORITY = "queue.PriorityQueue"
RINGQ_BROADCAST = "ringq.Broadcast"
STDLIB_FANOUT = "4 x queue.Queue.put"
RINGQ_FANOUT = "4 x ringq.Queue.put"


def _ringq_priority_queue(maxsize: int) -> Any:
    import ringq

    return ringq.PriorityQueue(PRIORITY_LEVELS, maxsize)


def _ringq_queue(maxsize: int) -> Any:
    import ringq

    return ringq.Queue(maxsize)


def _ringq_broadcast(maxsize: int) -> Any:
    import ringq

    return ringq.Broadcast(maxsize)


PRIORITY_KINDS = [
    QueueKind(RINGQ_PRIORITY, _ringq_priority_queue),
    QueueKind(STDLIB_PRIORITY, queue.PriorityQueue),
]
BROADCAST_KINDS = [
    QueueKind(RINGQ_BROADCAST, _ringq_broadcast),
    QueueKind(STDLIB_FANOUT, queue.Queue),
    QueueKind(RINGQ_FANOUT, _ringq_queue),
]


def _levels(count: int) -> List[int]:
    """A fixed, mixed sequence of priorities (every level, no short period)."""
    return [(i * 7 + i // 5) % PRIORITY_LEVELS for i in range(count)]


# --- priority ----------------------------------------------------------------------


def prepare_priority(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """Blocks of 8 puts at mixed priorities, then 8 gets, in one thread."""
    n_blocks = max(1, n_items // PRIORITY_BLOCK)
    total = n_blocks * PRIORITY_BLOCK
    levels = _levels(total)
    q = kind(MAXSIZE)
    received: List[int] = []

    if kind.name == STDLIB_PRIORITY:
        def move() -> None:
            put, get, keep = q.put, q.get, received.append
            seq = itertools.count()
            for start in range(0, total, PRIORITY_BLOCK):
                for i in range(start, start + PRIORITY_BLOCK):
                    put((levels[i], next(seq), i))
                for _ in range(PRIORITY_BLOCK):
                    keep(get()[2])
    else:
        def move() -> None:
            put, get, keep = q.put, q.get, received.append
            for start in range(0, total, PRIORITY_BLOCK):
                for i in range(start, start + PRIORITY_BLOCK):
                    put(i, levels[i])
                for _ in range(PRIORITY_BLOCK):
                    keep(get())

    def verify() -> None:
        expected = [i for start in range(0, total, PRIORITY_BLOCK)
                    for i in sorted(range(start, start + PRIORITY_BLOCK), key=lambda i: (levels[i], i))]
        if received != expected:
            wrong = next((k for k, (a, b) in enumerate(zip(received, expected)) if a != b), len(received))
            raise WorkloadError(f"{kind.name}: priority: {len(received):,} of {total:,} items came "
                                f"back; first out of (priority, arrival) order at position {wrong}")

    return Trial(kind, [q], [("priority", move)], verify, _items_per_second(total), timeout)


# --- broadcast ---------------------------------------------------------------------


def _fan_out(kind: QueueKind, maxsize: int) -> Tuple[List[Any], List[Any], Callable[[Any], None]]:
    """(the queues a rescue may drain, the subscribers, publish(item)) for *kind*."""
    if kind.name == RINGQ_BROADCAST:
        b = kind(maxsize)
        subs = [b.subscribe() for _ in range(SUBSCRIBERS)]
        return [sub.queue for sub in subs], subs, b.publish
    queues = [kind(maxsize) for _ in range(SUBSCRIBERS)]
    puts = [q.put for q in queues]

    def publish(item: Any) -> None:
        for put in puts:  # the loop a user writes: one put call per queue
            put(item)

    return queues, queues, publish


def prepare_broadcast(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """One thread gives *n_items* ints to 4 subscribers that can hold them all."""
    rescue, subscribers, publish = _fan_out(kind, n_items + 1)

    def move() -> None:
        pub = publish
        for i in range(n_items):
            pub(i)

    def verify() -> None:
        for k, sub in enumerate(subscribers):
            got = []
            while True:
                try:
                    got.append(sub.get_nowait())
                except queue.Empty:
                    break
            if got != list(range(n_items)):
                raise WorkloadError(f"{kind.name}: broadcast: subscriber {k} holds {len(got):,} "
                                    f"items, not 0..{n_items - 1:,} in order")

    return Trial(kind, rescue, [("publisher", move)], verify, _items_per_second(n_items), timeout)


def prepare_broadcast_mt(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """One publisher thread, 4 consumer threads, maxsize 1024 per subscriber."""
    rescue, subscribers, publish = _fan_out(kind, MAXSIZE)
    received: List[List[int]] = [[] for _ in subscribers]

    def move() -> None:
        pub = publish
        for i in range(n_items):
            pub(i)
        pub(SENTINEL)

    def consumer(sub: Any, sink: List[int]) -> Callable[[], None]:
        def consume() -> None:
            relay_until_sentinel(sub.get, sink.append)
        return consume

    def verify() -> None:
        for k, sink in enumerate(received):
            if sink != list(range(n_items)):
                raise WorkloadError(f"{kind.name}: broadcast_mt: consumer {k} received "
                                    f"{len(sink):,} items, not 0..{n_items - 1:,} in order")

    bodies = [("publisher", move)] + [(f"consumer{k}", consumer(sub, received[k]))
                                      for k, sub in enumerate(subscribers)]
    return Trial(kind, rescue, bodies, verify, _items_per_second(n_items), timeout)


# --- the catalogue entries -----------------------------------------------------------


def _named_only(name: str, summary: str, prepare: Callable[..., Trial], default_size: int,
                kinds: List[QueueKind], reference: str) -> WorkloadSpec:
    """A workload of this group: items/s, its own contenders, run only when named."""
    return WorkloadSpec(
        name, summary, "items", (ITEMS_PER_S,), prepare,
        default_size=default_size, quick_size=20_000, pytest_size=10_000, scalable=False,
        entries=lambda available: list(kinds), reference=reference, in_default_run=False)


#: This group, for :mod:`ringq.bench.registry`.
WORKLOADS: Dict[str, WorkloadSpec] = workload_table(
    _named_only("priority", "one thread, blocks of 8 puts at 3 mixed priorities then 8 gets, "
                "{size} items, maxsize 1024", prepare_priority, 200_000, PRIORITY_KINDS, STDLIB_PRIORITY),
    _named_only("broadcast", "one thread publishes {size} ints to 4 subscribers (no waiting)",
                prepare_broadcast, 200_000, BROADCAST_KINDS, STDLIB_FANOUT),
    _named_only("broadcast_mt", "1 publisher + 4 consumer threads, {size} ints, maxsize 1024 "
                "per subscriber", prepare_broadcast_mt, 100_000, BROADCAST_KINDS, STDLIB_FANOUT),
)
#: The name this group's table had before the registry (kept for older imports).
TOOLKIT_WORKLOADS = WORKLOADS
