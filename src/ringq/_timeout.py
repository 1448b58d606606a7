"""The timeout check of the pure-Python code (the twin and the toolkit modules).

It raises exactly what the Cython core's own check raises, with the same messages.
"""
from __future__ import annotations

from math import isnan
from time import monotonic
from typing import Any

__all__ = ["FOREVER", "deadline"]

# Timeouts longer than this (about 31 years) mean "wait forever"; this keeps
# lock.acquire(timeout=...) below threading.TIMEOUT_MAX on every platform.
FOREVER = 1e9


def deadline(timeout: Any) -> float | None:
    """Monotonic deadline for *timeout* seconds; None waits forever."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    try:
        seconds = float(timeout)
    except TypeError:
        raise TypeError(
            f"timeout must be a number or None, not {type(timeout).__name__!r}"
        ) from None
    except OverflowError:
        # Past a float's range (10**400, a huge Fraction): forever if positive, as documented.
        if timeout > 0:
            return None
        raise ValueError("'timeout' must be a non-negative number") from None
    if isnan(seconds):
        raise ValueError("'timeout' must be a non-negative number, not NaN")
    if seconds < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if seconds > FOREVER:
        return None
    return monotonic() + seconds
