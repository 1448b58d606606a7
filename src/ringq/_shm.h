/* ringq._process_c: the shared ring of ringq.ProcessQueue (Linux: robust mutex + futex).
 *
 * Layout of the shared segment: an rq_header, then (at data_off) the ring of
 * `capacity` bytes. A record in the ring is a 16-byte header (payload bytes,
 * kind, number of out-of-band buffers), then the payload, padded to 8 bytes; a
 * record may wrap around the end of the ring (copies are split in two).
 *
 * Crash safety. All changes happen under one process-shared robust mutex. The
 * queue's state (head, count, used bytes, counters, shutdown, ...) exists twice,
 * st[0] and st[1]; `cur` names the live copy. A change copies the live state to
 * the other copy, edits that copy, then publishes it with one aligned 32-bit
 * store to `cur` (the commit). A put writes its record into free ring space
 * before committing, so a process killed at any point before the commit leaves
 * the live state untouched: its half-written record is not part of the queue. A
 * get copies records out before committing: killed before, the items stay. The
 * next process to lock the mutex gets EOWNERDEAD from the kernel (which releases
 * the robust mutexes of a dying thread, whatever its pid becomes later), marks the
 * mutex consistent, and needs no repair of the ring.
 *
 * Waiting: three futex words (an item, room, all tasks done), bumped under the
 * mutex by a waker that saw waiters, and waited on (non-private FUTEX_WAIT, a
 * relative timeout) after the mutex is released. The caller waits in slices and
 * checks signals between them, with the GIL.
 *
 * Everything here is plain C: no Python API, callable without the GIL.
 */
#ifndef RINGQ_SHM_H
#define RINGQ_SHM_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#define RQ_SUPPORTED 1
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#else
#define RQ_SUPPORTED 0
#endif

/* Atomic loads and stores (GCC and clang builtins). MSVC has neither them nor the
   Linux primitives: the module still compiles there, with plain accesses, and
   ProcessQueue() refuses to start (see _check_platform). */
#if defined(__GNUC__) || defined(__clang__)
#define RQ_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define RQ_LOAD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define RQ_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#else
#define RQ_LOAD_ACQ(p) (*(p))
#define RQ_LOAD_RLX(p) (*(p))
#define RQ_STORE_REL(p, v) (*(p) = (v))
#endif

#define RQ_MAGIC 0x3143515052474e52ULL /* "RNGRPQC1" */
#define RQ_VERSION 1u
#define RQ_REC 16u
#define RQ_PROD_SLOTS 256
#define RQ_CAUSE_MAX 3072
#define RQ_PROCS 1024
#define RQ_DATA_ALIGN 4096u

#define RQ_KIND_PICKLE 0u
#define RQ_KIND_RAW 1u
#define RQ_KIND_CUSTOM 2u
#define RQ_KIND_INT 3u   /* an exact int that fits in int64: 8 bytes, no pickle */
#define RQ_KIND_STR 4u   /* an exact str: its UTF-8 bytes, no pickle */
#define RQ_KIND_FLOAT 5u /* an exact float: 8 bytes, no pickle */

/* put/get outcomes */
#define RQ_OK 0
#define RQ_FULL 1
#define RQ_EMPTY 2
#define RQ_SHUT 3
#define RQ_BIG 4
#define RQ_NOMEM 5

typedef struct {
    uint64_t head;       /* ring offset of the oldest record */
    uint64_t count;      /* items */
    uint64_t used;       /* bytes of records */
    uint64_t unfinished; /* put and not task_done() */
    uint64_t puts, gets, high;
    int64_t maxsize;
    uint32_t shutdown;
    uint32_t producers_ever; /* a producer was registered once */
    uint64_t cause_len;      /* bytes of a producer's pickled exception, 0: none */
} rq_state;

