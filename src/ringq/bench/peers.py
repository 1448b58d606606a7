"""The queues the benchmarks compare: ringq and its peers, behind one small interface.

Every queue is described by a :class:`QueueKind`: a factory ``kind(maxsize)`` that
builds a fresh queue, plus how that queue moves a batch of items (its own batch
calls where it has them, else the per-item loop a user would write). The
workloads call the queues' own ``put``/``get`` methods directly, with no adapter
in between, so no queue pays for a wrapper the others do not.

Peers:

* ``queue.Queue``: the stdlib queue ringq is a drop-in for; the reference.
* ``queue.SimpleQueue``: the stdlib's C-accelerated *unbounded* queue, as a speed
  reference. It has no bound, so in "bounded" workloads it simply ignores maxsize
  (its producers never block).
* ``deque+Condition``: :class:`DequeConditionQueue`, the bounded queue people write
  by hand from ``collections.deque`` and ``threading.Condition``.
* ``janus.sync_q`` and ``faster_fifo``: optional (``pip install 'ringq[bench]'``),
  skipped cleanly when they are not importable.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = [
    "DequeConditionQueue",
    "QueueKind",
    "available_queue_kinds",
    "CAPACITY_ROW_MAXSIZE",
    "batch_queue_kinds",
    "capacity_queue_kinds",
    "missing_optional_peers",
    "REFERENCE",
    "SIMPLE_REFERENCE",
]

#: Name of the queue every ratio is computed against.
REFERENCE = "queue.Queue"
#: Name of the unbounded C queue reported as a second reference.
SIMPLE_REFERENCE = "queue.SimpleQueue"


class DequeConditionQueue:
    """A bounded FIFO written the way people write one by hand.

    One lock, two conditions over it, a deque for storage: ``queue.Queue`` minus
    its task tracking, timeouts and subclass hooks. ``maxsize <= 0`` is unbounded.
    """

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: deque[Any] = deque()
        lock = threading.Lock()
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)

    def put(self, item: Any) -> None:
        """Append *item*, waiting while the queue is full."""
        with self._not_full:
            if self.maxsize > 0:
                while len(self._items) >= self.maxsize:
                    self._not_full.wait()
            self._items.append(item)
            self._not_empty.notify()

    def get(self) -> Any:
        """Remove and return the oldest item, waiting while the queue is empty."""
        with self._not_empty:
            while not self._items:
                self._not_empty.wait()
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def put_nowait(self, item: Any) -> None:
        """Append *item* or raise queue.Full (used only to rescue stuck threads)."""
        import queue

        with self._not_full:
            if 0 < self.maxsize <= len(self._items):
                raise queue.Full
            self._items.append(item)
            self._not_empty.notify()

    def get_nowait(self) -> Any:
        """Pop the oldest item or raise queue.Empty (used only to rescue stuck threads)."""
        import queue

        with self._not_empty:
            if not self._items:
                raise queue.Empty
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def qsize(self) -> int:
        return len(self._items)


# --- how a queue moves a batch ---------------------------------------------------


def put_each(q: Any, items: Sequence[Any]) -> None:
    """The per-item loop a user writes for a queue without a batch put."""
    put = q.put
    for item in items:
        put(item)


def get_each(q: Any, count: int) -> List[Any]:
    """The per-item loop a user writes for a queue without a batch get."""
    get = q.get
    return [get() for _ in range(count)]


def ringq_put_many(q: Any, items: Sequence[Any]) -> None:
    q.put_many(items)


def ringq_get_many(q: Any, count: int) -> List[Any]:
    # get_many returns whatever is there (1..count items) without waiting for more,
    # so loop until the whole batch has arrived.
    got: List[Any] = q.get_many(count)
    while len(got) < count:
        got += q.get_many(count - len(got))
    return got


def faster_fifo_put_many(q: Any, items: Sequence[Any]) -> None:
    q.put_many(items)


def faster_fifo_get_many(q: Any, count: int) -> List[Any]:
    got: List[Any] = q.get_many(max_messages_to_get=count)
    while len(got) < count:
        got += q.get_many(max_messages_to_get=count - len(got))
    return got


def shutdown_immediately(q: Any) -> None:
    """Wake every thread blocked on *q* (ringq; queue.Queue on 3.13+; janus)."""
    shutdown = getattr(q, "shutdown", None)
    if shutdown is not None:
        try:
            shutdown(immediate=True)
        except Exception:  # noqa: BLE001 - best effort while rescuing stuck threads
            pass


@dataclass(frozen=True)
class QueueKind:
    """A queue implementation under test: a factory plus how it moves batches.

    Calling the kind, ``kind(maxsize)``, builds a fresh, empty queue.
    """

    #: Unique, human-readable name, used in tables, JSON and benchmark ids.
    name: str
    #: Builds a queue; receives maxsize (<= 0 means unbounded).
    factory: Callable[[int], Any]
    #: Puts a sequence of items (batch call or per-item loop).
    put_batch: Callable[[Any, Sequence[Any]], None] = put_each
    #: Gets exactly n items, oldest first (batch call or per-item loop).
    get_batch: Callable[[Any, int], List[Any]] = get_each
    #: How put_batch/get_batch work, for the batch workload's labels.
    batch_method: str = "per-item loop"
    #: True when the queue honours maxsize (SimpleQueue does not).
    bounded: bool = True
    #: Wakes every thread blocked on a queue, if the queue can (rescue only).
    abort: Callable[[Any], None] = shutdown_immediately
    #: One line shown under the results table, when the figures need a caveat.
    note: str = ""
    #: Scales the item counts of the throughput workloads for a peer too slow to
    #: push the full count through in the CLI's time budget; items/s stays comparable.
    item_scale: float = 1.0
    #: True for the peers other than the two stdlib references: a workload may cap
    #: their item count (WorkloadSpec.secondary_cap) to keep the CLI under a minute.
    secondary: bool = False
    #: False when the queue keeps its items where tracemalloc cannot see them, so
    #: that its memory figures are not compared with the others'.
    memory_traced: bool = True

    def __call__(self, maxsize: int) -> Any:
        return self.factory(maxsize)

    def with_maxsize(self, name: str, maxsize: int) -> "QueueKind":
        """The same queue under another name, always built with *maxsize*.

        A capacity row: the workload's own maxsize is ignored, so a table can show
        what a bigger (or smaller) bound does to the same workload.
        """
        factory = self.factory
        return dataclasses.replace(self, name=name, factory=lambda _ignored: factory(maxsize))

    def with_batch(self, name: str, put_batch: Callable[[Any, Sequence[Any]], None],
                   get_batch: Callable[[Any, int], List[Any]], batch_method: str) -> "QueueKind":
        """The same queue under another name and another way of moving batches."""
        return dataclasses.replace(self, name=name, put_batch=put_batch, get_batch=get_batch,
                                   batch_method=batch_method)


# --- factories -------------------------------------------------------------------


def _make_ringq(maxsize: int) -> Any:
    import ringq

    return ringq.Queue(maxsize)


def _make_queue(maxsize: int) -> Any:
    import queue

    return queue.Queue(maxsize)


def _make_simple_queue(maxsize: int) -> Any:
    import queue

    return queue.SimpleQueue()  # unbounded: maxsize is ignored on purpose


def _make_janus_sync_q(maxsize: int) -> Any:
    import janus

    async def create() -> Any:
        return janus.Queue(maxsize)

    try:
        # janus >= 2 on Python >= 3.10 binds its event loop lazily.
        parent: Any = janus.Queue(maxsize)
    except RuntimeError:
        # Older janus, or Python 3.9, needs a running loop to create the queue. The
        # loop is closed once asyncio.run returns; the sync side never needs it
        # again (janus skips async notifications when its loop is closed).
        parent = asyncio.run(create())
    # sync_q keeps a reference to its parent, so the proxy alone keeps it alive.
    return parent.sync_q


#: faster_fifo stores pickled messages in a fixed shared-memory buffer. A pickled
#: small int takes well under 16 bytes, plus a 4-byte length header; 64 bytes a
#: slot is roomy for the ints and None sentinels the workloads send.
FASTER_FIFO_BYTES_PER_SLOT = 64


def _make_faster_fifo(maxsize: int) -> Any:
    faster_fifo: Any = importlib.import_module("faster_fifo")  # untyped: no stubs

    if maxsize <= 0:
        return faster_fifo.Queue()
    return faster_fifo.Queue(max_size_bytes=max(4096, maxsize * FASTER_FIFO_BYTES_PER_SLOT),
                             maxsize=maxsize)


def _importable(module: str) -> Optional[str]:
    """None when *module* imports, else the reason it does not."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip this peer"
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class _Registry:
    kinds: List[QueueKind] = field(default_factory=list)
    missing: Dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=None)
