"""What both implementations of ringq.ProcessQueue share: the shared-memory segment's
lifetime, the statistics tuple, argument checks and the registry of live handles.

Lifetime of a segment (POSIX: a file under /dev/shm):

* The creating process registers the name with multiprocessing's resource tracker.
  The tracker is one process per program run, shared by every child started with
  fork, spawn or forkserver; when the last process holding it ends (normally, on an
  exception, or killed), it unlinks every name still registered. So nothing is left
  in /dev/shm once every process of the run has ended, whatever killed them.
* The segment holds a table of the processes that have a handle open (a process
  joins it with its first handle: created, unpickled, or inherited through fork;
  it leaves with its last). The process that leaves last unlinks the name and
  unregisters it from the tracker at once; when it leaves, it also drops the
  processes that died without leaving (killed, or terminated like a pool's
  workers), so they do not keep the segment. A handle is closed by ``close()``,
  by garbage collection, at interpreter exit (``atexit``) and at the exit of a
  multiprocessing child (its finalizers run before ``os._exit``). If the last
  process alive is killed, the tracker unlinks the name at the end of the run.
* Only the creator registers: attaching does not (Python before 3.13 registered
  every attach of a ``SharedMemory``, which unlinked segments early; we do not use
  ``SharedMemory`` on POSIX for that reason).

On Windows the segment is a named file mapping (``SharedMemory``), which the system
frees when its last handle closes; there is no tracker and no count to keep.
"""
from __future__ import annotations

import atexit
import operator
import os
import secrets
import threading
import weakref
from multiprocessing import util as _mputil
from types import TracebackType
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_CAPACITY",
    "ProcessProducer",
    "ProcessQueueStatistics",
    "Segment",
    "check_capacity",
    "check_max_items",
    "check_maxsize",
    "check_serializer",
    "new_name",
    "register_handle",
]

#: Bytes of shared memory for items when ``capacity`` is not given (16 MiB).
DEFAULT_CAPACITY = 16 * 2**20


class ProcessQueueStatistics(NamedTuple):
    """A snapshot of a ProcessQueue's shared counters (taken in one locked section)."""

    size: int             #: items in the queue now
    maxsize: int          #: the bound in items (<= 0: bounded by capacity only)
    high_water: int       #: the largest size ever reached
    puts: int             #: items ever put
    gets: int             #: items ever taken
    waiting_putters: int  #: calls blocked for room now, in every process
    waiting_getters: int  #: calls blocked for an item now, in every process
    capacity: int         #: bytes of the ring
    used_bytes: int       #: bytes of the ring holding items now
    processes: int        #: processes with an open handle to the queue
    recoveries: int       #: times a process found the lock's owner dead and took over


ProcessQueueStatistics.__module__ = "ringq"


def check_maxsize(maxsize: Any) -> int:
    if isinstance(maxsize, bool):
        return int(maxsize)
    try:
        return operator.index(maxsize)
    except TypeError:
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__!r}") from None


def check_capacity(capacity: Any, header_bytes: int = 0) -> int:
    try:
        value = operator.index(capacity)
    except TypeError:
        raise TypeError(f"capacity must be an integer (bytes), not {type(capacity).__name__!r}") from None
    if value < 4096:
        raise ValueError(f"capacity must be at least 4096 bytes, not {value}")
    if value > 2**46:
        raise ValueError(f"capacity must be at most 2**46 bytes, not {value}")
    return (value + 63) & ~63


def check_max_items(max_items: Any) -> int:
    try:
        n = operator.index(max_items)
    except TypeError:
        raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
    if n < 1:
        raise ValueError("max_items must be >= 1")
    return n


def check_serializer(dumps: Any, loads: Any) -> None:
    if (dumps is None) != (loads is None):
        raise TypeError("give both dumps= and loads= (a serializer and its inverse), or neither for pickle")
    if dumps is not None and not (callable(dumps) and callable(loads)):
        raise TypeError("dumps= and loads= must be callables: dumps(obj) -> bytes-like, loads(bytes) -> obj")


def new_name() -> str:
    # Short: macOS limits POSIX shm names to 31 characters.
    return f"/rq{os.getpid() % 100000}_{secrets.token_hex(6)}"


# ---------------------------------------------------------------------------
# The segment: create, attach, unlink (POSIX via _posixshmem, Windows via SharedMemory)

if os.name == "nt":  # pragma: no cover - exercised by the Windows workflow
    from multiprocessing import shared_memory as _sm

    class Segment:
        """A named mapping; Windows frees it with its last handle."""

        def __init__(self, name: str | None, size: int = 0) -> None:
            if name is None:
                self._shm = _sm.SharedMemory(create=True, size=size)
                self.created = True
            else:
                self._shm = _sm.SharedMemory(name=name)
                self.created = False
            self.name = self._shm.name
            self.size = self._shm.size
            self.buf = self._shm.buf

        def register(self) -> None:
            pass

        def unlink(self) -> None:
            pass

        def close(self) -> None:
            self.buf = None
            self._shm.close()

