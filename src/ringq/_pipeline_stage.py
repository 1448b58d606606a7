"""What every part of a ``ringq.Pipeline`` shares (see the map in ``ringq.pipeline``).

A stage's settings, its input queue and its ordering window (:class:`_Stage`); one
thread's (or task's) tallies and how a worker measures itself (:class:`_Counters`);
``SKIP``; the tuning constants. The thread side (``_pipeline_threads``) and the
loop side (``_pipeline_async``) both work through these, so they count, size their
batches and pass ordered results on in the same way.
"""
from __future__ import annotations

import asyncio
import inspect
import threading
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Type

from ._asyncfn import async_kind
from ._errors import Cancelled, ShutDown

if TYPE_CHECKING:
    from ._queue import Queue
    from .pipeline import Pipeline
    from .ratelimit import RateLimiter

#: Default bound of a stage's input queue.
DEFAULT_MAXSIZE = 128
#: ... of a process stage's, and of the one after it: a process stage moves batches of
#: up to this many items (about 10 ms of work each; _process_stage.MAX_BATCH), and a
#: smaller queue on either side cuts them down, or hands them over in small pieces.
PROCESS_MAXSIZE = 4096
#: A worker takes as many queued items at once as it can process in about this
#: long (measured on the items before), between 1 and MAX_BATCH: trivial functions
#: move in batches, slow ones one item at a time so that the work spreads evenly
#: over the workers.
BATCH_SECONDS = 0.0005
MAX_BATCH = 256
#: A generator stage passes its outputs on in groups of at most this many.
FLUSH_EVERY = 64


class _Skip:
    """The type of :data:`SKIP` (one instance; copies and pickles are that instance)."""

    __slots__ = ()
    # Pickled by reference under its public name, ringq.pipeline.SKIP (as before the split).
    __module__ = "ringq.pipeline"

    def __repr__(self) -> str:
        return "ringq.SKIP"

    def __reduce__(self) -> str:
        return "SKIP"


#: Returned by a stage's function: pass nothing on for this input (``None`` is a value).
SKIP: Any = _Skip()


class _SourceFailed(Exception):
    """Internal: the source queue's ShutDown carries a producer's exception (args[0])."""


class _Stopped(Exception):
    """Internal: the next queue was shut down under a worker (the pipeline stops)."""


class _FunctionFailed(Exception):
    """Internal: the stage's function raised args[0]; carried from call_all to WorkerExit."""


class _Counters:
    """One thread's tallies; written by that thread (or task) only, summed by stats()."""

    __slots__ = ("items_in", "items_out", "errors", "busy", "get_wait", "put_wait", "rate_wait",
                 "high_water")

    def __init__(self) -> None:
        self.items_in = 0
        self.items_out = 0
        self.errors = 0
        self.busy = 0.0
        self.get_wait = 0.0
        self.put_wait = 0.0
        self.rate_wait = 0.0
        self.high_water = 0

    def took(self, t0: float, n: int) -> float:
        """A worker got *n* items, after waiting since *t0*: count them, and return the
        mark from which :meth:`worked` measures the call that follows."""
        now = perf_counter()
        self.get_wait += now - t0
        self.items_in += n
        return now - self.rate_wait - self.put_wait

    def worked(self, mark: float, n: int) -> int:
        """The stage's function ran on *n* items since *mark*: add the time it was busy
        (not the waits for the rate limiter, nor a generator stage's waits to put, which
        are counted as such), and return how many items to take next."""
        busy = perf_counter() - mark - self.rate_wait - self.put_wait
        self.busy += busy
        return max(1, min(MAX_BATCH, int(BATCH_SECONDS * n / busy))) if busy > 0 else MAX_BATCH

    def sent(self, t0: float, n: int, out: Queue[Any]) -> None:
        """*n* items went into *out*, after waiting for room since *t0*: count them."""
        self.put_wait += perf_counter() - t0
        self.items_out += n
        size = out.qsize()
        if size > self.high_water:
            self.high_water = size


def _is_generator_function(fn: Callable[..., Any]) -> bool:
    # Sees through functools.partial and bound methods.
    return inspect.isgeneratorfunction(fn)


