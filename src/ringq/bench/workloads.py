"""The benchmark workloads: what each one measures, and how.

Every workload runs one queue (built by a :class:`~ringq.bench.peers.QueueKind`,
the queue factory) through a fixed job of a given size, checks afterwards that
every item arrived, and reports the time of the measured part only:

``pair``
    One thread alternates ``put(i)`` and ``get()`` (maxsize 1024): the cost of an
    uncontended put + get. Each ``get`` must return the int just put (equality: faster_fifo pickles, so
    it returns a copy).
``spsc``
    One producer thread puts the ints ``0..n-1`` then a ``None`` sentinel; one
    consumer thread gets until the sentinel (maxsize 1024). The consumer's list
    must equal ``list(range(n))``: nothing lost, duplicated or reordered. One more
    row runs ringq at maxsize 16384 (the capacity row): how the bound changes the
    figure, since a bounded queue forces a thread hand-off every maxsize items.
``mpmc``
    4 producers put disjoint ranges of ``0..n-1``; the last producer to finish puts
    one sentinel per consumer; 4 consumers get until their sentinel (maxsize 1024).
    Count, sum and sum of squares of everything received must match ``0..n-1``.
``batch``
    One thread puts a batch of 1000 distinct ints and gets 1000 back, n/1000 times
    (maxsize 1024), through the kind's batch method: ringq's ``put_many`` /
    ``get_many``, faster_fifo's own batch calls, the per-item loop for the others.
    Every batch must come back equal, in order.
``pingpong``
    Two threads bounce an int through two queues of maxsize 1, n round trips: the
    latency of a hand-off. Each reply must equal the int sent.
``memory``
    With tracemalloc: the bytes allocated by n empty queues of maxsize 1024, divided
    by n, and the bytes a queue grows by per item when it goes from 1024 to 2048
    pre-built items (the marginal cost of an item; see :func:`measure_memory` for why
    not from 0). tracemalloc sees only memory allocated through
    Python's allocators (PyMem_*/PyObject_*, including PyMem_RawMalloc, which
    ringq's C core uses); plain malloc or mmap (faster_fifo's shared buffer) is
    invisible to it.

How the time is taken: the workload's threads are created and started first, then
parked on a barrier (:class:`Trial`). Releasing the barrier starts the measured
part; each thread notes ``perf_counter()`` after the barrier and when its job is
done, and the measured time runs from the earliest start to the latest end. Thread
creation, data preparation and verification are never timed.

Threads always terminate: they are daemon threads joined with a generous timeout.
A queue that deadlocks or loses items (a consumer then waits forever) is first shut
down, if it can be, then drained and fed sentinels until its threads leave, and the
workload raises :class:`WorkloadError`. Even the single-thread workloads run in a
worker thread, so a broken queue can never block the caller.
"""
from __future__ import annotations

import gc
import operator
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .peers import CAPACITY_ROW_MAXSIZE, REFERENCE, QueueKind, batch_queue_kinds, capacity_queue_kinds

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_TIMEOUT",
    "MAXSIZE",
    "MPMC_CONSUMERS",
    "MPMC_PRODUCERS",
    "MemoryFigures",
    "Metric",
    "SENTINEL",
    "ITEMS_PER_S",
    "Trial",
    "WORKLOADS",
    "WorkloadError",
    "WorkloadSpec",
    "batch",
    "count_mismatches",
    "measure_memory",
    "memory",
    "mpmc",
    "pair",
    "pingpong",
    "prepare_batch",
    "prepare_memory",
    "prepare_mpmc",
    "prepare_pair",
    "prepare_pingpong",
    "prepare_spsc",
    "relay_until_sentinel",
    "spsc",
    "workload_table",
]

#: Bound of the queues in the pair, spsc, mpmc, batch and memory workloads.
MAXSIZE = 1024
#: Items per put_many/get_many call in the batch workload.
BATCH_SIZE = 1000
MPMC_PRODUCERS = 4
MPMC_CONSUMERS = 4
#: Seconds a workload's threads get to finish before they count as hung. Generous:
#: the slowest peer moves 1 M items in ~10 s on a 2-core machine.
DEFAULT_TIMEOUT = 120.0
#: Seconds spent trying to unstick the threads of a hung workload.
RESCUE_SECONDS = 10.0

#: The end-of-stream marker the producers send; the items themselves are ints.
SENTINEL = None


