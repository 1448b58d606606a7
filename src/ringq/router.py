"""ringq.Router: put each item on the queue its key selects (content-based routing).

A toolkit module; the core never imports it. The targets are any queue-like
objects with ``put`` (``ringq.Queue``, ``ringq.PriorityQueue``, ``queue.Queue``, a
``Broadcast``...)::

    >>> import ringq
    >>> orders, refunds, other = ringq.Queue(), ringq.Queue(), ringq.Queue()
    >>> router = ringq.Router(lambda m: m["type"], {"order": orders, "refund": refunds},
    ...                       default=other)
    >>> router.put({"type": "order", "id": 1})
    >>> orders.get()
    {'type': 'order', 'id': 1}
"""
from __future__ import annotations

import threading
from types import MappingProxyType
from typing import Any, Callable, Dict, Generic, Hashable, Iterable, List, Mapping, Optional, TypeVar

from ._asyncfn import refuse_async
from ._errors import ShutDown
from ._queue import CancelToken

__all__ = ["Router", "UnroutableError"]

T = TypeVar("T")
# The key type of the routes mapping, per call: Mapping is invariant in its key, so a
# Mapping[Hashable, Any] parameter would reject the dict[str, Queue[int]] users pass.
_K = TypeVar("_K", bound=Hashable)


class UnroutableError(KeyError):
    """No route for an item's key, and the router has no default.

    A KeyError, so ``except KeyError`` catches it. ``key`` and ``item`` say which.
    """

    def __init__(self, key: Any, item: Any) -> None:
        super().__init__(key)
        self.key = key
        self.item = item

    def __str__(self) -> str:
        return f"no route for key {self.key!r} (and no default route)"


def _check_token(cancel: Any) -> None:
    """Cancelled at once if *cancel* has fired; TypeError if it is not a CancelToken at all."""
    raise_if_cancelled = getattr(cancel, "raise_if_cancelled", None)
    if raise_if_cancelled is None:  # either implementation's token has it; the target checks the class
        raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
    raise_if_cancelled()


