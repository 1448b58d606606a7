/* _sync.h: the few native pieces of ringq that differ per platform or per CPython build.
 *
 *   ringq_mutex        the queue's state lock (see "Lock rules" in _queue_c.pyx)
 *   ringq_monotonic_ns a monotonic clock for deadlines
 *   ringq_steal        hand an owned reference to Cython as an `object`
 *
 * The state lock is held only for short sections that never block, never release
 * the GIL and never run Python code, so its flavour is chosen per build:
 *
 *   free-threaded CPython (Py_GIL_DISABLED)
 *       a PyMutex (public since 3.13). Its slow path parks the thread and detaches
 *       it from the interpreter while it waits, so a thread never blocks on the
 *       lock while "holding the GIL" (attached), and stop-the-world pauses go on.
 *   GIL builds
 *       nothing: the GIL already makes such a section atomic, because no other
 *       thread can run until this one releases the GIL, and a section releases it
 *       neither explicitly nor through Python code. CPython's own critical sections
 *       (Py_BEGIN_CRITICAL_SECTION) make the same choice. Taking a real lock there
 *       would add two atomic operations to every put and get for no gain.
 *   RINGQ_FORCE_LOCK=1 (a debug build switch, any CPython)
 *       a PyThread lock that also records its owner and aborts on re-entry. It
 *       lets the tests on an ordinary CPython prove that every lock is paired with
 *       an unlock and that no section re-enters the queue (through a __del__, say).
 */
#ifndef RINGQ_SYNC_H
#define RINGQ_SYNC_H

#include "Python.h"
#include "pythread.h"
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  ifndef NOMINMAX
#    define NOMINMAX
#  endif
#  include <windows.h>
#else
#  include <time.h>
#endif

/* Every warning in the code below is ours, so it is an error in a strict build
 * (RINGQ_STRICT=1 in the environment of setup.py, as in .ci/run and the wheel builds)
 * and a warning otherwise. The scope opens after the system and Python headers and
 * closes at the end of this file, so neither those headers nor Cython's generated
 * code around the #include are affected. GCC and clang both read these pragmas. */
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  if defined(RINGQ_STRICT)
#    pragma GCC diagnostic error "-Wall"
#    pragma GCC diagnostic error "-Wextra"
#  else
#    pragma GCC diagnostic warning "-Wall"
#    pragma GCC diagnostic warning "-Wextra"
#  endif
#endif

/* ---- the state lock ---------------------------------------------------- */

#if defined(RINGQ_FORCE_LOCK)
#  define RINGQ_LOCK_KIND "checked PyThread lock (RINGQ_FORCE_LOCK)"
typedef struct {
    PyThread_type_lock lock;
    unsigned long owner;        /* thread ident of the holder, 0 when free */
} ringq_mutex;

