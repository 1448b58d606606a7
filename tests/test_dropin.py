"""A true drop-in: subclassing, clear(), put_many's put_count (issue 10, section 3)."""
import asyncio
import copy
import pickle
import threading
import time

import pytest

import ringq
from _helpers import wait_until

# -- subclassing ----------------------------------------------------------------


def _job_queue_class(Queue):
    class JobQueue(Queue):
        """Tags every item on the way in and counts the gets: the overrides must be used."""

        def __init__(self, name, maxsize=0):
            super().__init__(maxsize)
            self.name = name
            self.gets = 0

        def put(self, item, block=True, timeout=None, *, cancel=None):
            super().put(("job", item), block, timeout, cancel=cancel)

        def get(self, block=True, timeout=None, *, cancel=None):
            self.gets += 1
            return super().get(block, timeout, cancel=cancel)

    return JobQueue


def test_subclass_adds_attributes_and_methods(Queue):
    JobQueue = _job_queue_class(Queue)
    q = JobQueue("builds", maxsize=2)
    assert q.name == "builds" and q.maxsize == 2
    q.extra = [1]  # a subclass has a __dict__
    assert q.__dict__["extra"] == [1]
    assert isinstance(q, Queue)


def test_nowait_calls_and_iteration_go_through_overrides(Queue):
    q = _job_queue_class(Queue)("x", maxsize=2)
    q.put_nowait(1)
    q.put(2)
    with pytest.raises(ringq.Full):
        q.put_nowait(3)  # through put(block=False): still Full
    assert q.get_nowait() == ("job", 1)
    assert q.gets == 1
    q.shutdown()
    assert list(q) == [("job", 2)]
    assert q.gets == 3  # one item and the get that ended the iteration
    with pytest.raises(ringq.ShutDown):
        q.get_nowait()


def test_base_instances_have_no_dict(Queue):
    """Only subclasses get a __dict__: a base instance stays small and its nowait calls direct."""
    q = Queue(1)
    with pytest.raises(AttributeError):
        q.put = None
    q.put_nowait(1)
    assert q.get_nowait() == 1


def test_priority_subclass_put_nowait_goes_through_put(qmod):
    seen = []

    class Tracked(qmod.PriorityQueue):
        def put(self, item, priority=None, block=True, timeout=None, *, cancel=None):
            seen.append((item, priority, block))
            super().put(item, priority, block, timeout, cancel=cancel)

    q = Tracked(levels=2)
    q.put_nowait("a", 0)
    assert seen == [("a", 0, False)]
    assert q.get_nowait() == "a"


def test_subclass_repr_pickle_copy_generic(Queue):
    class MyQ(Queue):
        pass

    q = MyQ(3)
    assert repr(q).startswith(f"<{__name__}.test_subclass_repr_pickle_copy_generic.<locals>.MyQ maxsize=3 qsize=0")
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="MyQ"):
            fn(q)
    alias = MyQ[int]
    assert alias.__origin__ is MyQ and alias.__args__ == (int,)
    assert repr(Queue(3)).startswith("<ringq.Queue maxsize=3")


def test_subclass_instances_are_collected_in_cycles(Queue):
    import gc
    import weakref

    class Sub(Queue):
        pass

    q = Sub()
    q.me = q
    q.put(q)
    ref = weakref.ref(q)
    del q
    gc.collect()
    assert ref() is None


def test_subclass_without_own_init_takes_the_base_arguments(Queue):
    Sub = type("Sub", (Queue,), {})
    assert Sub(maxsize=4).maxsize == 4


# -- clear() --------------------------------------------------------------------


def test_clear_drops_everything_and_counts_them_done(Queue):
    q = Queue()
    q.put_many(range(5))
    q.get()
    assert q.clear() == 4
    assert q.qsize() == 0 and q.empty()
    assert q.unfinished_tasks == 1  # the one taken by get()
    q.task_done()
    q.join()  # returns: nothing unfinished
    assert q.clear() == 0
    q.put("after")
    assert q.get() == "after"


def test_clear_releases_join(Queue):
    q = Queue()
    q.put_many([1, 2])
    joined = threading.Event()

    def joiner():
        q.join()
        joined.set()

    t = threading.Thread(target=joiner)
    t.start()
    time.sleep(0.1)
    assert not joined.is_set() and t.is_alive()  # blocked on the two items
    assert q.clear() == 2
    assert joined.wait(10)
    t.join(10)


def test_clear_wakes_blocked_putters(Queue):
    q = Queue(2)
    q.put_many([1, 2])
    put_done = threading.Event()

    def putter():
        q.put_many([3, 4])
        put_done.set()

    t = threading.Thread(target=putter)
    t.start()
    time.sleep(0.1)
    assert not put_done.is_set() and t.is_alive()  # blocked: no room
    assert q.clear() == 2
    assert put_done.wait(10)
    t.join(10)
    assert q.get_many(5) == [3, 4] and q.unfinished_tasks == 2


