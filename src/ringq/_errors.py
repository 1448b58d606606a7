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


class Empty(queue.Empty, asyncio.QueueEmpty):
    """Raised by get() and aget() when no item arrives (at once with ``block=False``).

    A subclass of ``queue.Empty`` and of ``asyncio.QueueEmpty``.
    """


class Full(queue.Full, asyncio.QueueFull):
    """Raised by put() and aput() when no room frees up (at once with ``block=False``).

    A subclass of ``queue.Full`` and of ``asyncio.QueueFull``.
    """


if sys.version_info >= (3, 13):

    class ShutDown(queue.ShutDown, asyncio.QueueShutDown):
        """Raised by put() on a queue that was shut down, and by get() once it is also empty.

        A subclass of ``queue.ShutDown`` and of ``asyncio.QueueShutDown``.
        """

else:

    class ShutDown(Exception):
        """Raised by put() on a queue that was shut down, and by get() once it is also empty.

        On Python 3.13 and later it also subclasses ``queue.ShutDown`` and
        ``asyncio.QueueShutDown``, which do not exist before.
        """


for _cls in (Empty, Full, ShutDown):
    _cls.__module__ = "ringq"
del _cls

__all__ = ["Empty", "Full", "ShutDown"]
