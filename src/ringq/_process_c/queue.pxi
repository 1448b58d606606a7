# Included by _process_c.pyx: the ProcessQueue class: its state, lifetime and public methods.

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport EBUSY
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import os
import pickle
import sys
from types import GenericAlias

from ._errors import Full, ShutDown
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
    register_handle,
)
from ._timeout import deadline as _deadline


cdef class ProcessQueue:
    """A bounded FIFO queue in shared memory, for processes (Cython core, Linux).

    ``ProcessQueue(maxsize=0, capacity=16 MiB, *, dumps=None, loads=None)``:
    ``maxsize`` bounds the items (<= 0: no bound in items), ``capacity`` the bytes
    of the ring. Items are pickled (protocol 5, buffers out of band) unless
    ``dumps``/``loads`` are given. A process killed at any moment (SIGKILL) does
    not block the others or tear an item. See docs/processes.md.
    """
    cdef rq_header *_h
    cdef uint64_t _cap
    cdef object _seg
    cdef Py_buffer _view
    cdef bint _has_view
    cdef public bint _closed
    cdef int _active
    cdef bint _release_pending
    cdef object _udumps
    cdef object _uloads
    cdef object __weakref__

    def __cinit__(self):
        self._closed = True
        self._has_view = False

    def __init__(self, maxsize=0, capacity=DEFAULT_CAPACITY, *, dumps=None, loads=None):
        maxsize = check_maxsize(maxsize)
        cdef uint64_t cap = check_capacity(capacity)
        check_serializer(dumps, loads)
        _check_platform()
        if not self._closed:
            raise RuntimeError("ProcessQueue.__init__ called twice")
        seg = Segment(None, rq_data_off() + cap)
        try:
            seg.register()
            self._map(seg)
            memset(self._h, 0, sizeof(rq_header))
            rq_init(self._h, cap, max(min(maxsize, 2**62), -1))
            rq_proc_add(self._h, os.getpid())
            r = rq_mutex_init(self._h)
            if r:
                raise OSError(r, f"cannot create the shared mutex: {os.strerror(r)}")
            self._h.magic = RQ_MAGIC
        except BaseException:
            self._unmap()
            seg.unlink()
            seg.close()
            raise
        self._finish(dumps, loads)
        local_open(seg.name)

    cdef _map(self, seg):
        PyObject_GetBuffer(seg.mm, &self._view, PyBUF_WRITABLE)
        self._has_view = True
        self._seg = seg
        self._h = <rq_header *>self._view.buf

    cdef _finish(self, dumps, loads):
        self._cap = self._h.capacity
        self._udumps = dumps
        self._uloads = loads
        self._closed = False
        self._active = 0
        self._release_pending = False
        register_handle(self)

    cdef _unmap(self):
        self._h = NULL
        if self._has_view:
            self._has_view = False
            PyBuffer_Release(&self._view)

    @classmethod
    def _attach(cls, name, dumps, loads):
        _check_platform()
        cdef ProcessQueue self = cls.__new__(cls)
        seg = Segment(name)
        try:
            if seg.size < sizeof(rq_header):
                raise ValueError(f"{name!r} is not a ProcessQueue segment")
            self._map(seg)
            h = self._h
            if h.magic != RQ_MAGIC or h.version != RQ_VERSION or h.header_size != sizeof(rq_header):
                raise ValueError(
                    f"{name!r} is not a ProcessQueue segment of this ringq build (the processes must "
                    "run the same ringq version and implementation)"
                )
        except BaseException:
            self._unmap()
            seg.close()
            raise
        self._finish(dumps, loads)
        if local_open(name):
            self._join()
        return self

    cdef int _join(self) except -1:
        """This process joins the segment's table of processes (its first handle here)."""
        cdef int r
        pq_lock(self)
        r = rq_proc_add(self._h, os.getpid())
        rq_unlock(self._h)
        if r:
            raise RuntimeError(f"more than {RQ_PROCS} processes have this ProcessQueue open at once")
        return 0

    def __reduce__(self):
        self._check_open()
        return (_rebuild, (type(self), self._seg.name, self._udumps, self._uloads))

    def _forked(self, join):
        # In a child created by fork(). Another thread's call in flight at fork()
        # does not exist here. The first handle of each segment joins its table.
        self._active = 0
        if join and not self._closed and self._h is not NULL:
            self._join()

    # -- lifetime --------------------------------------------------------------

    def close(self):
        """Close this process's handle; the last handle to close frees the shared memory.

        Other threads of this process still blocked in a call on this handle raise
        ValueError at their next wake-up (within 50 ms).
        """
        if self._closed:
            return
        cdef uint32_t left = 1
        self._closed = True
        if local_close(self._seg.name):
            pq_lock(self)
            left = rq_proc_leave(self._h, os.getpid())
            rq_unlock(self._h)
            if left == 0:
                self._seg.unlink()
        if self._active == 0:
            self._release()
        else:
            self._release_pending = True

    cdef _release(self):
        seg = self._seg
        self._unmap()
        if seg is not None:
            try:
                seg.close()
            except (BufferError, ValueError):
                pass

    def __dealloc__(self):
        if self._has_view:
            PyBuffer_Release(&self._view)
            self._has_view = False

    def __del__(self):
        if not self._closed and not sys.is_finalizing():
            try:
                self.close()
            except Exception:
                pass

    @property
    def closed(self):
        """True once close() was called on this handle."""
        return self._closed

    @property
    def name(self):
        """The shared memory segment's name."""
        return self._seg.name

    cdef inline int _enter(self) except -1:
        if self._closed:
            raise ValueError("this ProcessQueue handle is closed; use a handle that is still open")
        self._active += 1
        return 0

    cdef inline void _leave(self) noexcept:
        self._active -= 1
        if self._active == 0 and self._release_pending:
            self._release_pending = False
            self._release()

    def _debug_lock_held(self):
        """For the crash tests only: True if another thread or process holds the shared mutex now."""
        self._check_open()
        cdef int r = rq_trylock(self._h)
        if r == 0:
            rq_unlock(self._h)
        return r == EBUSY

    # -- put -------------------------------------------------------------------

    def put(self, item, block=True, timeout=None):
        """Put *item*; with ``block`` wait (up to *timeout* seconds) for room.

        Full when there is no room in time, ShutDown once the queue is shut down,
        ValueError when the item can never fit in the ring (nothing is written).
        """
        cdef double deadline = -1.0
        cdef int why = 0, spun = 0
        cdef rq_item it
        if block and timeout is not None:
            d = _deadline(timeout)
            if d is not None:
                deadline = d
        self._enter()
        try:
            owner = pq_encode(self, item, &it)
            while True:
                if pq_put_items(self, &it, 1, 0, it.size, &why):
                    return
                if why == RQ_SHUT:
                    raise ShutDown("put() on a ProcessQueue that was shut down")
                if not block:
                    raise Full
                if not spun:
                    spun = 1
                    with nogil:
                        rq_spin_room(self._h, it.size, SPIN)
                    continue
                pq_lock(self)
                if pq_retry_put(self, &it, 1):
                    continue
                if not pq_wait(self, 1, deadline):
                    raise Full
        finally:
            self._leave()

    def put_nowait(self, item):
        """put(item, block=False)."""
        self.put(item, False)

    def put_many(self, items, block=True, timeout=None):
        """Put every item of *items*, in order (ringq.Queue.put_many's contract).

        All are serialized first: an unpicklable item, or one that can never fit,
        raises before any is put. ``put_count`` on Full/ShutDown says how many went in.
        """
        cdef double deadline = -1.0
        cdef int why = 0, spun = 0
        cdef uint64_t n, done = 0, k, total = 0
        cdef rq_item *arr = NULL
        cdef list keep = []
        if block and timeout is not None:
            d = _deadline(timeout)
            if d is not None:
                deadline = d
        self._enter()
        try:
            batch = items if type(items) is tuple else tuple(items)
            n = len(batch)
            if n == 0:
                if self._live_shutdown():
                    raise _counted(ShutDown("put_many() on a ProcessQueue that was shut down"), 0)
                return
            arr = <rq_item *>PyMem_Malloc(n * sizeof(rq_item))
            if arr is NULL:
                raise MemoryError()
            for k in range(n):
                keep.append(pq_encode(self, batch[k], arr + k))
                total += arr[k].size
            while done < n:
                done += pq_put_items(self, arr + done, n - done, not block, total, &why)
                if done == n:
                    break
                if why == RQ_SHUT:
                    raise _counted(ShutDown("put_many() on a ProcessQueue that was shut down"), done)
                if not block:
                    raise _counted(Full(), done)
                if not spun:
                    spun = 1
                    with nogil:
                        rq_spin_room(self._h, arr[done].size, SPIN)
                    continue
                pq_lock(self)
                if pq_retry_put(self, arr + done, n - done):
                    continue
                if not pq_wait(self, 1, deadline):
                    raise _counted(Full(), done)
        finally:
            PyMem_Free(arr)
            self._leave()

    cdef bint _live_shutdown(self):
        return rq_live(self._h).shutdown != 0

    # -- get -------------------------------------------------------------------

    def get(self, block=True, timeout=None):
        """Remove and return the oldest item; with ``block`` wait up to *timeout* seconds.

        Empty when none arrives in time; ShutDown once the queue is shut down and empty.
        """
        cdef double deadline = -1.0
        if block and timeout is not None:
            d = _deadline(timeout)
            if d is not None:
                deadline = d
        self._enter()
        try:
            return pq_take(self, 1, block, deadline, True)
        finally:
            self._leave()

    def get_nowait(self):
        """get(block=False)."""
        return self.get(False)

    def get_many(self, max_items, block=True, timeout=None):
        """Wait like get() for at least one item, then return up to *max_items*, oldest first."""
        cdef double deadline = -1.0
        if block and timeout is not None:
            d = _deadline(timeout)
            if d is not None:
                deadline = d
        cdef uint64_t n = check_max_items(max_items)
        self._enter()
        try:
            return pq_take(self, n, block, deadline, False)
        finally:
            self._leave()

    # -- state -----------------------------------------------------------------

    def qsize(self):
        """Items in the queue now (in every process)."""
        self._check_open()
        return rq_live(self._h).count

    def empty(self):
        """True when the queue holds no item now."""
        self._check_open()
        return rq_live(self._h).count == 0

    def full(self):
        """True when the queue holds ``maxsize`` items (never for maxsize <= 0)."""
        self._check_open()
        cdef const rq_state *st = rq_live(self._h)
        return st.maxsize > 0 and st.count >= <uint64_t>st.maxsize

    @property
    def maxsize(self):
        """The bound in items (<= 0: none; the ring's capacity still bounds the bytes)."""
        self._check_open()
        return rq_live(self._h).maxsize

    @maxsize.setter
    def maxsize(self, value):
        value = max(min(check_maxsize(value), 2**62), -1)
        cdef int64_t v = value
        cdef int wake = 0
        self._enter()
        try:
            pq_lock(self)
            rq_begin(self._h).maxsize = v
            rq_commit(self._h)
            if self._h.w_put:
                self._h.seq_put += 1
                wake = 1
            rq_unlock(self._h)
            if wake:
                rq_futex_wake(&self._h.seq_put, INT_MAX)
        finally:
            self._leave()

    @property
    def capacity(self):
        """Bytes of the ring (records: 16 bytes of header plus the serialized item, 8-aligned)."""
        return self._cap

    @property
    def unfinished_tasks(self):
        """Items put and not yet marked done with task_done(), in every process."""
        self._check_open()
        return rq_live(self._h).unfinished

    def statistics(self):
        """A ringq.ProcessQueueStatistics snapshot, read in one locked section."""
        cdef rq_state st
        cdef uint32_t wp, wg, procs, rec
        self._enter()
        try:
            pq_lock(self)
            st = rq_live(self._h)[0]
            wp = self._h.w_put
            wg = self._h.w_get
            procs = rq_proc_count(self._h)
            rec = self._h.recoveries
            rq_unlock(self._h)
        finally:
            self._leave()
        return ProcessQueueStatistics(st.count, st.maxsize, st.high, st.puts, st.gets, wp, wg,
                                      self._cap, st.used, procs, rec)

    cdef int _check_open(self) except -1:
        if self._closed:
            raise ValueError("this ProcessQueue handle is closed; use a handle that is still open")
        return 0

    # -- shutdown, tasks -------------------------------------------------------

    @property
    def is_shutdown(self):
        """True once shutdown() was called (in any process)."""
        self._check_open()
        return rq_live(self._h).shutdown != 0

    def shutdown(self, immediate=False):
        """Shut the queue down in every process: put() raises ShutDown, get() drains then raises ShutDown.

        ``immediate=True`` also drops the items left (counted as done for join()).
        Blocked calls in every process are woken.
        """
        immediate = bool(immediate)
        cdef rq_state *st
        self._enter()
        try:
            pq_lock(self)
            st = rq_begin(self._h)
            st.shutdown = 1
            if immediate:
                st.unfinished = st.unfinished - st.count if st.unfinished > st.count else 0
                st.count = 0
                st.used = 0
                st.head = 0
            rq_commit(self._h)
            pq_wake_all_locked(self)
            rq_unlock(self._h)
            pq_wake_all(self)
        finally:
            self._leave()

    cdef _shutdown_error(self):
        error = ShutDown("get() on a ProcessQueue that was shut down and is empty")
        cdef uint64_t n = rq_live(self._h).cause_len
        if n:
            try:
                cause = pickle.loads(PyBytes_FromStringAndSize(<char *>self._h.cause, n))
            except Exception as e:
                cause = RuntimeError(f"a producer left on an exception that could not be unpickled: {e!r}")
            error.__cause__ = cause
        return error

    def task_done(self):
        """Mark one item taken (in any process) as done; ValueError if called too often."""
        cdef rq_state *st
        cdef int wake = 0
        self._enter()
        try:
            pq_lock(self)
            if rq_live(self._h).unfinished == 0:
                rq_unlock(self._h)
                raise ValueError("task_done() called too many times")
            st = rq_begin(self._h)
            st.unfinished -= 1
            rq_commit(self._h)
            if st.unfinished == 0 and self._h.w_join:
                self._h.seq_join += 1
                wake = 1
            rq_unlock(self._h)
            if wake:
                rq_futex_wake(&self._h.seq_join, INT_MAX)
        finally:
            self._leave()

    def join(self):
        """Block until every item put (in any process) was marked done with task_done()."""
        self._enter()
        try:
            while True:
                pq_lock(self)
                if rq_live(self._h).unfinished == 0:
                    rq_unlock(self._h)
                    return
                pq_wait(self, 2, -1.0)
        finally:
            self._leave()

    # -- producers -------------------------------------------------------------

    def producer(self):
        """Register a producer; the last registered producer to close (in any process) shuts the queue down."""
        cdef int slot
        cdef uint32_t value, gen
        cdef rq_state *st
        self._enter()
        try:
            pq_lock(self)
            if rq_live(self._h).shutdown:
                rq_unlock(self._h)
                raise ShutDown("producer() on a ProcessQueue that was shut down")
            for slot in range(RQ_PROD_SLOTS):
                value = self._h.prod[slot]
                if not value & 1:
                    gen = (value >> 1) + 1
                    if not rq_live(self._h).producers_ever:
                        st = rq_begin(self._h)
                        st.producers_ever = 1
                        rq_commit(self._h)
                    self._h.prod[slot] = (gen << 1) | 1
                    rq_unlock(self._h)
                    return ProcessProducer(self, slot, gen)
            rq_unlock(self._h)
        finally:
            self._leave()
        raise RuntimeError(f"more than {RQ_PROD_SLOTS} producers are registered at once; close some first")

    def _close_producer(self, int slot, uint32_t gen, exc):
        cdef bytes blob = b""
        cdef int i, open_ = 0
        cdef rq_state *st
        cdef bint shut = False
        if exc is not None:
            try:
                blob = pickle.dumps(exc, 5)
            except Exception:
                blob = b""
            if not blob or len(blob) > RQ_CAUSE_MAX:
                blob = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"[:1000]), 5)
        self._enter()
        try:
            pq_lock(self)
            if self._h.prod[slot] != ((gen << 1) | 1):
                rq_unlock(self._h)
                return
            if blob and rq_live(self._h).cause_len == 0:
                memcpy(self._h.cause, PyBytes_AS_STRING(blob), len(blob))
                st = rq_begin(self._h)
                st.cause_len = len(blob)
                rq_commit(self._h)
            self._h.prod[slot] = gen << 1
            for i in range(RQ_PROD_SLOTS):
                open_ += self._h.prod[i] & 1
            if open_ == 0 and not rq_live(self._h).shutdown:
                st = rq_begin(self._h)
                st.shutdown = 1
                rq_commit(self._h)
                pq_wake_all_locked(self)
                shut = True
            rq_unlock(self._h)
            if shut:
                pq_wake_all(self)
        finally:
            self._leave()

    # -- tests -----------------------------------------------------------------

    def _debug_die_locked(self, item, int how):
        """For the crash tests only: take the lock, and never give it back.

        how=0: hold it; how=1: first write *item*'s record into the free ring
        space and the spare state, without the commit (a put killed half-way).
        The caller's process is then expected to be killed; after 60 s it exits
        by itself (still holding the lock, which its death releases).
        """
        cdef rq_item it
        self._check_open()
        owner = pq_encode(self, item, &it)
        pq_lock(self)
        if how == 1:
            _debug_write(self._h, &it)
        cdef int i
        with nogil:
            for i in range(600):  # 60 s at most: never outlive a test run that lost track of it
                _debug_sleep()
        os._exit(3)

    # -- protocols -------------------------------------------------------------

    def __class_getitem__(cls, item):
        """ProcessQueue[int] is a generic alias, for type hints evaluated at run time."""
        return GenericAlias(cls, item)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.get()
        except ShutDown as e:
            if e.__cause__ is not None:
                raise
            raise StopIteration from None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.shutdown()

    def __repr__(self):
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        if self._closed:
            return f"<{cls} closed>"
        return f"<{cls} {self._seg.name!r} maxsize={self.maxsize} capacity={self._cap} size={self.qsize()}>"


def _rebuild(cls, name, dumps, loads):
    return cls._attach(name, dumps, loads)


def _counted(error, count):
    error.put_count = count
    return error
