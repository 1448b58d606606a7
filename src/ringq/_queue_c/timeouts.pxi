# Included by _queue_c.pyx: deadlines, timeouts, signals (Ctrl-C slices) and fork handling.

# ---------------------------------------------------------------------------
# Process-wide state: fork detection and the main thread (for Ctrl-C).
# ---------------------------------------------------------------------------

# Bumped in a fork child; a queue whose generation differs forgets its waiters,
# which belonged to threads that do not exist in the child.
cdef unsigned long _fork_generation = 0
# Signals are handled in the main thread only; it waits in slices so Ctrl-C is
# seen even where a lock wait is not interrupted by signals (macOS, Windows).
cdef unsigned long _main_thread_ident = threading.main_thread().ident
cdef enum:
    MAIN_THREAD_SLICE_US = 50000


ringq_clock_init()


def _after_fork_in_child():
    global _fork_generation, _main_thread_ident
    _fork_generation += 1
    _main_thread_ident = PyThread_get_thread_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

LOCK_KIND = RINGQ_LOCK_KIND.decode()

cdef enum:
    NO_DEADLINE = -1
    PARKERS_KEPT = 32  # parkers a queue keeps for reuse; more are freed

cdef Py_ssize_t _SWEEP_MIN = 64  # async waits between sweeps of closed loops' records, at least
cdef double _FOREVER_S = 1e9  # longer timeouts (about 31 years) mean "forever"


cdef int64_t _deadline(object timeout) except? -2:
    """Monotonic deadline in ns for *timeout* seconds, or NO_DEADLINE; raises on bad input."""
    cdef double seconds
    cdef bint overflowed = False
    if timeout is None:
        return NO_DEADLINE
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    try:
        seconds = timeout
    except TypeError:
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}") from None
    except OverflowError:
        overflowed = True
    if overflowed:
        # Past a double's range (10**400, a huge Fraction): forever if positive, as documented.
        if timeout > 0:
            return NO_DEADLINE
        raise ValueError("'timeout' must be a non-negative number")
    if seconds != seconds:
        raise ValueError("'timeout' must be a non-negative number, not NaN")
    if seconds < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if seconds > _FOREVER_S:
        return NO_DEADLINE
    return ringq_monotonic_ns() + <int64_t>(seconds * 1e9 + 0.999)


cdef inline int64_t _call_deadline(bint block, object timeout) except? -2:
    """A sync call's deadline: _deadline(timeout) if it blocks with a timeout, else NO_DEADLINE."""
    if block and timeout is not None:
        return _deadline(timeout)
    return NO_DEADLINE


cdef int _propagate() except -1:
    """Make Cython propagate the exception already set (by a signal handler)."""
    return -1


cdef int _check_signals() except -1:
    """Run pending signal handlers; a handler's exception (KeyboardInterrupt) propagates."""
    if PyErr_CheckSignals() < 0:
        return -1
    return 0


cdef bint _block(PyThread_type_lock parker, int64_t deadline, bint *check_signals) noexcept:
    """Block on *parker* until a waker releases it, the deadline passes or a signal arrives.

    Returns True if the parker was acquired (released by a waker). The main thread
    waits in slices of MAIN_THREAD_SLICE_US, so Ctrl-C is seen on every platform;
    *check_signals* is set when the caller must run PyErr_CheckSignals().
    """
    cdef PyLockStatus r
    cdef PY_TIMEOUT_T us = -1
    cdef int64_t left
    cdef bint is_main = PyThread_get_thread_ident() == _main_thread_ident
    if deadline != NO_DEADLINE:
        left = deadline - ringq_monotonic_ns()
        us = (left + 999) // 1000 if left > 0 else 0
        if us > PY_TIMEOUT_MAX:
            us = PY_TIMEOUT_MAX
    if is_main and (us < 0 or us > MAIN_THREAD_SLICE_US):
        us = MAIN_THREAD_SLICE_US
    with nogil:
        r = PyThread_acquire_lock_timed(parker, us, 1)
    check_signals[0] = r == PY_LOCK_INTR or (is_main and r == PY_LOCK_FAILURE)
    return r == PY_LOCK_ACQUIRED


cdef inline int64_t _earlier(int64_t a, int64_t b) noexcept nogil:
    """The earlier of two deadlines (NO_DEADLINE is the latest)."""
    if a == NO_DEADLINE:
        return b
    if b == NO_DEADLINE or a < b:
        return a
    return b


cdef int _refuse_in_loop(str call) except -1:
    """Before a blocking *call*'s first wait: raise LoopBlockingError if this thread runs an event loop.

    Called without the lock, on the path that is about to wait only (never on a fast
    path), and before the call has changed the queue. Waiting here would freeze every
    task of the loop; ringq.allow_blocking() lets it wait anyway (see _loopguard.py).
    """
    if _running_loop_or_none() is not None:
        _refuse_blocking(call)
    return 0
