"""The constructors' argument binding, shared by the Cython core and the pure twin.

Each function is named after the class it binds for, so Python's own messages for a
bad call name the class, as for a class defined in Python without ``__init__``
noise: ``Queue(size=3)`` raises "Queue() got an unexpected keyword argument 'size'",
word for word the same in both implementations and for every Python version.
"""
from __future__ import annotations

from typing import Any


def Queue(maxsize: Any = 0) -> Any:
    return maxsize


def PriorityQueue(levels: Any = 3, maxsize: Any = 0) -> tuple[Any, Any]:
    return levels, maxsize


queue_args = Queue
priority_queue_args = PriorityQueue
del Queue, PriorityQueue
