"""What a ``ringq.Pipeline``'s threads run (see the map in ``ringq.pipeline``).

The source reader (:func:`read_source`, one thread) and the workers of the thread
stages (:func:`work`, :func:`work_ordered`, *workers* threads a stage). Each takes
its ``Pipeline`` as *pipe*, for the user's token (``pipe._cancel``), the stop flag
and ``pipe._fail``, which records the first error and halts everything.
"""
from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterator as IteratorABC
from itertools import islice
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from ._errors import Cancelled, ShutDown
from ._pipeline_stage import (
    FLUSH_EVERY,
    MAX_BATCH,
    SKIP,
    WorkerExit,
    _Counters,
    _FunctionFailed,
    _SourceFailed,
    _Stage,
    _Stopped,
)

if TYPE_CHECKING:
    from ._queue import Queue
    from .pipeline import Pipeline


def read_source(pipe: Pipeline, out: Queue[Any]) -> None:
    """The reader thread: put the source's items into the first queue, then shut it down."""
    counters = pipe._source_counters
    put = out.put
    put_many = out.put_many
    stop = pipe._stop
    source = pipe._source
    cancel = pipe._cancel
    iterator: Any = None
    try:
        get_many = getattr(source, "get_many", None) if pipe._source_is_queue else None
        if get_many is not None:
            # A queue: take what it holds (up to MAX_BATCH) without waiting for more.
            def pull() -> List[Any]:
                try:
                    return list(get_many(MAX_BATCH))
                except ShutDown as exc:
                    if exc.__cause__ is not None:
                        raise _SourceFailed(exc) from None  # a producer left on an error
                    return []  # shut down and drained: the end of the source
        elif isinstance(source, Collection) and not isinstance(source, IteratorABC):
            # In memory (list, tuple, range, dict, set...): taking a slice never waits.
            iterator = iter(source)

            def pull() -> List[Any]:
                return list(islice(iterator, MAX_BATCH))
        else:
            # Anything else (generators, files, sockets) one item at a time: an item
            # already read must not wait in here while the next one is slow to come.
            iterator = iter(source)
            next_item = iterator.__next__

            def pull() -> List[Any]:
                try:
                    return [next_item()]
                except StopIteration:
                    return []  # exhausted
                except ShutDown as exc:
                    if exc.__cause__ is not None:
                        raise _SourceFailed(exc) from None  # a producer left on an error
                    return []  # a queue-like iterator: shut down and drained
        while True:
            t0 = perf_counter()
            batch = pull()
            if not batch:
                break
            t1 = perf_counter()
            counters.busy += t1 - t0
            counters.items_in += len(batch)
            if stop.is_set():
                return
            if len(batch) == 1:
                put(batch[0], cancel=cancel)
            else:
                put_many(batch, cancel=cancel)
            counters.sent(t1, len(batch), out)
    except _SourceFailed as failed:
        # `for x in q` raises this ShutDown, chained to the producer's exception:
        # the pipeline raises it too, instead of ending as if the stream were complete.
        counters.errors += 1
        pipe._fail(failed.args[0], "source")
        return
    except ShutDown:
        return  # our queue was shut down: the pipeline is stopping
    except Cancelled as exc:
        if cancel is None or not cancel.cancelled:
            counters.errors += 1  # raised by the source itself, not by our token
        pipe._fail(exc, "source")
        return
    except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
        counters.errors += 1
        pipe._fail(exc, "source")
        return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None and not pipe._source_is_queue:
            try:
                close()  # a generator source runs its finally blocks now
            except Exception:  # noqa: BLE001 - an error while closing is not the pipeline's
                pass
    out.shutdown()  # clean end: the first stage drains its queue, then stops


def call_all(pipe: Pipeline, stage: _Stage, batch: List[Any], counters: _Counters,
             flush: Optional[Callable[[List[Any]], None]]) -> List[Any]:
    """Run the stage's function on *batch*; return the outputs not yet passed on.

    What the function raises comes out as ``_FunctionFailed``; ``_Stopped`` means the
    pipeline is stopping (from the rate limiter, *flush* or a process stage)."""
    fn = stage.fn
    limiter = stage.limiter
    try:
        out: List[Any] = []
        if limiter is None and not stage.generator:
            append = out.append
            for item in batch:
                result = fn(item)
                if result is not SKIP:
                    append(result)
            return out
        stop = pipe._stop
        for item in batch:
            if limiter is not None:
                t0 = perf_counter()
                if not limiter._acquire_or_stop(stop):
                    raise _Stopped
                counters.rate_wait += perf_counter() - t0
            if stage.generator:
                for result in fn(item):
                    out.append(result)
                    if flush is not None and len(out) >= FLUSH_EVERY:
                        flush(out)
                        out = []
            else:
                result = fn(item)
                if result is not SKIP:
                    out.append(result)
        return out
    except _Stopped:
        raise
    except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
        raise _FunctionFailed(exc) from None


def work(pipe: Pipeline, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
    """A worker thread of an unordered stage: take a batch, call the function on each
    item, put the results into *out*; until the stage's queue ends or the pipeline stops
    (see ``WorkerExit``)."""
    get_many = stage.inbox.get_many
    put_many = out.put_many
    cancel = pipe._cancel
    batch_size = 1
    leaving = WorkerExit(pipe, stage, counters, out)

    def flush(items: List[Any]) -> None:  # also called by call_all, for a generator stage
        t0 = perf_counter()
        try:
            put_many(items, cancel=cancel)
        except (ShutDown, Cancelled) as exc:
            raise leaving.put_ended(exc) from None
        counters.sent(t0, len(items), out)

    with leaving:
        while True:
            t0 = perf_counter()
            batch = get_many(batch_size, cancel=cancel)
            mark = counters.took(t0, len(batch))
            results = call_all(pipe, stage, batch, counters, flush)
            batch_size = counters.worked(mark, len(batch))
            if results:
                flush(results)


def work_ordered(pipe: Pipeline, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
    """A worker thread of an ordered stage: as :func:`work`, but each batch is taken with
    its sequence number, and results are passed on in that order (see ``_Stage``)."""
    get_many = stage.inbox.get_many
    put_many = out.put_many
    assert stage.tokens is not None
    take_token = stage.tokens.get
    give_tokens = stage.tokens.put_many
    cancel = pipe._cancel
    batch_size = 1
    with WorkerExit(pipe, stage, counters, out):
        while True:
            t0 = perf_counter()
            take_token(cancel=cancel)  # ShutDown: the pipeline is stopping (_halt shut the tokens down)
            try:
                with stage.take_lock:
                    batch = get_many(batch_size, cancel=cancel)
                    seq = stage.next_seq
                    stage.next_seq = seq + 1
            except ShutDown:
                stage.give_back_token()  # the clean end
                raise
            mark = counters.took(t0, len(batch))
            results = call_all(pipe, stage, batch, counters, None)
            batch_size = counters.worked(mark, len(batch))
            # Hand the results in; pass on every batch now due, in order.
            if not stage.hand_in(seq, results):
                continue
            for due in stage.due_batches():
                t2 = perf_counter()
                if due:
                    put_many(due, cancel=cancel)
                give_tokens([None], cancel=cancel)
                counters.sent(t2, len(due), out)
