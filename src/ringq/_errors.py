"""The exceptions ringq raises: the stdlib's own classes wherever they exist.

``except queue.Empty:`` written for ``queue.Queue`` keeps working unchanged.
"""
import queue
import sys

Empty = queue.Empty
Full = queue.Full

if sys.version_info >= (3, 13):
    ShutDown = queue.ShutDown
else:

    class ShutDown(Exception):
        """Raised by put() on a queue that was shut down, and by get() once it is also empty.

        On Python 3.13 and later this is ``queue.ShutDown`` itself.
        """

    ShutDown.__module__ = "ringq"

__all__ = ["Empty", "Full", "ShutDown"]
