from typing import Literal

from ._queue_c import PriorityQueue as PriorityQueue
from ._queue_c import Queue as Queue

IMPLEMENTATION: Literal["cython", "python"]
NO_EXTENSIONS: bool
