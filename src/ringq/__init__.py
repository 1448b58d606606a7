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
from typing import TYPE_CHECKING

from ._asyncview import AsyncQueueView
from ._errors import Cancelled, Empty, Full, LoopBlockingError, ShutDown
from ._loopguard import allow_blocking
from ._queue import IMPLEMENTATION, CancelToken, PriorityQueue, Producer, Queue, aselect, select
from ._stats import QueueStatistics

__version__ = "0.1.0"

# The toolkit is imported on first use (PEP 562), so that `import ringq` costs only the
# core: ringq.Pipeline, `from ringq import Pipeline` and dir(ringq) work as before. To add
# a lazy name: one entry here (name -> its module), the same import in the TYPE_CHECKING
# block below (for type checkers), and the name in __all__.
_LAZY = {
    "Broadcast": "broadcast",
    "Subscription": "broadcast",
    "SKIP": "pipeline",
    "Pipeline": "pipeline",
    "StageStats": "pipeline",
    "BoundedExecutor": "pool",
    "ProcessExecutor": "process_pool",
    "WorkerDied": "process_pool",
    "ProcessProducer": "_process",
    "ProcessQueue": "_process",
    "ProcessQueueStatistics": "_process",
    "wait_future": "pool",
    "RateLimiter": "ratelimit",
    "Router": "router",
    "UnroutableError": "router",
}
# Submodules that `import ringq` used to import, still reachable as attributes.
_LAZY_MODULES = ("broadcast", "pipeline", "pool", "process_pool", "ratelimit", "router")

if TYPE_CHECKING:
    from ._process import ProcessProducer, ProcessQueue, ProcessQueueStatistics
    from .broadcast import Broadcast, Subscription
    from .pipeline import SKIP, Pipeline, StageStats
    from .pool import BoundedExecutor, wait_future
    from .process_pool import ProcessExecutor, WorkerDied
    from .ratelimit import RateLimiter
    from .router import Router, UnroutableError


if not TYPE_CHECKING:  # hidden from type checkers, which would accept any name through it

    def __getattr__(name: str) -> object:  # PEP 562
        module = _LAZY.get(name)
        if module is None and name in _LAZY_MODULES:
            module = name
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        mod = importlib.import_module(f"{__name__}.{module}")
        value = mod if module == name else getattr(mod, name)
        globals()[name] = value  # later look-ups skip this function
        return value


    def __dir__() -> list[str]:  # PEP 562
        return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))


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
    "LoopBlockingError",
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
    "allow_blocking",
    "aselect",
    "select",
    "wait_future",
]
