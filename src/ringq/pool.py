"""``ringq.BoundedExecutor``: a thread pool whose queue of pending tasks is bounded.

    >>> import ringq
    >>> with ringq.BoundedExecutor(max_workers=4, max_pending=100) as pool:
    ...     future = pool.submit(pow, 2, 10)      # waits while 100 tasks are pending
    ...     future.result()
    1024

It is a :class:`concurrent.futures.Executor`: ``submit``, ``map``, ``shutdown`` and
the context manager behave as :class:`~concurrent.futures.ThreadPoolExecutor`'s do,
``concurrent.futures.wait``/``as_completed`` accept its futures, and code written
for ``ThreadPoolExecutor`` keeps its meaning. The difference is the bound: at most
*max_pending* tasks wait for a worker, so a producer that submits faster than the
workers finish is slowed down instead of filling memory (CPython gh-73781).

The pending tasks live in a :class:`ringq.Queue` of maxsize *max_pending*; each
worker thread takes a task, runs it and completes its future. Shutting the pool
down shuts that queue down: workers finish what is queued, then leave.

This module is a toolkit layer on top of ``ringq.Queue``; the queue's core never
imports it.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import threading
import weakref
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.thread import BrokenThreadPool
from time import monotonic
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, TypeVar

from ._asyncfn import is_async_callable, refuse_async
from ._errors import Cancelled, Empty, Full, LoopBlockingError, ShutDown
from ._executor import (
    _BoundedPool,
    _Future,
    check_initializer,
    check_map_args,
    check_sizes,
    check_token,
    map_end_time,
    register_at_exit,
    wait_future,
)
from ._queue import CancelToken, Queue

__all__ = ["BoundedExecutor", "wait_future"]

_T = TypeVar("_T")
# What to do instead of passing an async def function to a pool thread.
_ASYNC_FIX = ("Await it in a coroutine instead (asyncio.gather, a TaskGroup, or an async "
              "ringq.Pipeline stage), or pass a plain function.")

# --- interpreter exit ----------------------------------------------------------------
# Worker threads take the daemon flag of the thread whose submit starts them, as in
# ThreadPoolExecutor since 3.9 (neither passes daemon=): from the main thread they are
# not daemons, so a task that is running when the program ends is finished, not
# killed. At exit, before the interpreter joins those threads, every live pool's
# queue is shut down so that its idle workers wake up and leave once the queued
# tasks are done.
_live_pools: "weakref.WeakSet[BoundedExecutor]" = weakref.WeakSet()
# Re-entrant: WeakSet.add and iterating the WeakSet run Python code under it, where
# the GC may run a __del__ that creates a pool (and so takes this lock again).
_exit_lock = threading.RLock()
_exiting = False
_exit_hook_registered = False


def _new_exit_lock_after_fork() -> None:
    # Another thread may have held the lock at fork(): in the child that thread does
    # not exist, and the lock would stay held (a pool made there would hang).
    global _exit_lock
    _exit_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_exit_lock_after_fork)


def _at_interpreter_exit() -> None:
    global _exiting
    with _exit_lock:
        _exiting = True
        pools = list(_live_pools)
    for pool in pools:
        pool._queue.shutdown()


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _exit_lock:
        if _exit_hook_registered:
            return
        _exit_hook_registered = True
    register_at_exit(_at_interpreter_exit)


# --- tasks -----------------------------------------------------------------------------


class _Task(_Future):
    """One ``submit``: the Future handed to the caller is also the queued task
    (``_Future.__init__`` stores the call; it is dropped once it has run)."""

    def run(self) -> None:
        fn, args, kwargs = self._fn, self._args, self._kwargs
        self._fn = self._args = self._kwargs = None
        if not self.set_running_or_notify_cancel():
            return  # cancelled while it waited in the queue
        assert fn is not None and args is not None and kwargs is not None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - every exception goes to the future
            self.set_exception(exc)
            # The traceback references this frame: drop the cycle exc -> frame -> self.
            self = None  # type: ignore[assignment]
        else:
            self.set_result(result)


class _MapJob:
    """The state one ``map`` call shares with its chunks."""

    __slots__ = ("fn", "results", "abandoned")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        # (chunk index, results so far, exception or None); unbounded, but never
        # holds more than the chunks submitted, which buffersize bounds.
        self.results: Queue[Tuple[int, List[Any], Optional[BaseException]]] = Queue()
        # Set when the map's iterator is closed or failed: chunks not started are skipped.
        self.abandoned = False


class _MapChunk:
    """Up to *chunksize* calls of one ``map``; no Future per item (that is what makes
    ``map`` cheap), the results go back through the job's queue."""

    __slots__ = ("job", "index", "argsets")

    def __init__(self, job: _MapJob, index: int, argsets: Tuple[Tuple[Any, ...], ...]) -> None:
        self.job = job
        self.index = index
        self.argsets = argsets

    def run(self) -> None:
        job = self.job
        if job.abandoned:
            return
        fn = job.fn
        done: List[Any] = []
        try:
            for args in self.argsets:
                done.append(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - raised by the map's iterator
            job.results.put((self.index, done, exc))
            self = None  # type: ignore[assignment]
        else:
            job.results.put((self.index, done, None))

    def cancel(self) -> None:
        self.fail(CancelledError())

    def fail(self, exc: BaseException) -> None:
        """Never run: the map's iterator raises *exc* when it gets to this chunk."""
        self.job.results.put((self.index, [], exc))


_Queued = Any  # _Task | _MapChunk: anything with run() and cancel()


class _WorkerThread(threading.Thread):
    """A worker thread, and what ``shutdown(wait=True)`` needs to know about its start."""

    def __init__(self, *, target: Callable[..., object], args: Tuple[Any, ...]) -> None:
        super().__init__(target=target, args=args)
        #: The thread that starts it.
        self.starter = threading.get_ident()
        #: Set once ``start()`` returned or failed.
        self.launched = threading.Event()


def _worker(queue: Queue[_Queued], pool_ref: "weakref.ref[BoundedExecutor]",
            initializer: Optional[Callable[..., object]], initargs: Tuple[Any, ...]) -> None:
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:  # reported, and breaks the pool, as in ThreadPoolExecutor
            import logging

            logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
            pool = pool_ref()
            if pool is not None:
                pool._initializer_failed()
            return
    get = queue.get
    growing = True
    while True:
        try:
            task = get()
        except ShutDown:
            return  # shut down and drained
        task.run()  # never raises: the task's exception goes to its future
        del task
        if growing:
            pool = pool_ref()
            if pool is None or not pool._growing:
                growing = False  # all workers started: nobody counts idle ones any more
            else:
                pool._idle.release()  # tell submit() an idle worker exists (lazy start)
            del pool


def _chunks(args: Iterator[Tuple[Any, ...]], size: int) -> Iterator[Tuple[Tuple[Any, ...], ...]]:
    """Tuples of up to *size* argument tuples (itertools.batched before 3.12)."""
    if size == 1:
        return ((one,) for one in args)
    return iter(lambda: tuple(itertools.islice(args, size)), ())


def _map_results(pool_ref: "Optional[weakref.ref[BoundedExecutor]]", job: _MapJob,
                 chunks: Iterator[Tuple[Tuple[Any, ...], ...]], submitted: int,
                 end_time: Optional[float]) -> Iterator[Any]:
    """The iterator ``map`` returns.

    A function, not a method: it must not hold the pool (a pool dropped while its
    iterator lives is collected and its workers leave; 3.14's ``Executor.map``
    holds only a weak reference for the same reason). *pool_ref* is that weak
    reference when it has more chunks to queue (*buffersize*), else None. Nor does
    it hold a result once yielded (bpo-14406): each chunk's list is emptied as it
    goes.
    """
    done: Dict[int, Tuple[List[Any], Optional[BaseException]]] = {}
    get_many = job.results.get_many
    next_index = 0
    orphaned = False
    try:
        while next_index < submitted:
            while next_index not in done:
                if end_time is None:
                    arrived = get_many(1024)
                else:
                    try:
                        arrived = get_many(1024, True, max(0.0, end_time - monotonic()))
                    except Empty:
                        raise FuturesTimeoutError() from None
                for entry in arrived:
                    done[entry[0]] = (entry[1], entry[2])
                arrived = entry = None  # type: ignore[assignment]
            results, exc = done.pop(next_index)
            next_index += 1
            if pool_ref is not None and exc is None and not orphaned:
                # One chunk out, one chunk in: at most buffersize in the pool.
                argsets = next(chunks, None)
                if argsets is not None:
                    pool = pool_ref()
                    if pool is None:
                        orphaned = True  # said once the chunks queued before are yielded
                    else:
                        pool._enqueue_chunk(_MapChunk(job, submitted, argsets), end_time)
                        del pool
                        submitted += 1
            results.reverse()
            while results:
                yield results.pop()  # the list lets go of it: only the caller holds it
            if exc is not None:
                try:
                    raise exc
                finally:
                    exc = None
        if orphaned:
            raise RuntimeError(
                "cannot queue the rest of this map()'s calls: its BoundedExecutor was "
                "garbage-collected (its workers finished the calls already queued and left); "
                "keep a reference to the pool while its map iterator is in use")
    finally:
        job.abandoned = True


class BoundedExecutor(_BoundedPool):
    """A thread pool that keeps at most *max_pending* tasks waiting for a worker.

    ``BoundedExecutor(max_workers, max_pending, *, thread_name_prefix='',
    initializer=None, initargs=(), cancel=None)``

    * *max_workers* threads at most, started one at a time as tasks arrive and no
      worker is idle (as ``ThreadPoolExecutor`` does); *thread_name_prefix*,
      *initializer* and *initargs* mean what they mean there. If the initializer
      raises, the pool is broken: pending and later tasks fail with
      ``concurrent.futures.thread.BrokenThreadPool``.
    * *max_pending* tasks at most wait in the queue (tasks being run do not count).

    Submitting. The ``concurrent.futures`` signature is kept exactly, so every
    keyword argument belongs to *fn* - ``pool.submit(requests.get, url, timeout=5)``
    passes ``timeout=5`` to ``requests.get``, as it does with ``ThreadPoolExecutor``:

    * ``submit(fn, /, *args, **kwargs)`` waits while the queue is full;
    * ``submit_nowait(fn, /, *args, **kwargs)`` raises :class:`ringq.Full` at once instead;
    * ``submit_call(fn, args=(), kwargs=None, *, block=True, timeout=None)`` takes
      the call's arguments as a tuple and a dict (as ``threading.Thread(target,
      args, kwargs)`` does), which leaves the keyword-only ``block`` and ``timeout``
      free for the wait itself: :class:`ringq.Full` if no room came within *timeout*
      seconds;
    * ``await asubmit(fn, /, *args, **kwargs)`` waits without blocking the event loop.

    All of them raise RuntimeError once ``shutdown()`` has been called (a submitter
    that is waiting for room when the pool shuts down gets it too).

    An exception raised by a task is stored in its future (``future.result()``
    raises it); the worker carries on with the next task.

    A task must not wait for room in its own pool: only the pool's workers make
    room, so a worker that waits for it can deadlock the pool. A task that calls
    ``submit`` (or ``map``, ``asubmit`` in an event loop the task runs, or
    ``submit_call`` without *timeout* and *cancel*) on its own pool while the queue
    is full gets RuntimeError at once. From inside a
    task use ``submit_nowait``, a timeout, a larger *max_pending*, or another pool.

    Cancel token. With ``cancel=token`` (a :class:`ringq.CancelToken`), the token
    firing (``token.cancel()``, its deadline, or a parent's) does what
    ``shutdown(wait=False, cancel_futures=True)`` does, at once: the tasks not
    started are cancelled, a submitter waiting for room raises
    :class:`ringq.Cancelled`, later submits raise ``Cancelled`` too. Tasks already
    running finish; a long task can stop early by reading the same token
    (``token.cancelled``, ``token.raise_if_cancelled()``, or ``cancel=token`` on
    its own blocking calls)::

        token = ringq.CancelToken(timeout=30)        # or cancel() it from anywhere
        with ringq.BoundedExecutor(4, 100, cancel=token) as pool:
            for url in urls:
                pool.submit(fetch, url, token)       # Cancelled once the token fires

    ``submit_call(..., cancel=token)`` bounds one submit's wait instead: that call
    raises ``Cancelled`` (having queued nothing) and the pool carries on.
    """

    _counter = itertools.count().__next__
    _name = "BoundedExecutor"
    _broken_error = BrokenThreadPool

    def __init__(self, max_workers: int, max_pending: int, *, thread_name_prefix: str = "",
                 initializer: Optional[Callable[..., object]] = None,
                 initargs: Tuple[Any, ...] = (), cancel: Optional[CancelToken] = None) -> None:
        check_token(cancel)
        check_sizes(max_workers, max_pending)
        check_initializer(initializer)
        if initializer is not None:
            refuse_async(initializer, "BoundedExecutor(initializer=)", _ASYNC_FIX)
        self._max_workers = max_workers
        self._max_pending = max_pending
        self._queue: Queue[_Queued] = Queue(max_pending)
        self._thread_name_prefix = thread_name_prefix or f"BoundedExecutor-{self._counter()}"
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._threads: Set[_WorkerThread] = set()
        # Held only for bookkeeping, never across Python code (see
        # _start_worker_if_needed); re-entrant so that a signal handler or a GC pass
        # landing between those few bytecodes cannot deadlock on it either.
        self._lock = threading.RLock()
        # Counts idle workers while the pool is still growing; once max_workers
        # threads exist, _growing turns False and neither side touches it again.
        self._idle = threading.Semaphore(0)
        self._growing = True
        self._shutdown = False
        self._broken: Optional[str] = None
        self._cancel = cancel
        self._cancelled = False  # the token fired and the pool was cancelled
        _register_exit_hook()
        with _exit_lock:
            _live_pools.add(self)
        # A pool dropped without shutdown(): its workers drain the queue and leave.
        weakref.finalize(self, self._queue.shutdown)
        self._watch_cancel(cancel, f"{self._thread_name_prefix}-cancel")

    # --- submitting ------------------------------------------------------------------

    def _broken_reason(self) -> Optional[str]:
        return self._broken

    def _check_open(self) -> None:
        super()._check_open()
        if _exiting:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def _enqueue(self, task: _Queued, block: bool, timeout: Optional[float],
                 cancel: Optional[CancelToken] = None, what: str = "submit()") -> None:
        """Queue *task*: Full when no room came in time, RuntimeError once shut down,
        Cancelled when the pool's token (or the call's *cancel*) fires."""
        # The call's own token if it has one; the pool's token still reaches
        # this wait, through the watcher shutting the queue down.
        token = cancel if cancel is not None else self._cancel
        try:
            if block and timeout is None and cancel is None:
                # A wait with no bound: first see whether it would wait at all.
                try:
                    self._queue.put(task, False, cancel=token)
                except Full:
                    self._check_not_own_worker(what)
                    self._queue.put(task, cancel=token)
            else:
                self._queue.put(task, block, timeout, cancel=token)
        except ShutDown:
            self._turned_away()
        except LoopBlockingError as error:
            # The queue's message names aput(); a pool user needs the pool's own calls.
            raise LoopBlockingError(
                f"{what} on a full BoundedExecutor (max_pending={self._max_pending}) would wait "
                "for room on the thread of a running event loop, freezing it (this includes "
                "loop.run_in_executor). In a coroutine use 'await pool.asubmit(fn, ...)', or "
                "submit_nowait() (ringq.Full when full), or a larger max_pending.") from error
        except Cancelled:
            if self._cancel is not None and self._cancel.cancelled:
                self._refuse_cancelled()
            raise  # the call's own token: nothing queued, the pool carries on
        if self._growing:
            self._start_worker_if_needed()

    def _check_not_own_worker(self, what: str) -> None:
        """The queue is full and the caller would wait for room with no bound: refuse
        when the caller is one of this pool's workers (see docs/api.md)."""
        if threading.current_thread() in self._threads:
            raise RuntimeError(
                f"{what} called from a task of this BoundedExecutor while its queue is full "
                f"(max_pending={self._max_pending}): the task would wait for room that only "
                "this pool's workers can make, and if every worker does that the pool is "
                "deadlocked for good. From inside a task, use submit_nowait() (ringq.Full "
                "when the queue is full), submit_call(..., timeout=...), map(..., timeout=...), "
                "a larger max_pending, or another pool for the inner tasks.")

    def _submit(self, fn: Callable[..., _T], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                block: bool, timeout: Optional[float], cancel: Optional[CancelToken] = None,
                what: str = "submit()") -> Future[_T]:
        refuse_async(fn, "BoundedExecutor.submit", _ASYNC_FIX)
        self._check_open()
        task = _Task(fn, args, kwargs)
        self._enqueue(task, block, timeout, cancel, what)
        return task

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)``; wait while *max_pending* tasks are queued.

        Every keyword argument goes to *fn*. For a wait with a timeout use
        :meth:`submit_call`; for no wait, :meth:`submit_nowait`.
        """
        # The common path, inlined (_check_open, _Task, _enqueue): it runs once per task.
        if is_async_callable(fn):
            refuse_async(fn, "BoundedExecutor.submit", _ASYNC_FIX)
        if self._shutdown or self._broken is not None or _exiting:
            self._check_open()
        if self._cancel is not None:
            return self._submit(fn, args, kwargs, True, None)
        task = _Task(fn, args, kwargs)
        try:
            self._queue.put(task, False)
        except Full:  # about to wait: the slow path
            self._enqueue(task, True, None)
            return task
        except ShutDown:
            self._turned_away()
        if self._growing:
            self._start_worker_if_needed()
        return task

    async def asubmit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> "asyncio.Future[_T]":
        """Schedule ``fn(*args, **kwargs)`` from a coroutine, waiting for room
        without blocking the event loop; returns an awaitable asyncio future of the
        result (``result = await (await pool.asubmit(fn, x))``).

        It waits with ``ringq.Queue.aput``, which any event loop can use. If it is
        cancelled while it waits, nothing was queued (``aput`` is atomic under
        cancellation; should the task have been queued anyway, its future is
        cancelled, so it never runs). For a time limit wrap it in
        ``asyncio.wait_for``. Every keyword argument goes to *fn*, as in :meth:`submit`.
        """
        refuse_async(fn, "BoundedExecutor.asubmit", _ASYNC_FIX)
        self._check_open()
        task = _Task(fn, args, kwargs)
        if threading.current_thread() in self._threads:
            # An event loop run by one of this pool's tasks: waiting for room there
            # would wait for this pool's workers, so submit's rule applies (queued
            # now if there is room, else RuntimeError naming the ways out).
            self._enqueue(task, True, None, what="asubmit()")
            return asyncio.wrap_future(task)
        try:
            await self._queue.aput(task, cancel=self._cancel)
        except ShutDown:
            task.cancel()
            self._turned_away()
        except Cancelled:
            task.cancel()
            self._refuse_cancelled()
        except BaseException:
            task.cancel()
            raise
        if self._growing:
            self._start_worker_if_needed()
        return asyncio.wrap_future(task)

    # --- workers ---------------------------------------------------------------------

    def _start_worker_if_needed(self) -> None:
        if self._idle.acquire(timeout=0):
            return  # an idle worker will take the task
        if len(self._threads) >= self._max_workers or self._queue.is_shutdown:
            return
        # Built and started outside _threads_lock: both run Python code (threading's)
        # and allocate, so the GC can run any __del__ in between, and a __del__ may
        # submit to this very pool. Under the lock: only bookkeeping.
        thread = _WorkerThread(target=_worker,
                               args=(self._queue, weakref.ref(self), self._initializer, self._initargs))
        with self._lock:
            count = len(self._threads)
            if count >= self._max_workers or self._shutdown or self._broken is not None or _exiting:
                return  # another submitter started the last one, or the pool closed
            self._threads.add(thread)  # before start(): shutdown(wait=True) must see it
            if count + 1 >= self._max_workers:
                self._growing = False
        thread.name = f"{self._thread_name_prefix}_{count}"
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads.discard(thread)
                self._growing = True
            raise
        finally:
            thread.launched.set()

    def _initializer_failed(self) -> None:
        with self._lock:
            if self._broken is None:
                self._broken = ("A thread initializer failed, the thread pool is not usable "
                                "anymore")
        self._queue.shutdown()
        self._drain(lambda task: task.fail(BrokenThreadPool(self._broken)) if isinstance(task, _MapChunk)
                    else task.set_exception(BrokenThreadPool(self._broken)))

    def _drain(self, handle: Callable[[_Queued], object]) -> None:
        while True:
            try:
                task = self._queue.get_nowait()
            except (Empty, ShutDown):
                return
            if isinstance(task, _Task) and task.done():
                continue
            handle(task)

    # --- shutting down ---------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; as ``ThreadPoolExecutor.shutdown``.

        Queued tasks still run unless *cancel_futures* is true, which cancels every
        task that has not started (their futures report ``cancelled()``). With
        *wait*, returns once every worker has finished. Calling it again is harmless.
        """
        self._shutdown = True
        if self._watch is not None:
            self._watch.cancel()  # the watcher leaves (the caller's token is untouched)
        # Shut the queue first: a submitter blocked on a full queue is turned away
        # (RuntimeError) instead of slipping in behind the cancellation below.
        self._queue.shutdown()
        if cancel_futures:
            self._drain(lambda task: task.cancel())
        if wait:
            with self._lock:
                threads = list(self._threads)
            me = threading.current_thread()
            ident = threading.get_ident()
            for thread in threads:
                if thread is me:  # shutdown(wait=True) from inside a task
                    continue
                if not thread.launched.is_set():
                    if thread.starter == ident:
                        # A __del__ run while this very thread was starting that
                        # worker: it finds the queue shut down and leaves by itself.
                        continue
                    thread.launched.wait()  # another thread is starting it now
                if thread.ident is not None:  # a failed start leaves nothing to join
                    thread.join()

    # --- map -------------------------------------------------------------------------

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any], timeout: Optional[float] = None,
            chunksize: int = 1, buffersize: Optional[int] = None) -> Iterator[_T]:
        """``fn(*args)`` for each args of ``zip(*iterables)``, results in input order.

        As ``Executor.map`` of Python 3.14:

        * *buffersize* None reads the whole input now and queues every call (each
          queued call waits for room, as ``submit`` does); an int reads ahead only
          that many chunks, and reads one more each time a result is taken from the
          iterator. Unlike 3.14 (gh-131466) never more than *buffersize* chunks are
          in the pool at once.
        * *timeout*: seconds from this call, for everything: queueing the calls
          (``map`` itself raises ``TimeoutError`` if the queue stays full until
          then) and the results (``next()`` raises ``TimeoutError`` once it is
          over). A negative timeout is a deadline already passed, as in
          ``Executor.map``; NaN raises ValueError. *chunksize* calls travel
          together as one task (unlike ``ThreadPoolExecutor``, which ignores it);
          *max_pending* and *buffersize* count chunks.
        * The first exception of a call is raised by the iterator when it gets
          there. Closing the iterator early, or an exception, cancels the calls
          that have not started.

        The results do not go through one Future each: workers send them back
        through a queue, which is what makes this cheaper than ``submit``. The
        iterator holds neither the results it has yielded nor the pool (with
        *buffersize*, it raises RuntimeError if it has to queue more calls after
        the pool was garbage-collected).
        """
        check_map_args(chunksize, buffersize, chunksize_may_be_none=False)
        refuse_async(fn, "BoundedExecutor.map", _ASYNC_FIX)
        end_time = map_end_time(timeout)
        self._check_open()
        job = _MapJob(fn)
        chunks = _chunks(zip(*iterables), chunksize)
        submitted = 0
        try:
            for argsets in (chunks if buffersize is None else itertools.islice(chunks, buffersize)):
                self._enqueue_chunk(_MapChunk(job, submitted, argsets), end_time)
                submitted += 1
        except BaseException:
            job.abandoned = True
            raise
        pool_ref = None if buffersize is None else weakref.ref(self)
        return _map_results(pool_ref, job, chunks, submitted, end_time)

    def _enqueue_chunk(self, chunk: _MapChunk, end_time: Optional[float]) -> None:
        """Queue one chunk of ``map``, by *end_time* (TimeoutError) if there is one."""
        if end_time is None:
            self._enqueue(chunk, True, None, what="map()")
            return
        left = end_time - monotonic()
        try:
            self._enqueue(chunk, left > 0, left if left > 0 else None, what="map()")
        except Full:
            raise FuturesTimeoutError(
                f"map() could not queue its calls within its timeout: the pool's queue "
                f"stayed full (max_pending={self._max_pending})") from None
