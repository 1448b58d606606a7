"""Pick the implementation of ringq.Queue and ringq.PriorityQueue: the Cython core, or its pure-Python twin.

One environment variable, ``RINGQ_NO_EXTENSIONS``, is read both here and by setup.py.
Set to anything but "" or "0", it selects the pure-Python twin. Otherwise the Cython
core is used when it imports; only ImportError (no compiled module for this
interpreter) falls back, so a broken build still fails loudly.

Never slow without saying so: on CPython, a fallback that nobody asked for (no
RINGQ_NO_EXTENSIONS) emits one RuntimeWarning with the reason and the fix. Its
message starts with :data:`FALLBACK_WARNING_PREFIX`, so a filter can silence it::

    python -W "ignore:ringq is running its pure-Python twin" ...
    warnings.filterwarnings("ignore", "ringq is running its pure-Python twin", RuntimeWarning)

or choose the twin on purpose with RINGQ_NO_EXTENSIONS=1. PyPy and other
interpreters run the twin by design and are never warned.
"""
import os
import sys

NO_EXTENSIONS = os.environ.get("RINGQ_NO_EXTENSIONS", "") not in ("", "0")

#: The start of the fallback warning's message (no colon, so ``-W`` can match it).
FALLBACK_WARNING_PREFIX = "ringq is running its pure-Python twin"

if sys.implementation.name != "cpython":
    NO_EXTENSIONS = True  # PyPy and others: the twin is faster there than cpyext


def _warn_fallback(error: ImportError) -> None:
    """Say once, at import, that the compiled core did not load, why, and what to do."""
    import importlib.machinery
    import warnings

    if error.name == __name__.rpartition(".")[0] + "._queue_c":
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        reason = f"no compiled core for this interpreter is installed (looked for _queue_c{suffix})"
    else:
        reason = f"the compiled core failed to import: {error}"
    version = "%d.%d" % sys.version_info[:2]
    warnings.warn(
        f"{FALLBACK_WARNING_PREFIX}, several times slower than its compiled core: {reason}. "
        f"Fix: install a ringq wheel built for CPython {version} on this platform, or build "
        "from source with a C compiler and the Python headers (pip install --no-binary ringq "
        "ringq). To run the twin on purpose and silence this warning, set "
        "RINGQ_NO_EXTENSIONS=1.",
        RuntimeWarning,
        stacklevel=2,
    )


if NO_EXTENSIONS:
    from ._queue_py import CancelToken, PriorityQueue, Producer, Queue, TokenBucket, aselect, select

    IMPLEMENTATION = "python"
else:
    try:
        from ._queue_c import CancelToken, PriorityQueue, Producer, Queue, TokenBucket, aselect, select
    except ImportError as _error:
        from ._queue_py import CancelToken, PriorityQueue, Producer, Queue, TokenBucket, aselect, select

        IMPLEMENTATION = "python"
        _warn_fallback(_error)
        del _error
    else:
        IMPLEMENTATION = "cython"

__all__ = ["IMPLEMENTATION", "CancelToken", "PriorityQueue", "Producer", "Queue", "TokenBucket", "aselect", "select"]
