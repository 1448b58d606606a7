# Included by _queue_c.pyx: TokenBucket, the state of a ringq.RateLimiter.
#
# The twin is _queue_py/bucket.py, whose docstring explains the bucket (GCRA, given-back
# tokens, tickets); ringq/ratelimit.py holds the waiting, which both share. Here every
# method is one locked section under the lock rules of Queue (rules 1 to 4): the
# sections run no Python code and allocate only with PyMem_Raw*, so on GIL builds they
# are atomic under the GIL and nobody ever holds the bucket while waiting to run. That
# is the point of having it in C: under threads that hammer a limiter, a
# threading.Lock is handed to a blocked thread that then waits for the GIL holding it,
# and a coroutine, which may only try the lock, starves (the twin's LOCK_CONVOYS).
# Due times are seconds on ringq_monotonic_ns's clock, and never leave this file
# except inside tickets, which only this file reads: callers see waits (durations).

from libc.stdlib cimport qsort
from libc.string cimport memmove

cdef extern from "Python.h":
    void *PyMem_RawRealloc(void *, size_t) nogil

cdef tuple _TAKEN = (0.0, None)  # due now, nothing to give back


cdef inline double _now_s() noexcept nogil:
    return <double>ringq_monotonic_ns() * 1e-9


cdef int _cmp_double(const void *a, const void *b) noexcept nogil:
    cdef double x = (<const double *>a)[0], y = (<const double *>b)[0]
    return (x > y) - (x < y)


