"""CancelToken: a cancellation signal that blocking calls wait on beside their queue.

The C side of this file is ``_queue_c/tokens.pxi``.
"""
from __future__ import annotations

import weakref
from _thread import RLock
from time import monotonic
from typing import Any, Coroutine

from .. import _tokenasync
from .._errors import Cancelled
from .._loopguard import refuse as _refuse_blocking
from .._timeout import deadline as _deadline  # the check shared with the toolkit modules
from .async_waiters import _wake_future
from .timeouts import _acquire_until, _earlier, _live_tokens, _running_loop
from .waiters import _Call, _Link

_PRUNE_MIN = 16  # a token's set of children is first pruned at this size
_MAX_PRUNE_AT = 1 << 62


class CancelToken:
    """A cancellation signal for blocking calls: Go's ``context`` done the Python way.

    Pass it as ``cancel=token`` to any blocking call (put, get, put_many, get_many,
    join, select); ``cancel()`` from any thread makes them raise Cancelled at once.
    ``CancelToken(timeout=...)`` also fires by itself after that many seconds, and
    ``child(timeout=...)`` makes a token that fires with its parent or at its own
    earlier deadline. See the core's docstring for an example.
    """

    __slots__ = (
        "_lock", "_cancelled", "_links", "_deadline", "_parent", "_children", "_prune_at", "_callbacks",
        "__weakref__",
    )

    # The tree of tokens. A child holds its parent (so root.child().child() stays
    # linked while the leaf lives: Go's contexts do the same); a parent holds its
    # children only weakly, in a plain set of weak references. No lock guards the set
    # or the dict of async waits: each change or snapshot of them is one C call
    # (set.add, list(set), dict.pop...) that runs no Python code, so a __del__ or a
    # signal handler that the GC or the interpreter runs in between may itself call
    # child() or cancel() without deadlocking or seeing half a change. Dead references
    # are pruned by child() once the set has doubled since the last pruning.

    def __init__(self, timeout: float | None = None) -> None:
        self._deadline = _deadline(timeout)
        # Guards _cancelled and _links. Re-entrant: the main thread runs signal handlers
        # at check points inside _link, _unlink and cancel() (calls made with it held),
        # and a handler may call cancel(); with a plain lock that deadlocked.
        self._lock = RLock()
        self._cancelled = False
        self._links: list[_Link] = []
        self._parent: CancelToken | None = None
        self._children: set[weakref.ref[CancelToken]] = set()
        self._prune_at = _PRUNE_MIN
        self._callbacks: dict[object, tuple[Any, Any]] = {}  # async waits
        _live_tokens.add(self)

    def _reset_after_fork(self) -> None:
        # In a fork child only the forking thread exists: the waiting calls linked here,
        # and any thread that held the lock at the fork, are gone. Forget them.
        self._lock = RLock()
        self._links = []

    def _expired(self) -> bool:
        return self._deadline is not None and monotonic() >= self._deadline

    def _raise(self) -> None:
        if self._expired() and not self._cancelled:
            raise Cancelled("the cancel token's deadline has passed")
        raise Cancelled("the cancel token was cancelled")

    def _link(self, link: _Link) -> bool:
        """Link a waiting call; False if the token has fired."""
        with self._lock:
            if self._cancelled or self._expired():
                return False
            links = self._links
            links.append(link)
            fired: bool = self._cancelled  # read again (mypy would take it as still False)
            if fired:
                # A signal handler cancelled at a check point above (the lock is
                # re-entrant for it): its cancel() may have taken the list before our
                # append. The caller raises Cancelled; the link goes, claimed or not.
                try:
                    links.remove(link)
                except ValueError:
                    pass
                return False
            return True

    def _unlink(self, link: _Link) -> None:
        with self._lock:
            try:
                self._links.remove(link)
            except ValueError:
                pass  # cancel() took it

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called, the deadline passed, or a parent fired."""
        return self._cancelled or self._expired()

    @property
    def deadline(self) -> float | None:
        """The deadline on the ``time.monotonic()`` clock, or None."""
        return self._deadline

    def cancel(self) -> None:
        """Fire the token: every call blocked with it raises Cancelled, and so does every later one.

        Its children, their children and so on fire too, however deep the tree (it is
        walked with a list, not by recursion). Calling it again does nothing.
        """
        pending: list[CancelToken] = [self]
        error: BaseException | None = None
        while pending:
            token = pending.pop()
            try:
                with token._lock:
                    if token._cancelled:
                        continue
                    token._cancelled = True
                    links, token._links = token._links, []
                    for link in links:
                        link.call.claim(link.source)
                # Set first, then read: a child() or an async wait that registers now
                # either is in these snapshots or sees _cancelled and fires by itself.
                kids = list(token._children)
                waits = list(token._callbacks.values())
                for loop, fut in waits:
                    _wake_future(loop, fut)
                for ref in kids:
                    kid = ref()
                    if kid is not None:
                        pending.append(kid)
            except BaseException as exc:  # noqa: BLE001 - e.g. a signal handler's: the rest still fire
                if error is None:
                    error = exc
        if error is not None:
            try:
                raise error
            finally:
                error = None

    def _add_callback(self, loop: Any, fut: Any) -> object:
        """Register an async wait: cancel() resolves *fut* on *loop*. Returns the key for _remove_callback."""
        key = object()
        self._callbacks[key] = (loop, fut)
        if self.cancelled:  # cancel() may have copied the callbacks before the add
            _wake_future(loop, fut)
        return key

    def _remove_callback(self, key: object) -> None:
        self._callbacks.pop(key, None)

    def child(self, timeout: float | None = None) -> CancelToken:
        """A new token that fires when this one does, or after *timeout* seconds, whichever is first.

        The child keeps this token alive; this token does not keep the child alive.
        """
        kid = CancelToken(timeout)
        kid._deadline = _earlier(kid._deadline, self._deadline)
        kid._parent = self
        children = self._children
        children.add(weakref.ref(kid))
        if len(children) >= self._prune_at:
            self._prune_at = _MAX_PRUNE_AT  # one thread prunes; the others go on
            for ref in list(children):
                if ref() is None:
                    children.discard(ref)
            self._prune_at = max(_PRUNE_MIN, 2 * len(children))
        if self._cancelled:  # cancel() may have copied the children before the add
            kid.cancel()
        return kid

    def raise_if_cancelled(self) -> None:
        """Raise Cancelled if the token has fired (a check point for loops that do not block)."""
        if self.cancelled:
            self._raise()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the token fires or *timeout* seconds pass; return ``self.cancelled``."""
        deadline = _earlier(_deadline(timeout), self._deadline)
        if (
            _running_loop() is not None
            and not self.cancelled
            and (deadline is None or monotonic() < deadline)
        ):
            _refuse_blocking("CancelToken.wait")  # it would wait: not on a loop's thread
        call = _Call()
        link = _Link(call, self)
        if not self._link(link):
            return True
        try:
            _acquire_until(call.parker, deadline)
        finally:
            self._unlink(link)
        return call.close() is not None or self.cancelled

    def await_cancelled(self, timeout: float | None = None) -> Coroutine[Any, Any, bool]:
        """``await token.await_cancelled(timeout=None)``: wait in a coroutine until the token fires.

        Returns ``self.cancelled``: True once it fired, False if *timeout* seconds
        passed first. The loop is never blocked. See the core's docstring.
        """
        return _tokenasync.await_cancelled(self, timeout)

    def scope(self) -> _tokenasync.CancelScope:
        """``async with token.scope():`` the token firing cancels the block (ringq.Cancelled on leaving)."""
        return _tokenasync.CancelScope(self)

    def __repr__(self) -> str:
        return f"<ringq.CancelToken {'cancelled' if self.cancelled else 'active'}>"



def _check_token(token: CancelToken | None) -> None:
    """Raise Cancelled if *token* has fired: an async call's check before each wait."""
    if token is not None and token.cancelled:
        token._raise()


def _as_token(cancel: Any) -> CancelToken:
    """*cancel* as a CancelToken; raises Cancelled if it has already fired."""
    if type(cancel) is not CancelToken:
        raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
    if cancel.cancelled:
        cancel._raise()
    return cancel