else:
    import _posixshmem  # type: ignore[import-not-found]  # CPython's private module: typeshed has no stub
    import mmap

    class Segment:  # type: ignore[no-redef]
        """A POSIX shared memory object mapped into this process."""

        def __init__(self, name: str | None, size: int = 0) -> None:
            if name is None:
                for _ in range(100):
                    name = new_name()
                    try:
                        fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
                    except FileExistsError:
                        continue
                    break
                else:  # pragma: no cover
                    raise FileExistsError("could not find a free shared memory name")
                self.created = True
                try:
                    os.ftruncate(fd, size)
                except BaseException:
                    os.close(fd)
                    _posixshmem.shm_unlink(name)
                    raise
            else:
                try:
                    fd = _posixshmem.shm_open(name, os.O_RDWR, mode=0o600)
                except FileNotFoundError:
                    raise FileNotFoundError(
                        f"the ProcessQueue's shared memory {name!r} is gone: every handle to it was "
                        "closed (or the program that created it ended) before this copy attached. "
                        "Keep a handle open in the parent until the children have started"
                    ) from None
                self.created = False
                size = os.fstat(fd).st_size
            try:
                self.mm = mmap.mmap(fd, size)
            finally:
                os.close(fd)
            self.name = name
            self.size = size
            self.buf: memoryview | None = memoryview(self.mm)  # None once closed

        def register(self) -> None:
            from multiprocessing import resource_tracker

            resource_tracker.register(self.name, "shared_memory")

        def unlink(self) -> None:
            from multiprocessing import resource_tracker

            try:
                _posixshmem.shm_unlink(self.name)
            except FileNotFoundError:
                # Another process unlinked it and unregistered it: a fork child joins the
                # table only after fork() returns, so the parent may have left it last first.
                # A second unregister would make the tracker print a KeyError.
                return
            try:
                resource_tracker.unregister(self.name, "shared_memory")
            except Exception:  # noqa: BLE001 - the tracker is gone (interpreter exit): it unlinks anyway
                pass

        def close(self) -> None:
            buf, self.buf = self.buf, None
            if buf is not None:
                buf.release()
            self.mm.close()


# ---------------------------------------------------------------------------
# Live handles: after fork each inherited handle counts as one more; each is
# closed when its process ends.

_live: "weakref.WeakSet[Any]" = weakref.WeakSet()
_live_lock = threading.Lock()
_local: "dict[str, int]" = {}  # segment name -> open handles in this process


def local_open(name: str) -> bool:
    """Count one more handle to *name* here; True for the first (the process joins the table)."""
    with _live_lock:
        count = _local.get(name, 0)
        _local[name] = count + 1
        return count == 0


def local_close(name: str) -> bool:
    """Count one handle less; True for the last (the process leaves the table)."""
    with _live_lock:
        count = _local.get(name, 0) - 1
        if count > 0:
            _local[name] = count
            return False
        _local.pop(name, None)
        return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def register_handle(handle: Any) -> None:
    with _live_lock:
        _live.add(handle)


def _close_all() -> None:
    with _live_lock:
        handles = list(_live)
    for handle in handles:
        try:
            handle.close()
        except Exception:  # noqa: BLE001 - at exit: keep closing the others
            pass


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()  # another thread may have held it at fork
    joined = set()
    for handle in list(_live):
        try:
            join = not handle._closed and handle.name not in joined
            if join:
                joined.add(handle.name)
            handle._forked(join)  # the first handle of each segment joins its table of processes
        except Exception:  # noqa: BLE001 - a broken handle must not break fork
            pass


class _AfterFork:
    """A weak-referenceable anchor for multiprocessing.util.register_after_fork."""


_anchor = _AfterFork()


def _register_mp_exit(_anchor: Any = None) -> None:
    # multiprocessing children leave through os._exit(), skipping atexit, after
    # running the finalizers that have an exit priority: close our handles there.
    from multiprocessing import util

    util.Finalize(None, _close_all, exitpriority=0)


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_register_mp_exit()
# A forked multiprocessing child clears the finalizers it inherited: re-register.
_mputil.register_after_fork(_anchor, _register_mp_exit)


class ProcessProducer:
    """A registered producer of a ProcessQueue; picklable, so it can be handed to another process.

    close() (or leaving ``with``) unregisters it, once, whichever process closes it.
    """

    def __init__(self, queue: Any, slot: int, gen: int) -> None:
        self._queue = queue
        self._slot = slot
        self._gen = gen
        self._closed = False

    @property
    def queue(self) -> Any:
        return self._queue

    @property
    def closed(self) -> bool:
        """True once this handle was closed (in this process)."""
        return self._closed

    def close(self, exc: BaseException | None = None) -> None:
        """Unregister; the last producer to close shuts the queue down. *exc* becomes the getters' ShutDown cause."""
        if self._closed:
            return
        self._closed = True
        self._queue._close_producer(self._slot, self._gen, exc)

    def __enter__(self) -> ProcessProducer:  # noqa: PYI034 - as ringq.Producer
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(exc)

    def __reduce__(self) -> Any:
        return (_rebuild_producer, (self._queue, self._slot, self._gen))


def _rebuild_producer(queue: Any, slot: int, gen: int) -> ProcessProducer:
    return ProcessProducer(queue, slot, gen)


