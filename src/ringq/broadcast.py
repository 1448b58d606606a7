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

Every item a subscriber misses is counted in its ``dropped``. Publishers take
turns (FIFO), so every subscriber sees the items in the same order.

Re-entrancy: as with the queue itself, an item's ``__del__`` (or any code the GC or a
signal handler runs) may publish, subscribe and unsubscribe. No user object's last
reference is dropped while the publish turn is held (evicted items are dropped after
it is released); a publish re-entered in the thread that is inside ``publish()``
(where waiting for the turn would wait for itself) is handed to the holder of the
turn, which publishes it right after its own item; and the members are guarded by a
re-entrant lock whose holder re-checks its snapshot.
"""
from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from threading import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any, AsyncIterator, Deque, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar

from ._errors import Cancelled, Empty, Full, ShutDown
from ._queue import CancelToken, Queue
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
        # Written only by publishers, while they hold the broadcast's publish turn.
        self.dropped = 0


def _enter(inside: Dict[int, int], me: int) -> None:
    inside[me] = inside.get(me, 0) + 1


def _leave(inside: Dict[int, int], me: int) -> None:
    left = inside[me] - 1
    if left:
        inside[me] = left
    else:
        del inside[me]


def _remove_member(broadcast_ref: Any, member: _Member) -> None:
    """Finalizer of a subscription nobody unsubscribed: leave, so it holds nobody back."""
    broadcast = broadcast_ref()
    if broadcast is not None:
        broadcast._remove(member)
    member.queue.shutdown(immediate=True)


class Subscription(Generic[T]):
    """One subscriber's view of a :class:`Broadcast`: a queue of the items published since it subscribed.

    It has the consuming half of the ``ringq.Queue`` API (``get``, ``get_nowait``,
    ``get_many``, ``aget``, ``aget_many``, ``qsize``, ``empty``, ``full``, ``maxsize``,
    ``task_done``, ``join``, ``unfinished_tasks``, ``is_shutdown``, ``shutdown``,
    iteration and ``async for``) plus ``dropped`` and ``unsubscribe()``. As a context
    manager it unsubscribes on exit::

        with news.subscribe() as feed:
            for item in feed:      # ends when the broadcast shuts down and feed is drained
                handle(item)

    A subscription that is garbage-collected unsubscribes itself.
    """

    # get, get_nowait, get_many and task_done are the queue's own bound methods, set
    # per instance: a reader pays no wrapper call (their signatures are below, for
    # type checkers).
    __slots__ = ("_member", "_queue", "_finalizer", "get", "get_nowait", "get_many", "task_done",
                 "aget", "aget_many", "__weakref__")

    def __init__(self, broadcast: Broadcast[T], member: _Member) -> None:
        self._member = member
        q: Any = member.queue
        self._queue = q
        self.get = q.get  # type: ignore[method-assign]
        self.get_nowait = q.get_nowait  # type: ignore[method-assign]
        self.get_many = q.get_many  # type: ignore[method-assign]
        self.task_done = q.task_done  # type: ignore[method-assign]
        self.aget = q.aget  # type: ignore[method-assign]
        self.aget_many = q.aget_many  # type: ignore[method-assign]
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

        async def aget(self, timeout: Optional[float] = None, *, cancel: Optional[CancelToken] = None) -> T:
            """``get`` for coroutines (``Queue.aget``): waits on the loop, never blocks it."""

        async def aget_many(self, max_items: int, timeout: Optional[float] = None, *,
                            cancel: Optional[CancelToken] = None) -> List[T]:
            """``get_many`` for coroutines (``Queue.aget_many``)."""

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

    def __aiter__(self) -> AsyncIterator[T]:
        """``async for item in sub``: ``aget()`` until the subscription is shut down and drained."""
        return self._queue.__aiter__()  # type: ignore[no-any-return]

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

    __slots__ = ("_maxsize", "_overflow", "_gate", "_inside", "_handed", "_members_lock", "_members",
                 "_closed", "__weakref__")

    def __init__(self, maxsize: int = 0, overflow: str = "block") -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(
                f"overflow must be one of {', '.join(map(repr, OVERFLOW_POLICIES))}, not {overflow!r}")
        Queue(maxsize)  # validates maxsize now, with Queue's own message
        self._maxsize = maxsize
        self._overflow = overflow
        # The publish turn: one permit in a queue of one. A publisher holds it while it gives
        # its item to every subscriber (one order for all; it also guards the drop counts).
        # Waiting for it is a Queue.get: FIFO, with timeout, cancel= and Ctrl-C.
        gate: Any = Queue(1)
        gate.put_nowait(True)
        self._gate = gate
        # The threads inside publish() (or with a task inside apublish()), and how many
        # calls each: a publish that re-enters one (a __del__, the GC or a signal handler
        # in that thread, or a task of that loop) must not wait for the turn, which its
        # own thread holds or is queued for. Each thread writes only its own entry.
        self._inside: Dict[int, int] = {}
        # The items of such re-entrant publishes, published by the holder of the turn.
        self._handed: Deque[Any] = deque()
        # Guards _members (replaced, never mutated: publishers read a snapshot) and _closed.
        # Re-entrant: a Subscription that the GC finalizes while this thread holds it
        # unsubscribes (takes it again); every writer re-checks its snapshot before storing.
        self._members_lock = threading.RLock()
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
            while True:
                if self._closed:
                    raise ShutDown
                members = self._members
                grown = members + (member,)  # may run the GC, which may change _members
                if self._members is members:
                    self._members = grown
                    break
        return Subscription(self, member)

    def _remove(self, member: _Member) -> None:
        with self._members_lock:
            while True:
                members = self._members
                rest = tuple([m for m in members if m is not member])  # may run the GC
                if self._members is members:
                    self._members = rest
                    return

    # -- publishing ----------------------------------------------------------------

    def publish(self, item: T, block: bool = True, timeout: Optional[float] = None, *,
                cancel: Optional[CancelToken] = None) -> None:
        """Give *item* to every current subscriber.

        Raises ShutDown after shutdown(). With ``overflow="block"`` it waits for
        room in every subscriber's queue, up to *timeout* seconds: with
        ``block=False`` it is all or nothing (Full, nobody gets the item, also
        while another publisher is waiting for room); when the *timeout* expires it
        raises Full, and the subscribers that were still full miss the item and
        count it in ``dropped`` (the others have it: do not publish it again). The
        drop policies never wait for room and never raise Full.

        *cancel*, a :class:`ringq.CancelToken`: a token that has fired raises
        :class:`ringq.Cancelled` at once, and nobody gets the item; one that fires
        while this call waits for its turn (another publisher's) likewise. One that
        fires while it waits for room in a full subscriber (``"block"``) ends the
        wait as a timeout does: Cancelled, that subscriber and any other still full
        miss the item (counted in ``dropped``), the others have it.
        """
        me = get_ident()
        inside = self._inside
        if me in inside:
            # Re-entered in a thread that is inside publish(): from a __del__, the GC or a
            # signal handler. The turn is held by this thread, or it is queued for it:
            # waiting would wait for itself. The holder publishes the item after its own.
            if self._closed:
                raise ShutDown
            self._handed.append(item)
            return
        inside[me] = 1
        graveyard: List[Any] = []  # user objects to let go of once the turn is released
        try:
            gate = self._gate
            blocking = self._overflow == "block"
            deadline = None
            if not blocking:
                # The drop policies wait only for the turn (its holder never waits for room).
                permit = gate.get() if cancel is None else gate.get(True, None, cancel=cancel)
            elif not block:
                try:
                    permit = gate.get(False, None, cancel=cancel)
                except Empty:
                    raise Full from None  # another publisher holds the turn (it may be waiting for room)
            else:
                deadline = _deadline(timeout)  # checked as Queue.put checks it
                try:
                    if deadline is None and cancel is None:
                        permit = gate.get()
                    else:
                        permit = gate.get(True, None if deadline is None else max(0.0, deadline - monotonic()),
                                          cancel=cancel)
                except Empty:
                    raise Full from None  # the timeout passed while another publisher held the turn
            try:
                if self._closed:
                    raise ShutDown
                members = self._members
                if not blocking:
                    self._deliver_nowait(members, item, graveyard)
                elif not block:
                    if any([m.full() for m in members]):  # room only grows while we hold the turn
                        raise Full
                    for m in members:
                        try:
                            m.put_nowait(item)
                        except ShutDown:
                            pass  # that subscriber just left
                elif deadline is None and cancel is None:
                    # The common case, inline: one pass of plain (C) put calls.
                    for m in members:
                        try:
                            m.put(item)
                        except ShutDown:
                            if self._closed:
                                raise  # the broadcast was shut down while we waited
                            # else that subscriber left while we waited: the others still get it
                else:
                    self._publish_by(members, item, deadline, cancel)
            finally:
                try:
                    if self._handed:
                        self._drain(graveyard)
                finally:
                    gate.put_nowait(permit)
        finally:
            del inside[me]  # set to 1 above; nothing else in this thread changes it meanwhile
            if self._handed:
                self._settle(me, graveyard)
            # Last, with the turn released and this thread no longer inside: an evicted
            # item's __del__ that publishes makes an ordinary publish.
            if graveyard:
                graveyard.clear()

    put = publish

    def publish_nowait(self, item: T) -> None:
        """``publish(item, block=False)``."""
        self.publish(item, False)

    put_nowait = publish_nowait

    async def apublish(self, item: T, *, timeout: Optional[float] = None,
                       cancel: Optional[CancelToken] = None) -> None:
        """``publish`` for coroutines: every wait is on the running loop, which keeps running.

        It waits for its turn (``Queue.aget`` on the turn's permit) and, with
        ``overflow="block"``, for room in each full subscriber (``Queue.aput``); the
        drop policies never wait for room and ignore *timeout*. *timeout*, *cancel*
        and what a publish cut short leaves behind are as in :meth:`publish`; a
        cancelled task (``asyncio.CancelledError``) counts as a token that fired.
        While a task of a loop is inside ``apublish``, a ``publish()`` called in that
        loop's thread is handed over as a re-entrant one is (it never blocks the loop).
        """
        me = get_ident()
        inside = self._inside
        blocking = self._overflow == "block"
        deadline = _deadline(timeout) if blocking else None  # checked as Queue.put checks it
        _enter(inside, me)
        graveyard: List[Any] = []  # user objects to let go of once the turn is released
        try:
            gate = self._gate
            try:
                permit = await gate.aget(None if deadline is None else max(0.0, deadline - monotonic()),
                                         cancel=cancel)
            except Empty:
                raise Full from None  # the timeout passed while another publisher held the turn
            try:
                if self._closed:
                    raise ShutDown
                members = self._members
                if not blocking:
                    self._deliver_nowait(members, item, graveyard)
                else:
                    await self._apublish_by(members, item, deadline, cancel)
            finally:
                try:
                    if self._handed:
                        self._drain(graveyard)
                finally:
                    gate.put_nowait(permit)
        finally:
            _leave(inside, me)
            if self._handed:
                self._settle(me, graveyard)
            if graveyard:
                graveyard.clear()

    aput = apublish

    async def _apublish_by(self, members: Tuple[_Member, ...], item: T, deadline: Optional[float],
                           cancel: Optional[CancelToken]) -> None:
        """``_publish_by`` on the loop: a cancelled task cuts the wait short as a token does."""
        cut_short: Optional[BaseException] = None
        for m in members:
            if cut_short is None:
                try:
                    await m.queue.aput(item, None if deadline is None else max(0.0, deadline - monotonic()),
                                       cancel=cancel)
                    continue
                except ShutDown:
                    if self._closed:
                        raise
                    continue
                except (Full, Cancelled, asyncio.CancelledError) as e:
                    m.dropped += 1
                    cut_short = e
                    continue
            try:
                m.put_nowait(item)
            except Full:
                m.dropped += 1
            except ShutDown:
                pass
        if cut_short is not None:
            raise cut_short

    def _deliver_nowait(self, members: Tuple[_Member, ...], item: Any, graveyard: List[Any]) -> None:
        """Give *item* to every member without waiting; a full one misses it (or evicts, drop_oldest)."""
        if self._overflow == "drop_oldest":
            for m in members:
                try:
                    evicted = m.put_evict(item)
                except ShutDown:
                    continue  # that subscriber just left
                if evicted:
                    m.dropped += len(evicted)
                    graveyard.append(evicted)  # dropped after the turn is released
        else:
            for m in members:
                try:
                    m.put_nowait(item)
                except Full:
                    m.dropped += 1
                except ShutDown:
                    pass

    def _drain(self, graveyard: List[Any]) -> None:
        """With the turn held: publish the items handed over by re-entrant publishes, in order.

        They never wait: a subscriber that is full at that moment misses one (``"block"``
        and ``"drop_newest"``) or evicts its oldest item (``"drop_oldest"``). After
        shutdown() they go nowhere.
        """
        handed = self._handed
        while handed:
            try:
                item = handed.popleft()
            except IndexError:  # pragma: no cover - only the holder pops
                break
            graveyard.append(item)
            if not self._closed:
                self._deliver_nowait(self._members, item, graveyard)

    def _settle(self, me: int, graveyard: List[Any]) -> None:
        """End of a publish that found handed-over items left: publish them if the turn is free.

        They were handed over while this thread waited for the turn, or after its holder
        drained. If another thread holds the turn, that thread publishes them: it checks
        for them after releasing the turn, as this one does.
        """
        inside = self._inside
        handed = self._handed
        gate = self._gate
        while handed:
            try:
                permit = gate.get_nowait()
            except Empty:
                return
            _enter(inside, me)  # a publish re-entered while we drain is handed over too
            try:
                try:
                    self._drain(graveyard)
                finally:
                    gate.put_nowait(permit)
            finally:
                _leave(inside, me)

    def _publish_by(self, members: Tuple[_Member, ...], item: T, deadline: Optional[float],
                    cancel: Optional[CancelToken]) -> None:
        """Give *item* to every member, waiting for room until *deadline* or until *cancel* fires.

        Once a wait is cut short (Full or Cancelled), that member and every later one
        that is full miss the item; the others get it. Then the exception is raised.
        """
        cut_short: Optional[BaseException] = None
        for m in members:
            if cut_short is None:
                try:
                    m.put(item, True, None if deadline is None else max(0.0, deadline - monotonic()),
                          cancel=cancel)
                    continue
                except ShutDown:
                    if self._closed:
                        raise  # the broadcast itself was shut down while we waited
                    continue  # that subscriber left while we waited: the others still get it
                except (Full, Cancelled) as e:
                    m.dropped += 1
                    cut_short = e
                    continue
            try:
                m.put_nowait(item)
            except Full:
                m.dropped += 1
            except ShutDown:
                pass
        if cut_short is not None:
            raise cut_short

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