class Router(Generic[T]):
    """Router(key, routes, default=None)

    ``put(item)`` puts *item* on ``routes[key(item)]``, or on *default* when the
    key has no route; without a default that raises :class:`UnroutableError` (a
    KeyError) and puts nothing. ``shutdown()`` shuts every target down, each once::

        by_level = Router(lambda rec: rec.levelname, {"ERROR": alerts}, default=archive)
        by_level.put(record)
        by_level.shutdown()       # closes alerts and archive

    *routes* is copied: later changes to the mapping do not affect the router.
    """

    __slots__ = ("_key", "_routes", "_default", "_closed", "_lock")

    def __init__(self, key: Callable[[T], Hashable], routes: Mapping[_K, Any],
                 default: Optional[Any] = None) -> None:
        if not callable(key):
            raise TypeError(f"key must be callable, not {type(key).__name__!r}")
        refuse_async(key, "Router(key=)", "The key is called by put() to pick a route: pass a plain function.")
        self._key = key
        self._routes: Dict[Hashable, Any] = dict(routes.items())
        for name, target in [*self._routes.items(), ("default", default)]:
            if target is not None and not callable(getattr(target, "put", None)):
                raise TypeError(f"route {name!r} has no put() method: {target!r}")
        self._default = default
        self._closed = False
        self._lock = threading.Lock()

    @property
    def routes(self) -> Mapping[Hashable, Any]:
        """The routes, read-only."""
        return MappingProxyType(self._routes)

    @property
    def default(self) -> Optional[Any]:
        return self._default

    @property
    def is_shutdown(self) -> bool:
        return self._closed

    def route(self, item: T) -> Any:
        """The target queue for *item*; UnroutableError if there is none."""
        k = self._key(item)
        target = self._routes.get(k, self._default)
        if target is None:
            raise UnroutableError(k, item)
        return target

    def put(self, item: T, block: bool = True, timeout: Optional[float] = None, *,
            cancel: Optional[CancelToken] = None) -> None:
        """Put *item* on its route's queue, with that queue's ``put`` (and its Full/ShutDown).

        Raises ShutDown after shutdown(), UnroutableError when no route fits.

        *cancel*, a :class:`ringq.CancelToken`: a token that has fired raises
        :class:`ringq.Cancelled` at once, with nothing put (whatever the target); else it
        is passed on, ``target.put(item, block=..., timeout=..., cancel=token)``, so the
        target's put must take ``cancel=`` (ringq's queues, Broadcast and Router do).
        """
        if self._closed:
            raise ShutDown
        if cancel is not None:
            _check_token(cancel)
        target = self.route(item)
        if cancel is not None:
            target.put(item, block=block, timeout=timeout, cancel=cancel)
        elif block and timeout is None:
            target.put(item)  # the plainest call: fits any queue-like put()
        else:
            target.put(item, block=block, timeout=timeout)

    async def aput(self, item: T, *, timeout: Optional[float] = None,
                   cancel: Optional[CancelToken] = None) -> None:
        """``put`` for coroutines: ``await target.aput(item, timeout=..., cancel=...)``.

        The target must have ``aput`` (ringq's queues, Broadcast and Router do): TypeError
        otherwise, before anything is put. A fired token raises Cancelled at once.
        """
        if self._closed:
            raise ShutDown
        if cancel is not None:
            _check_token(cancel)
        target = self.route(item)
        aput = getattr(target, "aput", None)
        if aput is None:
            raise TypeError(f"the route of {item!r} has no aput() for coroutines: {target!r} "
                            f"(route to ringq queues, a Broadcast or a Router, or call put() from a thread)")
        if cancel is None and timeout is None:
            await aput(item)
        else:
            await aput(item, timeout=timeout, cancel=cancel)

    def put_nowait(self, item: T) -> None:
        """Put *item* on its route's queue without waiting (that queue's put_nowait)."""
        if self._closed:
            raise ShutDown
        self.route(item).put_nowait(item)

    def put_many(self, items: Iterable[T], block: bool = True, timeout: Optional[float] = None, *,
                 cancel: Optional[CancelToken] = None) -> None:
        """Route every item, then give each target its items in order (``put_many`` where it has one).

        Every item is routed first: an unroutable one raises before anything is put.
        *cancel* as in :meth:`put`: a fired token puts nothing; one that fires while a
        target waits for room raises Cancelled from that target, and what the earlier
        targets (and that target, before it waited) took stays there.
        """
        if self._closed:
            raise ShutDown
        if cancel is not None:
            _check_token(cancel)
        extra: Dict[str, Any] = {} if cancel is None else {"cancel": cancel}
        groups: Dict[int, List[T]] = {}
        targets: Dict[int, Any] = {}
        for item in items:
            target = self.route(item)
            key = id(target)
            if key not in groups:
                groups[key] = []
                targets[key] = target
            groups[key].append(item)
        for key, batch in groups.items():
            target = targets[key]
            put_many = getattr(target, "put_many", None)
            if put_many is not None:
                if block and timeout is None and not extra:
                    put_many(batch)
                else:
                    put_many(batch, block=block, timeout=timeout, **extra)
            else:
                for item in batch:
                    if block and timeout is None and not extra:
                        target.put(item)
                    else:
                        target.put(item, block=block, timeout=timeout, **extra)

    def targets(self) -> List[Any]:
        """Every distinct target (the routes' queues, then the default), each once."""
        seen: Dict[int, Any] = {}
        for target in [*self._routes.values(), self._default]:
            if target is not None and id(target) not in seen:
                seen[id(target)] = target
        return list(seen.values())

    def shutdown(self, immediate: bool = False) -> None:
        """Stop routing (put raises ShutDown) and shut every target down, each once.

        A target without ``shutdown`` (``queue.Queue`` before Python 3.13) is left
        open. ``immediate`` is passed on only when true. Calling it again is allowed.
        """
        with self._lock:
            self._closed = True
        for target in self.targets():
            shutdown = getattr(target, "shutdown", None)
            if shutdown is None:
                continue
            if immediate:
                shutdown(immediate=True)
            else:
                shutdown()

    def __enter__(self) -> Router[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = " shutdown" if self._closed else ""
        default = " default" if self._default is not None else ""
        return f"<ringq.Router routes={len(self._routes)}{default}{state}>"