class _Stage:
    """A stage's settings, its queue, and its ordering state."""

    remote: Any = None  # a _process_stage.RemoteStage for processes=True

    def __init__(self, fn: Callable[[Any], Any], name: str, workers: int, maxsize: int, ordered: bool,
                 limiter: Optional[RateLimiter], window: int, queue_type: Callable[[int], Queue[Any]]) -> None:
        self.fn = fn
        self.name = name
        self.where = f"stage {name!r}"  # where an error came from, for the pipeline's error
        self.workers = workers
        self.maxsize = maxsize
        self.ordered = ordered
        self.limiter = limiter
        self.window = window
        # "coroutine" / "async generator": the stage runs as tasks on the pipeline's loop.
        self.async_kind = async_kind(fn)
        self.generator = (self.async_kind == "async generator" if self.async_kind
                          else _is_generator_function(fn))
        # The ordered take lock of an async stage: an asyncio.Lock made on the loop.
        self.atake_lock: Any = None
        self.inbox: Queue[Any] = queue_type(maxsize)
        self.counters = [_Counters() for _ in range(workers)]
        self.lock = threading.Lock()
        self.alive = workers
        # Ordered stages: a worker takes a batch and its sequence number under
        # take_lock (held while it waits for items: the other workers would be
        # waiting for that same next item anyway). Finished batches wait in `done`
        # until every earlier one has been passed on; whoever finishes the next
        # batch due becomes the one `emitting` them, in order, outside the lock.
        # `window` tokens bound how many batches may be taken and not yet passed
        # on, so one slow item holds back at most window - 1 others.
        self.take_lock = threading.Lock()
        self.next_seq = 0
        self.next_emit = 0
        self.done: Dict[int, List[Any]] = {}
        self.emitting = False
        self.tokens: Optional[Queue[None]] = None
        if ordered:
            self.tokens = queue_type(window)
            self.tokens.put_many([None] * window)

    def hand_in(self, seq: int, results: List[Any]) -> bool:
        """An ordered worker finished batch *seq*: True if it is now the one to pass on
        the batches due (:meth:`due_batches`); False if another worker already is."""
        with self.lock:
            self.done[seq] = results
            if self.emitting:
                return False  # the emitting worker will pass ours on
            self.emitting = True
            return True

    def due_batches(self) -> Iterator[List[Any]]:
        """For the emitting worker: the finished batches due, in order, until the next one
        due is not finished yet (then another worker's hand_in() takes over)."""
        while True:
            with self.lock:  # never held while the worker puts (or awaits)
                due = self.done.pop(self.next_emit, None)
                if due is None:
                    self.emitting = False
                    return
                self.next_emit += 1
            yield due

    def give_back_token(self) -> None:
        """The clean end of an ordered worker: give its window token back, or a worker
        waiting for one (window < workers) would wait for ever."""
        assert self.tokens is not None
        try:
            self.tokens.put_nowait(None)  # never more than `window` tokens: never full
        except ShutDown:
            pass  # the pipeline is stopping anyway

    def worker_left(self, out: Queue[Any]) -> None:
        """A worker of this stage ends; the last one shuts the next queue down."""
        with self.lock:
            self.alive -= 1
            last = self.alive == 0
        if last:
            out.shutdown()  # clean end: the next stage drains, then stops


class WorkerExit:
    """Around a stage worker's loop (thread or task): how each way out of it ends.

    The loop itself only gets, calls and puts; what stops it lands here:

    * ``ShutDown`` from its get: its queue is drained, the clean end (from a put: the
      pipeline is stopping); ``_Stopped``: the pipeline is stopping;
    * ``Cancelled`` from a queue call: the pipeline's token fired;
    * ``_FunctionFailed``: the stage's function raised, the stage's error;
    * ``asyncio.CancelledError`` (a task only): ``_halt`` cancelled it, unless the
      pipeline is not stopping (then it is not ours and goes on).

    Whichever it was, the stage's last worker to leave shuts the next queue down.
    """

    __slots__ = ("pipe", "stage", "counters", "out")

    def __init__(self, pipe: Pipeline, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
        self.pipe = pipe
        self.stage = stage
        self.counters = counters
        self.out = out

    def __enter__(self) -> None:
        return None

    def put_ended(self, exc: Exception) -> _Stopped:
        """The worker's put of results ended with *exc* (``ShutDown`` or ``Cancelled``):
        record a token firing now; return the ``_Stopped`` to raise. Also for a put made
        amid the stage's function (a generator stage's outputs), which call_all passes
        through as it is, and not as the function's error."""
        if isinstance(exc, Cancelled):
            self.pipe._fail(exc, self.stage.where)
        return _Stopped()

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> bool:
        try:
            if exc is None or isinstance(exc, (ShutDown, _Stopped)):
                return True
            if isinstance(exc, Cancelled):
                self.pipe._fail(exc, self.stage.where)
                return True
            if isinstance(exc, _FunctionFailed):
                error = exc.args[0]
                token = self.pipe._cancel
                if not (isinstance(error, Cancelled) and token is not None and token.cancelled):
                    self.counters.errors += 1  # (the token firing is not the function's error)
                self.pipe._fail(error, self.stage.where)
                return True
            return isinstance(exc, asyncio.CancelledError) and self.pipe._stop.is_set()
        finally:
            self.stage.worker_left(self.out)
