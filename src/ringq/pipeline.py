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

The code. This module is the public surface: :class:`Pipeline` (building, starting,
consuming with ``for``, ``async for``, ``run`` or ``arun``, stopping) and
:class:`StageStats`. Behind it, private modules, one concern each:

* ``_pipeline_stage``: what every part shares - a stage's settings, input queue and
  ordering window (``_Stage``), a thread's tallies (``_Counters``), how a worker's
  loop ends (``WorkerExit``), ``SKIP`` and the tuning constants;
* ``_pipeline_threads``: what the threads run - the source reader (one thread) and
  the workers of the thread stages (*workers* threads each);
* ``_pipeline_async``: the async stages - one event loop in one thread of its own,
  their workers as tasks on it: the thread workers' steps, with the queue calls awaited;
* ``_process_stage``: the process pool of a ``processes=True`` stage, which its
  threads call.

Stage *i*'s threads get from queue *i* (``_Stage.inbox``) and put into queue *i + 1*;
the last stage's into the results' queue (``_outbox``), which the caller reads. Shutdown
order: on the clean end each queue is shut down, not immediately, by the one part that
fills it - the reader, then each stage's last worker to leave (``_Stage.worker_left``) -
so the queues drain front to back. On a stop, ``_fail`` keeps the first error and
``_halt`` sets the stop flag, cancels the loop's tasks, shuts every queue (and window
tokens) down immediately, kills the process stages and shuts a queue source down; then
``_join`` joins every thread, and only then is the error raised.
"""
from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Type,
    Union,
)

from ._asyncfn import is_async_callable
from ._errors import Cancelled, ShutDown
from ._pipeline_async import run_loop
from ._pipeline_stage import BATCH_SECONDS as BATCH_SECONDS
from ._pipeline_stage import DEFAULT_MAXSIZE as DEFAULT_MAXSIZE
from ._pipeline_stage import FLUSH_EVERY as FLUSH_EVERY
from ._pipeline_stage import MAX_BATCH as MAX_BATCH
from ._pipeline_stage import PROCESS_MAXSIZE
from ._pipeline_stage import SKIP as SKIP
from ._pipeline_stage import _Counters as _Counters
from ._pipeline_stage import _is_generator_function as _is_generator_function
from ._pipeline_stage import _Skip as _Skip
from ._pipeline_stage import _SourceFailed as _SourceFailed
from ._pipeline_stage import _Stage as _Stage
from ._pipeline_stage import _Stopped as _Stopped  # also imported by _process_stage
from ._pipeline_threads import read_source, work, work_ordered
from ._queue import CancelToken, Queue
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from typing_extensions import Self  # only for the annotations, which are never evaluated

__all__ = ["SKIP", "Pipeline", "StageStats"]


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


def _takes_cancel(put: Callable[..., Any]) -> bool:
    """Whether a sink's *put* takes ``cancel=`` (a ``ringq.Queue``'s does)."""
    try:
        params = inspect.signature(put).parameters
    except (TypeError, ValueError):  # no signature to read: only our own queues are known to
        return isinstance(getattr(put, "__self__", None), Queue)
    return "cancel" in params


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

    def stage(self, fn: Callable[[Any], Any], *, workers: int = 1, maxsize: Optional[int] = None,
              ordered: bool = False, rate: Union[float, RateLimiter, None] = None,
              name: Optional[str] = None, window: Optional[int] = None,
              processes: bool = False, mp_context: Any = None) -> Pipeline:
        """Add a stage: *workers* threads calling ``fn(item)`` for each item.

        An ``async def`` *fn* (a coroutine function, or an async generator function
        for one in, many out) makes an async stage instead: *workers* tasks that
        ``await fn(item)``, on an event loop that the pipeline runs in a thread of
        its own (one loop for all its async stages). Every option below holds for it.

        * *maxsize*: bound of this stage's input queue (>= 1). The last stage's
          results wait in a queue of the same bound. Default: 128, or 4096 for a
          process stage and for the stage after one, which move batches of up to
          4096 items.
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
        if maxsize is None:
            after_processes = bool(self._stages) and self._stages[-1].remote is not None
            maxsize = PROCESS_MAXSIZE if processes or after_processes else DEFAULT_MAXSIZE
        remote = None
        if processes:
            from ._process_stage import RemoteStage

            remote = RemoteStage(fn, workers, mp_context)
            fn = remote.call
        self._stages.append(_Stage(fn, name, workers, maxsize, ordered, limiter,
                                   window if window is not None else 4 * workers, Queue))
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
        threads = [threading.Thread(target=self._thread_main, args=(read_source, self, queues[0]),
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
            target = work_ordered if stage.ordered else work
            for worker in range(stage.workers):
                threads.append(threading.Thread(
                    target=self._thread_main, args=(target, self, stage, stage.counters[worker], queues[index + 1]),
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
                target=self._thread_main, args=(run_loop, self, self._loop, async_stages),
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

    def _raise_error(self, for_async: bool = False) -> None:
        """Raise the first error, if there was one (after every thread was joined).

        *for_async*: raised into an ``async for``, which a StopAsyncIteration would end.
        """
        error = self._error
        if error is None:
            return
        try:
            if self._cancelled:
                raise Cancelled(f"the pipeline's cancel token fired ({error})") from error
            if isinstance(error, StopIteration) or (for_async and isinstance(error, StopAsyncIteration)):
                # Raised as it is, it would end the caller's iteration silently (or,
                # out of a generator, become "generator raised StopIteration").
                kind = type(error).__name__
                raise RuntimeError(
                    f"{self._error_where} raised {kind} ({error!r}): a stage's function must "
                    f"not raise it (a {kind} cannot pass through an iteration); return "
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
                        self._sink_cancelled(exc)
                        stopped = True
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
        return self._aresults_started()

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
                        self._sink_cancelled(exc)
                        stopped = True
                        break
                elif awaited and put is not None:
                    await put(item)
                elif put is not None:
                    put(item)
                count += 1
        finally:
            await results.aclose()
            if sink is not None and shutdown_sink:
                sink.shutdown()
        if stopped:
            self._raise_error()
        return count

    def _aresults_started(self) -> _AsyncResults:
        self._start()
        return _AsyncResults(self)

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

    def _sink_cancelled(self, exc: Cancelled) -> None:
        """run()'s or arun()'s put on the sink ended with *exc*: the user's token fired (an
        error, raised like the iteration's), or else the pipeline stopped (close(), an error)."""
        user_token = self._cancel
        if user_token is not None and user_token.cancelled:
            self._fail(exc, "sink")

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

    def _cancel_tasks(self) -> None:
        """On the loop: cancel every task of the async stages (the pipeline is stopping)."""
        for task in self._tasks:
            task.cancel()

    def _join(self) -> None:
        me = threading.current_thread()
        for thread in self._threads:
            if thread is not me:
                thread.join()
        for stage in self._stages:
            if stage.remote is not None:
                stage.remote.close()

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


class _AsyncResults:
    """What ``async for item in pipeline`` iterates: the results, awaited on the caller's loop.

    Not an async generator on purpose. One that ``break`` abandons at a ``yield``
    still has its cleanup (a ``finally`` that awaits the join) to run, which only the
    loop's async-generator finalizer could start, as a task of its own scheduled
    when ``break`` dropped the generator: that task raced ``async with``'s exit, and
    when the loop stopped before it began, its ``aclose()`` was dropped unawaited
    (3.14: "coroutine method 'aclose' ... was never awaited"). This iterator holds
    no suspended frame: leaving it early leaves nothing to close. The pipeline is
    stopped and joined by ``aclose()`` (of the pipeline or of this iterator), and
    an iterator dropped before its end stops the pipeline when its loop next runs.
    """

    __slots__ = ("_pipeline", "_batch", "_loop", "_done")

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._batch: Iterator[Any] = iter(())
        self._loop: Optional[asyncio.AbstractEventLoop] = None  # the caller's, once iterated
        self._done = False

    def __aiter__(self) -> _AsyncResults:
        return self

    async def __anext__(self) -> Any:
        for item in self._batch:
            return item
        if self._done:
            raise StopAsyncIteration
        pipeline = self._pipeline
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        outbox = pipeline._outbox
        assert outbox is not None
        while True:
            try:
                batch = await outbox.aget_many(MAX_BATCH, cancel=pipeline._cancel)
            except ShutDown:
                break  # the end, or the pipeline stopped: its error (if any) is raised below
            except Cancelled as exc:
                pipeline._fail(exc, "results")
                break
            except GeneratorExit:
                # This coroutine is being closed (not awaited to its end): no await here.
                self._done = True
                pipeline._halt()
                raise
            except BaseException:
                # This task was cancelled (or interrupted) while waiting: stop every stage.
                self._done = True
                pipeline._halt()
                await pipeline._ajoin()
                raise
            self._batch = iter(batch)
            for item in self._batch:
                return item
        self._done = True
        await pipeline._ajoin()
        pipeline._raise_error(for_async=True)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the pipeline (unless it has ended) and await the end of its threads."""
        self._batch = iter(())
        if not self._done:
            self._done = True
            self._pipeline._halt()
            await self._pipeline._ajoin()

    def __del__(self) -> None:
        loop = self._loop
        if loop is not None and not self._done:
            # Left early ("break", an exception in the loop's body) and not closed: stop
            # the pipeline once the loop gets to it, not here: __del__ may run inside the
            # garbage collector, in any thread, while it holds a lock that _halt takes.
            # A plain callback, not a coroutine: if the loop closes first, it is dropped
            # silently (as the loop's async-generator finalizer does nothing then).
            try:
                loop.call_soon_threadsafe(self._pipeline._halt)
            except RuntimeError:
                pass  # the loop is closed
