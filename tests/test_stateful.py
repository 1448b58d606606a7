"""A hypothesis state machine: ringq (both implementations) against a reference model.

The model is a deque plus counters, written from docs/api.md and the stdlib
semantics. Only calls that cannot block are used, so the machine is
single-threaded and deterministic; every result and exception is checked.
"""
import itertools
from collections import deque

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import ringq  # noqa: E402

ShutDown, Empty, Full = ringq.ShutDown, ringq.Empty, ringq.Full

MAXSIZES = st.integers(min_value=-2, max_value=8)


class Model:
    def __init__(self, maxsize):
        self.items = deque()
        self.maxsize = maxsize
        self.unfinished = 0
        self.shutdown = False

    def room(self):
        if self.maxsize <= 0:
            return float("inf")
        return max(0, self.maxsize - len(self.items))  # a shrunk maxsize: no room

    def full(self):
        return 0 < self.maxsize <= len(self.items)


def outcome(fn, *args, **kwargs):
    """('ok', value) or ('raise', exception type)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except (ShutDown, Empty, Full, ValueError) as e:
        return ("raise", type(e))


def make_machine(Queue):
    counter = itertools.count()

    class QueueMachine(RuleBasedStateMachine):
        @initialize(maxsize=MAXSIZES)
        def create(self, maxsize):
            self.q = Queue(maxsize)
            self.m = Model(maxsize)

        def fresh(self, n):
            return [("item", next(counter)) for _ in range(n)]

        # -- single items ---------------------------------------------------
        @rule(block_zero_timeout=st.booleans())
        def put_one(self, block_zero_timeout):
            (item,) = self.fresh(1)
            if block_zero_timeout:
                got = outcome(self.q.put, item, True, 0)
            else:
                got = outcome(self.q.put_nowait, item)
            m = self.m
            if m.shutdown:
                expect = ("raise", ShutDown)
            elif m.room() < 1:
                expect = ("raise", Full)
            else:
                m.items.append(item)
                m.unfinished += 1
                expect = ("ok", None)
            assert got == expect

        @rule(block_zero_timeout=st.booleans())
        def get_one(self, block_zero_timeout):
            if block_zero_timeout:
                got = outcome(self.q.get, True, 0)
            else:
                got = outcome(self.q.get_nowait)
            m = self.m
            if m.items:
                expect = ("ok", m.items.popleft())
            elif m.shutdown:
                expect = ("raise", ShutDown)  # ShutDown wins over Empty
            else:
                expect = ("raise", Empty)
            assert got == expect
            if got[0] == "ok":
                assert got[1] is expect[1]

        # -- batches ----------------------------------------------------------
        @rule(n=st.integers(min_value=0, max_value=10), mode=st.sampled_from(["nowait", "timeout0"]))
        def put_many(self, n, mode):
            items = self.fresh(n)
            if mode == "nowait":
                got = outcome(self.q.put_many, items, block=False)
            else:
                got = outcome(self.q.put_many, iter(items), timeout=0)
            m = self.m
            if m.shutdown:
                expect = ("raise", ShutDown)
            elif m.room() >= n:
                m.items.extend(items)
                m.unfinished += n
                expect = ("ok", None)
            elif mode == "nowait":
                expect = ("raise", Full)  # all or nothing
            else:
                # blocking with a zero timeout: what fits goes in, then Full
                k = int(m.room())
                m.items.extend(items[:k])
                m.unfinished += k
                expect = ("raise", Full)
            assert got == expect

        @rule(n=st.integers(min_value=1, max_value=10), mode=st.sampled_from(["nowait", "timeout0"]))
        def get_many(self, n, mode):
            if mode == "nowait":
                got = outcome(self.q.get_many, n, block=False)
            else:
                got = outcome(self.q.get_many, n, True, 0)
            m = self.m
            if m.items:
                k = min(n, len(m.items))
                expect = ("ok", [m.items.popleft() for _ in range(k)])
            elif m.shutdown:
                expect = ("raise", ShutDown)
            else:
                expect = ("raise", Empty)
            assert got == expect

        @rule(n=st.integers(max_value=0, min_value=-3))
        def get_many_bad(self, n):
            assert outcome(self.q.get_many, n, block=False) == ("raise", ValueError)

        # -- tasks --------------------------------------------------------------
        @rule()
        def task_done(self):
            got = outcome(self.q.task_done)
            if self.m.unfinished == 0:
                assert got == ("raise", ValueError)
            else:
                self.m.unfinished -= 1
                assert got == ("ok", None)

        @rule()
        def join_if_done(self):
            if self.m.unfinished == 0:
                self.q.join()  # must return at once

        # -- maxsize / shutdown ---------------------------------------------------
        @rule(maxsize=MAXSIZES)
        def set_maxsize(self, maxsize):
            self.q.maxsize = maxsize
            self.m.maxsize = maxsize

        @rule(immediate=st.booleans())
        def shutdown(self, immediate):
            self.q.shutdown(immediate=immediate)
            m = self.m
            m.shutdown = True
            if immediate:
                m.unfinished = max(0, m.unfinished - len(m.items))
                m.items.clear()

        # -- checks after every step ------------------------------------------------
        @invariant()
        def observers_agree(self):
            q, m = self.q, self.m
            assert q.qsize() == len(m.items)
            assert q.empty() == (not m.items)
            assert q.full() == m.full()
            assert q.maxsize == m.maxsize
            assert q.unfinished_tasks == m.unfinished
            assert q.is_shutdown == m.shutdown

    return QueueMachine


def test_queue_state_machine(Queue):
    run_state_machine_as_test(
        lambda: make_machine(Queue)(),
        settings=settings(
            max_examples=150,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )


def test_final_drain_matches_model(Queue):
    """A plain (non-hypothesis) run of the model, ending with iteration."""
    q = Queue(3)
    q.put_many([1, 2, 3])
    with pytest.raises(Full):
        q.put_many([4], block=False)
    q.maxsize = 5
    q.put_many([4, 5], block=False)
    q.shutdown()
    assert list(q) == [1, 2, 3, 4, 5]
    assert q.unfinished_tasks == 5
