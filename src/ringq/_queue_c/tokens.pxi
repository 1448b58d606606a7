# Included by _queue_c.pyx: CancelToken and the helpers that take cancel= arguments.

@cython.final
@cython.auto_pickle(False)
@cython.trashcan(True)  # a long chain of tokens, each holding its parent, is freed without deep C recursion
cdef class CancelToken:
    """CancelToken(timeout=None)

    A cancellation signal for blocking calls: Go's ``context`` done the Python way.

    Pass it as ``cancel=token`` to any blocking call of ringq (put, get, put_many,
    get_many, join, select); ``token.cancel()`` from any thread makes every such
    call raise :class:`ringq.Cancelled` at once. With ``timeout`` the token also
    fires by itself once that many seconds have passed (a deadline). A child token
    fires when its parent does, or at its own earlier deadline::

        stop = ringq.CancelToken()
        def worker():
            try:
                while True:
                    handle(q.get(cancel=stop))
            except ringq.Cancelled:
                pass                      # told to stop; nothing was taken
        ...
        stop.cancel()

        step = stop.child(timeout=5.0)    # this step: at most 5 s, and stops with `stop`
    """

    # The tree of tokens. A child holds its parent (so root.child().child() stays linked
    # while the leaf lives: Go's contexts do the same); a parent holds its children only
    # weakly, in a plain set of weak references. No lock guards that set or the dict of
    # async waits: each change or snapshot of them is one C call (set.add, list(set),
    # dict.pop...) that runs no Python code, and the containers are created outside
    # self._mutex and installed under it (a pointer store). So a __del__ that the GC
    # runs during child() or an async wait's registration may itself call cancel() or
    # child(): no lock is held there. cancel() walks the tree with a list, not by
    # recursion, and child() prunes dead references once the set has doubled.
    cdef:
        # Set in __cinit__ (or by child() before the token is shared), then read-only.
        ringq_mutex _mutex
        int64_t _deadline          # monotonic ns, or NO_DEADLINE
        CancelToken _parent        # the token this one is a child of (kept alive by it), or None
        object __weakref__

        # ---- guarded by self._mutex (the lock rules of Queue apply) ----
        bint _cancelled            # cancel() was called (an expired deadline is checked on the clock)
        WaitList _waiters          # links of blocked calls that this token wakes
        unsigned long _fork_gen    # _fork_generation when _waiters was last valid
        # Installed once (None -> container) under _mutex; the containers themselves
        # are changed only outside it, by single C calls.
        object _children           # set of weakref.ref to child tokens, created by the first child()
        object _callbacks          # {key: (loop, future)} of async waits, created by the first one
        Py_ssize_t _prune_at       # child() prunes _children's dead references at this size

    def __cinit__(self, timeout=None):
        self._deadline = _deadline(timeout)
        self._prune_at = 16
        self._fork_gen = _fork_generation
        if ringq_mutex_init(&self._mutex) < 0:
            raise MemoryError()

    def __dealloc__(self):
        ringq_mutex_free(&self._mutex)

    cdef inline bint _expired(self) noexcept:
        return self._deadline != NO_DEADLINE and ringq_monotonic_ns() >= self._deadline

    cdef bint _fired(self) noexcept:
        cdef bint cancelled
        ringq_mutex_lock(&self._mutex)
        cancelled = self._cancelled
        ringq_mutex_unlock(&self._mutex)
        return cancelled or self._expired()

    cdef int _raise(self) except -1:
        if self._expired() and not self._fired_explicitly():
            raise Cancelled("the cancel token's deadline has passed")
        raise Cancelled("the cancel token was cancelled")

    cdef bint _fired_explicitly(self) noexcept:
        cdef bint cancelled
        ringq_mutex_lock(&self._mutex)
        cancelled = self._cancelled
        ringq_mutex_unlock(&self._mutex)
        return cancelled

    cdef inline void _forget_waiters_after_fork(self) noexcept:
        """Lock held. In a fork child, drop the parent's links: their threads (and the
        stacks the links live on) do not exist here, so waking them would write to freed memory."""
        if self._fork_gen != _fork_generation:
            self._waiters.head = self._waiters.tail = NULL
            self._fork_gen = _fork_generation

    cdef bint _link(self, Waiter *w, PyThread_type_lock parker, int *claim, int tag) noexcept:
        """Link *w* (a call's extra link) into this token's list; False if the token has fired."""
        cdef bint ok
        w.parker = parker
        w.task = NULL
        w.claim = claim
        w.tag = tag
        w.unlinked = False
        ringq_mutex_lock(&self._mutex)
        self._forget_waiters_after_fork()
        ok = not self._cancelled and not self._expired()
        if ok:
            wl_append(&self._waiters, w)
        ringq_mutex_unlock(&self._mutex)
        return ok

    cdef void _unlink(self, Waiter *w) noexcept:
        ringq_mutex_lock(&self._mutex)
        if not w.unlinked:
            wl_remove(&self._waiters, w)
        ringq_mutex_unlock(&self._mutex)

    @property
    def cancelled(self):
        """True once cancel() was called, the deadline passed, or a parent fired."""
        return self._fired()

    @property
    def deadline(self):
        """The deadline on the ``time.monotonic()`` clock, or None."""
        if self._deadline == NO_DEADLINE:
            return None
        return self._deadline / 1e9

    cdef bint _fire(self) noexcept:
        """Mark the token cancelled and wake its blocked calls; False if it already was."""
        cdef Waiter *chain
        ringq_mutex_lock(&self._mutex)
        if self._cancelled:
            ringq_mutex_unlock(&self._mutex)
            return False
        self._cancelled = True
        self._forget_waiters_after_fork()
        chain = wl_claim(&self._waiters, PY_SSIZE_T_MAX)
        ringq_mutex_unlock(&self._mutex)
        wake_chain(chain)
        return True

    cdef object _installed(self, bint callbacks):
        """self._callbacks (or self._children) as it is now: the container, or None."""
        cdef object found
        ringq_mutex_lock(&self._mutex)
        found = self._callbacks if callbacks else self._children  # an INCREF: allowed under the lock
        ringq_mutex_unlock(&self._mutex)
        return found

    cdef object _install(self, bint callbacks, object new):
        """Install *new* as self._callbacks (or _children) unless one is there; return the one in place."""
        cdef object found
        ringq_mutex_lock(&self._mutex)
        found = self._callbacks if callbacks else self._children
        if found is None:
            # Stores and INCREFs only: the None replaced is never freed.
            if callbacks:
                self._callbacks = new
            else:
                self._children = new
            found = new
        ringq_mutex_unlock(&self._mutex)
        return found  # an unused *new* is dropped by the caller, after unlocking

    def cancel(self):
        """Fire the token: every call blocked with it raises Cancelled, and so does every later one.

        Its children, their children and so on fire too, however deep the tree (it is
        walked with a list, not by recursion). Calling it again does nothing.
        """
        cdef list pending = [self]
        cdef CancelToken token
        error = None
        while pending:
            token = <CancelToken>pending.pop()
            try:
                if not token._fire():
                    continue
                # Fired first, then read: a child() or an async wait that registers now
                # either is in these snapshots or sees the token fired and fires by itself.
                kids = token._installed(False)
                waits = token._installed(True)
                if waits:
                    for loop, fut in list(waits.values()):
                        _wake_future(loop, fut)
                if kids:
                    for ref in list(kids):
                        kid = ref()
                        if kid is not None:
                            pending.append(kid)
            except BaseException as exc:  # e.g. a signal handler's: the rest still fire
                if error is None:
                    error = exc
        if error is not None:
            try:
                raise error
            finally:
                error = None

    def _add_callback(self, loop, fut):
        """Register an async wait: cancel() resolves *fut* on *loop*. Returns the key for _remove_callback."""
        key = object()
        entry = (loop, fut)
        waits = self._installed(True)
        if waits is None:
            waits = self._install(True, {})
        waits[key] = entry
        if self._fired():  # cancel() may have copied the callbacks before the add
            _wake_future(loop, fut)
        return key

    def _remove_callback(self, key):
        waits = self._installed(True)
        if waits is not None:
            waits.pop(key, None)

    def child(self, timeout=None):
        """A new token that fires when this one does, or after *timeout* seconds, whichever is first.

        The child keeps this token alive; this token does not keep the child alive.
        """
        cdef CancelToken kid = CancelToken(timeout)
        cdef Py_ssize_t size
        cdef bint prune
        kid._deadline = _earlier(kid._deadline, self._deadline)
        kid._parent = self
        ref = weakref.ref(kid)
        kids = self._installed(False)
        if kids is None:
            kids = self._install(False, set())
        kids.add(ref)
        size = len(kids)
        ringq_mutex_lock(&self._mutex)
        prune = size >= self._prune_at
        if prune:
            self._prune_at = PY_SSIZE_T_MAX  # one thread prunes; the others go on
        ringq_mutex_unlock(&self._mutex)
        if prune:
            for ref in list(kids):
                if ref() is None:
                    kids.discard(ref)
            size = max(16, 2 * len(kids))
            ringq_mutex_lock(&self._mutex)
            self._prune_at = size
            ringq_mutex_unlock(&self._mutex)
        if self._fired_explicitly():  # cancel() may have copied the children before the add
            kid.cancel()
        return kid

    def raise_if_cancelled(self):
        """Raise Cancelled if the token has fired (a check point for loops that do not block)."""
        if self._fired():
            self._raise()

    def wait(self, timeout=None):
        """Block until the token fires or *timeout* seconds pass; return ``self.cancelled``.

        Ctrl-C interrupts it, like every wait of ringq.
        """
        cdef int64_t deadline = _earlier(_deadline(timeout), self._deadline)
        cdef Waiter w
        cdef int claim
        cdef bint acquired, check_signals
        cdef PyThread_type_lock parker
        if (_running_loop_or_none() is not None and not self.cancelled
                and (deadline == NO_DEADLINE or ringq_monotonic_ns() < deadline)):
            _refuse_in_loop("CancelToken.wait")  # it would wait: not on a loop's thread
        parker = PyThread_allocate_lock()
        if parker == NULL:
            raise MemoryError()
        PyThread_acquire_lock(parker, NOWAIT_LOCK)
        try:
            while True:
                claim = 0
                if not self._link(&w, parker, &claim, 1):
                    return True
                acquired = _block(parker, deadline, &check_signals)
                self._unlink(&w)
                if ringq_claim_read(&claim) != 0:
                    if not acquired:
                        with nogil:
                            PyThread_acquire_lock(parker, WAIT_LOCK)
                    return True
                if check_signals:
                    _check_signals()
                if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                    return self._fired()
        finally:
            PyThread_release_lock(parker)
            PyThread_free_lock(parker)

    def await_cancelled(self, timeout=None):
        """``await token.await_cancelled(timeout=None)``: wait in a coroutine until the token fires.

        Returns ``self.cancelled``: True once it fired (``cancel()`` from any thread or
        task, its deadline, or a parent's), False if *timeout* seconds passed first.
        The loop is never blocked; *timeout* is checked when it is called, as by
        ``wait()``. Cancelling the awaiting task cancels the wait.
        """
        return _tokenasync.await_cancelled(self, timeout)

    def scope(self):
        """``async with token.scope():`` the token firing cancels the block.

        The task running the block is cancelled when the token fires (and with it
        what the block awaits: a ``gather``, an ``asyncio.TaskGroup``); on leaving,
        that cancellation is raised as :class:`ringq.Cancelled`, chained to the
        CancelledError. A token that has already fired raises Cancelled on entering.
        See docs/api.md.
        """
        return _tokenasync.CancelScope(self)

    def __repr__(self):
        state = "cancelled" if self._fired() else "active"
        return f"<ringq.CancelToken {state}>"


