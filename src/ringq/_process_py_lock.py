"""The pure-Python ProcessQueue's lock (``_process_py.py``): a multiprocessing
semaphore, plus the owner's pid in the queue's header so that a process killed while
holding it does not block the others for ever. The compiled core gets the same from a
robust process-shared mutex (``_process_c/layout.pxi``).
"""
from __future__ import annotations

import os
import sys
from _thread import get_ident
from typing import Any

from ._process_common import pid_alive

__all__ = ["OWNER", "RECOV", "SLICE", "SharedLock"]

# Header fields (int64 slots) this lock uses; _process_py.py lays out the rest.
OWNER, RECOV = 12, 16
SLICE = 0.05  # seconds a waiter sleeps before it looks at the owner again
# Slices in a row the lock may stay held with no owner written before a waiter suspects
# a process killed between taking the semaphore and writing its pid (or between
# clearing it and releasing): a live holder spends a few bytecodes there.
OWNERLESS_SLICES = 10


def _died(pid: int) -> bool:
    """True if process *pid* has ended: gone, or (on Linux) a zombie its parent has not reaped yet."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        state = stat[stat.rindex(b")") + 2:][:1]  # the field after the command name
        return state in (b"Z", b"X")
    else:  # an else, not a fall-through: mypy checks one platform and would call this unreachable
        return not pid_alive(pid)


class SharedLock:
    """The queue's process-shared lock, taken over from an owner that died holding it.

    The holder writes its pid into the header's OWNER field once it has the semaphore,
    and clears it before releasing. A process that waited one slice in vain looks at
    that pid: if that process has died, it takes the lock over. The semaphore stays
    taken (ownership passes; it is never released twice), and a second lock makes the
    check and the take-over one step, so two waiters cannot both take over.
    """

    __slots__ = ("sem", "takeover", "h", "pid", "holder", "procs")

    def __init__(self, sem: Any, takeover: Any, h: Any) -> None:
        self.sem = sem
        self.takeover = takeover
        self.h = h
        self.pid = os.getpid()
        self.holder = 0  # the thread of this process holding the lock, or 0
        self.procs: Any = None  # the pids of the queue's processes (set by the queue), or None

    # Two things may go wrong inside a call, and neither may leave the semaphore wrong:
    # - Ctrl-C (or another exception) while _wait() takes the lock back: the call then
    #   leaves without the lock, and its "with" block's exit must not release it (the
    #   semaphore might be another process's: mutual exclusion would be lost). So the
    #   exit releases only if this thread is the holder.
    # - close() in another thread releases the view while a call is inside: the owner's
    #   field is then skipped, never the semaphore (before, the call left the lock held
    #   and every other call waited for ever: a CI hang).
    def acquire(self) -> None:
        if not self.sem.acquire(True, SLICE):
            self._acquire_slow()
        self.holder = get_ident()
        try:
            self.h[OWNER] = self.pid
        except ValueError:  # the view was released by close()
            pass

    def release(self, *exc: object) -> None:
        if self.holder != get_ident():
            return  # this thread does not hold it (its acquire() was interrupted)
        self.holder = 0
        try:
            self.h[OWNER] = 0
        except ValueError:
            pass
        self.sem.release()

    # "with lock:" runs the same two functions, with no call in between.
    __enter__ = acquire
    __exit__ = release

    def _acquire_slow(self) -> None:
        ownerless = 0  # slices in a row that found the lock held and no owner written
        while True:
            try:
                if self._take_over():
                    return
                ownerless = ownerless + 1 if self.h[OWNER] == 0 else 0
                if ownerless >= OWNERLESS_SLICES and self._take_over_ownerless():
                    return
            except ValueError:  # close() released the view: wait for the semaphore alone
                pass
            if self.sem.acquire(True, SLICE):
                return

    def _take_over(self) -> bool:
        """Take the lock over if its owner has died; False if it has not (or someone else took it)."""
        owner = self.h[OWNER]
        if not owner or owner == self.pid or not _died(owner):
            return False
        return self._seize(owner)

    def _take_over_ownerless(self) -> bool:
        """Take over a lock held with no owner written for OWNERLESS_SLICES, if one of the
        queue's processes has died: it was killed between the semaphore and its pid (a
        pool's SIGKILL of a worker that did not stop in time lands anywhere). The one
        case this gets wrong: a live holder stopped that long inside those few bytecodes
        while another process of the queue happens to be dead."""
        procs = self.procs
        if procs is None or not any(p and p != self.pid and _died(p) for p in procs):
            return False
        return self._seize(0)

    def _seize(self, owner: int) -> bool:
        """The take-over itself, if OWNER still reads *owner*: one step under the second lock,
        so that two waiters cannot both take over."""
        h = self.h
        with self.takeover:
            if h[OWNER] != owner:  # an owner appeared, or somebody took over meanwhile
                return False
            if self.sem.acquire(False):
                return True  # it came free: an ordinary acquire
            h[RECOV] += 1
            h[OWNER] = self.pid  # the take-over: last, so a failed store takes nothing
            return True