class WorkloadError(AssertionError):
    """A workload did not complete correctly: lost items, a hang, an exception."""


# --- the harness -----------------------------------------------------------------


class Trial:
    """One prepared run of a workload: threads started and parked on a barrier.

    :meth:`run` releases the threads and returns the measured seconds;
    :meth:`verify` then checks the items. Both raise :class:`WorkloadError`.
    """

    def __init__(
        self,
        kind: QueueKind,
        queues: Sequence[Any],
        bodies: Sequence[Tuple[str, Callable[[], None]]],
        verify: Callable[[], None],
        figures: Callable[[float], Dict[str, float]],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.kind = kind
        self.queues = list(queues)
        self._verify = verify
        self._figures = figures
        self._timeout = timeout
        self._starts: List[Optional[float]] = [None] * len(bodies)
        self._ends: List[Optional[float]] = [None] * len(bodies)
        self._errors: List[str] = []
        self._ran = False
        # Set when every worker has finished, or as soon as one fails: then the
        # others may be blocked for good, and waiting out the timeout is pointless.
        self._settled = threading.Event()
        self._unfinished = len(bodies)
        self._unfinished_lock = threading.Lock()
        #: The measured seconds, once run() has returned.
        self.seconds: Optional[float] = None
        #: True once verify() has passed.
        self.verified = False
        # The main thread is one more party: its wait() is the starting gun.
        self._barrier = threading.Barrier(len(bodies) + 1, timeout=timeout)
        self._threads = [
            threading.Thread(target=self._work, args=(index, body), daemon=True,
                             name=f"ringq-bench-{kind.name}-{role}")
            for index, (role, body) in enumerate(bodies)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self, index: int, body: Callable[[], None]) -> None:
        try:
            self._barrier.wait()
            start = time.perf_counter()
            body()
            self._ends[index] = time.perf_counter()
            self._starts[index] = start
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            self._errors.append(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}")
            self._settled.set()
        with self._unfinished_lock:
            self._unfinished -= 1
            if self._unfinished == 0:
                self._settled.set()

    def run(self) -> float:
        """Release the threads, wait for them, and return the measured seconds."""
        if self._ran:
            raise RuntimeError("a Trial runs once")
        self._ran = True
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            self._rescue()
            raise WorkloadError(f"{self.kind.name}: worker threads never reached the start") from None
        self._settled.wait(self._timeout)
        for thread in self._threads:
            thread.join(0.5)  # they are leaving, or hung; the latter are handled below
        hung = [thread.name for thread in self._threads if thread.is_alive()]
        if hung:
            # Judge the cause before the rescue, whose shutdown makes threads raise.
            cause = ("after an error in another thread" if self._errors
                     else f"after {self._timeout:g} s: the queue deadlocked or lost items")
            unstuck = self._rescue()
            raise WorkloadError(
                f"{self.kind.name}: {len(hung)} thread(s) still blocked {cause} "
                f"({', '.join(hung)}); "
                f"{'the threads were unstuck' if unstuck else 'they could not be unstuck'}"
                + "".join(f"; {error}" for error in self._errors))
        if self._errors:
            raise WorkloadError(f"{self.kind.name}: " + "; ".join(self._errors))
        starts = [s for s in self._starts if s is not None]
        ends = [e for e in self._ends if e is not None]
        self.seconds = max(ends) - min(starts)
        return self.seconds

    def verify(self) -> None:
        """Check that every item arrived (raises WorkloadError)."""
        if self.seconds is None:
            raise WorkloadError(f"{self.kind.name}: verify() called before a successful run()")
        self._verify()
        self.verified = True

    def figures(self, seconds: float) -> Dict[str, float]:
        """The workload's metrics for a run that took *seconds*."""
        return self._figures(seconds)

    def _rescue(self) -> bool:
        """Try to unstick hung threads; True if they all left."""
        for q in self.queues:
            self.kind.abort(q)  # shutdown(immediate=True) where the queue has it
        give_up = time.monotonic() + RESCUE_SECONDS
        while any(t.is_alive() for t in self._threads) and time.monotonic() < give_up:
            for q in self.queues:
                # Drain, to free blocked putters...
                for _ in range(100_000):
                    try:
                        q.get_nowait()
                    except Exception:  # noqa: BLE001 - Empty, ShutDown, anything
                        break
                # ...then feed one sentinel, to free a blocked getter.
                try:
                    q.put_nowait(SENTINEL)
                except Exception:  # noqa: BLE001 - Full, ShutDown, anything
                    pass
            time.sleep(0.002)
        return not any(t.is_alive() for t in self._threads)


def _complete(trial: Trial) -> float:
    seconds = trial.run()
    trial.verify()
    return seconds


def _check(condition: bool, kind: QueueKind, message: str) -> None:
    if not condition:
        raise WorkloadError(f"{kind.name}: {message}")


def _describe_difference(received: Sequence[int], expected_count: int) -> str:
    """A short account of how *received* differs from ``range(expected_count)``."""
    seen = set(received)
    missing = expected_count - len(seen & set(range(expected_count)))
    duplicates = len(received) - len(seen)
    first_bad = next((i for i, item in enumerate(received) if item != i), None)
    return (f"received {len(received):,} of {expected_count:,} items, {missing:,} missing, "
            f"{duplicates:,} duplicated; first out-of-place position: {first_bad}")


def _items_per_second(count: int) -> Callable[[float], Dict[str, float]]:
    return lambda seconds: {"seconds": seconds, "items_per_s": count / seconds}


def relay_until_sentinel(get: Callable[[], Any], keep: Callable[[Any], Any]) -> None:
    """The consumer loop of the thread workloads: ``keep(get())`` until SENTINEL arrives.

    *get* and *keep* arrive as arguments, i.e. fast locals, so the loop costs what
    the same loop written inline in each workload cost.
    """
    while True:
        item = get()
        if item is SENTINEL:
            return
        keep(item)


def count_mismatches(send: Callable[[int], Any], receive: Callable[[], Any], n: int) -> int:
    """The loop of pair and pingpong: ``send(i)`` then ``receive()``, for i in range(n).

    Returns how many replies differed from the int sent; stops at a SENTINEL reply
    (a rescue is feeding sentinels: the queue lost an item). *send* and *receive*
    arrive as arguments, i.e. fast locals, like :func:`relay_until_sentinel`'s.
    """
    mismatches = 0
    for i in range(n):
        send(i)
        reply = receive()
        if reply != i:
            mismatches += 1
            if reply is SENTINEL:
                break
    return mismatches


# --- pair ------------------------------------------------------------------------


def prepare_pair(kind: QueueKind, n_pairs: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """Single-thread ``put(i)`` + ``get()`` pairs; see the module docstring."""
    q = kind(MAXSIZE)
    outcome: Dict[str, int] = {}

    def alternate() -> None:
        outcome["mismatches"] = count_mismatches(q.put, q.get, n_pairs)

    def verify() -> None:
        _check(outcome.get("mismatches") == 0, kind,
               f"{outcome.get('mismatches')} of {n_pairs:,} gets returned another value")
        _check(q.qsize() == 0, kind, f"qsize() is {q.qsize()} after balanced put/get pairs")

    return Trial(kind, [q], [("pair", alternate)], verify, _items_per_second(n_pairs), timeout)


def pair(kind: QueueKind, n_pairs: int, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Seconds for *n_pairs* single-thread put + get pairs, after verification."""
    return _complete(prepare_pair(kind, n_pairs, timeout))


# --- spsc ------------------------------------------------------------------------


def prepare_spsc(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """1 producer + 1 consumer thread, maxsize 1024; see the module docstring."""
    q = kind(MAXSIZE)
    received: List[int] = []

    def produce() -> None:
        put = q.put
        for i in range(n_items):
            put(i)
        put(SENTINEL)

    def consume() -> None:
        relay_until_sentinel(q.get, received.append)

    def verify() -> None:
        if received != list(range(n_items)):
            raise WorkloadError(f"{kind.name}: spsc: {_describe_difference(received, n_items)}")

    return Trial(kind, [q], [("producer", produce), ("consumer", consume)], verify,
                 _items_per_second(n_items), timeout)


def spsc(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Seconds to move *n_items* ints from one thread to another, after verification."""
    return _complete(prepare_spsc(kind, n_items, timeout))


# --- mpmc ------------------------------------------------------------------------


def prepare_mpmc(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT,
                 producers: int = MPMC_PRODUCERS, consumers: int = MPMC_CONSUMERS) -> Trial:
    """*producers* producer and *consumers* consumer threads, maxsize 1024."""
    q = kind(MAXSIZE)
    bounds = [n_items * p // producers for p in range(producers + 1)]
    received: List[List[int]] = [[] for _ in range(consumers)]
    still_producing = [producers]
    count_lock = threading.Lock()

    def producer(first: int, stop: int) -> Callable[[], None]:
        def produce() -> None:
            put = q.put
            for i in range(first, stop):
                put(i)
            # The last producer out sends one sentinel per consumer: every item is
            # then ahead of every sentinel, whatever the interleaving.
            with count_lock:
                still_producing[0] -= 1
                last = still_producing[0] == 0
            if last:
                for _ in range(consumers):
                    put(SENTINEL)
        return produce

    def consumer(sink: List[int]) -> Callable[[], None]:
        def consume() -> None:
            relay_until_sentinel(q.get, sink.append)
        return consume

    def verify() -> None:
        everything = [item for sink in received for item in sink]
        count = len(everything)
        total = sum(everything)
        squares = sum(map(operator.mul, everything, everything))
        expected_total = n_items * (n_items - 1) // 2
        expected_squares = (n_items - 1) * n_items * (2 * n_items - 1) // 6
        if (count, total, squares) != (n_items, expected_total, expected_squares):
            raise WorkloadError(
                f"{kind.name}: mpmc: received {count:,} items (expected {n_items:,}), "
                f"sum {total:,} (expected {expected_total:,}), sum of squares "
                f"{squares:,} (expected {expected_squares:,}); per consumer: "
                f"{[len(sink) for sink in received]}")

    bodies = [(f"producer{p}", producer(bounds[p], bounds[p + 1])) for p in range(producers)]
    bodies += [(f"consumer{c}", consumer(received[c])) for c in range(consumers)]
    return Trial(kind, [q], bodies, verify, _items_per_second(n_items), timeout)


def mpmc(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Seconds to move *n_items* ints through 4 producers and 4 consumers."""
    return _complete(prepare_mpmc(kind, n_items, timeout))


# --- batch -----------------------------------------------------------------------


def prepare_batch(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT,
                  batch_size: int = BATCH_SIZE) -> Trial:
    """Batches of *batch_size* items in and out, with the kind's batch method."""
    n_batches = max(1, n_items // batch_size)
    q = kind(MAXSIZE)
    batches = [list(range(b * batch_size, (b + 1) * batch_size)) for b in range(n_batches)]
    returned: List[List[Any]] = []

    def move_batches() -> None:
        put_batch = kind.put_batch
        get_batch = kind.get_batch
        keep = returned.append
        for one_batch in batches:
            put_batch(q, one_batch)
            keep(get_batch(q, batch_size))

    def verify() -> None:
        if returned != batches:
            wrong = next((i for i, (got, sent) in enumerate(zip(returned, batches))
                          if list(got) != sent), len(returned))
            raise WorkloadError(f"{kind.name}: batch: {len(returned)} of {n_batches} batches "
                                f"came back; first wrong batch: #{wrong}")

    return Trial(kind, [q], [("batch", move_batches)], verify,
                 _items_per_second(n_batches * batch_size), timeout)


def batch(kind: QueueKind, n_items: int, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Seconds to move *n_items* ints in batches of 1000, after verification."""
    return _complete(prepare_batch(kind, n_items, timeout))


# --- pingpong --------------------------------------------------------------------


def prepare_pingpong(kind: QueueKind, n_round_trips: int,
                     timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """Round trips between two threads through two queues of maxsize 1."""
    requests = kind(1)
    replies = kind(1)
    outcome: Dict[str, int] = {}

    def ping() -> None:
        outcome["mismatches"] = count_mismatches(requests.put, replies.get, n_round_trips)
        requests.put(SENTINEL)

    def pong() -> None:
        relay_until_sentinel(requests.get, replies.put)

    def verify() -> None:
        _check(outcome.get("mismatches") == 0, kind,
               f"pingpong: {outcome.get('mismatches')} of {n_round_trips:,} replies "
               "differed from the int sent")

    def figures(seconds: float) -> Dict[str, float]:
        return {"seconds": seconds, "us_per_round_trip": seconds / n_round_trips * 1e6}

    return Trial(kind, [requests, replies], [("ping", ping), ("pong", pong)], verify,
                 figures, timeout)


def pingpong(kind: QueueKind, n_round_trips: int, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Seconds for *n_round_trips* round trips between two threads (maxsize 1)."""
    return _complete(prepare_pingpong(kind, n_round_trips, timeout))


# --- memory ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryFigures:
    """What tracemalloc saw one queue kind allocate."""

    bytes_per_empty_queue: float
    bytes_per_item: float


def _traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure_memory(kind: QueueKind, n_queues: int, n_items: int = MAXSIZE) -> MemoryFigures:
    """Bytes per empty queue (maxsize 1024) and per queued item, under tracemalloc.

    The items (distinct ints, too big for the small-int cache) and the list that
    keeps the queues alive are allocated before the baseline, so only the queues'
    own allocations are counted. One queue is built and dropped first so that
    one-time costs (imports, caches) are not charged to the measured ones.

    Per item: the growth from *n_items* to ``2 * n_items`` queued items, divided by
    *n_items*, in a queue of maxsize ``2 * n_items``. The first *n_items* puts are not
    counted because an allocator free list can serve them from memory freed earlier,
    which tracemalloc does not see being allocated again: CPython 3.9's deque keeps up
    to 16 freed blocks (64 items each) module-wide, so counting from an empty queue
    charged queue.Queue about 2 bytes an item, less than the pointer each item needs.
    Any such cache is bounded, and the first *n_items* puts drain it.
    """
    items = list(range(1_000_000, 1_000_000 + 2 * n_items))
    keep_alive: List[Any] = [None] * n_queues
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        kind(MAXSIZE)  # warm-up: one-time allocations are not per-queue costs
        before = _traced_bytes()
        for index in range(n_queues):
            keep_alive[index] = kind(MAXSIZE)
        per_queue = (_traced_bytes() - before) / n_queues
        del keep_alive[:]

        q = kind(2 * n_items)
        put = q.put
        for item in items[:n_items]:
            put(item)  # fills the queue past any free list; not counted
        before = _traced_bytes()
        for item in items[n_items:]:
            put(item)
        per_item = (_traced_bytes() - before) / n_items
        drained = [q.get() for _ in range(2 * n_items)]
        if drained != items:
            raise WorkloadError(f"{kind.name}: memory: the items did not come back in order")
    finally:
        if started_here:
            tracemalloc.stop()
    return MemoryFigures(per_queue, per_item)


def prepare_memory(kind: QueueKind, n_queues: int, timeout: float = DEFAULT_TIMEOUT) -> Trial:
    """The memory workload in a worker thread (a broken queue cannot block the caller)."""
    result: List[MemoryFigures] = []

    def measure() -> None:
        result.append(measure_memory(kind, n_queues))

    def verify() -> None:
        _check(len(result) == 1, kind, "memory: no figures")

    def figures(seconds: float) -> Dict[str, float]:
        return {"bytes_per_empty_queue": result[0].bytes_per_empty_queue,
                "bytes_per_item": result[0].bytes_per_item}

    return Trial(kind, [], [("memory", measure)], verify, figures, timeout)


def memory(kind: QueueKind, n_queues: int, timeout: float = DEFAULT_TIMEOUT) -> MemoryFigures:
    """Bytes per empty queue (averaged over *n_queues*) and per queued item."""
    trial = prepare_memory(kind, n_queues, timeout)
    seconds = _complete(trial)
    found = trial.figures(seconds)
    return MemoryFigures(found["bytes_per_empty_queue"], found["bytes_per_item"])


# --- the catalogue ---------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One figure a workload reports for each queue."""

    key: str
    label: str
    higher_is_better: bool
    #: printf-style format of one value in the table.
    fmt: str = "{:,.0f}"


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload as the runner and the pytest suite see it."""

    name: str
    #: What one run does; ``{size}`` is replaced by the size (thousands-separated).
    summary: str
    #: What the size counts ("items", "round trips", "queues").
    size_unit: str
    metrics: Tuple[Metric, ...]
    prepare: Callable[..., Trial]
    #: Size of one run in ``python -m ringq bench``, ``--quick``, and the pytest suite.
    default_size: int
    quick_size: int
    pytest_size: int
    #: Whether a slow peer's QueueKind.item_scale shrinks its runs of this workload.
    scalable: bool = True
    #: Builds this workload's entries from the available queue kinds (default:
    #: ``list``, i.e. every kind once, as it is).
    entries: Callable[[Sequence[QueueKind]], List[QueueKind]] = field(default=list)
    #: At most this many items for secondary peers (QueueKind.secondary), whose
    #: ~1 us per item would otherwise blow the CLI's one-minute budget.
    secondary_cap: Optional[int] = None
    #: True for the memory workload: queues whose storage tracemalloc cannot see
    #: (QueueKind.memory_traced false) get no ratios there.
    measures_memory: bool = False
    #: True when the entries move items with their QueueKind's batch_method (the
    #: table and the JSON then name the method of each entry).
    uses_batch_method: bool = False
    #: The entry the first ratio column compares with (an entry of this workload).
    reference: str = REFERENCE
    #: False for workloads that run only when asked for by name (--workload).
    in_default_run: bool = True

    def size_for(self, kind: QueueKind, size: int) -> int:
        """The size *kind* runs at in the CLI: *size*, or less for a slow peer."""
        if not self.scalable:
            return size
        scaled = size
        if kind.item_scale < 1.0:
            scaled = max(1, int(size * kind.item_scale))
        if kind.secondary and self.secondary_cap is not None:
            scaled = min(scaled, self.secondary_cap)
        if self.name == "batch":
            scaled = max(BATCH_SIZE, scaled - scaled % BATCH_SIZE)
        return scaled

    def describe(self, size: int) -> str:
        return self.summary.format(size=f"{size:,}")


ITEMS_PER_S = Metric("items_per_s", "items/s", higher_is_better=True)


def workload_table(*specs: WorkloadSpec) -> Dict[str, WorkloadSpec]:
    """A group's ``WORKLOADS`` dict, name -> spec, in the order given.

    Every workload module defines ``WORKLOADS = workload_table(...)``;
    :mod:`ringq.bench.registry` merges the groups for the runner.
    """
    table: Dict[str, WorkloadSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"workload {spec.name!r} is listed twice")
        table[spec.name] = spec
    return table


#: This module's group: the default run. Every workload, all groups together, is
#: :data:`ringq.bench.registry.WORKLOADS`.
WORKLOADS: Dict[str, WorkloadSpec] = workload_table(
    WorkloadSpec(
        "pair", "single-thread put + get pairs, {size} pairs, maxsize 1024", "pairs",
        (ITEMS_PER_S,), prepare_pair,
        default_size=200_000, quick_size=20_000, pytest_size=10_000,
        secondary_cap=100_000),
    WorkloadSpec(
        "spsc", "1 producer + 1 consumer thread, {size} small ints, maxsize 1024 "
        f"(and ringq at maxsize {CAPACITY_ROW_MAXSIZE})", "items",
        (ITEMS_PER_S,), prepare_spsc,
        default_size=1_000_000, quick_size=100_000, pytest_size=50_000,
        secondary_cap=250_000, entries=capacity_queue_kinds),
    WorkloadSpec(
        "mpmc", "4 producer + 4 consumer threads, {size} small ints, maxsize 1024", "items",
        (ITEMS_PER_S,), prepare_mpmc,
        default_size=100_000, quick_size=20_000, pytest_size=20_000),
    WorkloadSpec(
        "batch", "batches of 1000 items in and out, {size} items, maxsize 1024", "items",
        (ITEMS_PER_S,), prepare_batch,
        # ringq's batch calls move 100k items in well under a millisecond: more
        # items make its runs long enough to rise above timer and scheduler noise.
        default_size=300_000, quick_size=20_000, pytest_size=20_000,
        secondary_cap=100_000, entries=batch_queue_kinds, uses_batch_method=True),
    WorkloadSpec(
        "pingpong", "round trips between two threads, maxsize 1, {size} round trips",
        "round trips",
        (Metric("us_per_round_trip", "us/round trip", higher_is_better=False,
                fmt="{:,.2f}"),),
        prepare_pingpong,
        # Latency is not a matter of item counts: every queue runs in full.
        default_size=2_000, quick_size=500, pytest_size=500, scalable=False),
    WorkloadSpec(
        "memory", "tracemalloc: {size} empty queues of maxsize 1024; items 1025-2048 of a queue",
        "queues",
        (Metric("bytes_per_empty_queue", "bytes/empty queue", higher_is_better=False),
         Metric("bytes_per_item", "bytes/queued item", higher_is_better=False,
                fmt="{:,.1f}")),
        prepare_memory,
        # Deterministic figures: faster_fifo (item_scale) averages fewer queues.
        default_size=500, quick_size=100, pytest_size=100, measures_memory=True),
)
