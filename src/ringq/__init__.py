"""ringq: a bounded, C-accelerated drop-in for queue.Queue.

    >>> import ringq
    >>> q = ringq.Queue(maxsize=2)
    >>> q.put_many([1, 2])
    >>> q.full()
    True
    >>> q.get_many(10)
    [1, 2]

``ringq.IMPLEMENTATION`` says which implementation is loaded: "cython" (the
compiled core) or "python" (the pure-Python twin, chosen by
RINGQ_NO_EXTENSIONS=1 or when no compiled module fits this interpreter).
"""
from ._errors import Cancelled, Empty, Full, ShutDown
from ._queue import IMPLEMENTATION, CancelToken, Producer, Queue, select
from ._stats import QueueStatistics

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "CancelToken",
    "Cancelled",
    "Empty",
    "Full",
    "Producer",
    "Queue",
    "QueueStatistics",
    "ShutDown",
    "__version__",
    "select",
]
