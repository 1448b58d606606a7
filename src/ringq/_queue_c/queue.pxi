# Included by _queue_c.pyx: the Queue class, its state (guarded as the lock rules at the
# top of _queue_c.pyx say) and its public methods; long bodies call the functions of
# queue_sync.pxi, queue_async.pxi and stats.pxi.


cdef object _as_maxsize(object maxsize):
    """*maxsize* as an int (through __index__); TypeError for anything else."""
    try:
        return operator.index(maxsize)
    except TypeError:
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__!r}") from None


cdef Py_ssize_t _as_bound(object maxsize) noexcept:
    """The bound for an int *maxsize*, clamped to Py_ssize_t; 0 means unbounded."""
    if maxsize > PY_SSIZE_T_MAX:
        return PY_SSIZE_T_MAX  # more than memory can hold: the same as no bound in practice
    if maxsize < 0:
        return 0
    return maxsize


cdef str _type_name(object q):
    """How repr and error messages name *q*: ringq.Queue, ringq.PriorityQueue, or a subclass's module.qualname."""
    cls = type(q)
    if cls is Queue:
        return "ringq.Queue"
    if cls is PriorityQueue:
        return "ringq.PriorityQueue"
    return f"{cls.__module__}.{cls.__qualname__}"


# Not final: PriorityQueue (priority.pxi) extends it. Every cdef method is final instead,
# so that calls between them stay direct C calls, not vtable look-ups. The class keeps
# its state, the small lock and storage steps, and the public methods; the work of a
# long method is a module-level function taking the queue (queue_sync.pxi,
# queue_async.pxi, stats.pxi, waiters.pxi), a direct C call as well.
@cython.no_gc_clear  # our own tp_clear is installed in gc.pxi (_queue_clear)
@cython.auto_pickle(False)
cdef class Queue:
    """Queue(maxsize=0)
--

    A bounded FIFO queue for threads: a drop-in for ``queue.Queue``.

    ``maxsize <= 0`` makes it unbounded. Besides the ``queue.Queue`` API it has
    ``put_many``/``get_many``, iteration until shutdown, and a context manager::

        q = Queue(maxsize=100)
        q.put_many(range(10))
        q.get_many(4)          # [0, 1, 2, 3]
        q.shutdown()
        list(q)                # [4, 5, 6, 7, 8, 9]
    """

    cdef:
        # Set in __cinit__, then read-only.
        ringq_mutex _mutex
        object __weakref__

        # ---- guarded by self._mutex: see "Lock rules" at the top of _queue_c.pyx ----
        # Storage: a plain Queue has one ring, _ring. A PriorityQueue has one ring per
        # level: _ring is level 0 (the most urgent), _lower[k] is level k + 1, and
        # _lower_count counts the items in _lower, so that the size is always
        # _ring.count + _lower_count (plain queue: _lower is NULL, the count 0, and
        # every storage step below is the single-ring one).
        Ring _ring
        Ring *_lower                 # levels 1.. of a PriorityQueue (PyMem_Raw*); NULL otherwise
        # Rings in _lower. Written once, from 0, under the lock, by PriorityQueue.__init__
        # (after _lower). PriorityQueue's argument checks also read it without the lock:
        # a stale 0 could only make such a check reject a level, never accept a bad one.
        Py_ssize_t _nlower
        Py_ssize_t _lower_count      # items in the _lower rings
        Py_ssize_t _bound            # maxsize as a C integer; 0 means unbounded
        object _maxsize              # maxsize as an int of any size (what .maxsize returns)
        Py_ssize_t _unfinished       # items put and not yet task_done()
        bint _shutdown
        WaitList _getters            # threads waiting for an item
        WaitList _putters            # threads waiting for room
        WaitList _joiners            # threads waiting for _unfinished == 0
        PyThread_type_lock *_parkers  # spare parkers, reused across waits
        Py_ssize_t _nparkers
        unsigned long _fork_gen      # _fork_generation when the waiter lists were last valid
        Py_ssize_t _task_waits       # async waits begun since the last sweep of closed loops
        Py_ssize_t _sweep_at         # ... at which the next sweep runs (see _sweep_closed_loops)
        # Statistics, updated inside the locked sections that already exist. The
        # two alert thresholds keep the fast path at one predictable branch each:
        # a put looks at the size only when it reaches _alert_up (a new high-water
        # mark, or the high watermark), a get only when it falls to _alert_down.
        int64_t _puts                # items put, ever
        int64_t _gets                # items taken by get/get_many/select, ever
        Py_ssize_t _high_water       # the largest size ever reached
        Py_ssize_t _alert_up         # min(_high_water + 1, high watermark while below it)
        Py_ssize_t _alert_down       # low watermark while above the high one, else -1
        Py_ssize_t _wm_high          # watermark thresholds as sizes; 0: no watermark
        Py_ssize_t _wm_low
        bint _wm_above               # the size crossed _wm_high and has not yet fallen to _wm_low
        object _wm_callback          # fn(event) or None; called outside the lock (see _deliver_watermark)
        # Producers (see producer()); the cause is an exception object or None.
        Py_ssize_t _producers        # registered and not yet closed
        bint _producers_left         # the last registered producer's close shut the queue down
        object _shutdown_cause       # what a producer that left on an exception passed on
        # Not guarded by _mutex: a threading.RLock, held only while delivering a
        # watermark event outside the state lock, and what it last delivered.
        object _wm_delivery
        bint _wm_delivered_above

    def __cinit__(self, *args, **kwargs):
        # Only what every instance needs, whatever the (sub)class's constructor
        # arguments: Cython passes them to every __cinit__ of the hierarchy.
        # __init__ parses them.
        self._maxsize = 0
        self._fork_gen = _fork_generation
        self._sweep_at = _SWEEP_MIN
        self._alert_up = 1
        self._alert_down = -1
        if ringq_mutex_init(&self._mutex) < 0:
            raise MemoryError()

    def __init__(self, *args, **kwargs):
        # Bound by a Python function named Queue, so a bad call's TypeError names Queue(),
        # as the twin's does. The setter's checks and locking; it also wakes putters if
        # __init__ is called again.
        if kwargs or len(args) > 1:
            self.maxsize = _queue_args(*args, **kwargs)
        else:  # the common calls, Queue() and Queue(n), without the Python-level binding
            self.maxsize = args[0] if args else 0

    def __dealloc__(self):
        # No other reference exists, so nothing can race us; drain as rule 3 says anyway.
        cdef Ring ring = ring_detach(&self._ring)
        cdef Py_ssize_t i
        ring_release(ring)
        if self._lower != NULL:
            for i in range(self._nlower):
                ring_release(ring_detach(&self._lower[i]))
            PyMem_RawFree(self._lower)
        for i in range(self._nparkers):
            PyThread_free_lock(self._parkers[i])
        PyMem_RawFree(self._parkers)
        ringq_mutex_free(&self._mutex)

    # -- the lock ------------------------------------------------------------

    @cython.final
    cdef inline void _lock(self) noexcept:
        ringq_mutex_lock(&self._mutex)

    @cython.final
    cdef inline void _unlock(self) noexcept:
        ringq_mutex_unlock(&self._mutex)

    @cython.final
    cdef inline bint _has_waiters(self, WaitList *wl) noexcept:
        """Lock held. True if *wl* has a waiter; in a fork child, first forgets the parent's waiters."""
        if wl.head == NULL:
            return False
        if self._fork_gen != _fork_generation:
            self._forget_waiters_after_fork()
            return False
        return True

    @cython.final
    cdef void _forget_waiters_after_fork(self) noexcept:
        # Lock held. The waiters' threads do not exist in this process.
        self._getters.head = self._getters.tail = NULL
        self._putters.head = self._putters.tail = NULL
        self._joiners.head = self._joiners.tail = NULL
        self._fork_gen = _fork_generation

    @cython.final
    cdef inline Waiter *_claim(self, WaitList *wl, Py_ssize_t n) noexcept:
        """Lock held. Claim up to *n* waiters of *wl*; wake the chain after unlocking."""
        if n <= 0 or not self._has_waiters(wl):
            return NULL
        return wl_claim(wl, n)

    @cython.final
    cdef inline Py_ssize_t _room(self) noexcept:
        """Lock held. Free places under the bound (PY_SSIZE_T_MAX when unbounded).

        Never negative: maxsize may have been lowered below the current size.
        """
        cdef Py_ssize_t size = self._size()
        if self._bound <= 0:
            return PY_SSIZE_T_MAX
        if size >= self._bound:
            return 0
        return self._bound - size

    # -- storage: the only steps that know about priority levels ----------------

    @cython.final
    cdef inline Py_ssize_t _size(self) noexcept:
        """Lock held. Items in the queue, every level."""
        return self._ring.count + self._lower_count

    @cython.final
    cdef inline Ring *_level_ring(self, Py_ssize_t level) noexcept:
        """Lock held. The ring of *level* (0 <= level <= _nlower; a constant 0 folds away)."""
        if level == 0:
            return &self._ring
        return &self._lower[level - 1]

    @cython.final
    cdef inline void _added(self, Py_ssize_t level, Py_ssize_t n) noexcept:
        """Lock held. Account for *n* items just stored at *level*."""
        self._unfinished += n
        if level != 0:
            self._lower_count += n

    @cython.final
    cdef PyObject *_pop_first(self) noexcept:
        """Lock held, size > 0. Remove the oldest item of the most urgent non-empty level."""
        cdef Ring *r = &self._ring
        cdef Py_ssize_t k = 0
        cdef PyObject *item
        if r.count == 0:
            while self._lower[k].count == 0:
                k += 1
            r = &self._lower[k]
            self._lower_count -= 1
        item = ring_pop(r)
        ring_maybe_shrink(r)
        return item

    @cython.final
    cdef void _take_first(self, PyObject **dst, Py_ssize_t n) noexcept:
        """Lock held, n <= size. Move the *n* first items in priority order (FIFO within a level) to dst."""
        cdef Ring *r = &self._ring
        cdef Py_ssize_t k = -1
        cdef Py_ssize_t take
        while True:
            take = r.count if r.count < n else n
            if take > 0:
                ring_take(r, dst, take)
                ring_maybe_shrink(r)
                dst += take
                n -= take
                if k >= 0:
                    self._lower_count -= take
            k += 1
            if n == 0 or k >= self._nlower:
                return
            r = &self._lower[k]

    @cython.final
    cdef Py_ssize_t _least_urgent_level(self) noexcept:
        """Lock held, size > 0. The least urgent level that holds an item."""
        cdef Py_ssize_t k = self._nlower
        while k > 0 and self._lower[k - 1].count == 0:
            k -= 1
        return k

    @cython.final
    cdef inline void _maybe_shrink(self) noexcept:
        """Lock held. Halve a large level-0 ring that is under 1/8 full (see ring_maybe_shrink)."""
        ring_maybe_shrink(&self._ring)

    # -- put -------------------------------------------------------------------

    def put(self, item, bint block=True, timeout=None, *, cancel=None):
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), ShutDown if
        the queue is shut down, and Cancelled if the ``cancel`` token fires first::

            q.put(job)                 # wait as long as it takes
            q.put(job, timeout=0.5)    # Full after half a second
            q.put(job, cancel=token)   # Cancelled when token.cancel() is called
        """
        cdef int64_t deadline = _call_deadline(block, timeout)
        cdef CancelToken token = None if cancel is None else _as_token(cancel)
        _put(self, item, block, deadline, 0, token)

    def put_nowait(self, item):
        """Put *item* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, block=False)``, as ``queue.Queue`` does.
        """
        if type(self) is not Queue:
            self.put(item, block=False)
            return
        _put(self, item, False, NO_DEADLINE, 0, None)

    def put_many(self, items, bint block=True, timeout=None, *, cancel=None):
        """Put every item of *items*, in order; runs of items are copied in one locked section.

        *items* is read into a tuple first; if iterating it raises, nothing is put.
        With ``block=False`` it is all or nothing: Full unless every item fits.
        Otherwise items go in as room frees up; on a timeout (Full), a shutdown
        (ShutDown) or a fired ``cancel`` token (Cancelled) the items already put
        stay in the queue, in order, and the rest are not put. The exception's
        ``put_count`` attribute says how many went in::

            q.put_many(range(100))
            try:
                q.put_many(batch, timeout=1.0)
            except ringq.Full as e:
                rest = batch[e.put_count:]
        """
        cdef int64_t deadline = _call_deadline(block, timeout)
        cdef CancelToken token = None if cancel is None else _as_token_put_many(cancel)
        _put_batch(self, items, block, deadline, 0, token)

    def put_evict(self, item):
        """Put *item* without waiting; if the queue is full, first evict its oldest item.

        Returns the evicted items as a tuple: ``()`` when there was room, else
        ``(oldest,)`` (more only if maxsize was lowered below the size). An evicted
        item counts as done for join(). This is a ring buffer's "overwrite" put,
        for a consumer that only wants the most recent items::

            latest = Queue(maxsize=100)
            dropped = latest.put_evict(reading)   # never blocks
        """
        return _put_evict(self, item, 0)

    # -- get -------------------------------------------------------------------

    def get(self, bint block=True, timeout=None, *, cancel=None):
        """Remove and return the oldest item, waiting up to *timeout* seconds for one.

        Raises Empty if none arrives (at once with ``block=False``), ShutDown
        once the queue is shut down and empty (chained to the cause a producer
        passed on, see producer()), and Cancelled if the ``cancel`` token fires::

            job = q.get()
            job = q.get(timeout=1.0)   # Empty after a second
        """
        cdef int64_t deadline = _call_deadline(block, timeout)
        cdef CancelToken token = None if cancel is None else _as_token(cancel)
        return _get(self, block, deadline, token)

    def get_nowait(self):
        """Remove and return the oldest item without waiting; Empty if there is none.

        In a subclass it calls ``self.get(block=False)``, as ``queue.Queue`` does.
        """
        if type(self) is not Queue and type(self) is not PriorityQueue:
            return self.get(block=False)
        return _get(self, False, NO_DEADLINE, None)

    def get_many(self, max_items, bint block=True, timeout=None, *, cancel=None):
        """Wait like get() for at least one item, then return up to *max_items* of them, oldest first.

        It never waits for more than the first item::

            while True:
                batch = q.get_many(64)   # 1 to 64 items
        """
        cdef Py_ssize_t wanted = _as_max_items(max_items)
        cdef int64_t deadline = _call_deadline(block, timeout)
        cdef CancelToken token = None if cancel is None else _as_token(cancel)
        return _get_slow(self, wanted, block, deadline, token)

    # -- statistics and watermarks ---------------------------------------------

    def on_watermark(self, high=0.8, low=0.7, callback=None):
        """Call ``callback("high")`` when the size reaches *high*, then ``callback("low")`` when it falls to *low*.

        *high* and *low* are fractions of maxsize (floats, 0 < low < high <= 1) or,
        for any queue, sizes (ints, 0 <= low < high). Hysteresis: after "high",
        nothing more fires until the size falls to *low*, and vice versa.
        ``callback=None`` removes the watermark; a new call replaces it. The
        callback runs in the thread whose put or get crossed the mark, after the
        call's work is done and outside the queue's lock, so it may use the queue.
        If it raises, the exception goes to ``sys.unraisablehook``::

            q = ringq.Queue(maxsize=1000)
            q.on_watermark(high=0.8, low=0.7, callback=lambda e: print("slow down" if e == "high" else "resume"))
        """
        _set_watermark(self, high, low, callback)

    def statistics(self):
        """A snapshot of the queue's counters, as a QueueStatistics named tuple.

        For example::

            s = q.statistics()
            s.size, s.maxsize, s.high_water, s.puts, s.gets, s.waiting_putters, s.waiting_getters
        """
        return _statistics(self)

    # -- producers -------------------------------------------------------------

    def producer(self):
        """Register a producer; the queue shuts down (gracefully) when the last registered one closes.

        Use it as a context manager, or call ``close()`` on the handle. A producer
        that leaves on an exception passes it on: once the queue is shut down and
        drained, get() raises ShutDown chained to it (``raise ShutDown from exc``)::

            def produce(part):
                with q.producer():
                    for item in part:
                        q.put(item)

            for part in parts:
                threading.Thread(target=produce, args=(part,)).start()  # register first (see below)

        Register every producer before any of them can finish (call producer()
        in the thread that starts them, and close it in the producer), or the
        queue may shut down while others are still starting. Raises ShutDown if
        the queue is already shut down.
        """
        return _register_producer(self)

    # -- size ------------------------------------------------------------------

    def qsize(self):
        """Number of items in the queue (a snapshot: other threads may change it at once).
        """
        cdef Py_ssize_t n
        self._lock()
        n = self._size()
        self._unlock()
        return n

    def empty(self):
        """True if the queue holds no item (a snapshot).
        """
        return self.qsize() == 0

    def full(self):
        """True if the queue is bounded and holds maxsize items or more (a snapshot).
        """
        cdef bint full
        self._lock()
        full = 0 < self._bound <= self._size()
        self._unlock()
        return full

    @property
    def maxsize(self):
        """The bound; ``<= 0`` means unbounded. Assignable, as in ``queue.Queue``: raising it wakes blocked putters."""
        self._lock()
        value = self._maxsize  # takes a reference under the lock: it cannot run code
        self._unlock()
        return value

    @maxsize.deleter
    def maxsize(self):
        raise AttributeError("cannot delete the maxsize attribute")

    @maxsize.setter
    def maxsize(self, value):
        value = _as_maxsize(value)
        cdef Py_ssize_t bound = _as_bound(value)
        cdef Waiter *chain
        self._lock()
        # `old` keeps the previous value alive, so the assignment's decref cannot free it
        # (and run code) under the lock; it is released when this function returns.
        old = self._maxsize
        self._maxsize = value
        self._bound = bound
        chain = self._claim(&self._putters, PY_SSIZE_T_MAX)  # they re-check the new room
        self._unlock()
        wake_chain(chain)
        del old

    # -- tasks -----------------------------------------------------------------

    @property
    def unfinished_tasks(self):
        """Items put and not yet marked done by task_done()."""
        cdef Py_ssize_t n
        self._lock()
        n = self._unfinished
        self._unlock()
        return n

    def task_done(self):
        """Mark one item taken with get() as processed; join() returns once none is left.

        For example::

            item = q.get()
            try:
                handle(item)
            finally:
                q.task_done()
        """
        cdef Waiter *chain = NULL
        self._lock()
        if self._unfinished <= 0:
            self._unlock()
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            chain = self._claim(&self._joiners, PY_SSIZE_T_MAX)
        self._unlock()
        wake_chain(chain)

    def join(self, *, cancel=None):
        """Block until every item put has been marked done with task_done(). Ctrl-C interrupts it.

        With ``cancel=token`` it raises Cancelled when the token fires.
        """
        _join(self, cancel)

    # -- shutdown --------------------------------------------------------------

    @property
    def is_shutdown(self):
        """True once shutdown() was called."""
        cdef bint down
        self._lock()
        down = self._shutdown
        self._unlock()
        return down

    def shutdown(self, bint immediate=False):
        """Stop the queue: put() raises ShutDown; get() returns what is left, then raises ShutDown.

        With ``immediate=True`` the remaining items are dropped at once and counted
        as done, which releases join(). Every blocked caller is woken. Calling it
        again is allowed::

            q.shutdown()
            for item in q:       # drains the rest, then stops
                handle(item)
        """
        _shutdown_queue(self, immediate)

    def clear(self):
        """Drop every queued item at once (all levels of a PriorityQueue); return how many.

        The dropped items count as done for join(), and blocked putters are woken
        (there is room now). It replaces the stdlib idiom
        ``with q.mutex: q.queue.clear()``::

            dropped = q.clear()    # the queue is empty; join() no longer waits for them
        """
        return _clear(self)

    # -- asyncio ---------------------------------------------------------------
    #
    # An async call runs its fast path like the sync call. When it must wait, it
    # links a fresh _AsyncWaiter into the same FIFO list a thread would join, in
    # the same locked section as its failed check (so no wake-up can fall between
    # them), and awaits the record's future: the event loop never blocks on a
    # thread primitive. Woken, it re-checks the queue itself, as a thread does.
    # Cancelled (or closed) while waiting, it leaves the list; if a waker had
    # already claimed it, it passes that wake-up to the next waiter instead, so
    # the queue is exactly as if the call had never waited.

    async def aput(self, item, timeout=None, *, cancel=None):
        """Put *item* at the tail, awaiting room for up to *timeout* seconds (async put()).

        Raises Full on a timeout and ShutDown if the queue is shut down. Cancelled,
        it either put the item (and returned) or left the queue unchanged::

            await q.aput(job)
            await q.aput(job, timeout=0.5)   # Full after half a second
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef tuple batch
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        if _try_put(self, item, 0):
            return
        batch = (item,)
        if _put_or_link(self, None, batch, 0, deadline, 0):
            return
        await _aput_waits(self, batch, 0, deadline, 0, token, False)

    async def aput_many(self, items, timeout=None, *, cancel=None):
        """Put every item of *items*, in order, awaiting room as needed (async put_many()).

        As with put_many(), on a timeout (Full), a shutdown (ShutDown) or a
        fired ``cancel`` token (Cancelled) the items already put stay in the queue,
        and the exception's ``put_count`` says how many went in::

            await q.aput_many(range(100))
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef tuple batch
        cdef Py_ssize_t done
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token_put_many(cancel) if cancel is not None else None
        batch = items if type(items) is tuple else tuple(items)
        done = _put_or_link(self, None, batch, 0, deadline, 0)
        if done < len(batch):
            await _aput_waits(self, batch, done, deadline, 0, token, True)

    async def aget(self, timeout=None, *, cancel=None):
        """Remove and return the oldest item, awaiting one for up to *timeout* seconds (async get()).

        Raises Empty on a timeout and ShutDown once the queue is shut down and
        empty. Cancelled, it either returned its item or left the queue unchanged::

            job = await q.aget()
            job = await q.aget(timeout=1.0)   # Empty after a second
        """
        cdef int64_t deadline = NO_DEADLINE
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        item = _get_or_link(self, None, 0, deadline)
        if item is _WAIT:
            item = await _aget_waits(self, 0, deadline, token)
        return item

    async def aget_many(self, max_items, timeout=None, *, cancel=None):
        """Await like aget() for at least one item, then return up to *max_items* of them (async get_many()).

        For example::

            batch = await q.aget_many(64)   # 1 to 64 items
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef Py_ssize_t wanted_c = _as_max_items(max_items)
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        batch = _get_or_link(self, None, wanted_c, deadline)
        if batch is _WAIT:
            batch = await _aget_waits(self, wanted_c, deadline, token)
        return batch

    async def ajoin(self, timeout=None, *, cancel=None):
        """Await until every item put has been marked done with task_done() (async join()).

        Raises TimeoutError if *timeout* seconds pass first. ``shutdown(immediate=True)``
        releases it, as it releases join()::

            await q.ajoin()
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        while not _joined_or_link(self, None, deadline):
            _check_token(token)
            rec = _new_task_waiter(self, &self._joiners)
            if _joined_or_link(self, rec, deadline):
                return
            await _sleep(self, rec, deadline, token)

    def __aiter__(self):
        return self

    async def __anext__(self):
        """Return await aget(); the iteration ends when the queue is shut down and empty.

        For example::

            async for job in q:
                await handle(job)
        """
        try:
            return await self.aget()
        except ShutDown as e:
            if e.__cause__ is not None:
                raise  # a producer passed a cause on: the consumer learns why the stream ended
            raise StopAsyncIteration from None

    @property
    def async_q(self):
        """An ``asyncio.Queue``-compatible view of this queue (for janus-style code); see ringq.AsyncQueueView."""
        return AsyncQueueView(self)

    @property
    def sync_q(self):
        """The queue itself: it is already the ``queue.Queue``-compatible side (for janus-style code)."""
        return self

    # -- protocols -------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self):
        """Return get(); the iteration ends when the queue is shut down and empty.

        If a producer passed on an exception (see producer()), the iteration ends
        with ShutDown chained to it instead, so the consumer learns why.
        """
        try:
            if type(self) is Queue or type(self) is PriorityQueue:
                return _get(self, True, NO_DEADLINE, None)
            return self.get()  # a subclass's get(), as get_nowait() uses it
        except ShutDown as e:
            if e.__cause__ is not None:
                raise
            raise StopIteration from None  # as the twin: no ShutDown context in tracebacks

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.shutdown()

    @classmethod
    def __class_getitem__(cls, item):
        """Queue[int] is a generic alias, for type hints evaluated at run time."""
        return GenericAlias(cls, item)

    def __reduce_ex__(self, protocol):
        raise TypeError(f"cannot pickle {_type_name(self)!r} object")

    def __copy__(self):
        raise TypeError(f"cannot copy {_type_name(self)!r} object")

    def __deepcopy__(self, memo):
        raise TypeError(f"cannot copy {_type_name(self)!r} object")

    def __repr__(self):
        cdef Py_ssize_t n
        cdef bint down
        self._lock()
        n = self._size()
        down = self._shutdown
        self._unlock()
        return f"<{_type_name(self)} maxsize={self.maxsize!r} qsize={n}{' shutdown' if down else ''}>"
