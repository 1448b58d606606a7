"""What ``ringq.BoundedExecutor`` and ``ringq.ProcessExecutor`` share (private).

Both are ``concurrent.futures.Executor`` objects with a bound: at most
*max_pending* tasks wait in a :class:`ringq.Queue` (``self._queue``) for a
worker. This module holds what is the same in the two: the light Future their
tasks are, the checks of their arguments, the cancel-token watcher, the
interpreter-exit hook, and :class:`_BoundedPool`, the base class with the
calls whose meaning is the same (``submit_nowait``, ``submit_call``,
``pending``, the pool's state and the errors that say it). How a task is run,
queued and mapped stays in ``pool.py`` (threads) and ``process_pool.py``
(processes).

It also holds :func:`wait_future` (exported by ``ringq.pool``), which takes any
``concurrent.futures.Future``.
"""
from __future__ import annotations

import _thread
import threading
import weakref
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures._base import PENDING as _PENDING
from math import isnan
from time import monotonic
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Tuple, Type, TypeVar

from ._errors import Cancelled, Empty
from ._queue import CancelToken, Queue
from ._timeout import FOREVER as _FOREVER
from ._timeout import deadline

__all__ = ["wait_future"]

_T = TypeVar("_T")


# --- futures ---------------------------------------------------------------------------


class _FutureCondition(_thread.RLock):  # type: ignore[misc]
    """What ``threading.Condition`` does for a Future, for a fraction of its cost.

    A ``threading.Condition`` is a Python object holding an RLock, a deque and five
    bound methods: about ten garbage-collected objects per future, built by Python
    code. A pool with many futures alive spends more time creating them and in the
    garbage collector than running trivial tasks. This is the RLock itself (C code
    for ``with``, ``acquire`` and ``release``, which is all that
    ``concurrent.futures.wait``/``as_completed`` use) plus the two methods a Future
    calls, with the list of sleepers made only when somebody waits.
    """

    __slots__ = ("_sleepers",)
    #: Set to None by whoever creates it (no __init__: one Python call less per future).
    _sleepers: Optional[List[Any]]

    def wait(self, timeout: Optional[float] = None) -> bool:
        """As ``Condition.wait``: called with the lock held; False on a timeout."""
        waiter = _thread.allocate_lock()
        waiter.acquire()
        sleepers = self._sleepers
        if sleepers is None:
            sleepers = self._sleepers = []
        sleepers.append(waiter)
        saved = self._release_save()  # type: ignore[attr-defined]  # C methods of _thread.RLock
        woken = False
        try:
            if timeout is None:
                woken = waiter.acquire()
            elif timeout > 0:
                woken = waiter.acquire(True, timeout)
            else:
                woken = waiter.acquire(False)
            return woken
        finally:
            self._acquire_restore(saved)  # type: ignore[attr-defined]
            if not woken:
                try:
                    sleepers.remove(waiter)
                except ValueError:
                    pass

    def notify_all(self) -> None:
        """As ``Condition.notify_all``: called with the lock held."""
        sleepers = self._sleepers
        if sleepers is None:
            return  # nobody ever waited: the common case
        while sleepers:
            sleepers.pop().release()

    notifyAll = notify_all


class _Future(Future):  # type: ignore[type-arg]
    """A ``concurrent.futures.Future`` with a lighter condition (see above), which
    is also the queued task: that saves an object per task.

    Every method is the stdlib's own; ``__init__`` sets the same attributes that
    ``Future.__init__`` sets (CPython 3.9-3.13), the ones ``concurrent.futures.wait``
    and ``as_completed`` rely on, plus the call a thread pool's task runs (*fn*,
    *args*, *kwargs*: dropped once it has run; None in a process pool's task, whose
    call travels pickled). One ``__init__`` for both: it runs once per submit.
    """

    def __init__(self, fn: Optional[Callable[..., Any]] = None, args: Optional[Tuple[Any, ...]] = None,
                 kwargs: Optional[Dict[str, Any]] = None) -> None:
        condition = _FutureCondition()
        condition._sleepers = None
        self._condition = condition  # type: ignore[assignment]
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters: List[Any] = []
        self._done_callbacks: List[Any] = []
        self._fn = fn
        self._args = args
        self._kwargs = kwargs


# --- checks ----------------------------------------------------------------------------


def check_token(cancel: object) -> None:
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")


def check_sizes(max_workers: object, max_pending: object) -> None:
    for name, value in (("max_workers", max_workers), ("max_pending", max_pending)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__!r}")
        if value < 1:
            raise ValueError(f"{name} must be greater than 0")


def check_initializer(initializer: object) -> None:
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")


