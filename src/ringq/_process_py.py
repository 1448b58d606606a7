"""The pure-Python twin of ringq.ProcessQueue: the same API, built from the stdlib's
multiprocessing pieces (a shared memory segment, one process-shared lock and three
wake-up semaphores).

It runs wherever ``multiprocessing`` does (PyPy, no compiler, macOS, Windows). It
is slower than the compiled core, and it cannot keep every crash guarantee of the
compiled core:

* A process killed (SIGKILL, or SIGTERM without a handler) **while it holds the
  queue's lock** is found dead by the next process that waits a slice for the lock,
  which takes the lock over (see _process_py_lock.py) and counts a recovery, as the compiled
  core does. The ring's state is published in one step (one C call) per item, so a
  put or get cut short leaves the item wholly in or wholly out. Two windows of a
  few bytecodes remain, between taking the semaphore and writing the owner's pid and
  between clearing it and releasing: a death exactly there still leaves the lock
  held. The compiled core's robust mutex has no such window.
* The handle pickles only while a process is being started (``Process(args=...)``,
  a pool's ``initargs``), like ``multiprocessing.Queue``: its locks are
  multiprocessing semaphores. The compiled core's handle pickles anywhere.
* ``producer()`` handles are counted in shared memory like the core's; a producer
  process killed before it closes its handle never leaves (as in the core).

Waiting: a waiter sleeps on a semaphore in slices of 50 ms (so Ctrl-C is seen
within one slice on every platform, and a wake-up lost to a killed process costs
at most one slice); each wake-up is passed on by the woken waiter while the
condition holds and others wait.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import struct
import sys
import threading
from time import monotonic
from types import GenericAlias, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ._errors import Empty, Full, ShutDown
from ._process_common import (
    DEFAULT_CAPACITY,
    ProcessProducer,
    ProcessQueueStatistics,
    Segment,
    check_capacity,
    check_max_items,
    check_maxsize,
    check_serializer,
    local_close,
    local_open,
    pid_alive,
    register_handle,
)
from ._process_py_lock import OWNER, RECOV, SLICE
from ._process_py_lock import SharedLock as _SharedLock
from ._timeout import deadline as _deadline

__all__ = ["ProcessProducer", "ProcessQueue"]

# Header fields: int64 slots at the start of the segment.
MAGIC, CAPACITY, HEAD, COUNT, USED, UNFINISHED, PUTS, GETS, HIGH, MAXSIZE = range(10)
SHUT, PRODUCERS, _OWNER, WPUT, WGET, WJOIN, _RECOV, CAUSE_LEN, PGEN = range(10, 19)
NFIELDS = 32
if (OWNER, RECOV) != (_OWNER, _RECOV):  # the lock's two fields, laid out here
    raise ImportError("ringq._process_py_lock's header fields disagree with _process_py's layout")
PROD_OFF = 256              # 256 producer slots, one uint32 each: generation * 2 + open
PROD_SLOTS = 256
CAUSE_OFF = PROD_OFF + 4 * PROD_SLOTS
PROCS_OFF = 4096            # 1024 pids of the processes with an open handle (int32; 0: free)
PROCS = 1024
DATA_OFF = PROCS_OFF + 4 * PROCS
CAUSE_MAX = PROCS_OFF - CAUSE_OFF
TWIN_MAGIC = 0x52_49_4E_47_51_50_59_31  # "RINGQPY1"

# The ring's state, fields HEAD to HIGH, is read and published in one step each (a
# single C call): a process killed during a put or a get leaves the state from before
# it or from after it, never half of each.
_RING = struct.Struct("=7q")
RING_OFF = HEAD * 8
REC = struct.Struct("<QII")  # payload bytes, kind, number of out-of-band buffers
KIND_PICKLE, KIND_RAW, KIND_CUSTOM = 0, 1, 2

_ctx = multiprocessing.get_context("spawn")  # named semaphores: they travel to spawn/forkserver children


def _padded(n: int) -> int:
    return (n + 7) & ~7


class _Wake:
    """A binary wake-up signal: release() when it is already set does nothing."""

    __slots__ = ("sem",)

    def __init__(self, sem: Any = None) -> None:
        if sem is None:
            sem = _ctx.BoundedSemaphore(1)
            sem.acquire()
        self.sem = sem

    def set(self) -> None:
        try:
            self.sem.release()
        except ValueError:  # already set
            pass


class ProcessQueue:
    """A bounded FIFO queue in shared memory, for processes (pure-Python twin).

    ``ProcessQueue(maxsize=0, capacity=16 MiB, *, dumps=None, loads=None)``:
    ``maxsize`` bounds the items (<= 0: no bound in items), ``capacity`` the bytes
    of the ring. Items are pickled (protocol 5, buffers out of band) unless
    ``dumps``/``loads`` are given. See docs/processes.md.
    """

    def __init__(
        self,
        maxsize: int = 0,
        capacity: int = DEFAULT_CAPACITY,
        *,
        dumps: Callable[[Any], Any] | None = None,
        loads: Callable[[Any], Any] | None = None,
    ) -> None:
        maxsize = check_maxsize(maxsize)
        capacity = check_capacity(capacity)
        check_serializer(dumps, loads)
        self._closed = True
        seg = Segment(None, DATA_OFF + capacity)
        try:
            seg.register()
            assert seg.buf is not None  # a new Segment is mapped until its close()
            h = seg.buf[:NFIELDS * 8].cast("q")
            h[CAPACITY] = capacity
            h[MAXSIZE] = maxsize
            h[MAGIC] = TWIN_MAGIC
            h.release()
            sem, takeover = _ctx.Lock(), _ctx.Lock()
            self._wget, self._wput, self._wjoin = _Wake(), _Wake(), _Wake()
        except BaseException:
            seg.unlink()
            seg.close()
            raise
        self._setup(seg, sem, takeover, dumps, loads)
        local_open(seg.name)
        self._procs[0] = os.getpid()

    def _setup(self, seg: Any, sem: Any, takeover: Any, dumps: Any, loads: Any) -> None:
        self._seg = seg
        self._h: memoryview[int] = seg.buf[:NFIELDS * 8].cast("q")
        self._hb = seg.buf[:NFIELDS * 8]  # the same bytes, for _RING's one-step reads and writes
        self._lock = _SharedLock(sem, takeover, self._h)
        self._prod = seg.buf[PROD_OFF:CAUSE_OFF].cast("I")
        self._procs = seg.buf[PROCS_OFF:DATA_OFF].cast("i")
        self._lock.procs = self._procs
        self._cap: int = self._h[CAPACITY]
        self._data = seg.buf[DATA_OFF:DATA_OFF + self._cap]
        self._dumps = dumps
        self._loads = loads
        self._closed = False
        self._active = 0
        self._guard = threading.Lock()
        register_handle(self)

    @classmethod
    def _attach(cls, name: str, locks: tuple[Any, Any], sems: tuple[Any, Any, Any], dumps: Any,
                loads: Any) -> ProcessQueue:
        self = cls.__new__(cls)
        self._closed = True
        seg = Segment(name)
        assert seg.buf is not None  # a new Segment is mapped until its close()
        h = seg.buf[:NFIELDS * 8].cast("q")
        try:
            if h[MAGIC] != TWIN_MAGIC:
                raise ValueError(f"{name!r} is not a ProcessQueue segment of the pure-Python twin")
        finally:
            h.release()
        self._wget, self._wput, self._wjoin = (_Wake(s) for s in sems)
        self._setup(seg, *locks, dumps, loads)
        if local_open(name):
            self._join()
        return self

    def _join(self) -> None:
        """This process joins the segment's table of processes (its first handle here)."""
        pid = os.getpid()
        procs = self._procs
        with self._lock:
            if pid in procs:
                return
            for i in range(PROCS):
                if procs[i] == 0:
                    procs[i] = pid
                    return
        raise RuntimeError(f"more than {PROCS} processes have this ProcessQueue open at once")

    def _leave(self) -> int:
        """Leave the table, dropping the processes that died without leaving; how many are left.

        Without the lock: each process clears only its own entry (and those of dead
        processes), one aligned store each. So a process terminated while it leaves
        (SIGTERM to a pool's workers) cannot leave the lock held for the others.
        """
        pid = os.getpid()
        procs = self._procs
        left = 0
        for i in range(PROCS):
            p = procs[i]
            if p and (p == pid or not pid_alive(p)):
                procs[i] = 0
            elif p:
                left += 1
        return left

    def __reduce__(self) -> Any:
        self._check_open()
        sems = (self._wget.sem, self._wput.sem, self._wjoin.sem)
        locks = (self._lock.sem, self._lock.takeover)
        return (_rebuild, (type(self), self._seg.name, locks, sems, self._dumps, self._loads))

    def _forked(self, join: bool) -> None:
        # In a child created by fork(): the first handle of each segment joins its table.
        self._guard = threading.Lock()
        self._active = 0
        self._lock.pid = os.getpid()
        self._lock.holder = 0  # a thread inside a call at fork() goes on, and releases, in the parent
        if join and not self._closed:
            self._join()

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        """Close this process's handle; the last handle to close frees the shared memory."""
        if self._closed:
            return
        self._closed = True
        if local_close(self._seg.name) and self._leave() == 0:
            self._seg.unlink()
        self._release_views()

    def _release_views(self) -> None:
        for view in (self._data, self._prod, self._procs, self._h, self._hb):
            try:
                view.release()
            except (BufferError, ValueError):
                return  # another thread is still inside a call: the mapping goes at exit
        try:
            self._seg.close()
        except (BufferError, ValueError):
            pass

    def __del__(self) -> None:
        try:
            if not self._closed and not sys.is_finalizing():
                self.close()
        except Exception:  # noqa: BLE001 - nothing to report to in __del__
            pass

    @property
    def closed(self) -> bool:
        """True once close() was called on this handle."""
        return self._closed

    @property
    def name(self) -> str:
        """The shared memory segment's name."""
        name: str = self._seg.name
        return name

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this ProcessQueue handle is closed; use a handle that is still open")

    # -- encoding --------------------------------------------------------------

    def _encode(self, item: Any) -> tuple[list[Any], int]:
        """Serialize *item* (outside any lock): the record's parts and its padded size."""
        if self._dumps is not None:
            data = memoryview(self._dumps(item))
            if not data.c_contiguous:
                data = memoryview(data.tobytes())
            data = data.cast("B")
            return [REC.pack(data.nbytes, KIND_CUSTOM, 0), data], REC.size + _padded(data.nbytes)
        if type(item) is bytes:
            return [REC.pack(len(item), KIND_RAW, 0), item], REC.size + _padded(len(item))
        if type(item) is memoryview:
            item = pickle.PickleBuffer(item)  # out of band; comes back as a memoryview
        bufs: list[pickle.PickleBuffer] = []
        main = pickle.dumps(item, 5, buffer_callback=bufs.append)
        if not bufs:
            return [REC.pack(len(main), KIND_PICKLE, 0), main], REC.size + _padded(len(main))
        try:
            raws = [b.raw() for b in bufs]
        except BufferError:  # a non-contiguous buffer: keep it in band
            main = pickle.dumps(item, 5)
            return [REC.pack(len(main), KIND_PICKLE, 0), main], REC.size + _padded(len(main))
        lens = struct.pack(f"<{len(raws) + 1}Q", len(main), *[r.nbytes for r in raws])
        payload = len(lens) + len(main) + sum(r.nbytes for r in raws)
        return [REC.pack(payload, KIND_PICKLE, len(raws)), lens, main, *raws], REC.size + _padded(payload)

    def _decode(self, kind: int, nbuf: int, payload: Any) -> Any:
        if kind == KIND_RAW:
            return bytes(payload)
        if kind == KIND_CUSTOM:
            return self._loads(bytes(payload))
        if nbuf == 0:
            return pickle.loads(payload)
        lens = struct.unpack_from(f"<{nbuf + 1}Q", payload)
        at = 8 * (nbuf + 1)
        main = payload[at:at + lens[0]]
        at += lens[0]
        buffers = []
        for n in lens[1:]:
            buffers.append(payload[at:at + n])
            at += n
        return pickle.loads(main, buffers=buffers)

    def _too_big(self, size: int) -> ValueError:
        return ValueError(
            f"an item of {size} bytes (serialized, with its 16-byte header) can never fit in this "
            f"ProcessQueue's ring of {self._cap} bytes; create the queue with a larger capacity="
        )

    # -- the ring (lock held) --------------------------------------------------

    def _room(self, size: int, h: memoryview[int]) -> bool:
        maxsize = h[MAXSIZE]
        if maxsize > 0 and h[COUNT] >= maxsize:
            return False
        return h[USED] + size <= self._cap

    def _write(self, parts: list[Any], size: int, h: Any) -> None:
        cap = self._cap
        data = self._data
        pos = (h[HEAD] + h[USED]) % cap
        for part in parts:
            n = len(part) if type(part) is bytes else memoryview(part).nbytes
            first = min(n, cap - pos)
            data[pos:pos + first] = part[:first] if first < n else part
            if first < n:
                data[0:n - first] = part[first:]
            pos = (pos + n) % cap
        head, count, used, unfinished, puts, gets, high = _RING.unpack_from(self._hb, RING_OFF)
        count += 1
        _RING.pack_into(self._hb, RING_OFF, head, count, used + size, unfinished + 1, puts + 1, gets,
                        high if high >= count else count)

    def _read(self, at: int, n: int) -> bytes:
        cap = self._cap
        end = at + n
        if end <= cap:
            return bytes(self._data[at:end])
        return bytes(self._data[at:cap]) + bytes(self._data[0:end - cap])

    def _take(self, h: Any) -> tuple[int, int, Any]:
        cap = self._cap
        head = h[HEAD]
        payload, kind, nbuf = REC.unpack(self._read(head, REC.size))
        start = (head + REC.size) % cap
        if nbuf:
            body: Any = memoryview(bytearray(self._read(start, payload)))
        else:
            body = self._read(start, payload)
        size = REC.size + _padded(payload)
        _, count, used, unfinished, puts, gets, high = _RING.unpack_from(self._hb, RING_OFF)
        count -= 1
        _RING.pack_into(self._hb, RING_OFF, 0 if count == 0 else (head + size) % cap, count, used - size,
                        unfinished, puts, gets + 1, high)
        return kind, nbuf, body

    # -- waiting (lock held on entry and on return) ----------------------------

    def _wait(self, wake: _Wake, field: int, deadline: float | None) -> bool:
        """Sleep until woken or one slice passes; False once the deadline has passed."""
        if deadline is None:
            slice_ = SLICE
        else:
            slice_ = deadline - monotonic()
            if slice_ <= 0:
                return False
            slice_ = min(slice_, SLICE)
        h = self._h
        h[field] += 1
        self._lock.release()
        try:
            wake.sem.acquire(True, slice_)
        finally:
            self._lock.acquire()
            h[field] -= 1
        return True

    def _after_put(self, h: Any) -> None:
        if h[WGET] > 0:
            self._wget.set()

    def _after_get(self, h: Any) -> None:
        if h[WPUT] > 0:
            self._wput.set()
        if h[COUNT] > 0 and h[WGET] > 0:
            self._wget.set()  # pass the wake-up on while items are left

    # -- put -------------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Put *item*; with ``block`` wait (up to *timeout* seconds) for room.

        Full when there is no room in time, ShutDown once the queue is shut down,
        ValueError when the item can never fit in the ring.
        """
        deadline = _deadline(timeout) if block else None
        self._check_open()
        parts, size = self._encode(item)
        if size > self._cap:
            raise self._too_big(size)
        h = self._h
        with self._lock:
            while True:
                if h[SHUT]:
                    self._pass_shutdown()
                    raise ShutDown("put() on a ProcessQueue that was shut down")
                if self._room(size, h):
                    self._write(parts, size, h)
                    self._after_put(h)
                    if h[WPUT] > 0 and self._room(0, h):
                        self._wput.set()
                    return
                if not block or not self._wait(self._wput, WPUT, deadline):
                    raise Full

    def put_nowait(self, item: Any) -> None:
        """put(item, block=False)."""
        self.put(item, False)

    def put_many(self, items: Iterable[Any], block: bool = True, timeout: float | None = None) -> None:
        """Put every item of *items*, in order (see ringq.Queue.put_many for the contract).

        All are serialized first: an unpicklable item or one that can never fit
        raises before any is put.
        """
        deadline = _deadline(timeout) if block else None
        self._check_open()
        batch = items if type(items) is tuple else tuple(items)
        encoded = [self._encode(item) for item in batch]
        for _, size in encoded:
            if size > self._cap:
                raise self._too_big(size)
        h = self._h
        done = 0
        n = len(encoded)
        with self._lock:
            if not block:
                if h[SHUT]:
                    raise _counted(ShutDown("put_many() on a ProcessQueue that was shut down"), 0)
                total = sum(size for _, size in encoded)
                maxsize = h[MAXSIZE]
                if (maxsize > 0 and h[COUNT] + n > maxsize) or h[USED] + total > self._cap:
                    raise _counted(Full(), 0)
            while done < n:
                if h[SHUT]:
                    self._pass_shutdown()
                    raise _counted(ShutDown("put_many() on a ProcessQueue that was shut down"), done)
                wrote = False
                while done < n and self._room(encoded[done][1], h):
                    self._write(*encoded[done], h)
                    done += 1
                    wrote = True
                if wrote:
                    self._after_put(h)
                if done == n:
                    break
                if not self._wait(self._wput, WPUT, deadline):
                    raise _counted(Full(), done)
            if h[SHUT] and n == 0:
                raise _counted(ShutDown("put_many() on a ProcessQueue that was shut down"), 0)

    # -- get -------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item; with ``block`` wait up to *timeout* seconds.

        Empty when none arrives in time; ShutDown once the queue is shut down and empty.
        """
        deadline = _deadline(timeout) if block else None
        self._check_open()
        h = self._h
        record: tuple[int, int, Any] | None
        with self._lock:
            while True:
                if h[COUNT] > 0:
                    record = self._take(h)
                    self._after_get(h)
                    break
                if h[SHUT]:
                    self._pass_shutdown()
                    record = None
                    break
                if not block or not self._wait(self._wget, WGET, deadline):
                    raise Empty
        if record is None:
            raise self._shutdown_error()  # after the lock: it may unpickle a producer's exception
        return self._decode(*record)

    def get_nowait(self) -> Any:
        """get(block=False)."""
        return self.get(False)

    def get_many(self, max_items: int, block: bool = True, timeout: float | None = None) -> list[Any]:
        """Wait like get() for at least one item, then return up to *max_items*, oldest first."""
        deadline = _deadline(timeout) if block else None
        n = check_max_items(max_items)
        self._check_open()
        h = self._h
        records: list[tuple[int, int, Any]] | None
        with self._lock:
            while True:
                if h[COUNT] > 0:
                    records = [self._take(h) for _ in range(min(n, h[COUNT]))]
                    self._after_get(h)
                    break
                if h[SHUT]:
                    self._pass_shutdown()
                    records = None
                    break
                if not block or not self._wait(self._wget, WGET, deadline):
                    raise Empty
        if records is None:
            raise self._shutdown_error()  # after the lock: it may unpickle a producer's exception
        return [self._decode(*record) for record in records]

    # -- state -----------------------------------------------------------------

    def qsize(self) -> int:
        """Items in the queue now (in every process)."""
        self._check_open()
        return int(self._h[COUNT])

    def empty(self) -> bool:
        """True when the queue holds no item now."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True when the queue holds ``maxsize`` items (never for maxsize <= 0)."""
        self._check_open()
        maxsize = self._h[MAXSIZE]
        return maxsize > 0 and self._h[COUNT] >= maxsize

    @property
    def maxsize(self) -> int:
        """The bound in items (<= 0: none; the ring's capacity still bounds the bytes)."""
        self._check_open()
        return int(self._h[MAXSIZE])

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        value = check_maxsize(value)
        self._check_open()
        with self._lock:
            self._h[MAXSIZE] = value
            if self._h[WPUT] > 0:
                self._wput.set()

    @property
    def capacity(self) -> int:
        """Bytes of the ring (records: 16 bytes of header plus the serialized item, 8-aligned)."""
        return int(self._cap)

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done with task_done(), in every process."""
        self._check_open()
        return int(self._h[UNFINISHED])

    def statistics(self) -> ProcessQueueStatistics:
        """A ringq.ProcessQueueStatistics snapshot, read in one locked section."""
        self._check_open()
        h = self._h
        with self._lock:
            return ProcessQueueStatistics(
                int(h[COUNT]), int(h[MAXSIZE]), int(h[HIGH]), int(h[PUTS]), int(h[GETS]),
                int(h[WPUT]), int(h[WGET]), int(self._cap), int(h[USED]),
                sum(1 for p in self._procs if p), int(h[RECOV]),
            )

    # -- shutdown, tasks -------------------------------------------------------

    @property
    def is_shutdown(self) -> bool:
        """True once shutdown() was called (in any process)."""
        self._check_open()
        return bool(self._h[SHUT])

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down in every process: put() raises ShutDown, get() drains then raises ShutDown.

        ``immediate=True`` also drops the items left (counted as done for join()).
        Blocked calls in every process are woken.
        """
        immediate = bool(immediate)
        self._check_open()
        h = self._h
        with self._lock:
            h[SHUT] = 1
            if immediate:
                _, count, _, unfinished, puts, gets, high = _RING.unpack_from(self._hb, RING_OFF)
                _RING.pack_into(self._hb, RING_OFF, 0, 0, 0, max(0, unfinished - count), puts, gets, high)
            self._pass_shutdown()

    def _pass_shutdown(self) -> None:
        h = self._h
        if h[WGET] > 0:
            self._wget.set()
        if h[WPUT] > 0:
            self._wput.set()
        if h[WJOIN] > 0 and h[UNFINISHED] == 0:
            self._wjoin.set()

    def _shutdown_error(self) -> ShutDown:
        cause = self._cause()
        error = ShutDown("get() on a ProcessQueue that was shut down and is empty")
        if cause is not None:
            error.__cause__ = cause
        return error

    def _cause(self) -> BaseException | None:
        n = self._h[CAUSE_LEN]
        if n <= 0:
            return None
        try:
            cause: BaseException = pickle.loads(self._seg.buf[CAUSE_OFF:CAUSE_OFF + n])
            return cause
        except Exception as e:  # noqa: BLE001 - report what we can
            return RuntimeError(f"a producer left on an exception that could not be unpickled: {e!r}")

    def task_done(self) -> None:
        """Mark one item taken (in any process) as done; ValueError if called too often."""
        self._check_open()
        h = self._h
        with self._lock:
            if h[UNFINISHED] <= 0:
                raise ValueError("task_done() called too many times")
            h[UNFINISHED] -= 1
            if h[UNFINISHED] == 0 and h[WJOIN] > 0:
                self._wjoin.set()

    def join(self) -> None:
        """Block until every item put (in any process) was marked done with task_done()."""
        self._check_open()
        h = self._h
        with self._lock:
            while h[UNFINISHED] > 0:
                self._wait(self._wjoin, WJOIN, None)
            if h[WJOIN] > 0:
                self._wjoin.set()  # release the next joiner too

    # -- producers -------------------------------------------------------------

    def producer(self) -> ProcessProducer:
        """Register a producer; the last registered producer to close (in any process) shuts the queue down."""
        self._check_open()
        h = self._h
        prod = self._prod
        with self._lock:
            if h[SHUT]:
                raise ShutDown("producer() on a ProcessQueue that was shut down")
            for slot in range(PROD_SLOTS):
                value = prod[slot]
                if not value & 1:
                    gen = (value >> 1) + 1
                    prod[slot] = (gen << 1) | 1
                    h[PRODUCERS] += 1
                    return ProcessProducer(self, slot, gen)
        raise RuntimeError(f"more than {PROD_SLOTS} producers are registered at once; close some first")

    def _close_producer(self, slot: int, gen: int, exc: BaseException | None) -> None:
        blob = b""
        if exc is not None:
            try:
                blob = pickle.dumps(exc, 5)
            except Exception:  # noqa: BLE001 - keep its text
                blob = b""
            if not blob or len(blob) > CAUSE_MAX:
                blob = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"[:1000]), 5)
        self._check_open()
        h = self._h
        with self._lock:
            if self._prod[slot] != (gen << 1) | 1:
                return
            self._prod[slot] = gen << 1
            h[PRODUCERS] -= 1
            if blob and h[CAUSE_LEN] == 0:
                self._seg.buf[CAUSE_OFF:CAUSE_OFF + len(blob)] = blob
                h[CAUSE_LEN] = len(blob)
            if h[PRODUCERS] == 0:
                h[SHUT] = 1
                self._pass_shutdown()

    # -- protocols -------------------------------------------------------------

    if TYPE_CHECKING:
        def __class_getitem__(cls, item: Any, /) -> GenericAlias: ...
    else:
        __class_getitem__ = classmethod(GenericAlias)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self.get()
        except ShutDown as e:
            if e.__cause__ is not None:
                raise
            raise StopIteration from None

    def __enter__(self) -> ProcessQueue:  # noqa: PYI034 - as ringq.Queue
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        if self._closed:
            return f"<{type(self).__module__}.{type(self).__qualname__} closed>"
        return (f"<{type(self).__module__}.{type(self).__qualname__} {self._seg.name!r} "
                f"maxsize={self.maxsize} capacity={self._cap} size={self.qsize()}>")


def _rebuild(cls: Any, *args: Any) -> Any:
    return cls._attach(*args)


def _counted(error: Any, count: int) -> Any:
    error.put_count = count
    return error
