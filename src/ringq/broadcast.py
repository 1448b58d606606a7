"""ringq.Broadcast: every subscriber gets every item (publish-subscribe over ringq.Queue).

A toolkit module on top of :class:`ringq.Queue`; the core never imports it.

    >>> import ringq
    >>> news = ringq.Broadcast(maxsize=100)
    >>> a, b = news.subscribe(), news.subscribe()
    >>> news.publish("hello")
    >>> a.get(), b.get()
    ('hello', 'hello')

Each subscription owns a ``ringq.Queue(maxsize)``. ``overflow`` says what a
publish does when a subscriber's queue is full:

``"block"``
    wait for room (backpressure from the slowest subscriber), with ``block`` and
    ``timeout`` as in ``Queue.put``;
``"drop_newest"``
    that subscriber misses the new item;
``"drop_oldest"``
    that subscriber's oldest item is evicted to make room (``Queue.put_evict``).

Every item a subscriber misses is counted in its ``dropped``. Publishers are
serialised by one lock, so every subscriber sees the items in the same order.
"""
from __future__ import annotations

import threading
import weakref
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, Iterator, List, Optional, Tuple, TypeVar

from ._errors import Full, ShutDown
from ._queue import Queue
from ._timeout import deadline as _deadline  # checks timeout as Queue.put does

__all__ = ["Broadcast", "Subscription"]

T = TypeVar("T")

OVERFLOW_POLICIES = ("block", "drop_oldest", "drop_newest")


class _Member:
    """What the broadcast keeps of one subscription: its queue and its drop count."""

    __slots__ = ("queue", "put", "put_nowait", "put_evict", "full", "dropped")

    def __init__(self, maxsize: int) -> None:
        q: Any = Queue(maxsize)
        self.queue = q
        self.put = q.put
        self.put_nowait = q.put_nowait
        self.put_evict = q.put_evict
        self.full = q.full
        # Written only by publishers, under the broadcast's publish lock.
        self.dropped = 0


def _remove_member(broadcast_ref: Any, member: _Member) -> None:
    """Finalizer of a subscription nobody unsubscribed: leave, so it holds nobody back."""
    broadcast = broadcast_ref()
    if broadcast is not None:
        broadcast._remove(member)
    member.queue.shutdown(immediate=True)


