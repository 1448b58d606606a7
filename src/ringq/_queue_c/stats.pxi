# Included by _queue_c.pyx: statistics, watermarks and producer handles.

QueueStatistics = _QueueStatistics
# producer() on a queue that its last registered producer shut down: name the rule (as the twin).
_PRODUCERS_LEFT = ("cannot register a producer: the queue was shut down when its last registered producer "
                "closed. Register every producer before starting any of them (call q.producer() in the "
                "thread that starts them, and close it in the producer): a producer that finishes first "
                "shuts the queue down while the others are still starting")
_config_lock = threading.Lock()  # serialises one-time set-up of a queue's watermark delivery lock


cdef int _raise_shutdown(object cause) except -1:
    """Raise ShutDown, chained to *cause* when a producer passed one on."""
    if cause is not None:
        raise ShutDown from cause
    raise ShutDown


cdef tuple _watermark_sizes(object high, object low, object maxsize):
    """(high, low) as sizes: floats are fractions of a bounded maxsize, ints are sizes."""
    cdef double h, frac_low
    if isinstance(high, bool) or isinstance(low, bool):
        raise TypeError("high and low must be numbers")
    if isinstance(high, int) and isinstance(low, int):
        if not 0 <= low < high:
            raise ValueError("watermark sizes need 0 <= low < high")
        return min(high, PY_SSIZE_T_MAX), low
    try:
        h = high
        frac_low = low
    except TypeError:
        raise TypeError("high and low must be numbers") from None
    if not (0.0 <= frac_low < h <= 1.0):
        raise ValueError("watermark fractions need 0 <= low < high <= 1")
    if maxsize <= 0:
        raise ValueError("fractional watermarks need a bounded queue (maxsize > 0); give sizes as ints")
    hi = math.ceil(h * maxsize)
    lo = math.floor(frac_low * maxsize)
    if lo >= hi:
        lo = hi - 1
    return max(hi, 1), lo


@cython.final
@cython.auto_pickle(False)
cdef class Producer:
    """A registered producer of a queue (see Queue.producer()); close it once, or use it as a context manager."""

    cdef:
        readonly Queue queue
        bint _closed  # read and written by the thread that owns the handle

    def __cinit__(self, Queue queue):
        self.queue = queue

    @property
    def closed(self):
        return self._closed

    def close(self, exc=None):
        """Unregister; the last producer to close shuts the queue down.

        *exc* (an exception instance) is passed on: getters that find the queue shut
        down and drained raise ShutDown chained to the first one passed. Closing
        again does nothing.
        """
        if exc is not None and not isinstance(exc, BaseException):
            raise TypeError("exc must be an exception instance or None")
        if self._closed:
            return
        self._closed = True
        self.queue._producer_closed(exc)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(exc)

    def __repr__(self):
        return f"<ringq.Producer {'closed' if self._closed else 'open'} of {self.queue!r}>"
