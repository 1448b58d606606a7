"""A stand-in for the ``janus`` package, over ringq.Queue, to run janus's own test suite on ringq.

Only for tests/test_foreign_suites.py: it puts this directory first on sys.path of a
child pytest run over janus's tests (which stay where they were fetched; none of
janus's code is copied here). The adapter is as thin as the API difference allows:

* ``janus.Queue`` is ringq.Queue plus janus's mandatory closing API, which ringq
  does not need: ``close()`` is ``shutdown(immediate=True)`` (as in janus),
  ``wait_closed()``/``aclose()`` and the ``closed`` property (on the queue and
  both sides). ``sync_q`` is the queue itself; ``async_q`` is ringq's
  AsyncQueueView with ``closed`` added.
* The exceptions are the names janus exports, bound to the stdlib/asyncio
  classes that ringq's own exceptions subclass (ringq.ShutDown before 3.13).

* The private attributes janus's tests read are mapped to ringq's public API:
  ``_parent._maxsize`` (maxsize), ``_sync_mutex`` (a
  lock never held: ringq holds none between calls), ``_*_not_empty_waiting`` and
  ``_*_not_full_waiting`` (statistics(): threads and tasks share one count).

Not adapted, so their tests are documented differences: janus's PriorityQueue
(heapq ordering) and LifoQueue (skipped), the binding to one event loop
(``_loop``, ``_get_loop``: a ringq queue is bound to none), and the
``_put``/``_get`` hooks that a subclass overrides (ringq has none, see
docs/api.md "Semantics").
"""
import asyncio
import queue
import threading

import ringq
from ringq import AsyncQueueView

SyncQueueEmpty = queue.Empty
SyncQueueFull = queue.Full
AsyncQueueEmpty = asyncio.QueueEmpty
AsyncQueueFull = asyncio.QueueFull
SyncQueueShutDown = getattr(queue, "ShutDown", ringq.ShutDown)
AsyncQueueShutDown = getattr(asyncio, "QueueShutDown", ringq.ShutDown)


class _AsyncSide(AsyncQueueView):
    __slots__ = ()

    @property
    def closed(self):
        return self._queue.is_shutdown


class _Parent:
    """What janus's sync_q._parent is to its tests: the queue, whose _maxsize they read."""

    __slots__ = ("_queue",)

    def __init__(self, queue):
        self._queue = queue

    @property
    def _maxsize(self):
        return self._queue.maxsize


# janus's tests look at a few private attributes: mapped to what ringq exposes.
_NEVER_HELD = threading.Lock()  # ringq holds no lock between calls


class Queue(ringq.Queue):
    @property
    def async_q(self):
        return _AsyncSide(self)

    # -- janus internals its tests read (sync_q is the queue, so they land here) --
    @property
    def _parent(self):
        return _Parent(self)

    @property
    def _sync_mutex(self):
        return _NEVER_HELD

    # Threads and tasks wait in one list per condition in ringq: each count is the total.
    @property
    def _sync_not_empty_waiting(self):
        return self.statistics().waiting_getters

    _async_not_empty_waiting = _sync_not_empty_waiting

    @property
    def _sync_not_full_waiting(self):
        return self.statistics().waiting_putters

    _async_not_full_waiting = _sync_not_full_waiting

    def close(self):
        self.shutdown(immediate=True)

    async def wait_closed(self):
        if not self.is_shutdown:
            raise RuntimeError("Waiting for non-closed queue")
        await asyncio.sleep(0)

    async def aclose(self):
        self.close()
        await self.wait_closed()

    @property
    def closed(self):
        return self.is_shutdown


class _NoCounterpart(Queue):
    def __init__(self, *args, **kwargs):
        import pytest

        pytest.skip(f"janus.{type(self).__name__} has no ringq counterpart (a documented difference)")


class PriorityQueue(_NoCounterpart):
    """janus's heapq-ordered queue; ringq.PriorityQueue has numbered levels instead."""


class LifoQueue(_NoCounterpart):
    """ringq has no LIFO queue."""


SyncQueue = AsyncQueue = BaseQueue = object
