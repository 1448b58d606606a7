"""``ringq.Pipeline``: stages of worker threads joined by bounded ``ringq.Queue`` s.

    >>> import ringq
    >>> with ringq.Pipeline(range(10)) as p:
    ...     p.stage(lambda x: x * x, workers=4, maxsize=8, ordered=True)
    ...     p.stage(lambda x: x if x % 2 else ringq.SKIP, workers=2)   # a filter
    ...     print(list(p))
    [1, 9, 25, 49, 81]

Shape. A reader thread takes the source's items and puts them into the first
stage's queue; each stage's workers take items from their queue, call the stage's
function and put what it returns into the next stage's queue; the caller takes the
last stage's results by iterating the pipeline (or lets :meth:`Pipeline.run` do it,
optionally into a sink queue). Every queue is bounded, so a slow stage slows down
everything before it, back to the source (backpressure, end to end).

Clean close. When the source is exhausted, the reader shuts the first queue down
(``Queue.shutdown()``, not immediate): the workers drain it, and the last worker of
a stage to leave shuts the next queue down in the same way. The iteration ends once
the last queue is drained.

The first error stops everything. An exception raised by a stage's function, or
by the source while it is read, is recorded (the first one wins), every queue is
shut down immediately (queued items are dropped, blocked threads wake up), and the
iteration (or ``run()``) joins every thread, then raises that exception, with the
traceback of where it was raised. Leaving the iteration early (``break``, an
exception in the loop body, ``close()``, leaving the ``with`` block) stops the
pipeline in the same way, without an error.

One token cancels it all. ``Pipeline(source, cancel=token)`` takes a
:class:`ringq.CancelToken`; every blocking queue call of the pipeline's threads
waits on it, so when it fires (``token.cancel()``, its deadline, or a parent's)
the pipeline stops as on an error: the source is no longer read, every blocked
thread wakes, every thread is joined, and the iteration (or ``run()``) raises
:class:`ringq.Cancelled`, chained to the token's own ``Cancelled``. A stage's
function that is running is not interrupted: a long one can read the same
token. A token that fires after the last result changes nothing.

What a stage's function returns:

* a value - passed on, ``None`` included;
* :data:`ringq.SKIP` - nothing is passed on (a filter);
* if the function is a generator function (``def f(x): yield ...``, also through
  ``functools.partial`` or as a method), every item it yields is passed on, none
  if it yields nothing (one in, many out).

This module is a toolkit layer on top of ``ringq.Queue``; the queue's core never
imports it. Sources and sinks are duck-typed: any iterable is a source, and an
object with ``get`` and ``shutdown`` methods (``ringq.Queue``, or another queue
with its API) is also shut down when the pipeline stops early, so the thread
reading it can leave; a sink needs ``put`` (and ``shutdown``, see :meth:`run`).
"""
from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import Collection
from collections.abc import Iterator as IteratorABC
from itertools import islice
from time import perf_counter
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Type,
    Union,
)

from ._asyncfn import async_kind, is_async_callable
from ._errors import Cancelled, ShutDown
from ._queue import CancelToken, Queue
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from typing_extensions import Self  # only for the annotations, which are never evaluated

__all__ = ["SKIP", "Pipeline", "StageStats"]

#: Default bound of a stage's input queue.
DEFAULT_MAXSIZE = 128
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

    def __repr__(self) -> str:
        return "ringq.SKIP"

    def __reduce__(self) -> str:
        return "SKIP"


#: Returned by a stage's function: pass nothing on for this input (``None`` is a value).
SKIP: Any = _Skip()


class StageStats(NamedTuple):
    """What one part of a pipeline did so far (:meth:`Pipeline.stats`).

    Times are summed over the part's workers, in seconds. ``queue_*`` describe the
    queue this part puts into: the next stage's, or the results' for the last one.
    A part that spends its time blocked on put waits for a slower part after it;
    one blocked on get waits for a slower part before it.
    """

    #: "source", or the stage's name (its function's ``__name__`` by default).
    name: str
    workers: int
    #: Items taken from its queue (for the source: items read from it).
    items_in: int
    #: Items put into the next queue.
    items_out: int
    #: Exceptions raised by its function (or by the source): 0 or 1, since the first stops everything.
    errors: int
    #: Time spent in its function (for the source: getting the next item from it).
    busy_seconds: float
    #: Time blocked waiting for an item from its queue.
    get_wait_seconds: float
    #: Time blocked waiting for room in the next queue (backpressure).
    put_wait_seconds: float
    #: Time waiting for the stage's rate limiter.
    rate_wait_seconds: float
    queue_maxsize: int
    #: The most items seen in the next queue, right after a put.
    queue_high_water: int


class _Counters:
    """One thread's tallies; written by that thread only, summed by stats()."""

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


def _takes_cancel(put: Callable[..., Any]) -> bool:
    """Whether a sink's *put* takes ``cancel=`` (a ``ringq.Queue``'s does)."""
    try:
        params = inspect.signature(put).parameters
    except (TypeError, ValueError):  # no signature to read: only our own queues are known to
        return isinstance(getattr(put, "__self__", None), Queue)
    return "cancel" in params


