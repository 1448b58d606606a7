"""The exceptions ringq raises, each a subclass of both the stdlib queue's and asyncio's.

One ``ringq.Queue`` serves threads and event loops, so its exceptions are caught by
an ``except`` clause written for either world::

    except queue.Empty:          # catches ringq.Empty
    except asyncio.QueueEmpty:   # catches ringq.Empty too

``ringq.ShutDown`` subclasses ``queue.ShutDown`` and ``asyncio.QueueShutDown`` on
Python 3.13 and later, where they exist; before 3.13 it is ringq's own class.
``queue.Queue`` raises the stdlib classes, which are not ringq's: catch the stdlib
names when one handler serves both kinds of queue.
"""
import asyncio
import queue
import sys
import traceback
from types import TracebackType
from typing import Optional, Type


class Empty(queue.Empty, asyncio.QueueEmpty):
    """Raised by get() and aget() when no item arrives (at once with ``block=False``).

    A subclass of ``queue.Empty`` and of ``asyncio.QueueEmpty``.
    """


class Full(queue.Full, asyncio.QueueFull):
    """Raised by put() and aput() when no room frees up (at once with ``block=False``).

    A subclass of ``queue.Full`` and of ``asyncio.QueueFull``. Raised by put_many()
    or aput_many(), it has ``put_count``: how many of the batch's items went in.
    """

    put_count: int  # set on the instance by put_many()/aput_many()


if sys.version_info >= (3, 13):

    class ShutDown(queue.ShutDown, asyncio.QueueShutDown):
        """Raised by put() on a queue that was shut down, and by get() once it is also empty.

        A subclass of ``queue.ShutDown`` and of ``asyncio.QueueShutDown``. Raised by
        put_many() or aput_many(), it has ``put_count``: how many items went in.
        """

        put_count: int  # set on the instance by put_many()/aput_many()

else:

    class ShutDown(Exception):
        """Raised by put() on a queue that was shut down, and by get() once it is also empty.

        On Python 3.13 and later it also subclasses ``queue.ShutDown`` and
        ``asyncio.QueueShutDown``, which do not exist before. Raised by put_many()
        or aput_many(), it has ``put_count``: how many items went in.
        """

        put_count: int  # set on the instance by put_many()/aput_many()


for _cls in (Empty, Full, ShutDown):
    _cls.__module__ = "ringq"
del _cls


class Cancelled(Exception):
    """Raised by a blocking call whose ``cancel=`` token fired (cancel(), its deadline, or a parent's).

    A plain ``Exception``, on purpose: it is neither ``asyncio.CancelledError`` (a
    BaseException that asyncio reserves for task cancellation) nor ``TimeoutError``
    (a call's own ``timeout`` still raises ``Empty``/``Full``). A call that raises
    it has taken nothing and, except for a part-way ``put_many``, put nothing;
    raised by put_many() or aput_many(), ``put_count`` says how many items went in.
    """

    put_count: int  # set on the instance by put_many()/aput_many()


Cancelled.__module__ = "ringq"


class LoopBlockingError(RuntimeError):
    """Raised by a blocking call (put, get, put_many, get_many, join, select,
    CancelToken.wait) that would wait in a thread whose asyncio event loop is running.

    Waiting there would freeze every task of that loop until another thread acts (and
    a loop frozen that way ignores Ctrl-C). The call raised before it waited and
    before it changed anything: nothing was taken or put. In a coroutine use the
    async calls (``await q.aget()``, ``aput()``..., or ``q.async_q``, the
    ``asyncio.Queue`` API). To block the loop's thread on purpose, wrap the call in
    ``with ringq.allow_blocking():``.

    A RuntimeError, like asyncio's own "cannot be called from a running event loop":
    the arguments are fine, the calling context is not.
    """


LoopBlockingError.__module__ = "ringq"


def report_callback_error(callback: object, where: str) -> None:
    """Report the exception being handled, raised by *callback*, like an exception in ``__del__``.

    It goes to ``sys.unraisablehook`` (the default prints "Exception ignored in: ..."
    with the traceback to stderr), so a failing callback never breaks the call that
    ran it.
    """
    exc_type, exc, tb = sys.exc_info()
    hook = sys.unraisablehook
    if hook is sys.__unraisablehook__:
        # The default hook accepts only the interpreter's own argument type.
        try:
            sys.stderr.write(f"Exception ignored in {where}: {callback!r}\n")
            traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        except Exception:  # noqa: BLE001 - no stderr: nothing more we can do
            pass
        return
    args = _UnraisableArgs(exc_type, exc, tb, f"Exception ignored in {where}", callback)
    try:
        hook(args)  # type: ignore[arg-type]  # exc_type is not None: called in an except clause
    except Exception:  # noqa: BLE001 - a broken hook must not break the queue either
        pass


class _UnraisableArgs:
    __slots__ = ("exc_type", "exc_value", "exc_traceback", "err_msg", "object")

    def __init__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        exc_traceback: Optional[TracebackType],
        err_msg: Optional[str],
        obj: object,
    ) -> None:
        self.exc_type = exc_type
        self.exc_value = exc_value
        self.exc_traceback = exc_traceback
        self.err_msg = err_msg
        self.object = obj


__all__ = ["Cancelled", "Empty", "Full", "LoopBlockingError", "ShutDown"]
