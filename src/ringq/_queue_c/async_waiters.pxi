# Included by _queue_c.pyx: the records of asyncio tasks' waits.

# ---------------------------------------------------------------------------
# Async waiters: one wait of one asyncio task, as a Waiter node in the same FIFO
# lists as the threads. The record is a Python object (the node lives inside it);
# while linked, the list owns one reference to it, which a claim passes to the
# waker's chain and wake_chain drops after the wake-up.
# ---------------------------------------------------------------------------

def _resolve(fut):
    """Wake a parked task: runs on its loop (via call_soon_threadsafe or a timer)."""
    if not fut.done():
        fut.set_result(None)


@cython.final
@cython.no_gc_clear  # a linked record must keep its fields until the queue lets go of it
@cython.auto_pickle(False)
cdef class _AsyncWaiter:
    """One wait of one task on one queue condition (a fresh record, and future, per wait).

    Fresh per wait so that every field but the node is written before the record
    is linked and never again: a waker reads them after unlocking, while the task
    may already be preparing its next wait with a new record.
    """
    cdef:
        # Written before linking, then read-only.
        object queue                 # the Queue whose list this node joins
        object loop                  # the task's running loop
        object fut                   # resolved by the wake-up (or the timeout timer)
        unsigned long thread_ident   # the loop's thread: a waker there needs no self-pipe write
        WaitList *wl                 # the queue's list this node joins (getters, putters, joiners)
        _AsyncWaiter owner           # aselect: the record holding the shared claim flag (keeps it alive)
        # ---- guarded by the queue's lock ----
        Waiter node                  # node.task points back at this record
        int claim                    # the node's claim flag (an async wait has one link only)
        unsigned long fork_gen       # the queue's _fork_gen when linked

    cdef bint wake(self) noexcept:
        """Resolve the future from any thread; after unlocking. False if the loop is gone (closed).

        On the loop's own thread the future is resolved directly (its callbacks are
        scheduled with call_soon: no self-pipe write). From another thread,
        call_soon_threadsafe does it on the loop. A future already done belongs to a
        task that was cancelled or timed out: it sees node.unlinked and passes the
        wake-up on itself.
        """
        cdef PyObject *et
        cdef PyObject *ev
        cdef PyObject *tb
        cdef bint ok = True
        # A waker may call this with an exception set (Ctrl-C while passing a wake-up on).
        PyErr_Fetch(&et, &ev, &tb)
        try:
            if PyThread_get_thread_ident() == self.thread_ident:
                if not self.fut.done():
                    self.fut.set_result(None)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except Exception:  # RuntimeError: the loop is closed
            ok = False
        PyErr_Restore(et, ev, tb)
        return ok
