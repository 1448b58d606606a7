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

The toolkit, pure Python on top of ``ringq.Queue`` (the core never imports it):
``ringq.BoundedExecutor`` (a ``concurrent.futures.Executor`` with a bounded queue),
``ringq.Pipeline`` (stages of workers joined by bounded queues; ``ringq.SKIP``,
``ringq.StageStats``), ``ringq.RateLimiter`` (a token bucket), ``ringq.Broadcast``
and ``ringq.Router``.
"""
from ._asyncview import AsyncQueueView
from ._errors import Cancelled, Empty, Full, ShutDown
from ._process import ProcessProducer, ProcessQueue, ProcessQueueStatistics
from ._queue import IMPLEMENTATION, CancelToken, PriorityQueue, Producer, Queue, aselect, select
from ._stats import QueueStatistics
from .broadcast import Broadcast, Subscription
from .pipeline import SKIP, Pipeline, StageStats
from .pool import BoundedExecutor
from .process_pool import ProcessExecutor, WorkerDied
from .ratelimit import RateLimiter
from .router import Router, UnroutableError

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "SKIP",
    "AsyncQueueView",
    "BoundedExecutor",
    "Broadcast",
    "CancelToken",
    "Cancelled",
    "Empty",
    "Full",
    "Pipeline",
    "PriorityQueue",
    "ProcessExecutor",
    "ProcessProducer",
    "ProcessQueue",
    "ProcessQueueStatistics",
    "Producer",
    "Queue",
    "QueueStatistics",
    "RateLimiter",
    "Router",
    "ShutDown",
    "StageStats",
    "Subscription",
    "UnroutableError",
    "WorkerDied",
    "__version__",
    "aselect",
    "select",
]
