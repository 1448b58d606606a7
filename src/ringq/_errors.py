"""The exceptions ringq raises: the stdlib's own classes wherever they exist.

``except queue.Empty:`` written for ``queue.Queue`` keeps working unchanged.
"""
import queue

Empty = queue.Empty
Full = queue.Full

try:
    ShutDown = queue.ShutDown  # Python 3.13+
except AttributeError:  # pragma: no cover - exercised on 3.9-3.12 only

    class ShutDown(Exception):  # type: ignore[no-redef]
        """Raised by put() on a queue that was shut down, and by get() once it is also empty.

        On Python 3.13 and later this is ``queue.ShutDown`` itself.
        """

    ShutDown.__module__ = "ringq"

__all__ = ["Empty", "Full", "ShutDown"]
