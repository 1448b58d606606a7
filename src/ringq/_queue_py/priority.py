"""PriorityQueue: a Queue with *levels* FIFO levels, 0 the most urgent.

Level 0 is the Queue's own deque; the others are made lazily, up to the least
urgent level used (ring.py), so a huge *levels* costs no memory.

The C side of this file is ``_queue_c/priority.pxi``.
"""
from __future__ import annotations

import operator
import sys
from collections import deque
from typing import Any, Iterable, TypeVar

from .._ctor import priority_queue_args as _priority_queue_args
from .queue import _PUBLIC_NAMES, Queue, _type_name, _with_self
from .queue_async import aput_at, aput_many_at
from .queue_sync import put_at, put_evict, put_many_at
from .tokens import CancelToken

T = TypeVar("T")

def _as_levels(levels: Any) -> int:
    if isinstance(levels, bool):
        raise TypeError("levels must be an integer, not 'bool'")
    try:
        n = operator.index(levels)
    except TypeError:
        raise TypeError(f"levels must be an integer, not {type(levels).__name__!r}") from None
    if n < 1:
        raise ValueError(f"levels must be >= 1, not {n}")
    if n > sys.maxsize:
        raise OverflowError(f"levels must be at most sys.maxsize ({sys.maxsize}), not {n}")
    return n


class PriorityQueue(Queue[T]):
    """A bounded queue with *levels* priority levels: ``0`` is the most urgent.

    ``get()`` always takes the oldest item of the most urgent non-empty level.
    Within a level it is FIFO, and items are never compared. ``put(item,
    priority)`` takes the level; without one an item goes to the middle level,
    ``levels // 2`` (with 3 levels: 0 high, 1 normal, 2 low). *maxsize* bounds
    all the levels together. The rest is ``ringq.Queue``'s API::

        q = PriorityQueue(levels=3)
        q.put("report")                # priority 1 (the default)
        q.put("cleanup", priority=2)
        q.put("alert", priority=0)
        q.get_many(3)                  # ['alert', 'report', 'cleanup']
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        levels, maxsize = _priority_queue_args(*args, **kwargs)  # a bad call names PriorityQueue()
        n = _as_levels(levels)
        try:
            current = self._levels
        except AttributeError:  # not initialised yet
            current = 1
        if current != 1 and current != n:
            raise RuntimeError("the levels of a PriorityQueue cannot be changed")
        super().__init__(maxsize)
        # The levels' deques are made when first used (see _make_level), as the core's
        # rings are allocated lazily: PriorityQueue(levels=10**9) costs no memory.
        self._levels = n

    @property
    def levels(self) -> int:
        """The number of priority levels; 0 is the most urgent, ``levels - 1`` the least."""
        return self._levels

    def _level_of(self, priority: Any) -> int:
        """The level for *priority* (None: the middle one), its deque made if it is the first use."""
        levels = self._levels
        if priority is None:
            p = levels // 2
        elif isinstance(priority, bool):
            raise TypeError("priority must be an integer, not 'bool'")
        else:
            try:
                p = operator.index(priority)
            except TypeError:
                raise TypeError(f"priority must be an integer, not {type(priority).__name__!r}") from None
            if not 0 <= p < levels:
                raise ValueError(f"priority must be in range({levels}), not {p}")
        if p == 0:
            return 0  # the queue's own deque
        slots = self._slots
        level = slots.get(p) if slots is not None else None
        if level is None:
            level = self._make_level(p)
        return level

    def _make_level(self, p: int) -> int:
        """Make the deque of priority *p* (before the put's locked step); return its level.

        Only the priorities in use get a deque, as the core's rings are allocated only
        when used: PriorityQueue(levels=10**9).put(x, 10**9 - 1) makes one deque. A new
        deque goes at the end of _lower (levels already handed out never move) and
        _order, _prios, _slots and _lower are replaced as a whole, by plain stores after
        every allocation, never shortened (clear() and shutdown(immediate=True) keep
        _lower's length).
        """
        with self._mutex:
            while True:
                slots = self._slots
                level = slots.get(p) if slots is not None else None
                if level is not None:
                    return level
                lower = self._lower
                prios = self._prios
                order = list(self._order)
                level = len(lower) + 1
                at = 0
                while at < len(order) and prios[order[at] - 1] < p:
                    at += 1
                order.insert(at, level)
                new_order = tuple(order)
                new_prios = prios + (p,)
                grown = lower + (deque(),)
                new_slots = dict(slots) if slots is not None else {}
                new_slots[p] = level
                # The allocations above may run a __del__ (the GC) that makes levels
                # too: install ours only if nothing changed meanwhile.
                if self._lower is lower:
                    self._order = new_order
                    self._prios = new_prios
                    self._lower = grown
                    self._slots = new_slots
                    return level

    def put(  # type: ignore[override]
        self,
        item: T,
        priority: int | None = None,
        block: bool = True,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put *item* at the tail of level *priority* (None: ``levels // 2``), like Queue.put."""
        put_at(self, item, self._level_of(priority), block, timeout, cancel)

    def put_nowait(self, item: T, priority: int | None = None) -> None:
        """Put *item* at level *priority* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, priority, block=False)``.
        """
        if type(self) is not PriorityQueue:
            self.put(item, priority, block=False)
            return
        put_at(self, item, self._level_of(priority), False, None, None)

    def put_many(  # type: ignore[override]
        self,
        items: Iterable[T],
        priority: int | None = None,
        block: bool = True,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put every item of *items*, in order, at level *priority*; otherwise like Queue.put_many."""
        put_many_at(self, items, self._level_of(priority), block, timeout, cancel)

    def put_evict(self, item: T, priority: int | None = None) -> tuple[T, ...]:
        """Put *item* at level *priority* without waiting, evicting when the queue is full.

        The evicted item is the oldest of the least urgent non-empty level; when
        *item* is less urgent than every queued item, *item* itself is refused.
        Returns the evicted (or refused) items as a tuple, ``()`` if there was room.
        """
        return put_evict(self, item, self._level_of(priority))

    async def aput(  # type: ignore[override]
        self, item: T, priority: int | None = None, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> None:
        """Put *item* at level *priority* (None: ``levels // 2``), awaiting room like Queue.aput."""
        await aput_at(self, item, self._level_of(priority), timeout, cancel)

    async def aput_many(  # type: ignore[override]
        self,
        items: Iterable[T],
        priority: int | None = None,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put every item of *items*, in order, at level *priority*, awaiting room like Queue.aput_many."""
        await aput_many_at(self, items, self._level_of(priority), timeout, cancel)

    def __repr__(self) -> str:
        state = " shutdown" if self._shutdown else ""
        return (f"<{_type_name(self)} levels={self.levels} maxsize={self._maxsize!r} "
                f"qsize={self.qsize()}{state}>")


# What inspect.signature() and help() show: the parameters _ctor binds, not *args/**kwargs.
PriorityQueue.__init__.__signature__ = _with_self(_priority_queue_args)  # type: ignore[attr-defined]
_PUBLIC_NAMES[PriorityQueue] = "ringq.PriorityQueue"
