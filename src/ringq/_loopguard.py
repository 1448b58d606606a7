"""The loop-freezing guard: a blocking call must not wait in a thread that runs an asyncio event loop.

Shared by both implementations. They look for a running loop themselves, and only
on the path that is about to wait (never on a fast path): ``asyncio._get_running_loop()``,
the C function of ``_asyncio``, which returns the thread's running loop or None
without raising. Both modules import asyncio anyway (for their async calls), so the
check costs one C call per wait. Only when a loop runs do they call refuse(), which
raises LoopBlockingError unless ``allow_blocking()`` is in effect.

Why an error and not a wait: a thread that runs an event loop and blocks in put(),
get() or join() freezes every task of that loop, including the ones that would
unblock it (a deadlock when the other side is a task), and Ctrl-C cannot get
through (the issue behind it: ``asyncio.Queue`` code ported by changing only the
constructor, ``await q.get()`` kept).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from ._errors import LoopBlockingError

__all__ = ["allow_blocking", "refuse"]

# A ContextVar, not a thread-local: each asyncio task has its own context, so an
# allow_blocking() block in one task never lets another task's call block the loop.
_allowed: ContextVar[bool] = ContextVar("ringq_allow_blocking", default=False)

# The blocking call -> its async form on the queue, and the asyncio.Queue-style one.
_ASYNC = {
    "put": ("await q.aput(item)", "await q.async_q.put(item)"),
    "put_many": ("await q.aput_many(items)", None),
    "get": ("await q.aget()", "await q.async_q.get()"),
    "get_many": ("await q.aget_many(max_items)", None),
    "join": ("await q.ajoin()", "await q.async_q.join()"),
    "select": ("await ringq.aselect(*queues)", None),
    "CancelToken.wait": ("await token.await_cancelled()", None),
}
# What the message tells synchronous code to run in a worker thread.
_TARGET = {"select": "ringq.select", "CancelToken.wait": "token.wait"}


@contextmanager
def allow_blocking() -> Iterator[None]:
    """Let blocking calls made inside the block wait even though this thread runs an event loop.

    Every task of the loop freezes while such a call waits. For code that blocks the
    loop's thread on purpose (a notebook cell that waits for a worker thread, a
    synchronous callback that must wait a moment)::

        with ringq.allow_blocking():
            result = q.get(timeout=5)

    It holds for the current context only (the calling task), and nests.
    """
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


def refuse(call: str) -> None:
    """Called when blocking *call* ("get", "put", ...) is about to wait on a thread whose loop runs.

    Raises LoopBlockingError, unless allow_blocking() is in effect.
    """
    if _allowed.get():
        return
    coroutine, view = _ASYNC[call]
    also = f" (or {view}, the asyncio.Queue API)" if view is not None else ""
    target = _TARGET.get(call, f"q.{call}")
    nowait = " or get_nowait()" if call == "get" else " or put_nowait()" if call == "put" else ""
    raise LoopBlockingError(
        f"{call}() would wait in a thread whose asyncio event loop is running, which freezes "
        f"every task of that loop (and Ctrl-C with it); nothing was taken or put. In a "
        f"coroutine use {coroutine}{also}. From synchronous code on the loop's thread, "
        f"run the blocking call in a worker thread (await asyncio.to_thread({target}, ...))"
        f"{nowait}. To block the loop on purpose, wrap the call in "
        f"'with ringq.allow_blocking():'."
    )