def _registry() -> _Registry:
    registry = _Registry()
    registry.kinds.append(QueueKind(
        "ringq", _make_ringq, ringq_put_many, ringq_get_many, "put_many/get_many"))
    registry.kinds.append(QueueKind("queue.Queue", _make_queue))
    registry.kinds.append(QueueKind(
        SIMPLE_REFERENCE, _make_simple_queue, bounded=False, abort=lambda q: None,
        note="queue.SimpleQueue is unbounded: it ignores maxsize, so its producers never block"))
    registry.kinds.append(QueueKind("deque+Condition", DequeConditionQueue, abort=lambda q: None,
                                    secondary=True))

    problem = _importable("janus")
    if problem is None:
        registry.kinds.append(QueueKind("janus.sync_q", _make_janus_sync_q, secondary=True))
    else:
        registry.missing["janus.sync_q"] = problem

    problem = _importable("faster_fifo") if sys.platform.startswith("linux") else "Linux only"
    if problem is None:
        registry.kinds.append(QueueKind(
            "faster_fifo", _make_faster_fifo, faster_fifo_put_many, faster_fifo_get_many,
            "put_many/get_many", abort=lambda q: None,
            note=("faster_fifo pickles every item into a shared-memory buffer "
                  f"({FASTER_FIFO_BYTES_PER_SLOT} bytes a slot); that buffer is not "
                  "traced by tracemalloc"),
            # Cross-process design: 5-10x slower per item than queue.Queue between
            # threads; a twentieth of the items keeps the CLI under a minute.
            item_scale=0.05, memory_traced=False, secondary=True))
    else:
        registry.missing["faster_fifo"] = problem
    return registry


