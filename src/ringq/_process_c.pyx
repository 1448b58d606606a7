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

Lock rules (every file below keeps them):

* The shared mutex is taken only through pq_lock() (waiting.pxi): tried with the
  GIL held, waited for in slices of SLICE_NS without it, with Ctrl-C checked
  between slices. Never block on it, or on a futex, while holding the GIL.
* Under the mutex run only plain C (the copies and state updates of _shm.h):
  no Python code, no allocation of Python objects that other threads could
  see, no decref of user objects. Encoding (pickling, the user's dumps) runs
  before the mutex is taken, decoding (unpickling, the user's loads) after it is
  released; so does every futex wake.
* A wait is pq_wait(): entered with the mutex held, it releases it, sleeps one
  slice on the futex word of its condition, and returns without the mutex; the
  caller re-checks the ring under the mutex again (no item is handed over).

The code is in the files included at the end of this one, one concern each (an
include is pasted in place; the C declarations come first, and a file may call
what a later one defines).
"""
# Cython's include cannot appear inside a class: the class surface is one file,
# and what its methods share (encoding, waiting, copying records) are
# module-level cdef functions taking the ProcessQueue, in the other files.
__all__ = ["ProcessProducer", "ProcessQueue"]

# Records bigger than this are copied straight into their final Python object.
DEF BIG = 65536
# Without the GIL for copies of more than this many bytes.
DEF NOGIL_COPY = 65536
DEF SLICE_NS = 50000000
# Pause instructions spun (without the lock or the GIL) before a futex sleep: a few microseconds.
DEF SPIN = 400
DEF INT_MAX = 2147483647

include "_process_c/layout.pxi"  # the segment's layout and _shm.h's C API
include "_process_c/codec.pxi"  # item <-> ring record: pq_encode, pq_decode
include "_process_c/waiting.pxi"  # the robust mutex and the futex waits: pq_lock, pq_wait, pq_wake_all
include "_process_c/ring.pxi"  # copying records in and out: pq_put_items, pq_take, pq_take_big
include "_process_c/queue.pxi"  # the ProcessQueue class
