"""A typed tour of ringq's whole public API.

Two checks use this file:

* ``mypy --strict examples/typed_usage.py`` (CI's lint job): the stubs must give every
  call below a precise type. ``assert_type`` fails type checking if a stub returns
  ``Any`` or the wrong type, so this is a test of src/ringq/*.pyi, not just a demo.
* ``python examples/typed_usage.py`` (CI's test jobs): the same calls, run against the
  installed ringq (compiled core or pure-Python twin), must behave as docs/api.md says.
  It exits non-zero on the first broken promise.

Public names used: Queue (and Queue[int]), Empty, Full, ShutDown, IMPLEMENTATION,
__version__; every Queue method and property; iteration; the context manager;
PriorityQueue, Broadcast, Subscription, Router and UnroutableError; ProcessQueue (and
ProcessQueue[int]) and ProcessQueueStatistics.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Literal

import ringq

if TYPE_CHECKING:
    # typing.assert_type is 3.11+; mypy always knows typing_extensions, and at run time
    # the stand-in below is used, so ringq needs no extra dependency for this example.
    from typing_extensions import assert_type
else:

    def assert_type(value, _type):
        return value


def expect(exc: type[BaseException], what: str) -> _Raises:
    """``with expect(ringq.Full, "put_nowait on a full queue"): ...`` fails unless it raises."""
    return _Raises(exc, what)


class _Raises:
    def __init__(self, exc: type[BaseException], what: str) -> None:
        self.exc = exc
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        if exc_type is None:
            raise AssertionError(f"{self.what}: did not raise {self.exc.__name__}")
        return issubclass(exc_type, self.exc)  # anything else propagates


def basics() -> None:
    impl = assert_type(ringq.IMPLEMENTATION, Literal["cython", "python"])
    assert impl in ("cython", "python")
    version = assert_type(ringq.__version__, str)
    assert version and version[0].isdigit(), version

    q: ringq.Queue[int] = ringq.Queue(maxsize=4)
    assert assert_type(q.maxsize, int) == 4
    assert assert_type(q.empty(), bool) and not q.full()
    assert assert_type(q.qsize(), int) == 0

    q.put(1)
    q.put(2, block=True, timeout=1.0)
    q.put_nowait(3)
    q.put_many([4])
    assert q.full() and q.qsize() == 4
    with expect(ringq.Full, "put_nowait on a full queue"):
        q.put_nowait(5)
    with expect(ringq.Full, "put with a timeout on a full queue"):
        q.put(5, timeout=0.01)
    with expect(ringq.Full, "put_many(block=False) that does not fit"):
        q.put_many([5], block=False)

    first = assert_type(q.get(), int)
    second = q.get(timeout=1.0)
    third = q.get_nowait()
    rest = assert_type(q.get_many(10), list[int])
    assert [first, second, third] == [1, 2, 3] and rest == [4], (first, second, third, rest)
    with expect(ringq.Empty, "get_nowait on an empty queue"):
        q.get_nowait()
    with expect(ringq.Empty, "get with a timeout on an empty queue"):
        q.get(timeout=0.01)
    with expect(ringq.Empty, "get_many(block=False) on an empty queue"):
        q.get_many(2, block=False)

    # maxsize is assignable; any iterable of the item type goes to put_many.
    q.maxsize = 8
    q.put_many(range(8))
    assert q.full() and q.get_many(3, block=False) == [0, 1, 2]

    # Every put counted one unfinished task: 4 + 8 so far, and 4 + 3 were taken.
    assert assert_type(q.unfinished_tasks, int) == 12
    for _ in range(7):
        q.task_done()
    assert q.unfinished_tasks == 5

    q.shutdown(immediate=True)  # drops the 5 left and counts them as done
    assert assert_type(q.is_shutdown, bool) and q.qsize() == 0 and q.unfinished_tasks == 0
    q.join()  # nothing unfinished: returns at once
    with expect(ringq.ShutDown, "put on a shut-down queue"):
        q.put(9)
    with expect(ringq.ShutDown, "get on a shut-down, empty queue"):
        q.get()


def worker(q: ringq.Queue[int], seen: list[int]) -> None:
    for item in q:  # get() until the queue is shut down and drained
        seen.append(assert_type(item, int))
        q.task_done()


def producer_consumer() -> None:
    q = ringq.Queue[int](maxsize=2)  # the subscripted class is callable at run time too
    seen: list[int] = []
    t = threading.Thread(target=worker, args=(q, seen))
    t.start()
    q.put_many(range(100))  # blocks whenever the worker falls two items behind
    q.join()  # every item got task_done()
    assert seen == list(range(100))
    q.shutdown()  # ends the worker's for-loop
    t.join(10)
    assert not t.is_alive()
    assert iter(q) is q


def context_manager() -> None:
    with ringq.Queue[str](maxsize=2) as q:
        q.put("a")
        word = assert_type(q.get(), str)
        assert word == "a"
    assert q.is_shutdown  # __exit__ called shutdown()


def subclassable_and_unpicklable() -> None:
    import pickle

    with expect(TypeError, "pickling a Queue"):
        pickle.dumps(ringq.Queue())

    class Jobs(ringq.Queue[str]):  # subclassable, like queue.Queue (docs/api.md, "Subclassing")
        def put(self, item: str, block: bool = True, timeout: float | None = None, *,
                cancel: ringq.CancelToken | None = None) -> None:
            super().put(item.upper(), block, timeout, cancel=cancel)

    jobs = Jobs(maxsize=2)
    jobs.put_nowait("a")  # put_nowait calls the subclass's put
    assert assert_type(jobs.get(), str) == "A"
    with expect(TypeError, "pickling a Queue subclass's instance"):
        pickle.dumps(jobs)


def priorities_and_eviction() -> None:
    latest = ringq.Queue[int](maxsize=2)
    assert assert_type(latest.put_evict(1), tuple[int, ...]) == ()
    latest.put_evict(2)
    assert latest.put_evict(3) == (1,)  # full: the oldest makes room

    pq = ringq.PriorityQueue[str](levels=3, maxsize=10)
    assert assert_type(pq.levels, int) == 3
    pq.put("normal")  # the middle level, 1
    pq.put("urgent", 0)
    pq.put_nowait("later", priority=2)
    pq.put_many(["a", "b"], priority=2, timeout=1.0)
    assert assert_type(pq.get(), str) == "urgent"
    assert assert_type(pq.get_many(10), list[str]) == ["normal", "later", "a", "b"]
    with expect(ValueError, "a priority outside range(levels)"):
        pq.put("x", 3)
    assert isinstance(pq, ringq.Queue)


def publish_and_route() -> None:
    news = ringq.Broadcast[str](maxsize=4, overflow="drop_oldest")
    with news.subscribe() as feed:
        sub = assert_type(feed, ringq.Subscription[str])
        news.publish("hello")
        assert assert_type(sub.get(), str) == "hello"
        assert assert_type(sub.dropped, int) == 0
    news.shutdown()
    with expect(ringq.ShutDown, "publish after shutdown"):
        news.publish("late")

    words = ringq.Queue[str]()
    numbers = ringq.Queue[str]()
    router = ringq.Router[str](str.isdigit, {True: numbers, False: words})
    router.put("42")
    router.put_many(["x", "7"])
    assert numbers.get_many(5) == ["42", "7"] and words.get() == "x"
    strict = ringq.Router[str](len, {1: words})
    with expect(ringq.UnroutableError, "an item without a route"):
        strict.put("too long")
    with expect(KeyError, "UnroutableError is a KeyError"):
        strict.put("too long")
    router.shutdown()
    assert numbers.is_shutdown and words.is_shutdown

    # A dict of queues as the routes, typed as users write it (issue 17, item 28: a
    # Mapping[Hashable, Any] parameter rejected a dict[str, Queue[int]]).
    inbox: dict[str, ringq.Queue[int]] = {"even": ringq.Queue[int](), "odd": ringq.Queue[int]()}
    parity = ringq.Router[int](lambda n: "odd" if n % 2 else "even", inbox)
    parity.put_many([1, 2, 3])
    assert inbox["odd"].get_many(5) == [1, 3] and inbox["even"].get() == 2


def asyncio_calls() -> None:
    import asyncio

    async def run() -> None:
        q = ringq.Queue[int](maxsize=4)
        await q.aput(1)
        await q.aput_many([2, 3], timeout=1.0)
        assert assert_type(await q.aget(), int) == 1
        assert assert_type(await q.aget_many(5, timeout=1.0), list[int]) == [2, 3]
        view = assert_type(q.async_q, ringq.AsyncQueueView[int])
        await view.put(4)
        assert assert_type(await view.get(), int) == 4
        assert assert_type(q.sync_q, ringq.Queue[int]) is q
        for _ in range(4):
            view.task_done()
        await q.ajoin(timeout=1.0)
        q.put(5)
        q.shutdown()
        assert [item async for item in q] == [5]
        with expect(ringq.ShutDown, "aget after shutdown and drain"):
            await q.aget()

    asyncio.run(run())


def process_queue() -> None:
    pq = ringq.ProcessQueue[int](maxsize=4, capacity=4096)  # generic, like Queue
    try:
        pq.put(1)
        pq.put_many([2, 3])
        assert assert_type(pq.get(), int) == 1
        assert assert_type(pq.get_many(5), list[int]) == [2, 3]
        assert assert_type(pq.statistics(), ringq.ProcessQueueStatistics).gets == 3
        with expect(ringq.Empty, "get_nowait on an empty ProcessQueue"):
            pq.get_nowait()
    finally:
        pq.close()


def main() -> None:
    basics()
    asyncio_calls()
    producer_consumer()
    context_manager()
    subclassable_and_unpicklable()
    priorities_and_eviction()
    publish_and_route()
    process_queue()
    print(f"typed_usage: ok (ringq {ringq.__version__}, {ringq.IMPLEMENTATION})")


if __name__ == "__main__":
    main()