def test_clear_drops_all_priority_levels(qmod):
    q = qmod.PriorityQueue(levels=3, maxsize=4)
    q.put("a", 0)
    q.put("b", 1)
    q.put("c", 2)
    assert q.clear() == 3
    assert q.qsize() == 0 and q.unfinished_tasks == 0
    q.put("d", 2)
    q.put("e", 0)
    assert q.get_many(2) == ["e", "d"]


def test_clear_drops_items_outside_the_lock(Queue):
    q = Queue()
    seen = []

    class Reenter:
        def __del__(self):
            seen.append(q.qsize())  # would deadlock or see a half-cleared queue under the lock
            q.put_nowait("from __del__")

    q.put(Reenter())
    q.put(1)
    assert q.clear() == 2
    assert seen == [0]
    assert q.get_nowait() == "from __del__"


def test_clear_keeps_the_queue_usable_after_shutdown(Queue):
    q = Queue()
    q.put_many([1, 2])
    q.shutdown()
    assert q.clear() == 2
    with pytest.raises(ringq.ShutDown):
        q.get_nowait()


# -- put_many's put_count ---------------------------------------------------------


def test_put_many_full_carries_put_count(Queue):
    q = Queue(3)
    with pytest.raises(ringq.Full) as info:
        q.put_many(range(5), timeout=0.05)
    assert info.value.put_count == 3
    assert q.get_many(5) == [0, 1, 2]
    with pytest.raises(ringq.Full) as info:
        q.put_many([1, 2, 3, 4], block=False)  # all or nothing
    assert info.value.put_count == 0 and q.qsize() == 0


def test_put_many_shutdown_carries_put_count(Queue):
    q = Queue(2)
    failures = []

    def producer():
        try:
            q.put_many(range(10))
        except ringq.ShutDown as e:
            failures.append(e.put_count)

    t = threading.Thread(target=producer)
    t.start()
    wait_until(lambda: q.qsize() == 2)
    assert q.get() == 0
    wait_until(lambda: q.qsize() == 2)  # item 2 went in
    q.shutdown()
    t.join(10)
    assert failures == [3]
    with pytest.raises(ringq.ShutDown) as info:
        q.put_many([1])
    assert info.value.put_count == 0


def test_put_many_cancelled_carries_put_count(qmod):
    q = qmod.Queue(2)
    token = qmod.CancelToken(timeout=0.05)
    with pytest.raises(ringq.Cancelled) as info:
        q.put_many("abcd", cancel=token)
    assert info.value.put_count == 2
    with pytest.raises(ringq.Cancelled) as info:
        q.put_many("ef", cancel=token)  # already fired: nothing put
    assert info.value.put_count == 0 and q.qsize() == 2


def test_priority_put_many_carries_put_count(qmod):
    q = qmod.PriorityQueue(levels=2, maxsize=2)
    with pytest.raises(ringq.Full) as info:
        q.put_many("abc", priority=1, timeout=0.02)
    assert info.value.put_count == 2


def test_aput_many_carries_put_count(qmod):
    async def main():
        q = qmod.Queue(2)
        with pytest.raises(ringq.Full) as info:
            await q.aput_many(range(5), timeout=0.05)
        assert info.value.put_count == 2
        token = qmod.CancelToken(timeout=0.05)
        q.get()
        with pytest.raises(ringq.Cancelled) as info:
            await q.aput_many("xyz", cancel=token)
        assert info.value.put_count == 1
        q.shutdown()
        with pytest.raises(ringq.ShutDown) as info:
            await q.aput_many([1])
        assert info.value.put_count == 0

    asyncio.run(main())


# -- introspection ----------------------------------------------------------------


def test_signatures(qmod):
    import inspect

    assert str(inspect.signature(qmod.Queue)) == "(maxsize=0)"
    assert str(inspect.signature(qmod.PriorityQueue)) == "(levels=3, maxsize=0)"

    class Named(qmod.Queue):
        def __init__(self, name, maxsize=0):
            super().__init__(maxsize)

    assert str(inspect.signature(Named)) == "(name, maxsize=0)"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.Queue(size=3), "Queue() got an unexpected keyword argument 'size'"),
        (lambda m: m.Queue(1, 2), "Queue() takes from 0 to 1 positional arguments but 2 were given"),
        (lambda m: m.PriorityQueue(size=3), "PriorityQueue() got an unexpected keyword argument 'size'"),
    ],
)
def test_constructor_errors_name_the_class(qmod, call, message):
    with pytest.raises(TypeError) as info:
        call(qmod)
    assert str(info.value) == message


def test_help_shows_no_cython_internals(qmod):
    import pydoc

    # One exception: Cython keeps each cdef class's vtable in a "__pyx_vtable__" capsule
    # in the type's dict, and help() lists it. Cython has no switch to leave it out, and
    # the only way to remove it, deleting it from the type's dict, is a write into a type
    # dict that free-threaded builds share between threads (issue 16): the line stays.
    vtable_line = "__pyx_vtable__ = <capsule object NULL>"
    for cls in (qmod.Queue, qmod.PriorityQueue, qmod.CancelToken, qmod.Producer):
        text = pydoc.render_doc(cls, renderer=pydoc.plaintext).replace(vtable_line, "")
        assert "__pyx" not in text and "cython" not in text.lower().replace("ringq._queue_c", "")
    assert "Queue(maxsize=0)" in pydoc.render_doc(qmod.Queue, renderer=pydoc.plaintext)


