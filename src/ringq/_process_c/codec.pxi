# Included by _process_c.pyx: how an item is written into a ring record and read back.

# Ints, floats, str and bytes get their own record kinds (no pickle); everything
# else is pickled with protocol 5, buffers out of band (their bytes follow the
# pickle in the record, and come back as views of one writable copy). A record
# is a 16-byte header (payload length, kind, number of out-of-band buffers) and
# the payload, 8-aligned. Encoding runs before the lock is taken, decoding after
# it is released: both run Python code.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

import pickle

cdef object _dumps = pickle.dumps
cdef object _loads = pickle.loads
cdef object _PickleBuffer = pickle.PickleBuffer


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


cdef object pq_encode(ProcessQueue q, item, rq_item *it):
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
    if q._udumps is not None:
        view = memoryview(q._udumps(item))
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
    if it.size > q._cap:
        raise ValueError(
            f"an item of {it.size} bytes (serialized, with its 16-byte header) can never fit in this "
            f"ProcessQueue's ring of {q._cap} bytes; create the queue with a larger capacity="
        )
    return owner


cdef object pq_decode(ProcessQueue q, uint32_t kind, uint32_t nbuf, const char *p, uint64_t payload):
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
        return q._uloads(PyBytes_FromStringAndSize(p, payload))
    if nbuf == 0:
        return _loads(PyBytes_FromStringAndSize(p, payload))
    # Out-of-band buffers: one writable copy holds them all (numpy views it).
    block = PyByteArray_FromStringAndSize(p, payload)
    return pq_decode_oob(q, nbuf, block)


cdef object pq_decode_oob(ProcessQueue q, uint32_t nbuf, object block):
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
