"""The async calls' internals: aput's and aput_many's loops.

aget, aget_many and ajoin are short enough to stay in queue.py, inline.

An async call checks the queue like the sync call, under the same lock and with
the same steps; to wait it links a _TaskWaiter (async_waiters.py) and sleeps.

The C side of this file is ``_queue_c/queue_async.pxi``.
"""
from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any, Iterable

from .._errors import Cancelled, Full, ShutDown
from .._timeout import deadline as _deadline  # the check shared with the toolkit modules
from .async_waiters import sleep
from .queue_sync import _with_put_count, room_or_shut_down
from .ring import _CHANGED, _SHUT_DOWN, put_one, put_run
from .stats import deliver_watermark, grew
from .tokens import _as_token, _check_token

if TYPE_CHECKING:
    from .queue import Queue


async def aput_at(q: Queue[Any], item: Any, level: int, timeout: float | None, cancel: Any = None) -> None:
    """aput() and PriorityQueue.aput(): put *item* at *level*, awaiting room."""
    deadline = _deadline(timeout)
    token = _as_token(cancel) if cancel is not None else None
    while True:
        with q._mutex:
            if q._shutdown:
                raise ShutDown
            if put_one(q, item, level):
                event = q._count >= q._alert_up and grew(q)
                if q._getters:
                    q._getters.wake(1)
                break
            if deadline is not None and monotonic() >= deadline:
                raise Full
            _check_token(token)
            rec = q._putters.link_task()
        await sleep(q, rec, room_or_shut_down, deadline, token)
    if event:
        deliver_watermark(q)


async def aput_many_at(
    q: Queue[Any], items: Iterable[Any], level: int, timeout: float | None, cancel: Any = None
) -> None:
    """aput_many() and PriorityQueue.aput_many(): the batch at *level*, awaiting room as needed."""
    deadline = _deadline(timeout)
    try:
        token = _as_token(cancel) if cancel is not None else None
    except Cancelled as e:
        raise _with_put_count(e, 0)  # noqa: B904 - the caught exception itself, re-raised
    batch = items if type(items) is tuple else tuple(items)
    n = len(batch)
    done = 0
    while True:
        with q._mutex:
            if q._shutdown:
                raise _with_put_count(ShutDown(), done)
            take = put_run(q, batch, done, level, True)
            if take == _CHANGED:
                continue
            if take == _SHUT_DOWN:
                raise _with_put_count(ShutDown(), done)
            if take > 0:
                done += take
                event = q._count >= q._alert_up and grew(q)
                if q._getters:
                    q._getters.wake(take)
            else:
                event = False
            if not event:
                if done == n:
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise _with_put_count(Full(), done)
                try:
                    _check_token(token)
                except Cancelled as e:
                    raise _with_put_count(e, done)  # noqa: B904 - the caught exception itself, re-raised
                rec = q._putters.link_task()
        if event:
            deliver_watermark(q)  # outside the lock, then check again
            continue
        await sleep(q, rec, room_or_shut_down, deadline, token)
