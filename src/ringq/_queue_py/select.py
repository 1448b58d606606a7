"""select() and aselect(): wait for an item from whichever of several queues has one first.

A select links one _Link per queue into the queues' getters lists, all sharing one
_Call (waiters.py): the first waker to claim the call wins, the others skip it.

The C side of this file is ``_queue_c/select.pxi``.
"""
from __future__ import annotations

import asyncio
import random
from _thread import get_ident
from time import monotonic
from typing import Any

from .._errors import Empty, ShutDown
from .._loopguard import refuse as _refuse_blocking
from .._timeout import deadline as _deadline  # the check shared with the toolkit modules
from .async_waiters import _resolve
from .queue import Queue
from .queue_sync import _raise_shutdown
from .ring import pop_first
from .stats import deliver_watermark, shrank
from .timeouts import _acquire_until, _earlier, _running_loop
from .tokens import CancelToken, _as_token, _check_token
from .waiters import _Call, _Link

_shuffle = random.Random().shuffle


def _pass_on(q: Queue[Any]) -> None:
    """Wake one getter of *q* if it has items: a wake-up we received from it and did not use."""
    with q._mutex:
        if (q._items or q._lower_count) and q._getters:
            q._getters.wake(1)


def select(
    *queues: Queue[Any], timeout: float | None = None, priority: bool = False, cancel: CancelToken | None = None
) -> tuple[Queue[Any], Any]:
    """Wait until any of *queues* has an item; take it and return ``(queue, item)``.

    Same contract as the core's select(): one item from exactly one queue; random
    and fair among ready queues (argument order with ``priority=True``); shut-down
    and drained queues are skipped, ShutDown once all are; Empty after *timeout*;
    Cancelled when *cancel* fires.
    """
    k = len(queues)
    if k == 0:
        raise TypeError("select() needs at least one queue")
    for q in queues:
        if not isinstance(q, Queue):
            raise TypeError(f"select() takes ringq.Queue objects, not {type(q).__name__!r}")
    deadline = _deadline(timeout)
    token = _as_token(cancel) if cancel is not None else None
    order = list(range(k))
    won: Any = None
    while True:
        if not priority:
            _shuffle(order)
        closed = [False] * k
        for i in order:
            q = queues[i]
            with q._mutex:
                if not q._items and not q._lower_count:
                    closed[i] = q._shutdown
                    continue
                item = pop_first(q)
                q._gets += 1
                event = q._count <= q._alert_down and shrank(q)
                if q._putters:
                    q._putters.wake(1)
            if won is not None and won is not q:
                _pass_on(won)
            if event:
                deliver_watermark(q)
            return q, item
        if won is not None:
            _pass_on(won)
            won = None
        if all(closed):
            for q in queues:
                if q._shutdown_cause is not None:
                    _raise_shutdown(q._shutdown_cause)
            raise ShutDown
        if deadline is not None and monotonic() >= deadline:
            raise Empty
        if token is not None and token.cancelled:
            token._raise()
        if _running_loop() is not None:
            _refuse_blocking("select")  # about to wait: not on a thread that runs an event loop

        # Link one waiter per open queue; any change seen meanwhile means scan again.
        # The link is made before the check: between the check and the append there
        # is no check point (no call), so a signal handler that puts or shuts down
        # runs either before the check (seen) or once we are linked (it wakes us).
        call = _Call()
        links: list[tuple[Queue[Any], _Link]] = []
        ready = False
        for i in range(k):
            if closed[i]:
                continue  # shut down and drained at the scan: it stays so
            q = queues[i]
            link = _Link(call, q)
            with q._mutex:
                if q._items or q._lower_count or q._shutdown:
                    ready = True
                    break
                q._getters._parked.append(link)
                links.append((q, link))
        tlink = None
        cancelled = False
        try:
            if not ready:
                if token is not None:
                    tlink = _Link(call, token)
                    if not token._link(tlink):
                        tlink = None
                        cancelled = True
                if not cancelled:
                    _acquire_until(call.parker, _earlier(deadline, token._deadline if token is not None else None))
        except BaseException:
            won = _unlink_select(links, token, tlink, call)
            if isinstance(won, Queue):
                _pass_on(won)
            raise
        won = _unlink_select(links, token, tlink, call)
        if won is not None and won is token:
            won = None
            cancelled = True
        if cancelled:
            if won is not None:
                _pass_on(won)
            token._raise()  # type: ignore[union-attr]


