"""Deadlines, timeouts, signals (the main thread waits in 50 ms slices) and fork handling.

The C side of this file is ``_queue_c/timeouts.pxi``.
"""
from __future__ import annotations

import asyncio
import os
import threading
import weakref
from _thread import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _thread import LockType

    from .bucket import TokenBucket
    from .queue import Queue
    from .tokens import CancelToken


def _earlier(a: float | None, b: float | None) -> float | None:
    """The earlier of two deadlines (None is the latest)."""
    if a is None:
        return b
    if b is None or a < b:
        return a
    return b


# The thread's running asyncio loop or None, without raising (_asyncio's C function):
# a blocking call looks for one before it waits, never on a fast path (see _loopguard.py).
_running_loop = asyncio._get_running_loop

# Signals are handled in the main thread only. It waits in slices, as the core does,
# so a handler runs within a slice even when nothing interrupts the lock's wait
# (_thread.interrupt_main() sends no signal; Windows and macOS locks are not
# interrupted either). Updated in a fork child, whose only thread becomes the main one.
_MAIN_THREAD_SLICE = 0.05
_main_thread_ident = threading.main_thread().ident


def _acquire_until(lock: LockType, deadline: float | None) -> bool:
    """Acquire *lock* before *deadline* (None: no limit); False if the deadline passed first.

    In the main thread it waits in slices of _MAIN_THREAD_SLICE: pending signal
    handlers run between them (at the loop's check points), and an exception they
    raise propagates from here, as from an interrupted acquire().
    """
    if get_ident() != _main_thread_ident:
        if deadline is None:
            return lock.acquire()
        remaining = deadline - monotonic()
        return remaining > 0 and lock.acquire(True, _clamped(remaining))
    while True:
        if deadline is None:
            wait = _MAIN_THREAD_SLICE
        else:
            wait = deadline - monotonic()
            if wait <= 0:
                return False
            if wait > _MAIN_THREAD_SLICE:
                wait = _MAIN_THREAD_SLICE
        if lock.acquire(True, wait):
            return True


def _clamped(seconds: float) -> float:
    """*seconds* no longer than threading.TIMEOUT_MAX (about 49.7 days on Windows).

    A longer wait wakes early; every caller re-checks its deadline and waits again.
    """
    limit = threading.TIMEOUT_MAX
    return limit if seconds > limit else seconds


# Every live twin queue, cancel token and token bucket, so that a fork child can reset
# them (see their _reset_after_fork methods).
_live_queues: weakref.WeakSet[Queue[Any]] = weakref.WeakSet()
_live_tokens: weakref.WeakSet[CancelToken] = weakref.WeakSet()
_live_buckets: weakref.WeakSet[TokenBucket] = weakref.WeakSet()


def _reset_after_fork() -> None:
    global _main_thread_ident
    _main_thread_ident = get_ident()  # the forking thread: the child's only (and main) thread
    for q in list(_live_queues):
        q._reset_after_fork()
    for token in list(_live_tokens):
        token._reset_after_fork()
    for bucket in list(_live_buckets):
        bucket._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
