"""CancelToken in coroutines: ``await token.await_cancelled()`` and ``async with token.scope()``.

Shared by both implementations of CancelToken (the core's and the twin's): it uses
only the token's public state (``cancelled``, ``deadline``) and its two hooks for
async waits, ``_add_callback(loop, future)`` (``cancel()`` resolves the future on
its loop, from any thread) and ``_remove_callback(key)``. A token's deadline fires
it without anyone calling ``cancel()``, so every wait here also keeps a timer on
the loop for that deadline. Nothing here blocks the loop or holds a thread lock.
"""
from __future__ import annotations

import asyncio
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Coroutine, Optional, Type

from ._errors import Cancelled
from ._timeout import deadline as _deadline

if TYPE_CHECKING:
    from typing_extensions import Self  # only for the annotations, which are never evaluated

__all__ = ["CancelScope", "await_cancelled"]

# A loop timer may run a little before its time (the loop's clock resolution):
# one that finds the deadline not yet passed waits again, at least this long.
_MIN_REARM = 0.001


def _earlier(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None:
        return b
    if b is None or a < b:
        return a
    return b


def _set(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


def await_cancelled(token: Any, timeout: Any = None) -> Coroutine[Any, Any, bool]:
    """The coroutine of ``token.await_cancelled(timeout)`` (*timeout* checked now, as by ``wait``)."""
    return _await_cancelled(token, _deadline(timeout))


async def _await_cancelled(token: Any, deadline: Optional[float]) -> bool:
    loop = asyncio.get_running_loop()
    while True:
        if token.cancelled:
            return True
        wake_at = _earlier(deadline, token.deadline)
        if wake_at is not None and monotonic() >= wake_at:
            return bool(token.cancelled)  # our timeout passed (the token's deadline fires it)
        fut: asyncio.Future[None] = loop.create_future()
        key = token._add_callback(loop, fut)  # resolves fut at once if the token has fired
        timer = None
        if wake_at is not None:
            timer = loop.call_later(max(_MIN_REARM, wake_at - monotonic()), _set, fut)
        try:
            await fut
        finally:
            token._remove_callback(key)
            if timer is not None:
                timer.cancel()


_IDLE, _ENTERED, _CANCELLING, _DONE = range(4)


class CancelScope:
    """``async with token.scope():`` - the token firing cancels the block.

    Made by ``CancelToken.scope()``. When the token fires (``cancel()`` from any
    thread or task, its deadline, or a parent's), the task running the block is
    cancelled (``task.cancel()``), and with it what the block awaits: the tasks of
    a ``gather`` or of an ``asyncio.TaskGroup`` inside the block are cancelled and
    awaited before the block is left, so nothing it started that way is left
    running. On leaving, that cancellation becomes :class:`ringq.Cancelled`,
    chained to the ``CancelledError`` (as ``asyncio.timeout`` turns its own into
    TimeoutError); ``scope.cancelled`` then says so. A cancellation from outside
    (another ``task.cancel()``) stays a CancelledError. A token that has already
    fired raises Cancelled on entering, and the block does not run. A token that
    fires after the block was left changes nothing. One scope, one use.
    """

    __slots__ = ("_token", "_state", "_task", "_fut", "_key", "_timer", "_cancelling", "_cancelled")

    def __init__(self, token: Any) -> None:
        self._token = token
        self._state = _IDLE
        self._task: Optional[asyncio.Task[Any]] = None
        self._fut: Optional[asyncio.Future[None]] = None
        self._key: Any = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._cancelling = 0
        self._cancelled = False

    @property
    def token(self) -> Any:
        return self._token

    @property
    def cancelled(self) -> bool:
        """True once the token fired and cancelled the block."""
        return self._cancelled

    async def __aenter__(self) -> Self:
        if self._state != _IDLE:
            raise RuntimeError("a CancelScope is used once: call token.scope() again for another block")
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("token.scope() must be entered in an asyncio task")
        token = self._token
        token.raise_if_cancelled()  # fired already: the block does not run
        loop = asyncio.get_running_loop()
        self._task = task
        self._state = _ENTERED
        cancelling = getattr(task, "cancelling", None)  # 3.11+
        self._cancelling = cancelling() if cancelling is not None else 0
        fut: asyncio.Future[None] = loop.create_future()
        fut.add_done_callback(self._fire)
        self._fut = fut
        self._key = token._add_callback(loop, fut)
        if token.deadline is not None:
            self._arm(loop)
        return self

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = self._token.deadline
        self._timer = loop.call_later(max(_MIN_REARM, deadline - monotonic()), self._on_deadline, loop)

    def _on_deadline(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._state != _ENTERED or self._fut is None:
            return
        if self._token.cancelled:
            _set(self._fut)
        else:
            self._arm(loop)  # the loop's timer ran a little early

    def _fire(self, fut: asyncio.Future[None]) -> None:
        # On the loop, between two steps of the task: cancel its block.
        if self._state == _ENTERED and self._task is not None:
            self._state = _CANCELLING
            self._task.cancel()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        state = self._state
        self._state = _DONE
        self._token._remove_callback(self._key)
        if self._timer is not None:
            self._timer.cancel()
        fut, self._fut, self._task = self._fut, None, None
        if fut is not None:
            fut.remove_done_callback(self._fire)
        if state != _CANCELLING:
            return
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)  # 3.11+: our task.cancel() is undone
        outside = uncancel is not None and uncancel() > self._cancelling
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError) and not outside:
            self._cancelled = True
            raise Cancelled("the cancel token fired: the block of its scope was cancelled") from exc
