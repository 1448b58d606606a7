from typing import Literal

from ._queue_c import CancelToken as CancelToken
from ._queue_c import PriorityQueue as PriorityQueue
from ._queue_c import Producer as Producer
from ._queue_c import Queue as Queue
from ._queue_c import TokenBucket as TokenBucket
from ._queue_c import aselect as aselect
from ._queue_c import select as select

IMPLEMENTATION: Literal["cython", "python"]
NO_EXTENSIONS: bool
FALLBACK_WARNING_PREFIX: str

def _warn_fallback(error: ImportError) -> None: ...