typedef struct {
    uint64_t magic;
    uint64_t capacity;
    uint64_t data_off;
    uint32_t version;
    uint32_t header_size;
    uint32_t cur; /* the live copy of the state: st[cur] */
    uint32_t spare;
    rq_state st[2];
    /* futex words and waiter counts: changed under the mutex, not committed */
    uint32_t seq_get, seq_put, seq_join;
    uint32_t w_get, w_put, w_join;
    uint32_t recoveries;
    uint32_t prod[RQ_PROD_SLOTS]; /* generation * 2 + open */
    unsigned char cause[RQ_CAUSE_MAX];
    int32_t procs[RQ_PROCS]; /* pids of the processes with an open handle; 0: free */
#if RQ_SUPPORTED
    pthread_mutex_t mutex __attribute__((aligned(64)));
#endif
} rq_header;

/* One item to write: its main bytes and its out-of-band buffers. */
typedef struct {
    uint32_t kind, nbuf;
    const char *main;
    uint64_t main_len;
    const char **bufs;
    const uint64_t *buf_lens;
    uint64_t payload; /* payload bytes (without the 16-byte header) */
    uint64_t size;    /* whole record, padded: RQ_REC + pad8(payload) */
    char inline_bytes[8]; /* the payload of RQ_KIND_INT / RQ_KIND_FLOAT (main points here) */
} rq_item;

static inline uint64_t rq_pad8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

static inline uint64_t rq_data_off(void) {
    return ((uint64_t)sizeof(rq_header) + RQ_DATA_ALIGN - 1) & ~(uint64_t)(RQ_DATA_ALIGN - 1);
}

static inline void rq_item_finish(rq_item *it) {
    uint64_t p = it->main_len;
    uint32_t i;
    if (it->nbuf) {
        p += 8u * ((uint64_t)it->nbuf + 1u);
        for (i = 0; i < it->nbuf; i++) p += it->buf_lens[i];
    }
    it->payload = p;
    it->size = RQ_REC + rq_pad8(p);
}

static inline char *rq_data(rq_header *h) { return (char *)h + h->data_off; }

static inline const rq_state *rq_live(rq_header *h) {
    return &h->st[RQ_LOAD_ACQ(&h->cur) & 1u];
}

/* Start a change: the spare copy, filled from the live one. */
static inline rq_state *rq_begin(rq_header *h) {
    rq_state *next = &h->st[(h->cur & 1u) ^ 1u];
    *next = h->st[h->cur & 1u];
    return next;
}

/* Publish the change: one aligned store. */
static inline void rq_commit(rq_header *h) {
    RQ_STORE_REL(&h->cur, (h->cur & 1u) ^ 1u);
}

static inline void rq_copy_in(rq_header *h, uint64_t pos, const void *src, uint64_t n) {
    char *data = rq_data(h);
    uint64_t cap = h->capacity, first = cap - pos;
    if (n <= first) {
        memcpy(data + pos, src, n);
    } else {
        memcpy(data + pos, src, first);
        memcpy(data, (const char *)src + first, n - first);
    }
}

static inline void rq_copy_out(rq_header *h, uint64_t pos, void *dst, uint64_t n) {
    const char *data = rq_data(h);
    uint64_t cap = h->capacity, first = cap - pos;
    if (n <= first) {
        memcpy(dst, data + pos, n);
    } else {
        memcpy(dst, data + pos, first);
        memcpy((char *)dst + first, data, n - first);
    }
}

static inline uint64_t rq_advance(rq_header *h, uint64_t pos, uint64_t n) {
    pos += n;
    return pos >= h->capacity ? pos - h->capacity : pos;
}

/* Record header at ring offset pos. */
static inline void rq_peek(rq_header *h, uint64_t pos, uint64_t *payload, uint32_t *kind, uint32_t *nbuf) {
    unsigned char rec[RQ_REC];
    rq_copy_out(h, pos, rec, RQ_REC);
    memcpy(payload, rec, 8);
    memcpy(kind, rec + 8, 4);
    memcpy(nbuf, rec + 12, 4);
}

/* ------------------------------------------ processes with an open handle */