def _wake_future(loop, fut):
    """Resolve *fut* on *loop* from any thread; a closed loop has no task left to wake."""
    try:
        loop.call_soon_threadsafe(_resolve, fut)
    except RuntimeError:
        pass


cdef int _check_token(object token) except -1:
    """Raise Cancelled if *token* (a CancelToken or None) has fired: an async call's check before each wait."""
    if token is not None and (<CancelToken>token)._fired():
        (<CancelToken>token)._raise()
    return 0


cdef CancelToken _as_token(object cancel):
    """*cancel* as a CancelToken (None stays None); raises Cancelled if it has already fired."""
    cdef CancelToken token
    if type(cancel) is not CancelToken:
        raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
    token = <CancelToken>cancel
    if token._fired():
        token._raise()
    return token


cdef object _with_put_count(object exc, Py_ssize_t count):
    """*exc* (raised by a batch put) carrying how many of the batch's items went in."""
    exc.put_count = count
    return exc


cdef CancelToken _as_token_put_many(object cancel):
    """_as_token for a batch put: a token that has already fired raises Cancelled with put_count 0."""
    try:
        return _as_token(cancel)
    except Cancelled as e:
        raise _with_put_count(e, 0)


cdef int _check_token_put_many(object token, Py_ssize_t done) except -1:
    """_check_token for aput_many: Cancelled carries the *done* items as put_count."""
    try:
        _check_token(token)
    except Cancelled as e:
        raise _with_put_count(e, done)
    return 0