def available_queue_kinds() -> List[QueueKind]:
    """ringq first, then every peer that can be imported here."""
    return list(_registry().kinds)


def missing_optional_peers() -> Dict[str, str]:
    """Optional peers that are not importable, with the reason."""
    return dict(_registry().missing)


def batch_queue_kinds(kinds: Sequence[QueueKind]) -> List[QueueKind]:
    """The entries of the batch workload.

    ringq runs twice: with put_many/get_many (the entry named "ringq", compared
    with the peers' per-item loops) and with the per-item loop itself, which shows
    what the batch calls save. Peers keep their own way (faster_fifo its batch
    calls, the others the per-item loop).
    """
    entries: List[QueueKind] = []
    for kind in kinds:
        entries.append(kind)
        if kind.name == "ringq":
            entries.append(kind.with_batch("ringq (per-item loop)", put_each, get_each,
                                           "per-item loop"))
    return entries


#: The bigger bound of the capacity row in the spsc workload. A bounded queue makes
#: producer and consumer take turns every maxsize items (two thread wake-ups a turn);
#: at 16384 those hand-offs are rare enough that ringq overtakes the unbounded
#: queue.SimpleQueue on a machine where a wake-up costs tens of microseconds.
CAPACITY_ROW_MAXSIZE = 16384


def capacity_queue_kinds(kinds: Sequence[QueueKind]) -> List[QueueKind]:
    """Every kind, plus ringq at maxsize CAPACITY_ROW_MAXSIZE right after ringq."""
    entries: List[QueueKind] = []
    for kind in kinds:
        entries.append(kind)
        if kind.name == "ringq":
            entries.append(kind.with_maxsize(f"ringq maxsize={CAPACITY_ROW_MAXSIZE}",
                                             CAPACITY_ROW_MAXSIZE))
    return entries
