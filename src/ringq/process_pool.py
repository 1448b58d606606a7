"""``ringq.ProcessExecutor``: a bounded process pool whose workers survive their crashes.

    >>> import ringq, math
    >>> with ringq.ProcessExecutor(max_workers=2, max_pending=100) as pool:
    ...     pool.submit(math.factorial, 5).result()
    120

It is a :class:`concurrent.futures.Executor` with ``ProcessPoolExecutor``'s meaning
(the function and its arguments are pickled and run in a worker process; ``submit``,
``map``, ``shutdown`` and the context manager; ``concurrent.futures.wait`` and
``as_completed`` accept its futures), plus :class:`ringq.BoundedExecutor`'s bound:
at most *max_pending* tasks wait for a worker, ``submit`` waits for room, and
``submit_nowait``/``submit_call(..., timeout=)`` raise :class:`ringq.Full`.

How it works. Submitted tasks wait in a bounded :class:`ringq.Queue` in this
process. A dispatcher thread hands them, in batches, to each worker's own
:class:`ringq.ProcessQueue`, never more than a few milliseconds of work ahead of
what the worker has finished. Workers send every result back as soon as it is
ready through one shared ProcessQueue, which a collector thread drains in
batches. Because the pool knows which tasks each worker holds, and each worker
writes the id of the task it starts into shared memory, a worker that dies
(SIGKILL, a segfault, ``os._exit``) fails only the task it was running, with
:class:`WorkerDied` naming the exit code or signal; the tasks it had not started
go to the other workers, and a replacement is started. Workers that die
without running a task several times in a row (a crash at start-up, an
initializer that exits) break the pool: every pending future then raises
``BrokenProcessPool`` saying why.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import threading
import weakref
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from time import monotonic
from types import TracebackType
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, Optional, Tuple, Type, TypeVar

from ._errors import Cancelled, Empty, ShutDown
from ._executor import _BoundedPool, check_initializer, check_map_args, check_sizes, check_token, register_at_exit
from ._process_core import _WAKE, _close_core, _Core, _PTask
from ._process_worker import _CALL, _CHUNK, _QUEUE_CAPACITY
from ._queue import CancelToken

__all__ = ["ProcessExecutor", "WorkerDied", "check_sendable"]

_T = TypeVar("_T")


class WorkerDied(BrokenProcessPool):
    """The worker process running this task died (killed, crashed or exited).

    A subclass of ``BrokenProcessPool``, so code written for ProcessPoolExecutor
    catches it; unlike there, only this task failed and the pool keeps serving.
    *exitcode* is the process's exit code (negative: the signal number that ended it).
    """

    def __init__(self, message: str, exitcode: Optional[int] = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


# --- can it travel? ------------------------------------------------------------------------


def _callable_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None)
    if name is None:
        return repr(fn)
    return f"{module}.{name}" if module else str(name)


def check_sendable(fn: Any, what: str = "function") -> bytes:
    """Pickle *fn* as it will travel to a worker process; a clear TypeError if it can't.

    Functions travel by reference (module and qualified name), so a lambda, a
    function defined inside another function, or a method of a local class cannot
    reach a process started with spawn or forkserver. Returns the pickle.
    """
    try:
        return pickle.dumps(fn, protocol=5)
    except Exception as exc:
        name = _callable_name(fn)
        qualname = getattr(fn, "__qualname__", "") or ""
        if "<lambda>" in qualname or "<locals>" in qualname:
            kind = ("a lambda" if "<lambda>" in qualname.rsplit(".", 1)[-1]
                    else "a function defined inside another function")
            raise TypeError(
                f"cannot send {what} {name} to a worker process: it is {kind}, and worker processes "
                "receive functions by pickling their module and name. Define it with 'def' at the top "
                "level of a module (functools.partial(top_level_function, ...) also works for bound "
                f"arguments)") from exc
        raise TypeError(
            f"cannot send {what} {name} to a worker process: it cannot be pickled ({exc}). Use a "
            "function defined at the top level of a module, with picklable arguments") from exc


def _pickle_task(fn: Any, args: Any, kwargs: Any) -> bytes:
    try:
        return pickle.dumps((fn, args, kwargs), protocol=5)
    except Exception as exc:
        check_sendable(fn)  # the function is the usual culprit: name it
        raise TypeError(f"cannot send the arguments of {_callable_name(fn)} to a worker process: "
                        f"they cannot be pickled ({exc}); pass picklable values") from exc


# --- interpreter exit ----------------------------------------------------------------------

_live: "weakref.WeakSet[ProcessExecutor]" = weakref.WeakSet()
_exit_registered = False


def _at_exit() -> None:
    for pool in list(_live):
        try:
            pool.shutdown(wait=True)
        except BaseException:  # noqa: BLE001
            pool._core.terminate()


def _forget_pools_after_fork() -> None:
    # A fork child (a worker the pool forked, or any os.fork()) inherits the parent's
    # pools but owns none of them: shutting them down at its exit would send SIGTERM
    # to the parent's workers.
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _register_exit() -> None:
    global _exit_registered
    if _exit_registered:
        return
    _exit_registered = True
    register_at_exit(_at_exit)


def _default_workers() -> int:
    if hasattr(os, "process_cpu_count"):
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return n or 1


class ProcessExecutor(_BoundedPool):
    """A process pool that keeps at most *max_pending* tasks waiting for a worker.

    ``ProcessExecutor(max_workers=None, max_pending=None, *, mp_context=None,
    initializer=None, initargs=(), max_tasks_per_child=None, cancel=None)``

    * *max_workers*: worker processes (default: the CPUs this process may use);
      *mp_context*, *initializer*, *initargs* and *max_tasks_per_child* mean what
      they mean for ``ProcessPoolExecutor``. An initializer that raises breaks the
      pool (``BrokenProcessPool``, with the initializer's traceback).
    * *max_pending*: tasks waiting for a worker at most (default ``64 * max_workers``);
      a map chunk counts as one task.
    * *cancel*: a :class:`ringq.CancelToken`; when it fires the pool does
      ``shutdown(wait=False, cancel_futures=True)`` and later submits raise
      :class:`ringq.Cancelled`.

    Everything sent to a worker is pickled: the function travels by reference (its
    module and name), so it must be defined at the top level of a module. A lambda
    or a nested function raises TypeError at ``submit``/``map``, naming it.

    A task's exception is raised by ``future.result()`` with the worker's
    traceback text as its ``__cause__``. A worker that dies while running a task
    fails that task alone with :class:`WorkerDied` (exit code or signal in the
    message and in ``.exitcode``); the pool replaces the worker. Workers ignore
    SIGINT: Ctrl-C is handled by the parent (``shutdown`` interrupted by Ctrl-C
    kills the workers). A task and its result must each fit in 16 MiB pickled.
    """

    _name = "ProcessExecutor"
    _broken_error = BrokenProcessPool

    def __init__(self, max_workers: Optional[int] = None, max_pending: Optional[int] = None, *,
                 mp_context: Any = None, initializer: Optional[Callable[..., object]] = None,
                 initargs: Tuple[Any, ...] = (), max_tasks_per_child: Optional[int] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        check_token(cancel)
        if max_workers is None:
            max_workers = _default_workers()
        if max_pending is None:
            max_pending = 64 * max_workers
        check_sizes(max_workers, max_pending)
        if max_tasks_per_child is not None:
            if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer or None")
            if max_tasks_per_child < 1:
                raise ValueError("max_tasks_per_child must be >= 1")
        check_initializer(initializer)
        ctx = mp_context if mp_context is not None else multiprocessing.get_context()
        if ctx.get_start_method() != "fork" and initializer is not None:
            check_sendable(initializer, "initializer")
            try:
                pickle.dumps(initargs, protocol=5)
            except Exception as exc:
                raise TypeError(f"cannot send initargs to the worker processes: {exc}") from exc
        self._core = _Core(ctx, max_workers, max_pending, initializer, tuple(initargs), max_tasks_per_child)
        self._max_workers = max_workers
        self._max_pending = max_pending
        self._queue = self._core.pending  # the bounded queue of tasks not yet sent to a worker
        self._shutdown = False
        self._cancel = cancel
        self._cancelled = False
        self._lock = threading.Lock()
        _register_exit()
        _live.add(self)
        weakref.finalize(self, _finalize, self._core)
        self._watch_cancel(cancel, "ringq.ProcessExecutor-cancel")

    # --- submitting ------------------------------------------------------------------

    def _broken_reason(self) -> Optional[str]:
        return self._core.broken

    def _enqueue(self, task: _PTask, block: bool, timeout: Optional[float],
                 cancel: Optional[CancelToken] = None) -> None:
        core = self._core
        if not core.started:
            core.start()
        try:
            core.pending.put(task, block, timeout, cancel=cancel if cancel is not None else self._cancel)
        except ShutDown:
            self._turned_away()
        except Cancelled:
            if self._cancel is not None and self._cancel.cancelled:
                self._refuse_cancelled()
            raise

    def _make(self, kind: int, payload: bytes) -> _PTask:
        if len(payload) > _QUEUE_CAPACITY // 2:
            raise ValueError(f"a task of {len(payload)} bytes pickled is too big to send to a worker "
                             f"(at most {_QUEUE_CAPACITY // 2}); pass a file name or shared memory instead")
        return _PTask(self._core.next_tid(), kind, payload)

    def _submit(self, fn: Callable[..., _T], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                block: bool, timeout: Optional[float], cancel: Optional[CancelToken] = None,
                what: str = "submit()") -> Future[_T]:
        self._check_open()
        task = self._make(_CALL, _pickle_task(fn, args, kwargs))
        self._enqueue(task, block, timeout, cancel)
        return task

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` in a worker; wait while *max_pending* tasks are queued."""
        return self._submit(fn, args, kwargs, True, None)

    # --- map -------------------------------------------------------------------------

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any], timeout: Optional[float] = None,
            chunksize: Optional[int] = None, buffersize: Optional[int] = None) -> Iterator[_T]:
        """``fn(*args)`` for each args of ``zip(*iterables)`` in the workers, results in order.

        As ``ProcessPoolExecutor.map`` (with 3.14's *buffersize*), except that
        *chunksize* None (the default) picks the chunk size: with the whole input
        known (*buffersize* None, the input is read now) about four chunks per
        worker, at most 4096 items each, as ``multiprocessing.Pool.map`` does;
        reading lazily, chunks grow from 1 item to 1024. *max_pending* and
        *buffersize* count chunks. The first exception of a call is raised by the
        iterator when it gets there, after the results before it.
        """
        check_map_args(chunksize, buffersize, chunksize_may_be_none=True)
        end_time = None if timeout is None else timeout + monotonic()
        self._check_open()
        fn_pickle = check_sendable(fn)
        del fn_pickle
        argsets: Iterator[Tuple[Any, ...]] = zip(*iterables)
        if buffersize is None:
            items = list(argsets)
            if chunksize is None:
                chunksize = max(1, min(4096, -(-len(items) // (4 * self._max_workers))))
            sizes: Iterator[int] = itertools.repeat(chunksize)
            argsets = iter(items)
        elif chunksize is None:
            sizes = itertools.chain((1, 2, 4, 8, 16, 32, 64, 128, 256, 512), itertools.repeat(1024))
        else:
            sizes = itertools.repeat(chunksize)
        chunks = self._chunks(fn, argsets, sizes)
        futures: Deque[_PTask] = deque()
        try:
            for task in (chunks if buffersize is None else itertools.islice(chunks, buffersize)):
                self._enqueue(task, True, None)
                futures.append(task)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return self._map_results(futures, chunks, buffersize is not None, end_time)

    def _chunks(self, fn: Any, argsets: Iterator[Tuple[Any, ...]], sizes: Iterator[int]) -> Iterator[_PTask]:
        for size in sizes:
            group = tuple(itertools.islice(argsets, size))
            if not group:
                return
            yield from self._chunk_tasks(fn, group)

    def _chunk_tasks(self, fn: Any, group: Tuple[Tuple[Any, ...], ...]) -> Iterator[_PTask]:
        payload = _pickle_task(fn, group, None)
        if len(payload) > _QUEUE_CAPACITY // 4 and len(group) > 1:
            half = len(group) // 2
            yield from self._chunk_tasks(fn, group[:half])
            yield from self._chunk_tasks(fn, group[half:])
            return
        yield self._make(_CHUNK, payload)

    def _map_results(self, futures: Deque[_PTask], chunks: Iterator[_PTask], lazy: bool,
                     end_time: Optional[float]) -> Iterator[Any]:
        try:
            while futures:
                fut = futures[0]
                if end_time is None:
                    results, exc = fut.result()
                else:
                    results, exc = fut.result(max(0.0, end_time - monotonic()))
                futures.popleft()
                if lazy and exc is None:
                    task = next(chunks, None)
                    if task is not None:
                        self._enqueue(task, True, None)
                        futures.append(task)
                yield from results
                if exc is not None:
                    try:
                        raise exc
                    finally:
                        exc = None
        except FuturesTimeoutError:
            raise
        finally:
            for f in futures:
                f.cancel()

    # --- shutting down ---------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; as ``ProcessPoolExecutor.shutdown``.

        Queued tasks still run unless *cancel_futures* is true. With *wait*, returns
        once every worker process has ended; Ctrl-C during that wait kills the
        workers (their tasks fail with ``BrokenProcessPool``) and is re-raised.
        """
        self._shutdown = True
        _live.discard(self)
        if self._watch is not None:
            self._watch.cancel()
        core = self._core
        core.pending.shutdown()
        if cancel_futures:
            while True:
                try:
                    task = core.pending.get_nowait()
                except (Empty, ShutDown):
                    break
                if task is not _WAKE:
                    task.cancel()
        if not core.started:
            return
        if wait:
            try:
                for thread in core.threads:
                    if thread is not threading.current_thread():
                        thread.join()
                for w in list(core.workers.values()):
                    if core.broken is not None and w.process.exitcode is None:
                        # Terminated (break_pool sent SIGTERM): one that is not gone within
                        # 1 s is killed. The watcher does that for the workers it saw, but a
                        # replacement started as the pool broke may come after it has left
                        # (a 3.15 CI run hung here, joining such a worker forever).
                        w.process.join(1.0)
                        if w.process.exitcode is None:
                            w.process.kill()
                    w.process.join()
            except BaseException:
                core.terminate()
                for w in list(core.workers.values()):
                    w.process.join(5)
                raise
            _close_core(core)

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Optional[bool]:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.shutdown(wait=False, cancel_futures=True)
            self._core.terminate()
            for w in list(self._core.workers.values()):
                w.process.join(5)
            return None
        self.shutdown(wait=True)
        return None


def _finalize(core: _Core) -> None:
    """The executor was collected without shutdown(): finish the queued tasks, then stop."""
    core.pending.shutdown()