/* Lock held. Add pid (once). 0, or -1 when the table is full. */
static int rq_proc_add(rq_header *h, int32_t pid) {
    int i, free_slot = -1;
    for (i = 0; i < RQ_PROCS; i++) {
        if (h->procs[i] == pid) return 0;
        if (h->procs[i] == 0 && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) return -1;
    h->procs[free_slot] = pid;
    return 0;
}

static uint32_t rq_proc_count(rq_header *h) {
    uint32_t n = 0;
    int i;
    for (i = 0; i < RQ_PROCS; i++) n += h->procs[i] != 0;
    return n;
}

#if RQ_SUPPORTED
/* Lock held. Remove pid, and every pid whose process is gone (killed before
   it could leave); returns how many processes are left. A dead pid reused by
   an unrelated process looks alive: the segment then stays until the resource
   tracker removes it at the end of the run. */
static uint32_t rq_proc_leave(rq_header *h, int32_t pid) {
    int i;
    for (i = 0; i < RQ_PROCS; i++) {
        int32_t p = h->procs[i];
        if (p == 0) continue;
        if (p == pid || (kill(p, 0) == -1 && errno == ESRCH)) h->procs[i] = 0;
    }
    return rq_proc_count(h);
}
#else
static uint32_t rq_proc_leave(rq_header *h, int32_t pid) { (void)h; (void)pid; return 0; }
#endif

/* -------------------------------------------------- spinning before a sleep */

static inline void rq_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Without the lock: watch for an item (or a shutdown) for a few microseconds
   before going to sleep, which saves a futex wait and wake when the other side
   is running on another core. 1 if one showed up. */
static int rq_spin_items(rq_header *h, int iters) {
    int i;
    for (i = 0; i < iters; i++) {
        const rq_state *st = rq_live(h);
        if (RQ_LOAD_RLX(&st->count) || RQ_LOAD_RLX(&st->shutdown))
            return 1;
        rq_relax();
    }
    return 0;
}

/* The same for room for a record of `size` bytes. */
static int rq_spin_room(rq_header *h, uint64_t size, int iters) {
    int i;
    for (i = 0; i < iters; i++) {
        const rq_state *st = rq_live(h);
        int64_t maxsize = RQ_LOAD_RLX(&st->maxsize);
        uint64_t count = RQ_LOAD_RLX(&st->count);
        uint64_t used = RQ_LOAD_RLX(&st->used);
        if (RQ_LOAD_RLX(&st->shutdown) ||
            ((maxsize <= 0 || count < (uint64_t)maxsize) && used + size <= h->capacity))
            return 1;
        rq_relax();
    }
    return 0;
}

/* ---------------------------------------------------------------- the mutex */

#if RQ_SUPPORTED

static void rq_recover(rq_header *h) {
    /* The owner died inside a locked section. st[cur] is consistent by
       construction; only the producer table and the shutdown it implies may be
       half done (a slot closed, the shutdown not committed yet). */
    const rq_state *live = rq_live(h);
    int i, open = 0;
    h->recoveries++;
    for (i = 0; i < RQ_PROD_SLOTS; i++) open += (int)(h->prod[i] & 1u);
    if (live->producers_ever && !open && !live->shutdown) {
        rq_state *st = rq_begin(h);
        st->shutdown = 1;
        rq_commit(h);
        h->seq_get++;
        h->seq_put++;
        h->seq_join++;
    }
}

static int rq_mutex_init(rq_header *h) {
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r) return r;
    r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!r) r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (!r) r = pthread_mutex_init(&h->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return r;
}

static inline int rq_locked(rq_header *h, int r) {
    if (r == EOWNERDEAD) {
        rq_recover(h);
        pthread_mutex_consistent(&h->mutex);
        return 0;
    }
    return r;
}

/* 0: locked; EBUSY: held by another; else an errno. */
static inline int rq_trylock(rq_header *h) { return rq_locked(h, pthread_mutex_trylock(&h->mutex)); }
static inline int rq_lock(rq_header *h) { return rq_locked(h, pthread_mutex_lock(&h->mutex)); }
static inline void rq_unlock(rq_header *h) { pthread_mutex_unlock(&h->mutex); }

/* Lock, waiting at most ns nanoseconds: 0, ETIMEDOUT (the caller checks
   signals, then tries again), or an errno. */
static inline int rq_lock_slice(rq_header *h, int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec += (long)(ns % 1000000000);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000;
    }
    return rq_locked(h, pthread_mutex_timedlock(&h->mutex, &ts));
}

