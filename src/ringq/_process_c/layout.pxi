# Included by _process_c.pyx: the shared-memory segment's layout and the C API of _shm.h.

# The ring, its robust mutex and its futex waits are plain C in _shm.h (read its
# comment for the crash-safety design); these are their declarations, and the few
# CPython functions the encoding uses that Cython's own .pxd files do not declare.

from libc.stdint cimport int64_t, uint32_t, uint64_t

import sys


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


# For the crash tests (ProcessQueue._debug_die_locked).
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