def test_docstring_examples_are_indented_under_their_text(qmod):
    """inspect.getdoc() dedents; an example after "::" must stay indented below its line."""
    import inspect

    bad = []
    for cls in (qmod.Queue, qmod.PriorityQueue, qmod.CancelToken, qmod.Producer):
        for name, obj in [("", cls), *vars(cls).items()]:
            lines = (inspect.getdoc(obj) or "").splitlines()
            for i, line in enumerate(lines):
                if not line.rstrip().endswith("::"):
                    continue
                rest = [x for x in lines[i + 1:] if x.strip()]
                indent = len(line) - len(line.lstrip())
                if rest and len(rest[0]) - len(rest[0].lstrip()) <= indent:
                    bad.append(f"{cls.__name__}.{name}")
    assert bad == []


class _NoBool:
    def __bool__(self):
        raise RuntimeError("no bool")


def _shut(q):
    q.shutdown()
    return q


# Bad calls whose messages must match word for word in both implementations. Left
# out: a method called with too many positional arguments (the message is Python's
# or Cython's own wording) and writes to read-only properties (both AttributeError).
BAD_CALLS = {
    "ctor keyword": lambda m: m.Queue(size=3),
    "ctor positional": lambda m: m.Queue(1, 2),
    "ctor maxsize str": lambda m: m.Queue("3"),
    "ctor maxsize float": lambda m: m.Queue(3.0),
    "pq keyword": lambda m: m.PriorityQueue(size=3),
    "pq positional": lambda m: m.PriorityQueue(1, 2, 3),
    "pq levels 0": lambda m: m.PriorityQueue(0),
    "pq levels str": lambda m: m.PriorityQueue("3"),
    "pq levels bool": lambda m: m.PriorityQueue(True),
    "put timeout negative": lambda m: m.Queue().put(1, timeout=-1),
    "put timeout nan": lambda m: m.Queue().put(1, timeout=float("nan")),
    "put timeout str": lambda m: m.Queue().put(1, timeout="1"),
    "put cancel": lambda m: m.Queue().put(1, cancel=1),
    "put shut down": lambda m: _shut(m.Queue()).put(1),
    "put_nowait full": lambda m: m.Queue(1).put_many([1, 2], block=False),
    "get timeout negative": lambda m: m.Queue().get(timeout=-1),
    "get timeout str": lambda m: m.Queue().get(timeout="x"),
    "get timeout negative shut down": lambda m: _shut(m.Queue()).get(timeout=-1),
    "get_nowait empty": lambda m: m.Queue().get_nowait(),
    "get shut down": lambda m: _shut(m.Queue()).get(),
    "get_many zero": lambda m: m.Queue().get_many(0),
    "get_many str": lambda m: m.Queue().get_many("a"),
    "get_many timeout": lambda m: m.Queue().get_many(1, timeout=-1),
    "put_many not iterable": lambda m: m.Queue().put_many(5),
    "put_many timeout": lambda m: m.Queue().put_many([1], timeout=-1),
    "put_many shut down": lambda m: _shut(m.Queue()).put_many([1]),
    "put_evict shut down": lambda m: _shut(m.Queue()).put_evict(1),
    "maxsize str": lambda m: setattr(m.Queue(), "maxsize", "x"),
    "maxsize delete": lambda m: delattr(m.Queue(), "maxsize"),
    "task_done too often": lambda m: m.Queue().task_done(),
    "shutdown bool raises": lambda m: m.Queue().shutdown(immediate=_NoBool()),
    "join cancel": lambda m: m.Queue().join(cancel="x"),
    "priority range": lambda m: m.PriorityQueue().put(1, 5),
    "priority str": lambda m: m.PriorityQueue().put(1, "a"),
    "priority bool": lambda m: m.PriorityQueue().put_nowait(1, True),
    "watermark low above high": lambda m: m.Queue(10).on_watermark(0.5, 0.7, print),
    "watermark unbounded fraction": lambda m: m.Queue().on_watermark(0.8, 0.7, print),
    "token timeout": lambda m: m.CancelToken(timeout=-1),
    "pickle": lambda m: pickle.dumps(m.Queue()),
    "copy priority": lambda m: copy.copy(m.PriorityQueue()),
}


def _outcome(qmod, call):
    try:
        call(qmod)
    except Exception as e:  # noqa: BLE001  (comparing whatever each raises)
        return type(e).__name__, str(e)
    return "no error", ""


def test_error_messages_are_the_same_in_both_implementations():
    from conftest import load_impl

    core, twin = load_impl("cython"), load_impl("python")
    differ = {}
    for name, call in BAD_CALLS.items():
        got = _outcome(core, call), _outcome(twin, call)
        if got[0] != got[1]:
            differ[name] = got
        assert got[0][0] != "no error", name  # each entry is a bad call
    assert differ == {}
