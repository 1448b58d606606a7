# Included by _queue_c.pyx: PriorityQueue, a Queue with one ring per level.

cdef Py_ssize_t _as_levels(object levels) except -1:
    """*levels* as a C integer >= 1; TypeError or ValueError otherwise."""
    if isinstance(levels, bool):
        raise TypeError("levels must be an integer, not 'bool'")
    try:
        n = operator.index(levels)
    except TypeError:
        raise TypeError(f"levels must be an integer, not {type(levels).__name__!r}") from None
    if n < 1:
        raise ValueError(f"levels must be >= 1, not {n}")
    if n > PY_SSIZE_T_MAX:
        raise OverflowError(f"levels must be at most sys.maxsize ({PY_SSIZE_T_MAX}), not {n}")
    return n


@cython.auto_pickle(False)
cdef class PriorityQueue(Queue):
    """PriorityQueue(levels=3, maxsize=0)
--

    A bounded queue with *levels* priority levels: ``0`` is the most urgent, and
    ``get()`` always takes the oldest item of the most urgent non-empty level.
    Within a level it is FIFO, and items are never compared (unlike
    ``queue.PriorityQueue``, any object can be queued, in any order).

    ``put(item, priority)`` takes the level; without one an item goes to the
    middle level, ``levels // 2`` (with 3 levels: 0 high, 1 normal, 2 low).
    *maxsize* bounds all the levels together. The rest is ``ringq.Queue``'s API::

        q = PriorityQueue(levels=3)
        q.put("report")                # priority 1 (the default)
        q.put("cleanup", priority=2)
        q.put("alert", priority=0)
        q.get_many(3)                  # ['alert', 'report', 'cleanup']
    """

    def __init__(self, *args, **kwargs):
        levels, maxsize = _priority_queue_args(*args, **kwargs)  # a bad call names PriorityQueue()
        cdef Py_ssize_t n = _as_levels(levels)
        cdef Ring *lower = NULL
        cdef bint changed = False
        Queue.__init__(self, maxsize)
        if n > 1:
            lower = <Ring *>PyMem_RawCalloc(<size_t>(n - 1), sizeof(Ring))
            if lower == NULL:
                raise MemoryError()
        self._lock()
        if self._lower == NULL and self._nlower == 0:
            self._lower = lower
            self._nlower = n - 1
            lower = NULL
        else:
            changed = self._nlower != n - 1
        self._unlock()
        PyMem_RawFree(lower)
        if changed:
            raise RuntimeError("the levels of a PriorityQueue cannot be changed")

    @property
    def levels(self):
        """The number of priority levels; 0 is the most urgent, ``levels - 1`` the least."""
        return self._nlower + 1

    @cython.final
    cdef Py_ssize_t _level_of(self, object priority) except -1:
        """The level for *priority* (None: the middle level); TypeError or ValueError otherwise."""
        cdef Py_ssize_t levels = self._nlower + 1
        if priority is None:
            return levels // 2
        if type(priority) is int and 0 <= priority < levels:
            return priority
        if isinstance(priority, bool):
            raise TypeError("priority must be an integer, not 'bool'")
        try:
            p = operator.index(priority)
        except TypeError:
            raise TypeError(f"priority must be an integer, not {type(priority).__name__!r}") from None
        if not 0 <= p < levels:
            raise ValueError(f"priority must be in range({levels}), not {p}")
        return p

    def put(self, item, priority=None, bint block=True, timeout=None, *, cancel=None):
        """Put *item* at the tail of level *priority*, waiting up to *timeout* seconds for room.

        *priority* is an int from 0 (most urgent) to ``levels - 1``; None (the
        default) means ``levels // 2``. Raises Full, ShutDown and Cancelled like Queue.put::

            q.put(job, 0)                  # most urgent
            q.put(job, priority=2, timeout=1.0)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = _call_deadline(block, timeout)
        cdef CancelToken token = None if cancel is None else _as_token(cancel)
        _put(self, item, block, deadline, level, token)

    def put_nowait(self, item, priority=None):
        """Put *item* at level *priority* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, priority, block=False)``.
        """
        if type(self) is not PriorityQueue:
            self.put(item, priority, block=False)
            return
        _put(self, item, False, NO_DEADLINE, self._level_of(priority), None)

    def put_many(self, items, priority=None, bint block=True, timeout=None, *, cancel=None):
        """Put every item of *items*, in order, at level *priority*; otherwise like Queue.put_many.

        For example::

            q.put_many(batch, priority=2)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = _call_deadline(block, timeout)
        cdef CancelToken token = None if cancel is None else _as_token_put_many(cancel)
        _put_batch(self, items, block, deadline, level, token)

    def put_evict(self, item, priority=None):
        """Put *item* at level *priority* without waiting, evicting when the queue is full.

        The evicted item is the oldest of the least urgent non-empty level; when
        *item* is less urgent than every queued item, *item* itself is refused.
        Returns the evicted (or refused) items as a tuple, ``()`` if there was room.
        So a full queue keeps the most urgent items::

            q = PriorityQueue(levels=3, maxsize=2)
            q.put_many(["a", "b"], priority=1)
            q.put_evict("c", priority=0)   # ('a',)
            q.put_evict("d", priority=2)   # ('d',)
        """
        return _put_evict(self, item, self._level_of(priority))

    # The async puts, with a level: Queue's loops, on the same steps and waiter lists.

    async def aput(self, item, priority=None, timeout=None, *, cancel=None):
        """Put *item* at level *priority* (None: ``levels // 2``), awaiting room like Queue.aput.

        For example::

            await q.aput(alert, 0)
            await q.aput(job, priority=2, timeout=1.0)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        cdef tuple batch
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        if _try_put(self, item, level):
            return
        batch = (item,)
        if _put_or_link(self, None, batch, 0, deadline, level):
            return
        await _aput_waits(self, batch, 0, deadline, level, token, False)

    async def aput_many(self, items, priority=None, timeout=None, *, cancel=None):
        """Put every item of *items*, in order, at level *priority*, awaiting room like Queue.aput_many.
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        cdef tuple batch
        cdef Py_ssize_t done
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token_put_many(cancel) if cancel is not None else None
        batch = items if type(items) is tuple else tuple(items)
        done = _put_or_link(self, None, batch, 0, deadline, level)
        if done < len(batch):
            await _aput_waits(self, batch, done, deadline, level, token, True)

    def __repr__(self):
        cdef Py_ssize_t n
        cdef bint down
        self._lock()
        n = self._size()
        down = self._shutdown
        self._unlock()
        return (f"<{_type_name(self)} levels={self._nlower + 1} maxsize={self.maxsize!r} "
                f"qsize={n}{' shutdown' if down else ''}>")
