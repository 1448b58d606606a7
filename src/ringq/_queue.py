"""Pick the implementation of ringq.Queue: the Cython core, or its pure-Python twin.

One environment variable, ``RINGQ_NO_EXTENSIONS``, is read both here and by setup.py.
Set to anything but "" or "0", it selects the pure-Python twin. Otherwise the Cython
core is used when it imports; only ImportError (no compiled module for this
interpreter) falls back, so a broken build still fails loudly.
"""
import os
import sys

NO_EXTENSIONS = os.environ.get("RINGQ_NO_EXTENSIONS", "") not in ("", "0")

if sys.implementation.name != "cpython":
    NO_EXTENSIONS = True  # PyPy and others: the twin is faster there than cpyext

if NO_EXTENSIONS:
    from ._queue_py import CancelToken, Producer, Queue, select

    IMPLEMENTATION = "python"
else:
    try:
        from ._queue_c import CancelToken, Producer, Queue, select
    except ImportError:
        from ._queue_py import CancelToken, Producer, Queue, select

        IMPLEMENTATION = "python"
    else:
        IMPLEMENTATION = "cython"

__all__ = ["IMPLEMENTATION", "CancelToken", "Producer", "Queue", "select"]
