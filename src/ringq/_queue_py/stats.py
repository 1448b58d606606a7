"""Statistics, watermarks and producer handles.

A put looks at the watermarks only when the size reaches ``q._alert_up``, a get only
when it falls to ``q._alert_down`` (both kept by set_alerts), so the fast paths pay
one comparison. The watermark callback runs outside the queue's lock.

The C side of this file is ``_queue_c/stats.pxi``.
"""
from __future__ import annotations

import math
import threading
from threading import RLock
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._errors import ShutDown, report_callback_error
from .._stats import QueueStatistics

if TYPE_CHECKING:
    from .queue import Queue


# producer() on a queue that its last registered producer shut down: name the rule (as the core).
_PRODUCERS_LEFT = (
    "cannot register a producer: the queue was shut down when its last registered producer "
    "closed. Register every producer before starting any of them (call q.producer() in the "
    "thread that starts them, and close it in the producer): a producer that finishes first "
    "shuts the queue down while the others are still starting"
)


_config_lock = threading.Lock()  # serialises one-time set-up of a queue's watermark delivery lock


def set_alerts(q: Queue[Any]) -> None:
    """Lock held: recompute _alert_up and _alert_down (see Queue.__init__)."""
    up = q._high_water + 1
    if q._wm_high > 0 and not q._wm_above and q._wm_high < up:
        up = q._wm_high
    q._alert_up = up
    q._alert_down = q._wm_low if (q._wm_high > 0 and q._wm_above) else -1


def grew(q: Queue[Any]) -> bool:
    """Lock held; the size reached _alert_up. True if the high watermark was just crossed."""
    n = (q._count)
    crossed = False
    if n > q._high_water:
        q._high_water = n
    if q._wm_high > 0 and not q._wm_above and n >= q._wm_high:
        q._wm_above = True
        crossed = True
    set_alerts(q)
    return crossed


def shrank(q: Queue[Any]) -> bool:
    """Lock held; the size fell to _alert_down. True if it just fell back to the low watermark."""
    if q._wm_high > 0 and q._wm_above and (q._count) <= q._wm_low:
        q._wm_above = False
        set_alerts(q)
        return True
    return False


def deliver_watermark(q: Queue[Any]) -> None:
    """Outside the lock: call the callback with the current state if it differs from the last delivered.

    See the core's _deliver_watermark: events alternate strictly and may coalesce.
    """
    delivery = q._wm_delivery
    if delivery is None:
        return
    with delivery:
        with q._mutex:
            above = q._wm_above
            callback = q._wm_callback
        if callback is None or above == q._wm_delivered_above:
            return
        q._wm_delivered_above = above
        try:
            callback("high" if above else "low")
        except Exception:  # noqa: BLE001 - reported to sys.unraisablehook, as the core does
            report_callback_error(callback, "ringq watermark callback")


def on_watermark(q: Queue[Any], high: float = 0.8, low: float = 0.7, callback: Any = None) -> None:
    """Queue.on_watermark(): validate, then install the marks under the lock."""
    hi = lo = 0
    if callback is not None:
        if not callable(callback):
            raise TypeError("callback must be callable or None")
        from .._asyncfn import refuse_async  # here, not at import: it loads inspect
        refuse_async(callback, "Queue.on_watermark(callback=)",
                     "The callback runs inside the put or get that crossed the mark, which cannot "
                     "await it: pass a plain function (in a coroutine program it can set or clear "
                     "an asyncio.Event).")
        hi, lo = _watermark_sizes(high, low, q._maxsize)
        with _config_lock:
            if q._wm_delivery is None:
                q._wm_delivery = RLock()
    with q._mutex:
        q._wm_callback = callback
        q._wm_high = hi
        q._wm_low = lo
        q._wm_above = False
        set_alerts(q)
    q._wm_delivered_above = False


def statistics(q: Queue[Any]) -> QueueStatistics:
    """A snapshot of the queue's counters, as a QueueStatistics named tuple."""
    with q._mutex:
        return QueueStatistics(
            (q._count),
            q._maxsize,
            q._high_water,
            q._puts,
            q._gets,
            len(q._putters),
            len(q._getters),
        )


def register_producer(q: Queue[Any]) -> Producer:
    """Queue.producer(): count one more registered producer and return its handle."""
    with q._mutex:
        if q._shutdown:
            if q._producers_left:
                raise ShutDown(_PRODUCERS_LEFT)
            raise ShutDown("cannot register a producer: the queue is shut down")
        q._producers += 1
    return Producer(q)


def producer_closed(q: Queue[Any], exc: BaseException | None) -> None:
    """A Producer closed: keep the first cause; the last one's close shuts *q* down."""
    with q._mutex:
        if exc is not None and q._shutdown_cause is None:
            q._shutdown_cause = exc
        q._producers -= 1
        last = q._producers == 0
        if last and not q._shutdown:
            q._producers_left = True
    if last:
        q.shutdown()

# -- tasks -------------------------------------------------------------


def _watermark_sizes(high: Any, low: Any, maxsize: int) -> tuple[int, int]:
    """(high, low) as sizes: floats are fractions of a bounded maxsize, ints are sizes."""
    if isinstance(high, (bool, str, bytes, bytearray)) or isinstance(low, (bool, str, bytes, bytearray)):
        # float() would parse "0.8"; the core, like any C double conversion, does not.
        raise TypeError("high and low must be numbers")
    if isinstance(high, int) and isinstance(low, int):
        if not 0 <= low < high:
            raise ValueError("watermark sizes need 0 <= low < high")
        return high, low
    try:
        h = float(high)
        lo_f = float(low)
    except TypeError:
        raise TypeError("high and low must be numbers") from None
    if not (0.0 <= lo_f < h <= 1.0):
        raise ValueError("watermark fractions need 0 <= low < high <= 1")
    if maxsize <= 0:
        raise ValueError("fractional watermarks need a bounded queue (maxsize > 0); give sizes as ints")
    hi = math.ceil(h * maxsize)
    lo = math.floor(lo_f * maxsize)
    if lo >= hi:
        lo = hi - 1
    return max(hi, 1), lo


class Producer:
    """A registered producer of a queue (see Queue.producer()); close it once, or use it as a context manager."""

    __slots__ = ("queue", "_closed")

    def __init__(self, queue: Queue[Any]) -> None:
        self.queue = queue
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, exc: BaseException | None = None) -> None:
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
        producer_closed(self.queue, exc)

    def __enter__(self) -> Producer:  # noqa: PYI034 - not meant to be subclassed, as in the core
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(exc)

    def __repr__(self) -> str:
        return f"<ringq.Producer {'closed' if self._closed else 'open'} of {self.queue!r}>"