static inline int ringq_mutex_init(ringq_mutex *m) {
    m->owner = 0;
    m->lock = PyThread_allocate_lock();
    return m->lock ? 0 : -1;
}
static inline void ringq_mutex_free(ringq_mutex *m) {
    if (m->lock) {
        PyThread_free_lock(m->lock);
        m->lock = NULL;
    }
}
static inline void ringq_mutex_lock(ringq_mutex *m) {
    unsigned long me = PyThread_get_thread_ident();
    if (!PyThread_acquire_lock(m->lock, NOWAIT_LOCK)) {
        if (m->owner == me) {
            Py_FatalError("ringq: the queue's state lock was re-entered by its holder");
        }
        /* Never block on the lock with the GIL held. */
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(m->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    m->owner = me;
}
static inline void ringq_mutex_unlock(ringq_mutex *m) {
    if (m->owner != PyThread_get_thread_ident()) {
        Py_FatalError("ringq: the queue's state lock was released by a thread that does not hold it");
    }
    m->owner = 0;
    PyThread_release_lock(m->lock);
}

#elif defined(Py_GIL_DISABLED)
#  define RINGQ_LOCK_KIND "PyMutex"
typedef PyMutex ringq_mutex;
static inline int ringq_mutex_init(ringq_mutex *m) { memset(m, 0, sizeof(*m)); return 0; }
static inline void ringq_mutex_free(ringq_mutex *m) { (void)m; }
static inline void ringq_mutex_lock(ringq_mutex *m) { PyMutex_Lock(m); }
static inline void ringq_mutex_unlock(ringq_mutex *m) { PyMutex_Unlock(m); }
/* fork() stops the world first, and a locked section contains no stop point, so a
 * fork child never finds the mutex held: it needs no reset. */

#else
#  define RINGQ_LOCK_KIND "the GIL"
typedef struct { char unused; } ringq_mutex;
static inline int ringq_mutex_init(ringq_mutex *m) { (void)m; return 0; }
static inline void ringq_mutex_free(ringq_mutex *m) { (void)m; }
static inline void ringq_mutex_lock(ringq_mutex *m) { (void)m; }
static inline void ringq_mutex_unlock(ringq_mutex *m) { (void)m; }
#endif

/* ---- time ---------------------------------------------------------------- */

#if defined(_WIN32)
/* Ticks per second of QueryPerformanceCounter: fixed at boot, read once at import. */
static LARGE_INTEGER ringq_qpc_freq;
#endif

/* Call once at import, before any deadline is computed. */
static inline void ringq_clock_init(void) {
#if defined(_WIN32)
    QueryPerformanceFrequency(&ringq_qpc_freq);
#endif
}

/* Nanoseconds on a clock that never jumps (wall-clock changes don't move deadlines). */
static inline int64_t ringq_monotonic_ns(void) {
#if defined(_WIN32)
    LARGE_INTEGER now;
    int64_t freq = ringq_qpc_freq.QuadPart;
    QueryPerformanceCounter(&now);
    /* Whole seconds and the remainder separately: exact, and no overflow for centuries. */
    return (int64_t)(now.QuadPart / freq) * 1000000000
         + (int64_t)(now.QuadPart % freq) * 1000000000 / freq;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
#endif
}

/* 1 on builds where the GIL serialises all Python code (and so makes a locked
 * section atomic with respect to every other object too), else 0. */
#if defined(Py_GIL_DISABLED)
#  define RINGQ_GIL_BUILD 0
#else
#  define RINGQ_GIL_BUILD 1
#endif

/* ---- shared claim flags (select and cancel tokens) --------------------------
 *
 * One waiting call may sit in several waiter lists at once (each queue of a
 * select, and a cancel token), each list under its own lock. All its links point
 * at one claim flag: the first waker to change it from 0 to its link's tag wins
 * the call; the others unlink their link and skip it. Different locks guard the
 * lists, so on free-threaded builds the flag is changed with an atomic
 * compare-and-swap. On GIL builds every locked section runs under the GIL, which
 * already serialises them: a plain int is enough.
 *
 * ringq_seed is a Weyl counter that select() turns into a random permutation
 * (splitmix64 of the counter): an atomic add makes it safe without a GIL.
 */
#if defined(Py_GIL_DISABLED)
static inline int ringq_claim(int *flag, int tag) {
    int expected = 0;
    return _Py_atomic_compare_exchange_int(flag, &expected, tag);
}
static inline int ringq_claim_read(int *flag) { return _Py_atomic_load_int(flag); }
static inline uint64_t ringq_next_seed(uint64_t *counter) {
    return _Py_atomic_add_uint64(counter, 0x9E3779B97F4A7C15ULL) + 0x9E3779B97F4A7C15ULL;
}
#else
static inline int ringq_claim(int *flag, int tag) {
    if (*flag != 0) {
        return 0;
    }
    *flag = tag;
    return 1;
}
static inline int ringq_claim_read(int *flag) { return *flag; }
static inline uint64_t ringq_next_seed(uint64_t *counter) {
    return *counter += 0x9E3779B97F4A7C15ULL;
}
#endif

/* splitmix64's finaliser: a well-mixed 64-bit value from a Weyl counter value. */
static inline uint64_t ringq_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ---- references -------------------------------------------------------- */

/* Cython treats an extern function returning `object` as giving a new reference;
 * this passes on one the ring already owns, without touching the refcount. */
static inline PyObject *ringq_steal(PyObject *owned) { return owned; }

/* A fresh list's item array, filled in place by get_many. */
#define ringq_list_items(op) (((PyListObject *)(op))->ob_item)
/* A tuple's item array, read by put_many. */
#define ringq_tuple_items(op) (((PyTupleObject *)(op))->ob_item)

#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif

#endif /* RINGQ_SYNC_H */
