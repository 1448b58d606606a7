"""``Queue.async_q``: an ``asyncio.Queue``-compatible view of a ringq.Queue.

Code written for ``asyncio.Queue`` or for janus's ``async_q`` keeps its calls:
``await put/get/join``, ``put_nowait``, ``get_nowait``, ``task_done``, ``qsize``,
``empty``, ``full``, ``maxsize`` and ``shutdown``. Every call goes straight to the
queue, so the view holds no state, is bound to no event loop and needs no closing.
Shared by both implementations: it only uses the queue's public API.
"""
from __future__ import annotations

from types import GenericAlias
from typing import Any, AsyncIterator, Awaitable, Generic, TypeVar, cast

T = TypeVar("T")

__all__ = ["AsyncQueueView"]


class AsyncQueueView(Generic[T]):
    """The ``asyncio.Queue`` API over a ringq.Queue (``q.async_q``)::

        q = ringq.Queue(maxsize=100)
        aq = q.async_q
        await aq.put(1)              # the same as await q.aput(1)
        item = await aq.get()
        aq.task_done()
        await aq.join()

    Views of one queue compare equal; each attribute access may build a new one.
    """

    __slots__ = ("_queue",)

    # AsyncQueueView[int] is a types.GenericAlias, as asyncio.Queue[int] is (Generic's
    # own would be a typing._GenericAlias); type checkers still see Generic[T].
    @classmethod
    def __class_getitem__(cls, item: Any) -> GenericAlias:
        return GenericAlias(cls, item)

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    @property
    def sync_q(self) -> Any:
        """The queue this view shows (its thread-side API)."""
        return self._queue

    @property
    def maxsize(self) -> int:
        """The queue's bound; ``<= 0`` means unbounded."""
        return cast(int, self._queue.maxsize)

    def qsize(self) -> int:
        return cast(int, self._queue.qsize())

    def empty(self) -> bool:
        return cast(bool, self._queue.empty())

    def full(self) -> bool:
        return cast(bool, self._queue.full())

    def put(self, item: T) -> Awaitable[None]:
        """``await put(item)``: wait for room, like ``asyncio.Queue.put``."""
        return cast("Awaitable[None]", self._queue.aput(item))

    def get(self) -> Awaitable[T]:
        """``await get()``: wait for an item, like ``asyncio.Queue.get``."""
        return cast("Awaitable[T]", self._queue.aget())

    def join(self) -> Awaitable[None]:
        """``await join()``: wait until every item is marked done."""
        return cast("Awaitable[None]", self._queue.ajoin())

    def put_nowait(self, item: T) -> None:
        self._queue.put_nowait(item)

    def get_nowait(self) -> T:
        return cast(T, self._queue.get_nowait())

    def task_done(self) -> None:
        self._queue.task_done()

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done by task_done() (janus's ``async_q.unfinished_tasks``)."""
        return cast(int, self._queue.unfinished_tasks)

    def shutdown(self, immediate: bool = False) -> None:
        self._queue.shutdown(immediate)

    @property
    def is_shutdown(self) -> bool:
        return cast(bool, self._queue.is_shutdown)

    def __aiter__(self) -> AsyncIterator[T]:
        return cast("AsyncIterator[T]", self._queue.__aiter__())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncQueueView):
            return self._queue is other._queue
        return NotImplemented

    def __hash__(self) -> int:
        return hash(id(self._queue))

    def __repr__(self) -> str:
        return f"<ringq.AsyncQueueView of {self._queue!r}>"
