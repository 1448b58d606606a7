# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The Cython core of ringq.ProcessQueue: a bounded ring buffer in shared memory.

The shared ring, its robust mutex and its futex waits are plain C in _shm.h (read
its comment for the crash-safety design). This module does the Python side:
serialize outside the lock, copy under it, deserialize after; wait in slices of
50 ms with the GIL released, checking signals between slices.

The GIL and the shared mutex: the mutex is tried with the GIL held (no wait);
when that fails the GIL is released before blocking on it, and the locked work
(plain C copies) then runs without the GIL. Nothing waits for the GIL while
holding the mutex, so a thread of this process that holds the GIL never makes
other processes wait for it.
"""
from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport EBUSY, ETIMEDOUT
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

import os
import pickle
import sys
from types import GenericAlias

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
    register_handle,
)
from ._timeout import deadline as _deadline

cdef extern from "Python.h":
    ctypedef struct Py_buffer:
        void *buf
        Py_ssize_t len
    Py_buffer *PyMemoryView_GET_BUFFER(object mview)
    object PyByteArray_FromStringAndSize(const char *s, Py_ssize_t n)
    const char *PyUnicode_AsUTF8AndSize(object o, Py_ssize_t *size)
    void PyErr_Clear()
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)
    object PyLong_FromLongLong(long long v)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1
    double PyFloat_AS_DOUBLE(object o)
    object PyFloat_FromDouble(double v)
    char *PyByteArray_AS_STRING(object o)

cdef extern from "_shm.h" nogil:
    int RQ_SUPPORTED
    uint64_t RQ_MAGIC
    unsigned int RQ_VERSION
    unsigned int RQ_REC
    int RQ_PROD_SLOTS
    int RQ_CAUSE_MAX
    int RQ_PROCS
    unsigned int RQ_KIND_PICKLE, RQ_KIND_RAW, RQ_KIND_CUSTOM, RQ_KIND_INT, RQ_KIND_STR, RQ_KIND_FLOAT
    int RQ_OK, RQ_FULL, RQ_EMPTY, RQ_SHUT, RQ_BIG, RQ_NOMEM

    ctypedef struct rq_state:
        uint64_t head
        uint64_t count
        uint64_t used
        uint64_t unfinished
        uint64_t puts, gets, high
        int64_t maxsize
        uint32_t shutdown
        uint32_t producers_ever
        uint64_t cause_len

    ctypedef struct rq_header:
        uint64_t magic
        uint64_t capacity
        uint64_t data_off
        uint32_t version
        uint32_t header_size
        uint32_t cur
        uint32_t spare
        uint32_t seq_get, seq_put, seq_join
        uint32_t w_get, w_put, w_join
        uint32_t recoveries
        uint32_t prod[256]
        unsigned char cause[3072]

    ctypedef struct rq_item:
        uint32_t kind, nbuf
        const char *main
        uint64_t main_len
        const char **bufs
        const uint64_t *buf_lens
        uint64_t payload
        uint64_t size
        char inline_bytes[8]

    uint64_t rq_pad8(uint64_t n)
    uint64_t rq_data_off()
    void rq_item_finish(rq_item *it)
    const rq_state *rq_live(rq_header *h)
    rq_state *rq_begin(rq_header *h)
    void rq_commit(rq_header *h)
    int rq_mutex_init(rq_header *h)
    int rq_trylock(rq_header *h)
    int rq_lock(rq_header *h)
    int rq_lock_slice(rq_header *h, int64_t ns)
    int rq_proc_add(rq_header *h, int pid)
    uint32_t rq_proc_leave(rq_header *h, int pid)
    uint32_t rq_proc_count(rq_header *h)
    int rq_spin_items(rq_header *h, int iters)
    int rq_spin_room(rq_header *h, uint64_t size, int iters)
    void rq_unlock(rq_header *h)
    void rq_futex_wake(uint32_t *word, int n)
    void rq_wait(rq_header *h, uint32_t *word, uint32_t *waiters, int64_t ns)
    int64_t rq_now_ns()
    void rq_init(rq_header *h, uint64_t capacity, int64_t maxsize)
    uint64_t rq_put_locked(rq_header *h, const rq_item *items, uint64_t n, int all_or_nothing, int *why, int *wake)
    uint64_t rq_take_locked(rq_header *h, uint64_t max, char **buf, uint64_t *bufcap, uint64_t big,
                            uint64_t *nbytes, uint64_t *need, uint32_t *need_kind, int *why, int *wake)
    int rq_take_big(rq_header *h, char *dst, uint64_t payload, uint32_t *kind, uint32_t *nbuf, int *why, int *wake)

__all__ = ["ProcessProducer", "ProcessQueue"]

# Records bigger than this are copied straight into their final Python object.
DEF BIG = 65536
# Without the GIL for copies of more than this many bytes.
DEF NOGIL_COPY = 65536
DEF SLICE_NS = 50000000
# Pause instructions spun (without the lock or the GIL) before a futex sleep: a few microseconds.
DEF SPIN = 400
DEF INT_MAX = 2147483647

cdef object _dumps = pickle.dumps
cdef object _loads = pickle.loads
cdef object _PickleBuffer = pickle.PickleBuffer
cdef object _monotonic
from time import monotonic as _monotonic


cdef inline bint _int64(object item, long long *out) except -1:
    cdef int overflow = 0
    out[0] = PyLong_AsLongLongAndOverflow(item, &overflow)
    return overflow == 0


cdef inline bint _utf8(object item, const char **out, Py_ssize_t *n) noexcept:
    out[0] = PyUnicode_AsUTF8AndSize(item, n)
    if out[0] is NULL:
        PyErr_Clear()  # lone surrogates: pickled instead
        return False
    return True


cdef inline uint64_t _u32_le(const char *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint64_t _u64_le(const char *p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


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
        self._lock()
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
            self._lock()
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

    cdef int _lock(self) except -1:
        """Take the shared mutex: tried with the GIL, else waited for without it, in slices (Ctrl-C)."""
        cdef int r = rq_trylock(self._h)
        while r != 0:
            if r != EBUSY and r != ETIMEDOUT:
                raise OSError(r, f"cannot lock the ProcessQueue's shared mutex: {os.strerror(r)}")
            with nogil:
                r = rq_lock_slice(self._h, SLICE_NS)
            if r == ETIMEDOUT:
                PyErr_CheckSignals()
        return 0

    def _debug_lock_held(self):
        """For the crash tests only: True if another thread or process holds the shared mutex now."""
        self._check_open()
        cdef int r = rq_trylock(self._h)
        if r == 0:
            rq_unlock(self._h)
        return r == EBUSY

    cdef int _wait(self, int which, double deadline) except -1:
        """Wait one slice (lock held on entry, not on return); 0 once the deadline passed."""
        cdef int64_t ns = SLICE_NS
        cdef double left
        cdef rq_header *h = self._h
        if deadline >= 0:
            left = deadline - _monotonic()
            if left <= 0:
                rq_unlock(h)
                return 0
            if left * 1e9 < ns:
                ns = <int64_t>(left * 1e9) + 1
        with nogil:
            if which == 0:
                rq_wait(h, &h.seq_get, &h.w_get, ns)
            elif which == 1:
                rq_wait(h, &h.seq_put, &h.w_put, ns)
            else:
                rq_wait(h, &h.seq_join, &h.w_join, ns)
        PyErr_CheckSignals()
        if self._closed:
            raise ValueError("this ProcessQueue handle was closed while a call waited on it")
        return 1

    # -- encoding --------------------------------------------------------------

    cdef object _encode(self, item, rq_item *it):
        """Serialize *item* into *it*; returns what owns its bytes (keep it until the copy is done)."""
        cdef Py_buffer *pb
        cdef Py_ssize_t i, n
        cdef list bufs
        cdef const char **ptrs
        cdef uint64_t *lens
        cdef long long ival
        cdef double dval
        owner = None
        it.nbuf = 0
        it.bufs = NULL
        it.buf_lens = NULL
        if self._udumps is not None:
            view = memoryview(self._udumps(item))
            if not view.c_contiguous:
                view = memoryview(view.tobytes())
            owner = view
            pb = PyMemoryView_GET_BUFFER(view)
            it.kind = RQ_KIND_CUSTOM
            it.main = <const char *>pb.buf
            it.main_len = pb.len
        elif type(item) is int and _int64(item, &ival):
            memcpy(it.inline_bytes, &ival, 8)
            it.kind = RQ_KIND_INT
            it.main = it.inline_bytes
            it.main_len = 8
        elif type(item) is str and _utf8(item, &it.main, &n):
            owner = item  # the UTF-8 bytes are cached in the str object
            it.kind = RQ_KIND_STR
            it.main_len = n
        elif type(item) is float:
            dval = PyFloat_AS_DOUBLE(item)
            memcpy(it.inline_bytes, &dval, 8)
            it.kind = RQ_KIND_FLOAT
            it.main = it.inline_bytes
            it.main_len = 8
        elif type(item) is bytes:
            owner = item
            it.kind = RQ_KIND_RAW
            it.main = PyBytes_AS_STRING(item)
            it.main_len = PyBytes_GET_SIZE(item)
        else:
            it.kind = RQ_KIND_PICKLE
            t = type(item)
            raws = None
            if t is int or t is str or item is None:
                main = _dumps(item, 5)
            else:
                if t is memoryview:
                    item = _PickleBuffer(item)
                bufs = []
                main = _dumps(item, 5, buffer_callback=bufs.append)
                if bufs:
                    try:
                        raws = [b.raw() for b in bufs]
                    except BufferError:  # a non-contiguous buffer: in band
                        raws = None
                        main = _dumps(item, 5)
            owner = main
            it.main = PyBytes_AS_STRING(main)
            it.main_len = PyBytes_GET_SIZE(main)
            if raws is not None:
                n = len(raws)
                meta = PyByteArray_FromStringAndSize(NULL, n * (sizeof(char *) + sizeof(uint64_t)))
                owner = (main, raws, meta)
                ptrs = <const char **>PyByteArray_AS_STRING(meta)
                lens = <uint64_t *>(PyByteArray_AS_STRING(meta) + n * sizeof(char *))
                for i in range(n):
                    pb = PyMemoryView_GET_BUFFER(raws[i])
                    ptrs[i] = <const char *>pb.buf
                    lens[i] = pb.len
                it.nbuf = <uint32_t>n
                it.bufs = ptrs
                it.buf_lens = lens
        rq_item_finish(it)
        if it.size > self._cap:
            raise ValueError(
                f"an item of {it.size} bytes (serialized, with its 16-byte header) can never fit in this "
                f"ProcessQueue's ring of {self._cap} bytes; create the queue with a larger capacity="
            )
        return owner

    cdef object _decode(self, uint32_t kind, uint32_t nbuf, const char *p, uint64_t payload):
        cdef long long ival
        cdef double dval
        if kind == RQ_KIND_INT:
            memcpy(&ival, p, 8)
            return PyLong_FromLongLong(ival)
        if kind == RQ_KIND_STR:
            return PyUnicode_DecodeUTF8(p, payload, "surrogatepass")
        if kind == RQ_KIND_FLOAT:
            memcpy(&dval, p, 8)
            return PyFloat_FromDouble(dval)
        if kind == RQ_KIND_RAW:
            return PyBytes_FromStringAndSize(p, payload)
        if kind == RQ_KIND_CUSTOM:
            return self._uloads(PyBytes_FromStringAndSize(p, payload))
        if nbuf == 0:
            return _loads(PyBytes_FromStringAndSize(p, payload))
        # Out-of-band buffers: one writable copy holds them all (numpy views it).
        block = PyByteArray_FromStringAndSize(p, payload)
        return self._decode_oob(nbuf, block)

    cdef object _decode_oob(self, uint32_t nbuf, object block):
        cdef const char *base = PyByteArray_AS_STRING(block)
        cdef uint64_t at = 8 * (<uint64_t>nbuf + 1)
        cdef uint64_t main_len = _u64_le(base)
        cdef uint64_t n
        cdef uint32_t i
        view = memoryview(block)
        main = view[at:at + main_len]
        at += main_len
        buffers = []
        for i in range(nbuf):
            n = _u64_le(base + 8 * (i + 1))
            buffers.append(view[at:at + n])
            at += n
        return _loads(main, buffers=buffers)

    # -- put -------------------------------------------------------------------

    cdef uint64_t _put_items(self, rq_item *items, uint64_t n, int all_or_nothing, uint64_t nbytes,
                             int *why) except? 0xFFFFFFFFFFFFFFFF:
        cdef int wake = 0
        cdef uint64_t done
        cdef rq_header *h = self._h
        if nbytes > NOGIL_COPY:
            self._lock()
            with nogil:  # a long copy: other threads run meanwhile; the GIL is taken back after unlocking
                done = rq_put_locked(h, items, n, all_or_nothing, why, &wake)
                rq_unlock(h)
        else:
            self._lock()
            done = rq_put_locked(h, items, n, all_or_nothing, why, &wake)
            rq_unlock(h)
        if wake:
            rq_futex_wake(&h.seq_get, wake)
        return done

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
            owner = self._encode(item, &it)
            while True:
                if self._put_items(&it, 1, 0, it.size, &why):
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
                self._lock()
                if self._retry_put(&it, 1):
                    continue
                if not self._wait(1, deadline):
                    raise Full
        finally:
            self._leave()

    cdef bint _retry_put(self, rq_item *it, uint64_t n) noexcept:
        """Lock held: True (lock released) if the first item fits now or the queue was shut down."""
        cdef const rq_state *st = rq_live(self._h)
        if st.shutdown or ((st.maxsize <= 0 or st.count < <uint64_t>st.maxsize) and st.used + it.size <= self._cap):
            rq_unlock(self._h)
            return True
        return False

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
                keep.append(self._encode(batch[k], arr + k))
                total += arr[k].size
            while done < n:
                done += self._put_items(arr + done, n - done, not block, total, &why)
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
                self._lock()
                if self._retry_put(arr + done, n - done):
                    continue
                if not self._wait(1, deadline):
                    raise _counted(Full(), done)
        finally:
            PyMem_Free(arr)
            self._leave()

    cdef bint _live_shutdown(self):
        return rq_live(self._h).shutdown != 0

    # -- get -------------------------------------------------------------------

    cdef object _take(self, uint64_t max_items, bint block, double deadline, bint single):
        """get_many(max_items) (a list), or get() (the item) when *single*."""
        cdef rq_header *h = self._h
        cdef char *buf = NULL
        cdef uint64_t bufcap = 0, nbytes = 0, need = 0, k, i, pos, payload
        cdef uint32_t kind = 0, nbuf = 0
        cdef int why = 0, wake = 0, spun = 0
        cdef list out
        try:
            while True:
                self._lock()
                k = rq_take_locked(h, max_items, &buf, &bufcap, BIG, &nbytes, &need, &kind, &why, &wake)
                if why == RQ_BIG:
                    rq_unlock(h)
                    item = self._take_big(need, kind, block, deadline)
                    return item if single else [item]
                if k:
                    rq_unlock(h)
                    if wake:
                        rq_futex_wake(&h.seq_put, wake)
                    if single:
                        return self._decode(<uint32_t>_u32_le(buf + 8), <uint32_t>_u32_le(buf + 12),
                                            buf + RQ_REC, _u64_le(buf))
                    out = []
                    pos = 0
                    for i in range(k):
                        payload = _u64_le(buf + pos)
                        kind = <uint32_t>_u32_le(buf + pos + 8)
                        nbuf = <uint32_t>_u32_le(buf + pos + 12)
                        out.append(self._decode(kind, nbuf, buf + pos + RQ_REC, payload))
                        pos += RQ_REC + rq_pad8(payload)
                    return out
                if why == RQ_NOMEM:
                    rq_unlock(h)
                    raise MemoryError()
                if why == RQ_SHUT:
                    rq_unlock(h)
                    raise self._shutdown_error()
                if not block:
                    rq_unlock(h)
                    raise Empty
                if not spun:
                    spun = 1
                    rq_unlock(h)
                    with nogil:
                        rq_spin_items(h, SPIN)
                    continue
                if not self._wait(0, deadline):
                    raise Empty
        finally:
            free(buf)

    cdef object _take_big(self, uint64_t payload, uint32_t kind, bint block, double deadline):
        """The oldest record is big: copy its payload straight into its final object."""
        cdef rq_header *h = self._h
        cdef uint32_t nbuf = 0
        cdef int why = 0, wake = 0, got = 0
        cdef char *dst
        if kind == RQ_KIND_RAW:
            target = PyBytes_FromStringAndSize(NULL, payload)  # not seen by anyone until filled
            dst = PyBytes_AS_STRING(target)
        else:
            target = PyByteArray_FromStringAndSize(NULL, payload)
            dst = PyByteArray_AS_STRING(target)
        self._lock()
        with nogil:
            got = rq_take_big(h, dst, payload, &kind, &nbuf, &why, &wake)
            rq_unlock(h)
        if wake:
            rq_futex_wake(&h.seq_put, wake)
        if not got:
            # The oldest record changed (another consumer took it) or is gone: start again.
            return self._take(1, block, deadline, True)
        if kind == RQ_KIND_RAW:
            return target
        if kind == RQ_KIND_CUSTOM:
            return self._uloads(target)
        if nbuf == 0:
            return _loads(target)
        return self._decode_oob(nbuf, target)

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
            return self._take(1, block, deadline, True)
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
            return self._take(n, block, deadline, False)
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
            self._lock()
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
            self._lock()
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
            self._lock()
            st = rq_begin(self._h)
            st.shutdown = 1
            if immediate:
                st.unfinished = st.unfinished - st.count if st.unfinished > st.count else 0
                st.count = 0
                st.used = 0
                st.head = 0
            rq_commit(self._h)
            self._wake_all_locked()
            rq_unlock(self._h)
            self._wake_all()
        finally:
            self._leave()

    cdef void _wake_all_locked(self) noexcept:
        self._h.seq_get += 1
        self._h.seq_put += 1
        self._h.seq_join += 1

    cdef void _wake_all(self) noexcept:
        rq_futex_wake(&self._h.seq_get, INT_MAX)
        rq_futex_wake(&self._h.seq_put, INT_MAX)
        rq_futex_wake(&self._h.seq_join, INT_MAX)

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
            self._lock()
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
                self._lock()
                if rq_live(self._h).unfinished == 0:
                    rq_unlock(self._h)
                    return
                self._wait(2, -1.0)
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
            self._lock()
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
            self._lock()
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
                self._wake_all_locked()
                shut = True
            rq_unlock(self._h)
            if shut:
                self._wake_all()
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
        owner = self._encode(item, &it)
        self._lock()
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




cdef extern from *:
    """
    #if RQ_SUPPORTED
    static void _debug_write(rq_header *h, const rq_item *it) {
        rq_state *st = rq_begin(h);
        if (st->used + it->size <= h->capacity) rq_write(h, st, it);
    }
    static void _debug_sleep(void) { usleep(100000); }
    #else
    static void _debug_write(rq_header *h, const rq_item *it) { (void)h; (void)it; }
    static void _debug_sleep(void) {}
    #endif
    """
    void _debug_write(rq_header *h, const rq_item *it) nogil
    void _debug_sleep() nogil


def _check_platform():
    if not RQ_SUPPORTED:
        raise NotImplementedError(
            f"ringq.ProcessQueue's compiled core supports Linux only (a robust process-shared mutex "
            f"and futexes), not {sys.platform}; use the pure-Python ProcessQueue: "
            "from ringq._process_py import ProcessQueue (or set RINGQ_NO_EXTENSIONS=1)"
        )


def _rebuild(cls, name, dumps, loads):
    return cls._attach(name, dumps, loads)


def _counted(error, count):
    error.put_count = count
    return error