class _SourceFailed(Exception):
    """Internal: the source queue's ShutDown carries a producer's exception (args[0])."""


class _Stopped(Exception):
    """Internal: the next queue was shut down under a worker (the pipeline stops)."""


def _is_generator_function(fn: Callable[..., Any]) -> bool:
    # Sees through functools.partial and bound methods.
    return inspect.isgeneratorfunction(fn)


class _Stage:
    """A stage's settings, its queue, and its ordering state."""

    remote: Any = None  # a _process_stage.RemoteStage for processes=True

    def __init__(self, fn: Callable[[Any], Any], name: str, workers: int, maxsize: int, ordered: bool,
                 limiter: Optional[RateLimiter], window: int) -> None:
        self.fn = fn
        self.name = name
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
        self.inbox: Queue[Any] = Queue(maxsize)
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
            self.tokens = Queue(window)
            self.tokens.put_many([None] * window)


class Pipeline:
    """Stages of worker threads joined by bounded queues, fed from *source*.

    ``Pipeline(source)``: *source* is any iterable (a list, a generator, a file...)
    or a queue-like object such as ``ringq.Queue`` (iterated until it is shut
    down). Add stages with :meth:`stage`, then iterate the pipeline for the
    results, or call :meth:`run`. Use it as a context manager, so that leaving the
    block stops it and joins its threads whatever happened::

        with ringq.Pipeline(read_lines(path)) as p:
            p.stage(parse, workers=4, maxsize=100)
            p.stage(store, workers=2, maxsize=10, ordered=True)
            for result in p:
                ...

    ``cancel=token`` stops the whole pipeline when the token fires; the
    iteration then raises :class:`ringq.Cancelled`::

        token = ringq.CancelToken(timeout=60)          # or token.cancel() from any thread
        with ringq.Pipeline(urls, cancel=token) as p:
            p.stage(fetch, workers=8, maxsize=16)
            try:
                for page in p:
                    ...
            except ringq.Cancelled:
                ...                                    # stopped and joined: no thread left

    ``async def`` stage functions run as tasks on one event loop that the pipeline
    owns (made by *loop_factory*, default ``asyncio.new_event_loop``), in a thread of
    its own; from a coroutine, consume with ``async for`` / ``await p.arun(...)``
    inside ``async with p:``, which never block the caller's loop::

        async with ringq.Pipeline(urls) as p:
            p.stage(fetch_async, workers=50, rate=20)
            async for page in p:
                ...

    A pipeline runs once. See the module documentation for the close, error,
    cancellation and return-value rules.
    """

    def __init__(self, source: Iterable[Any], *, cancel: Optional[CancelToken] = None,
                 loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None) -> None:
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
        if loop_factory is not None and not callable(loop_factory):
            raise TypeError(f"loop_factory must be callable or None, not {type(loop_factory).__name__!r}")
        if not hasattr(source, "__iter__") and hasattr(source, "__aiter__"):  # async generators too
            raise TypeError(
                f"the source is an async iterable ({type(source).__name__!r}), which the pipeline's "
                "reader thread cannot read: pass a plain iterable, or a ringq.Queue that a task fills "
                "with 'await q.aput(item)' and shuts down at the end")
        self._loop_factory = loop_factory
        self._cancel = cancel
        # Set with _error when the first error was the token firing.
        self._cancelled = False
        # Fires when the pipeline stops (or with the user's token): run() passes it to
        # a sink's put, so that close() from another thread frees a put on a full sink.
        self._halt_token = cancel.child() if cancel is not None else CancelToken()
        self._source = source
        self._source_is_queue = callable(getattr(source, "get", None)) and callable(
            getattr(source, "shutdown", None))
        self._stages: List[_Stage] = []
        self._source_counters = _Counters()
        self._outbox: Optional[Queue[Any]] = None
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._error_where = ""
        self._started = False
        # The loop that runs the async stages (one for all of them; see _start), and
        # its tasks, which _halt cancels.
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: List[asyncio.Task[Any]] = []
        # Fires once every thread of the pipeline has left: what an async join awaits.
        self._all_exited = CancelToken()
        self._running = 0

    # --- building -----------------------------------------------------------------------

    def stage(self, fn: Callable[[Any], Any], *, workers: int = 1, maxsize: int = DEFAULT_MAXSIZE,
              ordered: bool = False, rate: Union[float, RateLimiter, None] = None,
              name: Optional[str] = None, window: Optional[int] = None,
              processes: bool = False, mp_context: Any = None) -> Pipeline:
        """Add a stage: *workers* threads calling ``fn(item)`` for each item.

        An ``async def`` *fn* (a coroutine function, or an async generator function
        for one in, many out) makes an async stage instead: *workers* tasks that
        ``await fn(item)``, on an event loop that the pipeline runs in a thread of
        its own (one loop for all its async stages). Every option below holds for it.

        * *maxsize*: bound of this stage's input queue (>= 1). The last stage's
          results wait in a queue of the same bound.
        * *ordered*: pass results on in the order the items came into this
          stage's queue, while the workers still run in parallel. It is per
          stage: an order lost before (an unordered stage with several workers)
          is not restored. At most *window* batches (default
          ``4 * workers``) may be in progress or waiting for an earlier one, so a
          slow item lets the other workers go on with up to ``window - 1`` more.
          A generator stage's outputs for one item are then kept together.
        * *rate*: at most this many calls a second over all the stage's workers
          (a :class:`ringq.RateLimiter` with burst 1), or a ``RateLimiter`` to
          share with others.
        * *name*: for :meth:`stats` (default: ``fn.__name__``).
        * *processes*: run ``fn`` in *workers* processes (*mp_context*: a
          multiprocessing context) instead of threads; see ringq._process_stage.

        Returns the pipeline, so calls can be chained.
        """
        if self._started:
            raise RuntimeError("cannot add a stage to a pipeline that has started")
        if not callable(fn):
            raise TypeError(f"a stage needs a callable, not {type(fn).__name__!r}")
        for label, value in (("workers", workers), ("maxsize", maxsize), ("window", window)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label} must be an integer, not {type(value).__name__!r}")
            if value < 1:
                raise ValueError(f"{label} must be >= 1")
        limiter: Optional[RateLimiter]
        if rate is None or isinstance(rate, RateLimiter):
            limiter = rate
        else:
            limiter = RateLimiter(rate, 1)
        if name is None:
            name = getattr(fn, "__name__", None) or type(fn).__name__
        remote = None
        if processes:
            from ._process_stage import RemoteStage

            remote = RemoteStage(fn, workers, mp_context)
            fn = remote.call
        self._stages.append(_Stage(fn, name, workers, maxsize, ordered, limiter,
                                   window if window is not None else 4 * workers))
        self._stages[-1].remote = remote
        return self

    # --- running ------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError("a pipeline runs once")
            self._started = True
        last_size = self._stages[-1].maxsize if self._stages else DEFAULT_MAXSIZE
        self._outbox = Queue(last_size)
        queues = [stage.inbox for stage in self._stages] + [self._outbox]
        threads = [threading.Thread(target=self._thread_main, args=(self._read_source, queues[0]),
                                    daemon=True, name="ringq-pipeline-source")]
        async_stages = []
        for index, stage in enumerate(self._stages):
            if stage.async_kind:
                async_stages.append((stage, queues[index + 1]))
                continue
            if stage.remote is not None and stage.limiter is None:
                # A process stage: a thread feeds batches to its processes, one passes the results on.
                for target, args, role in stage.remote.threads(self, stage, queues[index + 1]):
                    threads.append(threading.Thread(target=self._thread_main, args=(target, *args),
                                                    daemon=True, name=f"ringq-pipeline-{stage.name}-{role}"))
                continue
            work = self._work_ordered if stage.ordered else self._work
            for worker in range(stage.workers):
                threads.append(threading.Thread(
                    target=self._thread_main, args=(work, stage, stage.counters[worker], queues[index + 1]),
                    daemon=True, name=f"ringq-pipeline-{stage.name}-{worker}"))
        if async_stages:
            # One loop, in one thread, for every async stage of the pipeline. Async stages
            # wait (on I/O, timers, queues), they do not compute: one loop interleaves any
            # number of their tasks, and a loop per stage would only add a thread and GIL
            # hand-offs between stages (items pass between two async stages without leaving
            # the thread). The price: a coroutine that blocks its thread stalls every async
            # stage of the pipeline, as it would stall any asyncio program.
            factory = self._loop_factory if self._loop_factory is not None else asyncio.new_event_loop
            self._loop = factory()
            threads.append(threading.Thread(
                target=self._thread_main, args=(self._run_loop, self._loop, async_stages),
                daemon=True, name="ringq-pipeline-loop"))
        self._threads = threads
        self._running = len(threads)
        for thread in threads:
            thread.start()

    def _thread_main(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self._all_exited.cancel()  # wakes an async join (aclose, async for, arun)

    def __iter__(self) -> Iterator[Any]:
        """Start the pipeline and yield the last stage's results as they come."""
        self._start()
        return self._results()

    def _results(self) -> Iterator[Any]:
        assert self._outbox is not None
        get_many = self._outbox.get_many
        cancel = self._cancel
        finished = False
        try:
            while True:
                try:
                    batch = get_many(MAX_BATCH, cancel=cancel)
                except ShutDown:
                    break
                except Cancelled as exc:
                    self._fail(exc, "results")
                    break
                yield from batch
            finished = True
        finally:
            if not finished:
                self._halt()  # the caller left early: stop every stage
            self._join()
        self._raise_error()

    def _raise_error(self) -> None:
        """Raise the first error, if there was one (after every thread was joined)."""
        error = self._error
        if error is None:
            return
        try:
            if self._cancelled:
                raise Cancelled(f"the pipeline's cancel token fired ({error})") from error
            if isinstance(error, StopIteration):
                # Raised as it is, it would end the caller's iteration silently (or,
                # out of a generator, become "generator raised StopIteration").
                raise RuntimeError(
                    f"{self._error_where} raised StopIteration ({error!r}): a stage's function must "
                    "not raise it (a StopIteration cannot pass through an iteration); return "
                    "ringq.SKIP to pass nothing on, or raise another exception to stop the "
                    "pipeline") from error
            raise error
        finally:
            error = None

    def run(self, sink: Any = None, *, shutdown_sink: bool = True) -> int:
        """Run the pipeline to its end; return how many results came out.

        Without *sink* the results are dropped. With one, each result is
        ``sink.put(result)`` (so backpressure reaches the sink), and when the
        pipeline ends - cleanly or not - ``sink.shutdown()`` is called if
        *shutdown_sink* is true, so that the sink's consumers finish too. The
        first error is raised, as by the iteration.

        If ``sink.put`` takes ``cancel=`` (``ringq.Queue`` does), a put waiting on
        a full sink ends when the pipeline stops: when its token fires (``run()``
        then raises :class:`ringq.Cancelled`), or when ``close()`` is called from
        another thread (``run()`` then returns the count so far; the result being
        put is dropped, like the queued ones). A sink whose put does not take it is
        called as ``sink.put(result)``.
        """
        put: Optional[Callable[..., Any]] = sink.put if sink is not None else None
        if put is not None and is_async_callable(put):
            # Checked before the start: run() would only make coroutines and drop them.
            raise TypeError(f"the sink's put is async def ({type(sink).__name__}.put), which run() "
                            "cannot await: use 'await pipeline.arun(sink)' from a coroutine, or a "
                            "sink with a plain put such as ringq.Queue")
        results = iter(self)
        # A sink whose put takes cancel= (ringq.Queue and its kind) gets the pipeline's
        # halt token: its put then ends when the pipeline's token fires or when close()
        # is called from another thread, also while the sink is full.
        token = self._halt_token if put is not None and _takes_cancel(put) else None
        count = 0
        stopped = False
        try:
            for item in results:
                if token is not None and put is not None:
                    try:
                        put(item, cancel=token)
                    except Cancelled as exc:
                        user_token = self._cancel
                        if user_token is not None and user_token.cancelled:
                            self._fail(exc, "sink")  # raised below, like the iteration's
                        stopped = True  # else close() (or an error elsewhere) stopped us
                        break
                elif put is not None:
                    put(item)
                count += 1
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
            if sink is not None and shutdown_sink:
                sink.shutdown()
        if stopped:
            self._raise_error()
        return count

    def close(self) -> None:
        """Stop the pipeline (queued items are dropped) and wait for its threads."""
        if self._started:
            self._halt()
            self._join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    # --- from a coroutine -----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Any]:
        """Start the pipeline and yield its results to ``async for``, never blocking the loop.

        The caller's loop awaits the results' queue (``aget_many``); the stages run
        in the pipeline's own threads and loop, as for ``for``. Leaving the loop early
        stops the pipeline; ``async with pipeline:`` (or ``await pipeline.aclose()``)
        makes that happen, and every thread joined, before the next line runs.
        """
        self._start()
        return self._aresults()

    async def _aresults(self) -> AsyncIterator[Any]:
        assert self._outbox is not None
        aget_many = self._outbox.aget_many
        cancel = self._cancel
        finished = False
        try:
            while True:
                try:
                    batch = await aget_many(MAX_BATCH, cancel=cancel)
                except ShutDown:
                    break
                except Cancelled as exc:
                    self._fail(exc, "results")
                    break
                for item in batch:
                    yield item
            finished = True
        finally:
            if not finished:
                self._halt()  # the caller left early: stop every stage
            await self._ajoin()
        self._raise_error()

    async def arun(self, sink: Any = None, *, shutdown_sink: bool = True) -> int:
        """``run()`` for a coroutine: ``count = await pipeline.arun(sink)``, never blocking the loop.

        A sink with an ``aput`` (``ringq.Queue``) gets ``await sink.aput(result)``,
        one whose ``put`` is ``async def`` (``asyncio.Queue``) ``await sink.put(result)``;
        a sink with only a plain ``put`` is called directly, and must not block.
        Otherwise as :meth:`run`: the count, the first error raised, *shutdown_sink*.
        """
        put: Optional[Callable[..., Any]] = None
        awaited = False
        if sink is not None:
            put = getattr(sink, "aput", None)
            if callable(put):
                awaited = True
            else:
                put = sink.put
                awaited = is_async_callable(put)
        token = self._halt_token if put is not None and awaited and _takes_cancel(put) else None
        results = self._aresults_started()
        count = 0
        stopped = False
        try:
            async for item in results:
                if token is not None and put is not None:
                    try:
                        await put(item, cancel=token)
                    except Cancelled as exc:
                        user_token = self._cancel
                        if user_token is not None and user_token.cancelled:
                            self._fail(exc, "sink")  # raised below, like the iteration's
                        stopped = True  # else aclose() (or an error elsewhere) stopped us
                        break
                elif awaited and put is not None:
                    await put(item)
                elif put is not None:
                    put(item)
                count += 1
        finally:
            await results.aclose()  # type: ignore[attr-defined]
            if sink is not None and shutdown_sink:
                sink.shutdown()
        if stopped:
            self._raise_error()
        return count

    def _aresults_started(self) -> AsyncIterator[Any]:
        return self.__aiter__()

    async def aclose(self) -> None:
        """``close()`` for a coroutine: stop the pipeline and await the end of its threads."""
        if self._started:
            self._halt()
            await self._ajoin()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        await self.aclose()

    async def _ajoin(self) -> None:
        """_join() without blocking the running loop: await the last thread's exit first."""
        if self._threads:
            await self._all_exited.await_cancelled()
        self._join()  # each thread has left its target: these joins return at once

    # --- stopping -----------------------------------------------------------------------

    def _fail(self, exc: BaseException, where: str) -> None:
        with self._lock:
            first = self._error is None
            if first:
                self._error = exc
                self._error_where = where
                # A Cancelled once the token fired, from a queue call or from a
                # stage's function that reads the token: the pipeline was cancelled.
                token = self._cancel
                self._cancelled = isinstance(exc, Cancelled) and token is not None and token.cancelled
        if first and sys.version_info >= (3, 11):
            exc.add_note(f"(raised in ringq.Pipeline {where})")
        self._halt()

    def _halt(self) -> None:
        """Stop everything now: every blocked thread wakes up and leaves, every task is cancelled."""
        self._stop.set()
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._cancel_tasks)
            except RuntimeError:
                pass  # the loop is closed: its tasks have all ended
        self._halt_token.cancel()  # frees run()'s put on a full sink
        for stage in self._stages:
            stage.inbox.shutdown(immediate=True)
            if stage.tokens is not None:
                stage.tokens.shutdown(immediate=True)
        if self._outbox is not None:
            self._outbox.shutdown(immediate=True)
        for stage in self._stages:
            if stage.remote is not None:
                stage.remote.terminate()
        if self._source_is_queue:
            try:
                # Not immediate: what the source still holds stays there for its owner.
                self._source.shutdown()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - best effort; the reader may still be blocked
                pass

    def _join(self) -> None:
        me = threading.current_thread()
        for thread in self._threads:
            if thread is not me:
                thread.join()
        for stage in self._stages:
            if stage.remote is not None:
                stage.remote.close()

    # --- threads ------------------------------------------------------------------------

    def _read_source(self, out: Queue[Any]) -> None:
        counters = self._source_counters
        put = out.put
        put_many = out.put_many
        qsize = out.qsize
        stop = self._stop
        source = self._source
        cancel = self._cancel
        iterator: Any = None
        try:
            get_many = getattr(source, "get_many", None) if self._source_is_queue else None
            if get_many is not None:
                # A queue: take what it holds (up to MAX_BATCH) without waiting for more.
                def pull() -> List[Any]:
                    try:
                        return list(get_many(MAX_BATCH))
                    except ShutDown as exc:
                        if exc.__cause__ is not None:
                            raise _SourceFailed(exc) from None  # a producer left on an error
                        return []  # shut down and drained: the end of the source
            elif isinstance(source, Collection) and not isinstance(source, IteratorABC):
                # In memory (list, tuple, range, dict, set...): taking a slice never waits.
                iterator = iter(source)

                def pull() -> List[Any]:
                    return list(islice(iterator, MAX_BATCH))
            else:
                # Anything else (generators, files, sockets) one item at a time: an item
                # already read must not wait in here while the next one is slow to come.
                iterator = iter(source)
                next_item = iterator.__next__

                def pull() -> List[Any]:
                    try:
                        return [next_item()]
                    except StopIteration:
                        return []  # exhausted
                    except ShutDown as exc:
                        if exc.__cause__ is not None:
                            raise _SourceFailed(exc) from None  # a producer left on an error
                        return []  # a queue-like iterator: shut down and drained
            while True:
                t0 = perf_counter()
                batch = pull()
                if not batch:
                    break
                t1 = perf_counter()
                counters.busy += t1 - t0
                counters.items_in += len(batch)
                if stop.is_set():
                    return
                if len(batch) == 1:
                    put(batch[0], cancel=cancel)
                else:
                    put_many(batch, cancel=cancel)
                counters.put_wait += perf_counter() - t1
                counters.items_out += len(batch)
                size = qsize()
                if size > counters.high_water:
                    counters.high_water = size
        except _SourceFailed as failed:
            # `for x in q` raises this ShutDown, chained to the producer's exception:
            # the pipeline raises it too, instead of ending as if the stream were complete.
            counters.errors += 1
            self._fail(failed.args[0], "source")
            return
        except ShutDown:
            return  # our queue was shut down: the pipeline is stopping
        except Cancelled as exc:
            if cancel is None or not cancel.cancelled:
                counters.errors += 1  # raised by the source itself, not by our token
            self._fail(exc, "source")
            return
        except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
            counters.errors += 1
            self._fail(exc, "source")
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None and not self._source_is_queue:
                try:
                    close()  # a generator source runs its finally blocks now
                except Exception:  # noqa: BLE001 - an error while closing is not the pipeline's
                    pass
        out.shutdown()  # clean end: the first stage drains its queue, then stops

    def _call_all(self, stage: _Stage, batch: List[Any], counters: _Counters,
                  flush: Optional[Callable[[List[Any]], None]]) -> List[Any]:
        """Run the stage's function on *batch*; return the outputs not yet passed on."""
        fn = stage.fn
        limiter = stage.limiter
        if stage.remote is not None and limiter is None:
            done: List[Any] = stage.remote.run_batch(batch)  # the batch, in a process
            return done
        out: List[Any] = []
        if limiter is None and not stage.generator:
            append = out.append
            for item in batch:
                result = fn(item)
                if result is not SKIP:
                    append(result)
            return out
        stop = self._stop
        for item in batch:
            if limiter is not None:
                t0 = perf_counter()
                if not limiter._acquire_or_stop(stop):
                    raise _Stopped
                counters.rate_wait += perf_counter() - t0
            if stage.generator:
                for result in fn(item):
                    out.append(result)
                    if flush is not None and len(out) >= FLUSH_EVERY:
                        flush(out)
                        out = []
            else:
                result = fn(item)
                if result is not SKIP:
                    out.append(result)
        return out

    def _worker_done(self, stage: _Stage, out: Queue[Any]) -> None:
        with stage.lock:
            stage.alive -= 1
            last = stage.alive == 0
        if last:
            out.shutdown()  # clean end: the next stage drains, then stops

    def _work(self, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
        get_many = stage.inbox.get_many
        put_many = out.put_many
        qsize = out.qsize
        cancel = self._cancel
        where = f"stage {stage.name!r}"
        batch_size = 1

        def flush(items: List[Any]) -> None:
            t0 = perf_counter()
            try:
                put_many(items, cancel=cancel)
            except ShutDown:
                raise _Stopped from None
            except Cancelled as exc:
                self._fail(exc, where)
                raise _Stopped from None
            counters.put_wait += perf_counter() - t0
            counters.items_out += len(items)
            size = qsize()
            if size > counters.high_water:
                counters.high_water = size

        try:
            while True:
                t0 = perf_counter()
                try:
                    batch = get_many(batch_size, cancel=cancel)
                except ShutDown:
                    break
                except Cancelled as exc:
                    self._fail(exc, where)
                    return
                t1 = perf_counter()
                counters.get_wait += t1 - t0
                counters.items_in += len(batch)
                rate_wait = counters.rate_wait
                put_wait = counters.put_wait
                try:
                    results = self._call_all(stage, batch, counters, flush)
                except _Stopped:
                    return
                except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
                    if not (isinstance(exc, Cancelled) and cancel is not None and cancel.cancelled):
                        counters.errors += 1  # (the token firing is not the function's error)
                    self._fail(exc, where)
                    return
                # A generator stage's flushes wait to put while it runs: not busy time.
                busy = (perf_counter() - t1 - (counters.rate_wait - rate_wait)
                        - (counters.put_wait - put_wait))
                counters.busy += busy
                if results:
                    try:
                        flush(results)
                    except _Stopped:
                        return
                batch_size = max(1, min(MAX_BATCH, int(BATCH_SECONDS * len(batch) / busy))
                                 if busy > 0 else MAX_BATCH)
        finally:
            self._worker_done(stage, out)

    def _work_ordered(self, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
        get_many = stage.inbox.get_many
        put_many = out.put_many
        qsize = out.qsize
        assert stage.tokens is not None
        take_token = stage.tokens.get
        give_tokens = stage.tokens.put_many
        cancel = self._cancel
        where = f"stage {stage.name!r}"
        batch_size = 1
        try:
            while True:
                t0 = perf_counter()
                try:
                    take_token(cancel=cancel)
                except ShutDown:
                    return  # the pipeline is stopping (_halt shut the tokens down)
                except Cancelled as exc:
                    self._fail(exc, where)
                    return
                try:
                    with stage.take_lock:
                        batch = get_many(batch_size, cancel=cancel)
                        seq = stage.next_seq
                        stage.next_seq = seq + 1
                except ShutDown:
                    # The clean end: give our window token back, or a worker waiting
                    # for one (window < workers) would wait for ever.
                    try:
                        give_tokens([None])
                    except ShutDown:
                        pass  # the pipeline is stopping anyway
                    break
                except Cancelled as exc:
                    self._fail(exc, where)
                    return
                t1 = perf_counter()
                counters.get_wait += t1 - t0
                counters.items_in += len(batch)
                rate_wait = counters.rate_wait
                try:
                    results = self._call_all(stage, batch, counters, None)
                except _Stopped:
                    return
                except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
                    if not (isinstance(exc, Cancelled) and cancel is not None and cancel.cancelled):
                        counters.errors += 1  # (the token firing is not the function's error)
                    self._fail(exc, where)
                    return
                busy = perf_counter() - t1 - (counters.rate_wait - rate_wait)
                counters.busy += busy
                batch_size = max(1, min(MAX_BATCH, int(BATCH_SECONDS * len(batch) / busy))
                                 if busy > 0 else MAX_BATCH)
                # Hand the results in; pass on every batch now due, in order.
                with stage.lock:
                    stage.done[seq] = results
                    if stage.emitting:
                        continue  # the emitting worker will pass ours on
                    stage.emitting = True
                while True:
                    with stage.lock:
                        due = stage.done.pop(stage.next_emit, None)
                        if due is None:
                            stage.emitting = False
                            break
                        stage.next_emit += 1
                    t2 = perf_counter()
                    try:
                        if due:
                            put_many(due, cancel=cancel)
                        give_tokens([None], cancel=cancel)
                    except ShutDown:
                        return
                    except Cancelled as exc:
                        self._fail(exc, where)
                        return
                    counters.put_wait += perf_counter() - t2
                    counters.items_out += len(due)
                    size = qsize()
                    if size > counters.high_water:
                        counters.high_water = size
        finally:
            self._worker_done(stage, out)

    # --- the async stages' loop ------------------------------------------------------------

    def _run_loop(self, loop: asyncio.AbstractEventLoop, stages: List[Any]) -> None:
        try:
            asyncio.set_event_loop(loop)  # for code in a stage that asks for "the" loop
            loop.run_until_complete(self._async_main(stages))
        finally:
            try:
                # No async generator, executor thread or task of ours is left behind.
                loop.run_until_complete(loop.shutdown_asyncgens())
                shutdown_executor = getattr(loop, "shutdown_default_executor", None)
                if shutdown_executor is not None:
                    loop.run_until_complete(shutdown_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _async_main(self, stages: List[Any]) -> None:
        create_task = asyncio.get_running_loop().create_task
        workers = []
        for stage, out in stages:
            if stage.ordered:
                stage.atake_lock = asyncio.Lock()
            work = self._awork_ordered if stage.ordered else self._awork
            for worker in range(stage.workers):
                workers.append(create_task(work(stage, stage.counters[worker], out)))
        watcher = create_task(self._watch_token(self._cancel)) if self._cancel is not None else None
        self._tasks = workers + ([watcher] if watcher is not None else [])
        if self._stop.is_set():
            self._cancel_tasks()  # _halt came before the tasks were made
        try:
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    def _cancel_tasks(self) -> None:
        """On the loop: cancel every task of the async stages (the pipeline is stopping)."""
        for task in self._tasks:
            task.cancel()

    async def _watch_token(self, token: CancelToken) -> None:
        # The async stages' own wait on the pipeline's token, so that it cancels a
        # coroutine that is running (a thread stage's function is not interrupted).
        await token.await_cancelled()  # its cancel(), its deadline or a parent's
        try:
            token.raise_if_cancelled()
        except Cancelled as exc:
            self._fail(exc, "cancel token")

    def _stage_error(self, exc: BaseException, counters: _Counters, where: str) -> None:
        cancel = self._cancel
        if not (isinstance(exc, Cancelled) and cancel is not None and cancel.cancelled):
            counters.errors += 1  # (the token firing is not the function's error)
        self._fail(exc, where)

    async def _acall_all(self, stage: _Stage, batch: List[Any], counters: _Counters,
                         flush: Optional[Callable[[List[Any]], Any]]) -> List[Any]:
        """_call_all for an async stage: await ``fn(item)`` for each item of *batch*."""
        fn = stage.fn
        limiter = stage.limiter
        out: List[Any] = []
        if limiter is None and not stage.generator:
            append = out.append
            for item in batch:
                result = await fn(item)
                if result is not SKIP:
                    append(result)
            return out
        for item in batch:
            if limiter is not None:
                t0 = perf_counter()
                await limiter.aacquire()  # on this loop's timer; a cancelled wait gives its token back
                counters.rate_wait += perf_counter() - t0
            if stage.generator:
                agen = fn(item)
                try:
                    async for result in agen:
                        out.append(result)
                        if flush is not None and len(out) >= FLUSH_EVERY:
                            await flush(out)
                            out = []
                finally:
                    await agen.aclose()
            else:
                result = await fn(item)
                if result is not SKIP:
                    out.append(result)
        return out

    async def _awork(self, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
        aget_many = stage.inbox.aget_many
        aput_many = out.aput_many
        qsize = out.qsize
        cancel = self._cancel
        stop = self._stop
        where = f"stage {stage.name!r}"
        batch_size = 1

        async def flush(items: List[Any]) -> None:
            t0 = perf_counter()
            try:
                await aput_many(items, cancel=cancel)
            except ShutDown:
                raise _Stopped from None
            except Cancelled as exc:
                self._fail(exc, where)
                raise _Stopped from None
            counters.put_wait += perf_counter() - t0
            counters.items_out += len(items)
            size = qsize()
            if size > counters.high_water:
                counters.high_water = size

        try:
            while True:
                t0 = perf_counter()
                try:
                    batch = await aget_many(batch_size, cancel=cancel)
                except ShutDown:
                    break
                except Cancelled as exc:
                    self._fail(exc, where)
                    return
                t1 = perf_counter()
                counters.get_wait += t1 - t0
                counters.items_in += len(batch)
                rate_wait = counters.rate_wait
                put_wait = counters.put_wait
                try:
                    results = await self._acall_all(stage, batch, counters, flush)
                except _Stopped:
                    return
                except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
                    if isinstance(exc, asyncio.CancelledError) and stop.is_set():
                        return  # _halt cancelled us
                    self._stage_error(exc, counters, where)
                    return
                busy = (perf_counter() - t1 - (counters.rate_wait - rate_wait)
                        - (counters.put_wait - put_wait))
                counters.busy += busy
                if results:
                    try:
                        await flush(results)
                    except _Stopped:
                        return
                batch_size = max(1, min(MAX_BATCH, int(BATCH_SECONDS * len(batch) / busy))
                                 if busy > 0 else MAX_BATCH)
        except asyncio.CancelledError:
            if not stop.is_set():
                raise  # not ours (nothing else cancels these tasks)
        finally:
            self._worker_done(stage, out)

    async def _awork_ordered(self, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
        # _work_ordered on the loop. Every worker of the stage runs on this one thread, so
        # stage.done/next_emit/emitting change only between awaits: no thread lock.
        aget_many = stage.inbox.aget_many
        aput_many = out.aput_many
        qsize = out.qsize
        assert stage.tokens is not None
        take_token = stage.tokens.aget
        give_token = stage.tokens.put_nowait  # never more than `window` tokens: never full
        take_lock = stage.atake_lock
        cancel = self._cancel
        stop = self._stop
        where = f"stage {stage.name!r}"
        batch_size = 1
        try:
            while True:
                t0 = perf_counter()
                try:
                    await take_token(cancel=cancel)
                except ShutDown:
                    return  # the pipeline is stopping (_halt shut the tokens down)
                except Cancelled as exc:
                    self._fail(exc, where)
                    return
                try:
                    async with take_lock:
                        batch = await aget_many(batch_size, cancel=cancel)
                        seq = stage.next_seq
                        stage.next_seq = seq + 1
                except ShutDown:
                    try:
                        give_token(None)  # the clean end: a worker may wait for our token
                    except ShutDown:
                        pass
                    break
                except Cancelled as exc:
                    self._fail(exc, where)
                    return
                t1 = perf_counter()
                counters.get_wait += t1 - t0
                counters.items_in += len(batch)
                rate_wait = counters.rate_wait
                try:
                    results = await self._acall_all(stage, batch, counters, None)
                except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
                    if isinstance(exc, asyncio.CancelledError) and stop.is_set():
                        return  # _halt cancelled us
                    self._stage_error(exc, counters, where)
                    return
                busy = perf_counter() - t1 - (counters.rate_wait - rate_wait)
                counters.busy += busy
                batch_size = max(1, min(MAX_BATCH, int(BATCH_SECONDS * len(batch) / busy))
                                 if busy > 0 else MAX_BATCH)
                stage.done[seq] = results
                if stage.emitting:
                    continue  # the emitting worker will pass ours on
                stage.emitting = True
                while True:
                    due = stage.done.pop(stage.next_emit, None)
                    if due is None:
                        stage.emitting = False
                        break
                    stage.next_emit += 1
                    t2 = perf_counter()
                    try:
                        if due:
                            await aput_many(due, cancel=cancel)
                        give_token(None)
                    except ShutDown:
                        return
                    except Cancelled as exc:
                        self._fail(exc, where)
                        return
                    counters.put_wait += perf_counter() - t2
                    counters.items_out += len(due)
                    size = qsize()
                    if size > counters.high_water:
                        counters.high_water = size
        except asyncio.CancelledError:
            if not stop.is_set():
                raise  # not ours (nothing else cancels these tasks)
        finally:
            self._worker_done(stage, out)

    # --- statistics ---------------------------------------------------------------------

    def stats(self) -> List[StageStats]:
        """Per part, in order: the source, then each stage (see :class:`StageStats`).

        May be called at any time, also while the pipeline runs (the figures are
        then a moment's snapshot) and after it ended.
        """
        first_queue = self._stages[0].maxsize if self._stages else (
            self._outbox.maxsize if self._outbox is not None else DEFAULT_MAXSIZE)
        parts = [("source", 1, [self._source_counters], first_queue)]
        for index, stage in enumerate(self._stages):
            if index + 1 < len(self._stages):
                next_size = self._stages[index + 1].maxsize
            else:
                next_size = stage.maxsize  # the results' queue has the last stage's bound
            parts.append((stage.name, stage.workers, stage.counters, next_size))
        return [
            StageStats(
                name=name, workers=workers,
                items_in=sum(c.items_in for c in counters),
                items_out=sum(c.items_out for c in counters),
                errors=sum(c.errors for c in counters),
                busy_seconds=sum(c.busy for c in counters),
                get_wait_seconds=sum(c.get_wait for c in counters),
                put_wait_seconds=sum(c.put_wait for c in counters),
                rate_wait_seconds=sum(c.rate_wait for c in counters),
                queue_maxsize=size,
                queue_high_water=max(c.high_water for c in counters),
            )
            for name, workers, counters, size in parts
        ]

    def __repr__(self) -> str:
        stages = " -> ".join(f"{s.name}x{s.workers}" for s in self._stages) or "(no stages)"
        return f"<ringq.Pipeline source -> {stages}>"