class Subscription(Generic[T]):
    """One subscriber's view of a :class:`Broadcast`: a queue of the items published since it subscribed.

    It has the consuming half of the ``ringq.Queue`` API (``get``, ``get_nowait``,
    ``get_many``, ``qsize``, ``empty``, ``full``, ``maxsize``, ``task_done``,
    ``join``, ``unfinished_tasks``, ``is_shutdown``, ``shutdown``, iteration) plus
    ``dropped`` and ``unsubscribe()``. As a context manager it unsubscribes on exit::

        with news.subscribe() as feed:
            for item in feed:      # ends when the broadcast shuts down and feed is drained
                handle(item)

    A subscription that is garbage-collected unsubscribes itself.
    """

    # get, get_nowait, get_many and task_done are the queue's own bound methods, set
    # per instance: a reader pays no wrapper call (their signatures are below, for
    # type checkers).
    __slots__ = ("_member", "_queue", "_finalizer", "get", "get_nowait", "get_many", "task_done",
                 "__weakref__")

    def __init__(self, broadcast: Broadcast[T], member: _Member) -> None:
        self._member = member
        q: Any = member.queue
        self._queue = q
        self.get = q.get  # type: ignore[method-assign]
        self.get_nowait = q.get_nowait  # type: ignore[method-assign]
        self.get_many = q.get_many  # type: ignore[method-assign]
        self.task_done = q.task_done  # type: ignore[method-assign]
        self._finalizer = weakref.finalize(self, _remove_member, weakref.ref(broadcast), member)

    @property
    def queue(self) -> Queue[T]:
        """The ``ringq.Queue`` this subscription reads from (for ``ringq.select`` and the like)."""
        return self._queue  # type: ignore[no-any-return]

    @property
    def dropped(self) -> int:
        """How many published items this subscriber missed (drop policies, or a publish timeout)."""
        return self._member.dropped

    if TYPE_CHECKING:
        def get(self, block: bool = True, timeout: Optional[float] = None) -> T:
            """Remove and return the oldest item, like ``Queue.get``; ShutDown once closed and drained."""

        def get_nowait(self) -> T:
            """Remove and return the oldest item without waiting; Empty if there is none."""

        def get_many(self, max_items: int, block: bool = True, timeout: Optional[float] = None) -> List[T]:
            """Wait like get() for at least one item, then return up to *max_items*, oldest first."""

        def task_done(self) -> None:
            """Mark one item taken with get() as processed, for join()."""

    def qsize(self) -> int:
        return self._queue.qsize()  # type: ignore[no-any-return]

    def empty(self) -> bool:
        return self._queue.empty()  # type: ignore[no-any-return]

    def full(self) -> bool:
        return self._queue.full()  # type: ignore[no-any-return]

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize  # type: ignore[no-any-return]

    def join(self) -> None:
        self._queue.join()

    @property
    def unfinished_tasks(self) -> int:
        return self._queue.unfinished_tasks  # type: ignore[no-any-return]

    @property
    def is_shutdown(self) -> bool:
        """True once unsubscribed or once the broadcast was shut down."""
        return self._queue.is_shutdown  # type: ignore[no-any-return]

    def unsubscribe(self) -> None:
        """Leave the broadcast: no more items arrive, the unread ones are dropped, get() raises ShutDown.

        A publisher blocked on this subscriber's full queue moves on. Calling it again does nothing.
        """
        self._finalizer()

    close = unsubscribe

    def shutdown(self, immediate: bool = False) -> None:
        """Leave the broadcast like ``Queue.shutdown``: no more items arrive, get() raises ShutDown once drained.

        Unlike unsubscribe(), the unread items stay for the reader (all dropped
        with ``immediate=True``), and a reader blocked in get() wakes up. With it a
        subscription can be the source of a ``ringq.Pipeline``, which shuts its
        source down when it stops early. Calling it again is allowed.
        """
        found = self._finalizer.peek()  # (self, _remove_member, (broadcast_ref, member), {}) until unsubscribed
        if found is not None:
            broadcast = found[2][0]()
            if broadcast is not None:
                broadcast._remove(self._member)
        self._queue.shutdown(immediate)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            return self._queue.get()  # type: ignore[no-any-return]
        except ShutDown:
            raise StopIteration from None

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.unsubscribe()

    def __repr__(self) -> str:
        state = " unsubscribed" if not self._finalizer.alive else ""
        return (f"<ringq.Subscription qsize={self._queue.qsize()} dropped={self._member.dropped}"
                f"{state}>")


