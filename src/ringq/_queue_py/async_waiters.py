"""Async waiter records: a task's place in a wait list, its wake-up, and its sleep.

An async call checks the queue like the sync call; to wait, it appends a
_TaskWaiter to the same FIFO deque a thread would join (in the same locked
section as the failed check) and awaits its future: the loop never blocks on a
lock held by a waiting thread. Woken, it re-checks; cancelled or closed while
waiting, it leaves, passing on a wake-up it had already received.

The C side of this file is ``_queue_c/async_waiters.pxi``.
"""
from __future__ import annotations

import asyncio
from _thread import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any

from .timeouts import _earlier

if TYPE_CHECKING:
    from .queue import Queue
    from .tokens import CancelToken
    from .waiters import _WaitList

# A _TaskWaiter's states.
_LINKED, _WOKEN, _GONE = 0, 1, 2


def _resolve(fut: Any) -> None:
    """Wake a parked task: runs on its loop (call_soon_threadsafe or a timer)."""
    if not fut.done():
        fut.set_result(None)


def _wake_future(loop: Any, fut: Any) -> None:
    """Resolve *fut* on *loop* from any thread; a closed loop has no task left to wake."""
    try:
        loop.call_soon_threadsafe(_resolve, fut)
    except RuntimeError:
        pass


class _TaskWaiter:
    """One wait of one asyncio task, in the same FIFO deque as the threads' locks.

    Fresh per wait. Its state changes under the queue's lock: LINKED, then WOKEN
    (by a waker's release()) or GONE (the task left: timeout, cancellation).
    """

    __slots__ = ("loop", "fut", "thread_ident", "state", "wait_list")

    def __init__(self, wait_list: _WaitList) -> None:
        self.loop = asyncio.get_running_loop()
        self.fut = self.loop.create_future()
        self.thread_ident = get_ident()
        self.state = _LINKED
        self.wait_list = wait_list

    def release(self) -> bool:
        """The waker's call (lock held). False if this waiter cannot take the wake-up."""
        if self.state != _LINKED:
            self.wait_list._gone -= 1
            return False
        self.state = _WOKEN
        try:
            if get_ident() == self.thread_ident:
                # The waker runs on the task's loop: no self-pipe write needed.
                if not self.fut.done():
                    self.fut.set_result(None)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except Exception:  # noqa: BLE001 - RuntimeError: the loop is closed; pass the wake-up on
            return False
        return True


async def sleep(
    q: Queue[Any], rec: _TaskWaiter, ready: Any, deadline: float | None, token: CancelToken | None = None
) -> None:
    """Await *rec*'s wake-up, *deadline* or *token*; then leave *q*'s wait list (passing on an unused wake-up).

    ``ready(q)`` is the caller's condition (see queue_sync.py), read again first with
    *rec* linked: a signal handler that ran between the caller's check and the link
    (the lock is re-entrant) found no waiter to wake. If it holds, the task does not
    sleep; the caller re-checks. A handler that runs once *rec* is linked wakes it.
    """
    timer = None
    key = None
    try:
        with q._mutex:
            changed = ready(q)
        if not changed:
            if token is not None:
                # The token wakes the task like a waker; the caller's next _check_token raises Cancelled.
                deadline = _earlier(deadline, token._deadline)
                key = token._add_callback(rec.loop, rec.fut)
            if deadline is not None:
                timer = rec.loop.call_later(deadline - monotonic(), _resolve, rec.fut)
            await rec.fut
    except BaseException:
        with q._mutex:
            rec.wait_list.leave_task(rec, True)
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if key is not None:
            assert token is not None  # key is only set with a token
            token._remove_callback(key)
    with q._mutex:
        rec.wait_list.leave_task(rec, False)