@cython.final
@cython.auto_pickle(False)
cdef class TokenBucket:
    """TokenBucket(rate, burst)

    The GCRA state of a rate limiter; the caller validates *rate* (> 0) and *burst* (>= 1).
    """

    cdef:
        ringq_mutex _mutex
        # ---- guarded by self._mutex (the lock rules of Queue apply) ----
        double _rate
        Py_ssize_t _burst
        double _interval           # 1 / rate
        double _tolerance          # a token may be taken this long before its steady-rate time
        double _last               # due time of the last token handed out at the steady rate
        double *_freed             # due times given back behind later tokens, ascending, in the future
        Py_ssize_t _nfreed, _capfreed

    LOCK_CONVOYS = False  # its sections never wait for a lock held by a thread without the GIL

    def __cinit__(self, double rate, Py_ssize_t burst):
        if ringq_mutex_init(&self._mutex) < 0:
            raise MemoryError()
        self._rate = rate
        self._burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._last = _now_s() - self._tolerance - self._interval  # the bucket starts full
        self._freed = NULL
        self._nfreed = self._capfreed = 0

    def __dealloc__(self):
        PyMem_RawFree(self._freed)
        ringq_mutex_free(&self._mutex)

    @property
    def rate(self):
        cdef double rate
        ringq_mutex_lock(&self._mutex)
        rate = self._rate
        ringq_mutex_unlock(&self._mutex)
        return rate

    @property
    def burst(self):
        cdef Py_ssize_t burst
        ringq_mutex_lock(&self._mutex)
        burst = self._burst
        ringq_mutex_unlock(&self._mutex)
        return burst

    def set_rate(self, double rate):
        """Tokens a second from the next reservation on."""
        ringq_mutex_lock(&self._mutex)
        self._rate = rate
        self._interval = 1.0 / rate
        self._tolerance = (self._burst - 1) * self._interval
        ringq_mutex_unlock(&self._mutex)

    def set_burst(self, Py_ssize_t burst):
        """The bucket's size from the next reservation on."""
        ringq_mutex_lock(&self._mutex)
        self._burst = burst
        self._tolerance = (burst - 1) * self._interval
        ringq_mutex_unlock(&self._mutex)

    def take(self):
        """Take one token if one is due now and nothing stands in the way; False: use reserve()."""
        cdef double now, first
        cdef bint taken = False
        ringq_mutex_lock(&self._mutex)
        now = _now_s()
        self._drop_past_locked(now)
        if self._nfreed == 0:  # else the next token is a given-back one, still to come
            first = self._last + self._interval
            if first < now - self._tolerance:
                first = now - self._tolerance
            if first <= now:
                self._last = first
                taken = True
        ringq_mutex_unlock(&self._mutex)
        return taken

    def reserve(self, Py_ssize_t n, timeout, bint keep_ticket=False):
        """Take *n* tokens: (seconds until the last is due, ticket to give them back) or None.

        None: the last token would come after *timeout* (None: no limit), and nothing
        is taken. The ticket is None when there is nothing to wait for, unless
        *keep_ticket*.
        """
        return self._reserve(n, -1.0 if timeout is None else <double>timeout, keep_ticket)

    def try_reserve(self, Py_ssize_t n, timeout, bint keep_ticket=False):
        """reserve(): here it never waits for a lock, so it never answers False (busy)."""
        return self._reserve(n, -1.0 if timeout is None else <double>timeout, keep_ticket)

    def give_back(self, ticket):
        """Undo a reservation whose wait was cut short: its tokens go to the next callers."""
        if ticket is not None:
            self._give_back(ticket)

    def give_back_nowait(self, ticket):
        """give_back(): it never waits for a lock here either."""
        if ticket is not None:
            self._give_back(ticket)

    # -- the sections -------------------------------------------------------------------
    cdef inline void _drop_past_locked(self, double now) noexcept nogil:
        """Forget given-back tokens whose time has passed (taken late, they would bunch up)."""
        cdef Py_ssize_t past = 0
        while past < self._nfreed and self._freed[past] <= now:
            past += 1
        if past:
            self._nfreed -= past
            memmove(self._freed, self._freed + past, self._nfreed * sizeof(double))

    cdef object _reserve(self, Py_ssize_t n, double limit, bint keep_ticket):
        """reserve() with *limit* < 0 for no timeout."""
        cdef double now, due, wait, prev_last, interval, first = 0.0, own_last = 0.0
        cdef Py_ssize_t nreused, k, i
        cdef double *reused = NULL
        cdef bint taken
        ringq_mutex_lock(&self._mutex)
        now = _now_s()
        self._drop_past_locked(now)
        nreused = n if n < self._nfreed else self._nfreed
        if nreused:
            reused = <double *>PyMem_RawMalloc(<size_t>nreused * sizeof(double))
            if reused == NULL:
                ringq_mutex_unlock(&self._mutex)
                raise MemoryError()
            memcpy(reused, self._freed, <size_t>nreused * sizeof(double))
        k = n - nreused
        prev_last = self._last
        interval = self._interval
        due = reused[nreused - 1] if nreused else now
        if k:
            first = prev_last + interval
            if first < now - self._tolerance:
                first = now - self._tolerance
            own_last = first + (k - 1) * interval
            if own_last > due:
                due = own_last
        wait = due - now
        taken = limit < 0 or wait <= limit
        if taken:
            if nreused:
                self._nfreed -= nreused
                memmove(self._freed, self._freed + nreused, self._nfreed * sizeof(double))
            if k:
                self._last = own_last
        ringq_mutex_unlock(&self._mutex)
        try:
            if not taken:
                return None
            if wait <= 0 and not keep_ticket:
                return _TAKEN
            return (wait if wait > 0 else 0.0,
                    (prev_last, own_last if k else None, first, k, interval,
                     tuple([reused[i] for i in range(nreused)])))
        finally:
            PyMem_RawFree(reused)

    cdef _give_back(self, tuple ticket):
        cdef double prev_last, first, interval, now, slot
        cdef object own_last
        cdef tuple reused
        cdef Py_ssize_t k, nreused, i, count, room
        cdef double own = 0.0
        cdef double *slots
        cdef double *grown
        prev_last, own_last, first, k, interval, reused = ticket
        nreused = len(reused)
        if own_last is not None:
            own = <double>own_last
        # Every token it may give back, made before the section (no Python code inside).
        slots = <double *>PyMem_RawMalloc(<size_t>(nreused + k + 1) * sizeof(double))
        if slots == NULL:
            raise MemoryError()
        try:
            for i in range(nreused):
                slots[i] = <double>reused[i]
            for i in range(k):
                slots[nreused + i] = first + i * interval
            ringq_mutex_lock(&self._mutex)
            # Room for all of them first, so that a failure leaves the bucket unchanged.
            room = self._capfreed
            if self._nfreed + nreused + k > room:
                room = max(2 * room, self._nfreed + nreused + k)
                grown = <double *>PyMem_RawRealloc(self._freed, <size_t>room * sizeof(double))
                if grown == NULL:
                    ringq_mutex_unlock(&self._mutex)
                    raise MemoryError()
                self._freed = grown
                self._capfreed = room
            count = nreused
            if own_last is not None:
                if self._last == own:
                    self._last = prev_last  # nobody reserved after it: as if it never came
                else:
                    count = nreused + k  # later callers wait behind them: the next ones may have them
            now = _now_s()
            for i in range(count):
                slot = slots[i]
                if slot > now:
                    self._freed[self._nfreed] = slot
                    self._nfreed += 1
            qsort(self._freed, self._nfreed, sizeof(double), _cmp_double)
            ringq_mutex_unlock(&self._mutex)
        finally:
            PyMem_RawFree(slots)