def _unlink_select(links: list[tuple[Queue[Any], _Link]], token: Any, tlink: _Link | None, call: _Call) -> Any:
    """Make every link of a select unreachable, then return who claimed it (a queue, the token or None)."""
    for q, link in links:
        with q._mutex:
            try:
                q._getters._parked.remove(link)
            except ValueError:
                pass
    if tlink is not None:
        token._unlink(tlink)
    return call.close()


class _TaskSelectLink:
    """One link of an aselect: in one queue's getters deque, sharing the task's future and claim."""

    __slots__ = ("call", "queue", "loop", "fut", "thread_ident")

    def __init__(self, call: _Call, queue: Queue[Any], loop: Any, fut: Any) -> None:
        self.call = call
        self.queue = queue
        self.loop = loop
        self.fut = fut
        self.thread_ident = get_ident()

    def release(self) -> bool:
        """The waker's call (lock held): False if the task was already claimed through another queue."""
        if not self.call._claim.acquire(False):
            return False
        self.call.won = self.queue
        try:
            if get_ident() == self.thread_ident:
                if not self.fut.done():
                    self.fut.set_result(None)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except Exception:  # noqa: BLE001 - the loop is closed: nobody will take this wake-up
            return False
        return True


async def aselect(
    *queues: Queue[Any], timeout: float | None = None, priority: bool = False, cancel: CancelToken | None = None
) -> tuple[Queue[Any], Any]:
    """select() for asyncio: await an item from whichever of *queues* has one first.

    Same contract as the core's aselect() and as select(), ``cancel=`` included.
    """
    k = len(queues)
    if k == 0:
        raise TypeError("select() needs at least one queue")
    for q in queues:
        if not isinstance(q, Queue):
            raise TypeError(f"select() takes ringq.Queue objects, not {type(q).__name__!r}")
    deadline = _deadline(timeout)
    token = _as_token(cancel) if cancel is not None else None
    won: Any = None
    while True:
        try:
            _check_token(token)  # as select(): a fired token ends the call before the next scan
            got: Any = select(*queues, timeout=0, priority=priority)  # a scan that does not wait
        except Empty:
            got = None
        except BaseException:
            if won is not None:
                _pass_on(won)
            raise
        if won is not None and (got is None or got[0] is not won):
            _pass_on(won)
        won = None
        if got is not None:
            return got  # type: ignore[no-any-return]
        if deadline is not None and monotonic() >= deadline:
            raise Empty
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        call = _Call()
        links: list[tuple[Queue[Any], Any]] = []
        ready = False
        open_queues = 0
        for q in queues:
            link = _TaskSelectLink(call, q, loop, fut)  # before the check, as in select()
            with q._mutex:
                if q._items or q._lower_count:
                    ready = True
                    break
                q._getters._parked.append(link)
                links.append((q, link))
                if not q._shutdown:
                    open_queues += 1
        if open_queues == 0:
            ready = True  # all shut down meanwhile: the scan raises ShutDown
        if not ready:
            timer = None
            key = None
            wake_at = deadline
            if token is not None:
                # The token resolves the future like a waker would; the next pass raises Cancelled.
                wake_at = _earlier(deadline, token._deadline)
                key = token._add_callback(loop, fut)
            if wake_at is not None:
                timer = loop.call_later(wake_at - monotonic(), _resolve, fut)
            try:
                await fut
            except BaseException:
                won = _unlink_select(links, None, None, call)
                if won is not None:
                    _pass_on(won)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                if key is not None:
                    assert token is not None  # key is only set with a token
                    token._remove_callback(key)
        won = _unlink_select(links, None, None, call)