static inline void rq_futex_wake(uint32_t *word, int n) {
    syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Lock held on entry; released for the wait; not held on return. Waits on *word
   for at most ns nanoseconds (or until woken, or a signal). */
static void rq_wait(rq_header *h, uint32_t *word, uint32_t *waiters, int64_t ns) {
    struct timespec ts;
    uint32_t seen = *word;
    (*waiters)++;
    rq_unlock(h);
    if (ns < 0) ns = 0;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
    if (rq_lock(h) == 0) {
        if (*waiters) (*waiters)--;
        rq_unlock(h);
    }
}

static inline int64_t rq_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#else /* not Linux: the module builds, ProcessQueue() refuses to start */

static inline int rq_mutex_init(rq_header *h) { (void)h; return ENOSYS; }
static inline int rq_trylock(rq_header *h) { (void)h; return ENOSYS; }
static inline int rq_lock(rq_header *h) { (void)h; return ENOSYS; }
static inline void rq_unlock(rq_header *h) { (void)h; }
static inline int rq_lock_slice(rq_header *h, int64_t ns) { (void)h; (void)ns; return ENOSYS; }
static inline void rq_futex_wake(uint32_t *word, int n) { (void)word; (void)n; }
static inline void rq_wait(rq_header *h, uint32_t *word, uint32_t *waiters, int64_t ns) {
    (void)h; (void)word; (void)waiters; (void)ns;
}
static inline int64_t rq_now_ns(void) { return 0; }

#endif

/* ------------------------------------------------------------ locked work */

static void rq_init(rq_header *h, uint64_t capacity, int64_t maxsize) {
    memset(h, 0, sizeof(*h));
    h->capacity = capacity;
    h->data_off = rq_data_off();
    h->version = RQ_VERSION;
    h->header_size = (uint32_t)sizeof(rq_header);
    h->st[0].maxsize = maxsize;
    h->st[1].maxsize = maxsize;
}

static inline int rq_room(const rq_state *st, uint64_t cap, uint64_t size) {
    if (st->maxsize > 0 && st->count >= (uint64_t)st->maxsize) return 0;
    return st->used + size <= cap;
}

static void rq_write(rq_header *h, rq_state *st, const rq_item *it) {
    uint64_t pos = rq_advance(h, st->head, st->used);
    unsigned char rec[RQ_REC];
    uint32_t i;
    memcpy(rec, &it->payload, 8);
    memcpy(rec + 8, &it->kind, 4);
    memcpy(rec + 12, &it->nbuf, 4);
    rq_copy_in(h, pos, rec, RQ_REC);
    pos = rq_advance(h, pos, RQ_REC);
    if (it->nbuf) {
        rq_copy_in(h, pos, &it->main_len, 8);
        pos = rq_advance(h, pos, 8);
        for (i = 0; i < it->nbuf; i++) {
            rq_copy_in(h, pos, &it->buf_lens[i], 8);
            pos = rq_advance(h, pos, 8);
        }
    }
    rq_copy_in(h, pos, it->main, it->main_len);
    pos = rq_advance(h, pos, it->main_len);
    for (i = 0; i < it->nbuf; i++) {
        rq_copy_in(h, pos, it->bufs[i], it->buf_lens[i]);
        pos = rq_advance(h, pos, it->buf_lens[i]);
    }
    st->used += it->size;
    st->count++;
    st->unfinished++;
    st->puts++;
    if (st->count > st->high) st->high = st->count;
}

/* Lock held. Write items[0..n) in order while they fit (all or none with
   all_or_nothing); one commit. Returns how many went in; *why says why it
   stopped (RQ_OK: all). *wake: getters to wake after unlocking. */
static uint64_t rq_put_locked(rq_header *h, const rq_item *items, uint64_t n, int all_or_nothing, int *why,
                              int *wake) {
    const rq_state *live = rq_live(h);
    uint64_t cap = h->capacity, i = 0;
    rq_state *st;
    *wake = 0;
    if (live->shutdown) {
        *why = RQ_SHUT;
        return 0;
    }
    if (all_or_nothing) {
        uint64_t total = 0;
        for (i = 0; i < n; i++) total += items[i].size;
        if ((live->maxsize > 0 && live->count + n > (uint64_t)live->maxsize) || live->used + total > cap) {
            *why = RQ_FULL;
            return 0;
        }
        i = 0;
    }
    if (n == 0 || !rq_room(live, cap, items[0].size)) {
        *why = n ? RQ_FULL : RQ_OK;
        return 0;
    }
    st = rq_begin(h);
    while (i < n && rq_room(st, cap, items[i].size)) {
        rq_write(h, st, &items[i]);
        i++;
    }
    rq_commit(h);
    if (h->w_get) {
        h->seq_get++;
        *wake = h->w_get < i ? (int)h->w_get : (int)i;
    }
    *why = i == n ? RQ_OK : RQ_FULL;
    return i;
}

/* Lock held. Take up to max records, copied verbatim (headers included) into
   *buf (grown with realloc); one commit. Records bigger than big go one at a
   time through rq_take_big: if the oldest is one, nothing is taken, *why is
   RQ_BIG, *need its payload bytes and *need_kind its kind. Returns the number
   taken; *nbytes their bytes. */
static uint64_t rq_take_locked(rq_header *h, uint64_t max, char **buf, uint64_t *bufcap, uint64_t big,
                               uint64_t *nbytes, uint64_t *need, uint32_t *need_kind, int *why, int *wake) {
    const rq_state *live = rq_live(h);
    uint64_t k = 0, total = 0, pos, payload, size;
    uint32_t kind, nbuf;
    rq_state *st;
    *wake = 0;
    *nbytes = 0;
    if (live->count == 0) {
        *why = live->shutdown ? RQ_SHUT : RQ_EMPTY;
        return 0;
    }
    if (max > live->count) max = live->count;
    pos = live->head;
    while (k < max) {
        rq_peek(h, pos, &payload, &kind, &nbuf);
        size = RQ_REC + rq_pad8(payload);
        if (size > big) {
            if (k == 0) {
                *need = payload;
                *need_kind = kind;
                *why = RQ_BIG;
                return 0;
            }
            break;
        }
        total += size;
        pos = rq_advance(h, pos, size);
        k++;
    }
    if (total > *bufcap) {
        char *grown = (char *)realloc(*buf, total);
        if (!grown) {
            *why = RQ_NOMEM;
            return 0;
        }
        *buf = grown;
        *bufcap = total;
    }
    rq_copy_out(h, live->head, *buf, total);
    st = rq_begin(h);
    st->count -= k;
    st->used -= total;
    st->gets += k;
    st->head = st->count ? rq_advance(h, st->head, total) : 0;
    rq_commit(h);
    if (h->w_put) {
        h->seq_put++;
        *wake = h->w_put < k ? (int)h->w_put : (int)k;
    }
    *nbytes = total;
    *why = RQ_OK;
    return k;
}

/* Lock held. Take the oldest record if its payload is still `want` bytes and
   its kind *kind, copying the payload (not the header) to dst. Returns 1 if
   taken, 0 if the oldest record changed or is gone (the caller starts again). */
static int rq_take_big(rq_header *h, char *dst, uint64_t want, uint32_t *kind, uint32_t *nbuf, int *why, int *wake) {
    const rq_state *live = rq_live(h);
    uint64_t payload, size;
    uint32_t k;
    rq_state *st;
    *wake = 0;
    if (live->count == 0) {
        *why = live->shutdown ? RQ_SHUT : RQ_EMPTY;
        return 0;
    }
    rq_peek(h, live->head, &payload, &k, nbuf);
    if (payload != want || k != *kind) {
        *why = RQ_OK;
        return 0;
    }
    size = RQ_REC + rq_pad8(payload);
    rq_copy_out(h, rq_advance(h, live->head, RQ_REC), dst, payload);
    st = rq_begin(h);
    st->count -= 1;
    st->used -= size;
    st->gets += 1;
    st->head = st->count ? rq_advance(h, st->head, size) : 0;
    rq_commit(h);
    if (h->w_put) {
        h->seq_put++;
        *wake = 1;
    }
    *why = RQ_OK;
    return 1;
}

#endif /* RINGQ_SHM_H */
