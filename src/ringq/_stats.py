"""The named tuple returned by Queue.statistics(), shared by both implementations."""
from typing import NamedTuple


class QueueStatistics(NamedTuple):
    """A snapshot of a queue's counters (all taken in one locked section)."""

    size: int             #: items in the queue now
    maxsize: int          #: the bound (<= 0: unbounded)
    high_water: int       #: the largest size ever reached
    puts: int             #: items ever put (put, put_many)
    gets: int             #: items ever taken (get, get_many, select); dropped items are not counted
    waiting_putters: int  #: calls blocked for room now
    waiting_getters: int  #: calls blocked for an item now (a select counts once per queue)


QueueStatistics.__module__ = "ringq"

__all__ = ["QueueStatistics"]