class Broadcast(Generic[T]):
    """Broadcast(maxsize=0, overflow="block")

    Publish-subscribe between threads: every subscription receives every item
    published after it subscribed, in the same order for all. *maxsize* bounds
    each subscriber's queue (``<= 0``: unbounded); *overflow* is ``"block"``,
    ``"drop_oldest"`` or ``"drop_newest"`` (see the module docstring)::

        ticks = Broadcast(maxsize=1000, overflow="drop_oldest")
        with ticks.subscribe() as feed:
            ticks.publish(1.25)
            feed.get()          # 1.25
        ticks.shutdown()        # subscribers drain what they have, then stop

    Items published before a subscription existed never reach it; an item whose
    ``publish`` runs while ``subscribe()`` runs may or may not.
    """

    __slots__ = ("_maxsize", "_overflow", "_publish_lock", "_members_lock", "_members",
                 "_closed", "__weakref__")

    def __init__(self, maxsize: int = 0, overflow: str = "block") -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(
                f"overflow must be one of {', '.join(map(repr, OVERFLOW_POLICIES))}, not {overflow!r}")
        Queue(maxsize)  # validates maxsize now, with Queue's own message
        self._maxsize = maxsize
        self._overflow = overflow
        # Serialises publishers (one order for every subscriber) and guards the drop counts.
        self._publish_lock = threading.Lock()
        # Guards _members (replaced, never mutated: publishers read a snapshot) and _closed.
        self._members_lock = threading.Lock()
        self._members: Tuple[_Member, ...] = ()
        self._closed = False

    @property
    def maxsize(self) -> int:
        """The bound of each subscriber's queue."""
        return self._maxsize

    @property
    def overflow(self) -> str:
        return self._overflow

    @property
    def subscribers(self) -> int:
        """How many subscriptions are active."""
        return len(self._members)

    @property
    def is_shutdown(self) -> bool:
        return self._closed

    def subscribe(self) -> Subscription[T]:
        """A new subscription; it receives the items published from now on. ShutDown after shutdown()."""
        member = _Member(self._maxsize)
        with self._members_lock:
            if self._closed:
                raise ShutDown
            self._members = self._members + (member,)
        return Subscription(self, member)

    def _remove(self, member: _Member) -> None:
        with self._members_lock:
            self._members = tuple(m for m in self._members if m is not member)

    # -- publishing ----------------------------------------------------------------

    def publish(self, item: T, block: bool = True, timeout: Optional[float] = None) -> None:
        """Give *item* to every current subscriber.

        Raises ShutDown after shutdown(). With ``overflow="block"`` it waits for
        room in every subscriber's queue, up to *timeout* seconds: with
        ``block=False`` it is all or nothing (Full, nobody gets the item, also
        while another publisher is waiting for room); when the *timeout* expires it
        raises Full, and the subscribers that were still full miss the item and
        count it in ``dropped`` (the others have it: do not publish it again). The
        drop policies never block and never raise Full.
        """
        lock = self._publish_lock
        if self._overflow != "block":
            with lock:
                self._publish_dropping(item)
            return
        if block and timeout is None:
            # The common case, inline: one locked pass of plain (C) put calls.
            with lock:
                if self._closed:
                    raise ShutDown
                for m in self._members:
                    try:
                        m.put(item)
                    except ShutDown:
                        if self._closed:
                            raise  # the broadcast was shut down while we waited
                        # else that subscriber left while we waited: the others still get it
            return
        deadline = _deadline(timeout) if block else None  # validates timeout like Queue.put
        if not block:
            if not lock.acquire(False):
                raise Full
        elif deadline is None:
            lock.acquire()
        elif not lock.acquire(True, max(0.0, deadline - monotonic())):
            raise Full
        try:
            if self._closed:
                raise ShutDown
            members = self._members
            if not block:
                if any(m.full() for m in members):  # room only grows while we hold the lock
                    raise Full
                for m in members:
                    try:
                        m.put_nowait(item)
                    except ShutDown:
                        pass  # that subscriber just left
            elif deadline is None:  # a timeout too long to matter
                for m in members:
                    self._put_waiting(m, item, None)
            else:
                self._publish_by(members, item, deadline)
        finally:
            lock.release()

    put = publish

    def publish_nowait(self, item: T) -> None:
        """``publish(item, block=False)``."""
        self.publish(item, False)

    put_nowait = publish_nowait

    def _publish_dropping(self, item: T) -> None:
        if self._closed:
            raise ShutDown
        if self._overflow == "drop_oldest":
            for m in self._members:
                try:
                    if m.put_evict(item):
                        m.dropped += 1
                except ShutDown:
                    pass  # that subscriber just left
        else:
            for m in self._members:
                try:
                    m.put_nowait(item)
                except Full:
                    m.dropped += 1
                except ShutDown:
                    pass

    def _put_waiting(self, m: _Member, item: T, timeout: Optional[float]) -> None:
        try:
            m.put(item, True, timeout)
        except ShutDown:
            if self._closed:
                raise  # the broadcast itself was shut down while we waited
            # else that subscriber left while we waited: the others still get the item

    def _publish_by(self, members: Tuple[_Member, ...], item: T, deadline: float) -> None:
        missed = False
        for m in members:
            if missed:
                try:
                    m.put_nowait(item)
                except Full:
                    m.dropped += 1
                except ShutDown:
                    pass
                continue
            try:
                self._put_waiting(m, item, max(0.0, deadline - monotonic()))
            except Full:
                m.dropped += 1
                missed = True  # the deadline has passed: the rest get it only if they have room
        if missed:
            raise Full

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self, immediate: bool = False) -> None:
        """Close the broadcast: publish() and subscribe() raise ShutDown.

        Every subscription is shut down too: its reader gets what is left, then
        ShutDown (the iteration ends). With ``immediate=True`` the unread items are
        dropped at once. A publisher blocked on a full subscriber is released with
        ShutDown. Calling it again is allowed.
        """
        with self._members_lock:
            self._closed = True
            members = self._members
        for m in members:
            m.queue.shutdown(immediate)

    def __enter__(self) -> Broadcast[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = " shutdown" if self._closed else ""
        return (f"<ringq.Broadcast maxsize={self._maxsize} overflow={self._overflow!r} "
                f"subscribers={len(self._members)}{state}>")

