"""The ring buffer: a queue's storage, its priority levels, and the steps that move items.

The twin stores items in deques (level 0 in ``q._items``, a PriorityQueue's levels
1.. in ``q._lower``) where the core has rings. A PriorityQueue makes a level's deque
when the level is first used (see PriorityQueue._level_of), so ``q._lower`` holds
only the levels in use, in the order they were made: a *level* here is an index
into it plus one (0 is ``q._items``, priority 0), ``q._order`` lists them from the
most urgent priority to the least, and ``q._prios`` holds each one's priority. Every function here is
called with the queue's lock held, and each change of state is one *step* (see the
package's docstring): plain field updates, then one C call or pure bytecode that
moves the data. ``q._count`` mirrors the deques' total length at every check point.

The C side of this file is ``_queue_c/ring.pxi``.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import ShutDown

if TYPE_CHECKING:
    from .queue import Queue


_popleft = deque.popleft
_NOTHING: Any = object()  # "no item taken yet" (an item may be None)

# put_run's answers besides a count of items put.
_SHUT_DOWN = -1
_NO_ROOM_FOR_ALL = -2
_CHANGED = -3


def level_deque(q: Queue[Any], level: int) -> deque[Any]:
    """The deque of *level* (made already: see PriorityQueue._level_of)."""
    return q._items if level == 0 else q._lower[level - 1]


def pop_first(q: Queue[Any]) -> Any:
    """Remove the oldest item of the most urgent non-empty level (size > 0)."""
    q._count -= 1
    if q._items:
        return q._items.popleft()
    lower = q._lower
    for level in q._order:
        if lower[level - 1]:
            break
    q._lower_count -= 1
    return lower[level - 1].popleft()


def first_level(q: Queue[Any]) -> int:
    """The most urgent level that holds an item (0 if none does)."""
    if q._items:
        return 0
    lower = q._lower
    for level in q._order:
        if lower[level - 1]:
            return level
    return 0


def least_urgent_level(q: Queue[Any]) -> int:
    """The least urgent level that holds an item (size > 0)."""
    lower = q._lower
    order = q._order
    k = len(order)
    while k > 0 and not lower[order[k - 1] - 1]:
        k -= 1
    return order[k - 1] if k else 0


def priority_of(q: Queue[Any], level: int) -> int:
    """The priority of *level* (a level's number in ``q._lower`` is not its priority)."""
    return q._prios[level - 1] if level else 0


def put_one(q: Queue[Any], item: Any, level: int) -> bool:
    """Lock held. Put *item* at *level* as one step if there is room; False if there is none.

    A helper, so that the room check follows the check point at its entry (a
    handler run there may take the room) and nothing lies between check and step.
    """
    # The step is deque.extend() of a ready-made iterator, not append(): unlike
    # deque.append, extend does not leak a reference to the item when it fails with
    # MemoryError (CPython 3.11-3.13), and it allocates nothing that could run the
    # GC inside the step. The iterator is the spare made after the previous put's
    # step, over the empty list _box: making one here would allocate a GC object
    # after the caller evaluated *item*, and a __del__ that the GC runs there and
    # that puts would land ahead of this item (CPython's test_reentrancy).
    spare = q._spare
    if spare is None:
        # A put we re-entered (from a handler or a __del__) holds the spare: this
        # one is nested in its call, so its item may go first, as before its call.
        one = iter((item,))
    else:
        q._spare = None
        one = spare
        q._box.append(item)
    used = False
    try:
        if q._shutdown:
            raise ShutDown
        maxsize = q._maxsize
        if maxsize > 0 and q._count >= maxsize:
            return False
        # One step: plain field updates, then extend (a C call that runs no Python code).
        # The new counts are made before any field changes, and the undo restores
        # the old int objects: a count past 256 is a new int, an allocation, and
        # under memory pressure any of them can fail (see put_run).
        count = q._count
        unfinished = q._unfinished
        puts = q._puts
        lower_count = q._lower_count
        new_count = count + 1
        new_unfinished = unfinished + 1
        new_puts = puts + 1
        if level:
            new_lower_count = lower_count + 1
            target = q._lower[level - 1]
        else:
            new_lower_count = lower_count
            target = q._items
        q._count = new_count
        q._unfinished = new_unfinished
        q._puts = new_puts
        q._lower_count = new_lower_count
        used = True
        try:
            target.extend(one)
        except MemoryError:  # nothing was added: restore the counts (allocates nothing)
            q._count = count
            q._unfinished = unfinished
            q._puts = puts
            q._lower_count = lower_count
            raise
        return True
    finally:
        if spare is not None:
            # Give the spare back, or make the next one (an exhausted iterator
            # cannot be reused). The GC may run at that allocation: a __del__ that
            # puts lands behind this item. Should a handler raise between these two
            # lines, later puts make their own iterator, as nested ones do.
            box = q._box
            box.clear()
            q._spare = iter(box) if used else spare


def put_run(q: Queue[Any], batch: tuple[Any, ...], done: int, level: int, block: bool) -> int:
    """Lock held. Put as many of batch[done:] as fit now, as one step; return how many.

    Or _SHUT_DOWN, _NO_ROOM_FOR_ALL (block=False and not all fit: nothing put),
    or _CHANGED (the queue changed while the run was prepared: decide again).
    """
    if q._shutdown:
        return _SHUT_DOWN
    n = len(batch)
    maxsize = q._maxsize
    room = n - done if maxsize <= 0 else maxsize - q._count
    if room < 0:
        room = 0  # maxsize may have been lowered below qsize
    if not block and room < n:
        return _NO_ROOM_FOR_ALL
    take = n - done if n - done < room else room  # not min(): no call needed
    if take <= 0:
        return 0
    # The iterator is made first (an allocation: the GC may run a __del__ that uses
    # this queue); then the room is re-checked by plain reads; then one step:
    # the counts, then extend (it iterates a tuple: no Python code runs).
    run = iter(batch if take == n else batch[done:done + take])
    maxsize = q._maxsize
    if q._shutdown or (maxsize > 0 and q._count + take > maxsize):
        return _CHANGED
    # Out of memory, the step is undone whole: the counts get their old int objects
    # back and the items a failed extend appended are popped again. Nothing on that
    # path may allocate, as every allocation may fail there: so every new count (a
    # count past 256 is a new int) and the index of the first new item are made
    # before any field changes. On CPython 3.14+ the iterator and some ints come from
    # free lists, so the first allocation that fails can be any of these, or a
    # block of the deque part-way through the extend.
    count = q._count
    unfinished = q._unfinished
    puts = q._puts
    lower_count = q._lower_count
    new_count = count + take
    new_unfinished = unfinished + take
    new_puts = puts + take
    if level:
        new_lower_count = lower_count + take
        target = q._lower[level - 1]
    else:
        new_lower_count = lower_count
        target = q._items
    first_new = len(target)
    q._count = new_count
    q._unfinished = new_unfinished
    q._puts = new_puts
    q._lower_count = new_lower_count
    try:
        target.extend(run)
    except MemoryError:
        # Pop what went in: back to first_new items. len() makes an int per round
        # (freed again at once); if even that fails, probing the index costs no
        # allocation (but O(items) a round, so it is only the fallback).
        try:
            while len(target) > first_new:
                target.pop()
        except MemoryError:
            while True:
                try:
                    target[first_new]
                except (IndexError, MemoryError):  # past the end (MemoryError: no IndexError could be made)
                    break
                target.pop()
        q._count = count
        q._unfinished = unfinished
        q._puts = puts
        q._lower_count = lower_count
        raise
    return take


def take_lower(q: Queue[Any], batch: list[Any], n: int, taken: list[int]) -> None:
    """Lock held: move items of a PriorityQueue's lower levels to *batch*, most urgent first.

    One step per item (the counts, then one list.append); *taken* counts them
    per level, so that a late exception can give them back.
    """
    lower = q._lower
    made = len(taken)  # a level made after *taken* was sized holds nothing taken here
    for level in q._order:
        k = level - 1
        if k >= made:
            continue
        source = lower[k]
        while len(batch) < n and source:  # source read after len()'s check point
            item = source[0]
            del source[0]
            q._count -= 1
            q._lower_count -= 1
            q._gets += 1
            taken[k] += 1
            batch.append(item)


def give_back_lower(q: Queue[Any], batch: list[Any], got: int, taken: list[int]) -> None:
    """After a late exception: return *batch*'s lower-level items to the heads of their levels."""
    start = got
    made = len(taken)
    for level in q._order:  # the order of the take: levels made since only add to it
        k = level - 1
        m = taken[k] if k < made else 0
        if m:
            back = batch[start:start + m]
            back.reverse()
            q._count += m
            q._lower_count += m
            q._gets -= m
            q._lower[k].extendleft(back)
            start += m