def check_map_args(chunksize: object, buffersize: object, chunksize_may_be_none: bool) -> None:
    """``map``'s *chunksize* and *buffersize*, checked as ``Executor.map`` of 3.14 does."""
    if buffersize is not None:
        if isinstance(buffersize, bool) or not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
    if chunksize is None and chunksize_may_be_none:
        return
    if isinstance(chunksize, bool) or not isinstance(chunksize, int):
        raise TypeError("chunksize must be an integer or None" if chunksize_may_be_none
                        else "chunksize must be an integer")
    if chunksize < 1:
        raise ValueError("chunksize must be >= 1.")


def map_end_time(timeout: Any) -> Optional[float]:
    """``map``'s deadline. As ``Executor.map``, a negative timeout is a deadline that
    has already passed (``Future.result`` takes one too); unlike it, NaN is refused
    (ValueError, the core's message) instead of acting as 0, and a timeout too large
    for a float waits forever instead of raising OverflowError."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    try:
        seconds = float(timeout)
    except TypeError:
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}") from None
    except OverflowError:  # an int beyond a float's range
        seconds = float("inf") if timeout > 0 else float("-inf")
    if isnan(seconds):
        raise ValueError("'timeout' must be a non-negative number, not NaN")
    if seconds > _FOREVER:
        return None
    return monotonic() + max(seconds, -_FOREVER)


# --- the cancel token's watcher and the interpreter's exit -----------------------------


def _watch_token(watch: CancelToken, token: CancelToken, pool_ref: "weakref.ref[_BoundedPool]") -> None:
    """The pool's token watcher: one thread per pool built with ``cancel=``.

    It waits on *watch*, a child of the pool's *token*, which fires when the token
    does, or when the pool no longer needs watching (its shutdown or its garbage
    collection cancel the child alone, so this thread never outlives the pool).
    """
    watch.wait()
    if token.cancelled:
        pool = pool_ref()
        if pool is not None:
            pool._token_fired()


def register_at_exit(hook: Callable[[], None]) -> None:
    """Run *hook* when the interpreter exits, before it joins non-daemon threads.

    threading._register_atexit (3.9+) runs then; the atexit module would run too
    late (after that join, which would hang on a pool's idle workers)."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(hook)
    else:  # pragma: no cover - other implementations
        import atexit

        atexit.register(hook)


# --- the shared base class ----------------------------------------------------------------


class _BoundedPool(Executor):
    """The calls of a bounded pool whose meaning does not depend on what runs the tasks.

    A subclass sets, in ``__init__``: ``_max_workers``, ``_max_pending``, ``_queue``
    (the bounded queue of pending tasks), ``_shutdown``, ``_cancel``, ``_cancelled``
    and ``_lock`` (guards ``_cancelled``), then calls :meth:`_watch_cancel`; and it
    defines ``_submit`` and ``_broken_reason``.
    """

    #: Its name in ``repr``.
    _name = "BoundedPool"
    #: What a broken pool raises (BrokenThreadPool, BrokenProcessPool).
    _broken_error: Type[BaseException] = RuntimeError

    _max_workers: int
    _max_pending: int
    _queue: Queue[Any]
    _shutdown: bool
    _cancel: Optional[CancelToken]
    _cancelled: bool
    _lock: Any
    _watch: Optional[CancelToken]

    def _broken_reason(self) -> Optional[str]:
        """Why the pool is broken, or None."""
        raise NotImplementedError

    def _submit(self, fn: Callable[..., _T], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                block: bool, timeout: Optional[float], cancel: Optional[CancelToken] = None,
                what: str = "submit()") -> Future[_T]:
        raise NotImplementedError

    def _watch_cancel(self, cancel: Optional[CancelToken], thread_name: str) -> None:
        """Start the thread that watches the pool's token, if it has one."""
        self._watch = None
        if cancel is not None:
            # A child token, so that shutdown() can end the watcher without firing
            # the caller's token (cancelling a child leaves its parent alone).
            self._watch = cancel.child()
            weakref.finalize(self, self._watch.cancel)
            threading.Thread(target=_watch_token, args=(self._watch, cancel, weakref.ref(self)),
                             name=thread_name, daemon=True).start()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def max_pending(self) -> int:
        return self._max_pending

    def pending(self) -> int:
        """Tasks waiting for a worker now (not counting those being run, nor, in a
        process pool, those already sent to a worker process)."""
        return self._queue.qsize()

    # --- the pool's state, and the errors that say it ------------------------------------

    def _check_open(self) -> None:
        broken = self._broken_reason()
        if broken is not None:
            raise self._broken_error(broken)
        if self._cancel is not None and self._cancel.cancelled:
            self._refuse_cancelled()
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _turned_away(self) -> NoReturn:
        """The queue was shut down under a submitter: say why."""
        broken = self._broken_reason()
        if broken is not None:
            raise self._broken_error(broken) from None
        if self._cancel is not None and self._cancel.cancelled:
            self._refuse_cancelled()
        raise RuntimeError("cannot schedule new futures after shutdown") from None

    def _refuse_cancelled(self) -> NoReturn:
        """The pool's token fired: cancel the pool (if the watcher has not yet) and say so."""
        self._token_fired()
        assert self._cancel is not None
        try:
            self._cancel.raise_if_cancelled()
        except Cancelled as exc:
            reason = exc
        raise Cancelled(f"cannot schedule new futures after the executor's cancel token fired ({reason})") from reason

    def _token_fired(self) -> None:
        """The pool's token fired: shutdown(wait=False, cancel_futures=True), once."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
        self.shutdown(wait=False, cancel_futures=True)

    # --- submitting ----------------------------------------------------------------------

    def submit_nowait(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Like :meth:`submit`, but raise :class:`ringq.Full` at once if the queue is full."""
        return self._submit(fn, args, kwargs, False, None)

    def submit_call(self, fn: Callable[..., _T], args: Iterable[Any] = (),
                    kwargs: Optional[Dict[str, Any]] = None, *, block: bool = True,
                    timeout: Optional[float] = None, cancel: Optional[CancelToken] = None) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)``, waiting for room as ``Queue.put`` does.

        ``block=False`` or a *timeout* (seconds, monotonic) raises :class:`ringq.Full`
        when the task cannot be queued in time; a negative timeout raises ValueError.
        *cancel*, a :class:`ringq.CancelToken`, ends this one wait: the call raises
        :class:`ringq.Cancelled` having queued nothing, and the pool is not affected
        (the pool's own token, if any, still applies)::

            stop = ringq.CancelToken()
            future = pool.submit_call(fetch, (url,), cancel=stop)  # stop.cancel() ends the wait
        """
        check_token(cancel)
        return self._submit(fn, tuple(args), dict(kwargs) if kwargs else {}, block, timeout, cancel,
                            "submit_call()")

    def __repr__(self) -> str:
        state = ("broken" if self._broken_reason() else "cancelled" if self._cancelled
                 else "shut down" if self._shutdown else "running")
        return (f"<ringq.{self._name} {state} max_workers={self._max_workers} "
                f"max_pending={self._max_pending} pending={self._queue.qsize()}>")


# --- wait_future ---------------------------------------------------------------------------


def wait_future(future: "Future[_T]", timeout: Optional[float] = None, *,
                cancel: Optional[CancelToken] = None) -> _T:
    """``future.result(timeout)`` that also ends when the token *cancel* fires.

    Takes any ``concurrent.futures.Future`` (a BoundedExecutor's, a
    ThreadPoolExecutor's, ``asyncio.run_coroutine_threadsafe``'s...). Returns the
    result or raises what ``result()`` raises: the task's exception,
    ``CancelledError``, ``TimeoutError`` after *timeout* seconds. Raises
    :class:`ringq.Cancelled` as soon as *cancel* fires (at once if it has already
    fired, like every ``cancel=`` call). The future itself is left alone: to stop
    the task too, ``future.cancel()`` (only a task not yet started) or give the pool
    the same token. *timeout* follows ``Queue.get``: seconds, None waits forever,
    negative or NaN raises ValueError. The wait is the queue's own, so Ctrl-C
    interrupts it.
    """
    if not isinstance(future, Future):
        raise TypeError(f"wait_future() takes a concurrent.futures.Future, not {type(future).__name__!r}"
                        " (for an asyncio future, await it)")
    check_token(cancel)
    deadline(timeout)  # the core's validation, even when there is nothing to wait for
    if cancel is not None:
        cancel.raise_if_cancelled()
    if future.done():
        return future.result()
    box: Queue[None] = Queue(1)

    def wake(_: object) -> None:
        box.put_nowait(None)

    future.add_done_callback(wake)
    try:
        box.get(True, timeout, cancel=cancel)
    except Empty:
        raise FuturesTimeoutError() from None
    finally:
        _forget_callback(future, wake)
    return future.result()


def _forget_callback(future: "Future[Any]", fn: Callable[..., object]) -> None:
    """Take *fn* off a future that is still pending, so that waits that time out or
    are cancelled leave nothing behind on a long-lived future. A done future is left
    alone: its callbacks may be running, and removing one would make the loop that
    runs them skip the next one."""
    condition = getattr(future, "_condition", None)
    callbacks = getattr(future, "_done_callbacks", None)
    if condition is None or not isinstance(callbacks, list):
        return  # not the stdlib's layout: leave it
    with condition:
        if not future.done():
            try:
                callbacks.remove(fn)
            except ValueError:
                pass
