"""Pick the implementation of ringq.ProcessQueue: the Cython core, or its pure-Python twin.

Read exactly as ringq._queue reads it: ``RINGQ_NO_EXTENSIONS`` set to anything but
"" or "0" selects the twin (so do PyPy and other interpreters); otherwise the
compiled ``_process_c`` is used when it imports, and only ImportError falls back
(a broken build still fails loudly). The fallback warning is ringq._queue's: a
missing ``_process_c`` next to a working ``_queue_c`` means a partial install,
which is reported the same way.
"""
from typing import TYPE_CHECKING

from ._queue import NO_EXTENSIONS, _warn_fallback

if TYPE_CHECKING:
    # Type checkers read the compiled core's stub, as ringq._queue's stub does for Queue:
    # its ProcessQueue is generic (ProcessQueue[int]); the twin has the same API, untyped.
    from typing import Literal

    from ._process_c import ProcessProducer, ProcessQueue

    IMPLEMENTATION: Literal["cython", "python"]
elif NO_EXTENSIONS:
    from ._process_py import ProcessProducer, ProcessQueue

    IMPLEMENTATION = "python"
else:
    try:
        from ._process_c import ProcessProducer, ProcessQueue
    except ImportError as _error:
        from ._process_py import ProcessProducer, ProcessQueue

        IMPLEMENTATION = "python"
        _warn_fallback(_error)
        del _error
    else:
        IMPLEMENTATION = "cython"

from ._process_common import ProcessQueueStatistics

__all__ = ["IMPLEMENTATION", "ProcessProducer", "ProcessQueue", "ProcessQueueStatistics"]
