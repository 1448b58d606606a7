"""Process stages for ringq.Pipeline: ``p.stage(fn, workers=4, processes=True)``.

A process stage keeps the thread stage's interface (its bounded input queue,
ordering, window, rate, stats, cancel, close) and moves the calls of ``fn`` to a
:class:`ringq.ProcessExecutor` of *workers* processes. Two threads of the
pipeline serve it:

* the *feeder* takes a batch from the stage's queue, pickles it and submits it
  to the pool as one task, then the next one, without waiting for the results:
  up to ``2 * workers`` batches are in flight (an ordered stage: up to its
  *window*), so that each worker process has its next batch at hand when it
  finishes one and never waits for a round trip through the parent;
* the *emitter* takes the batches as they come back (a future's callback hands
  them over) and passes their outputs on, in input order for an ordered stage
  (a batch that finishes early waits for the earlier ones, holding its window
  token), then gives the batch's token back to the feeder.

Batch size adapts: a batch holds about ``BATCH_SECONDS`` of work in a worker
(measured there, per item, on the batches before) and about ``BATCH_BYTES``
pickled each way, so that the parent's cost per batch (its threads share one
core with everything else the pipeline does) stays a small part of the work.
The first batches hold one item each.

*fn* reaches the processes once, as the pool's initializer argument: with the
fork start method nothing is pickled (a lambda works); with spawn or forkserver
it must pickle, which is checked when the stage is added (TypeError naming it).
A stage with a *rate* runs on the stage's usual worker threads instead, one call
(one round trip) per item, each call waiting for the rate limiter.

Stopping: when the pipeline halts (first error anywhere, cancel, close, break,
Ctrl-C) the stage's processes are killed at once and its internal queues shut
down, so the feeder and the emitter return; on a clean end the emitter passes the
last batch on, shuts the next queue down (the next stage drains it), and the pool
is shut down and joined with the pipeline's threads. A worker process that dies
fails its batch with ``WorkerDied``, which stops the pipeline like any stage
error; a batch's first error is raised with the child's traceback.
"""
from __future__ import annotations

import inspect
import multiprocessing
import pickle
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from time import perf_counter
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ._errors import Cancelled, ShutDown
from ._pipeline_stage import PROCESS_MAXSIZE
from ._queue import Queue
from .process_pool import ProcessExecutor, check_sendable

__all__ = ["RemoteStage"]

#: A batch holds about this much work, measured in the worker process...
BATCH_SECONDS = 0.01
#: ... and about this many bytes of pickled items (or outputs, whichever is more) ...
BATCH_BYTES = 1 << 20
#: ... and at most this many items (also limited by what the stage's queue holds, by
#: default as many: see PROCESS_MAXSIZE).
MAX_BATCH = PROCESS_MAXSIZE
#: Batches in flight per worker process (unordered stages; an ordered one: its window).
IN_FLIGHT_PER_WORKER = 2
#: A batch that pickles to more is sent as several tasks (the pool takes 8 MiB at most).
_SPLIT_BYTES = 4 << 20

_fn: Optional[Callable[[Any], Any]] = None


def _install(fn: Callable[[Any], Any]) -> None:
    """In the worker process: the stage's function, for the calls below."""
    global _fn
    _fn = fn


def _run_batch(data: bytes, generator: bool) -> Tuple[bytes, float]:
    """In the worker process: ``fn`` on each of the pickled items; returns the
    outputs (``SKIP`` dropped, a generator's items flattened) pickled, so that
    the parent learns their size, and the seconds it took."""
    from .pipeline import SKIP

    start = perf_counter()
    fn = _fn
    assert fn is not None
    items = pickle.loads(data)
    out: List[Any] = []
    if generator:
        for item in items:
            out.extend(fn(item))
    else:
        append = out.append
        for item in items:
            result = fn(item)
            if result is not SKIP:
                append(result)
    data = pickle.dumps(out, protocol=5)
    return data, perf_counter() - start


def _run_one(item: Any) -> Any:
    assert _fn is not None
    return _fn(item)


def _run_gen(item: Any) -> List[Any]:
    assert _fn is not None
    return list(_fn(item))


class _Halted(Exception):
    """Internal: a batch failed because the pipeline halted (not this stage's error)."""


class _Batch:
    """A batch in flight: its futures (one, or several when it was split to fit)."""

    __slots__ = ("seq", "size", "in_bytes", "futures", "remaining")

    def __init__(self, seq: int, size: int, in_bytes: int, pieces: int) -> None:
        self.seq = seq
        self.size = size
        self.in_bytes = in_bytes
        self.futures: List[Future[Any]] = []
        self.remaining = pieces


class RemoteStage:
    """The processes of one stage: a ProcessExecutor, and the threads that feed it."""

    def __init__(self, fn: Callable[[Any], Any], workers: int, mp_context: Any = None) -> None:
        ctx = mp_context if mp_context is not None else multiprocessing.get_context()
        if ctx.get_start_method() != "fork":
            check_sendable(fn, "stage function")
        self.generator = inspect.isgeneratorfunction(fn)
        self.workers = workers
        self.halted = False
        self.pool = ProcessExecutor(workers, mp_context=ctx, initializer=_install, initargs=(fn,))
        # Each worker holds its next batch while it runs one: it need not wait for the
        # parent to collect a result before it gets the next batch.
        # The ignore is for process_pool.pyi, which mypy reads unless process_pool.py is checked too.
        self.pool._core.min_ahead = IN_FLIGHT_PER_WORKER  # type: ignore[attr-defined, unused-ignore]
        # The per-item call (used when the stage has a rate): a generator function
        # for a generator stage, so that the pipeline treats it as one.
        self.call: Callable[[Any], Any] = self._call_gen if self.generator else self._call_one
        # The batches in flight: tokens bound them (an ordered stage uses its window's),
        # batches that came back wait in `landed` for the emitter.
        self.tokens: Optional[Queue[None]] = None
        self.landed: Queue[_Batch] = Queue(0)
        self.lock = threading.Lock()
        self.in_flight = 0       # batches submitted and not yet taken by the emitter
        self.feeding = True      # the feeder may still submit batches
        self.batch_size = 1
        self.item_seconds = 0.0  # moving averages per item, measured on the batches before
        self.item_bytes = 0.0

    # --- the pipeline's threads ------------------------------------------------------------

    def threads(self, pipeline: Any, stage: Any, out: Queue[Any]) -> List[Tuple[Callable[..., None],
                                                                                   Tuple[Any, ...], str]]:
        """The pipeline's threads for this stage: (target, args, name) of the feeder and the emitter."""
        if stage.ordered:
            self.tokens = stage.tokens  # the window bounds the batches in flight
        else:
            self.tokens = Queue(IN_FLIGHT_PER_WORKER * self.workers)
            self.tokens.put_many([None] * (IN_FLIGHT_PER_WORKER * self.workers))
        counters = stage.counters[0]  # the feeder and the emitter write different fields of it
        return [(self._feed, (pipeline, stage, counters), "feed"),
                (self._emit, (pipeline, stage, counters, out), "results")]

    def _pack(self, items: List[Any], name: str) -> List[bytes]:
        """*items* pickled: one piece, or several if that is too big for one task."""
        try:
            data = pickle.dumps(items, protocol=5)
        except Exception as exc:
            raise TypeError(f"cannot send an item to the processes of stage {name!r}: it cannot be "
                            f"pickled ({exc}); pass items that pickle (plain data, not open files, "
                            "locks or sockets)") from exc
        if len(data) > _SPLIT_BYTES and len(items) > 1:
            half = len(items) // 2
            return self._pack(items[:half], name) + self._pack(items[half:], name)
        return [data]

    def _feed(self, pipeline: Any, stage: Any, counters: Any) -> None:
        """Take batches from the stage's queue and submit them, while tokens last."""
        assert self.tokens is not None
        take_token = self.tokens.get
        get_many = stage.inbox.get_many
        cancel = pipeline._cancel
        where = f"stage {stage.name!r}"
        seq = 0
        try:
            while True:
                try:
                    take_token(cancel=cancel)
                except ShutDown:
                    return  # the pipeline is stopping
                except Cancelled as exc:
                    pipeline._fail(exc, where)
                    return
                t0 = perf_counter()
                try:
                    items = get_many(self.batch_size, cancel=cancel)
                except ShutDown:
                    return  # drained (the clean end), or the pipeline is stopping
                except Cancelled as exc:
                    pipeline._fail(exc, where)
                    return
                counters.get_wait += perf_counter() - t0
                counters.items_in += len(items)
                try:
                    pieces = self._pack(items, stage.name)
                    batch = _Batch(seq, len(items), sum(map(len, pieces)), len(pieces))
                    seq += 1
                    with self.lock:
                        self.in_flight += 1
                    for piece in pieces:
                        future = self.pool.submit(_run_batch, piece, self.generator)
                        batch.futures.append(future)
                        future.add_done_callback(partial(self._landed, batch))
                except (BrokenProcessPool, RuntimeError) as exc:
                    if not self._halted(pipeline):
                        pipeline._fail(exc, where)
                    return
                except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
                    pipeline._fail(exc, where)
                    return
        finally:
            with self.lock:
                self.feeding = False
                finished = self.in_flight == 0
            if finished:
                self.landed.shutdown()  # nothing in flight: the emitter ends

    def _landed(self, batch: _Batch, future: Future[Any]) -> None:
        """A future's callback (in the pool's collector thread): hand the batch over once whole."""
        with self.lock:
            batch.remaining -= 1
            whole = batch.remaining == 0
        if whole:
            try:
                self.landed.put_nowait(batch)
            except ShutDown:
                pass  # the pipeline is stopping

    def _halted(self, pipeline: Any) -> bool:
        return self.halted or pipeline._stop.is_set()

    def _outputs(self, pipeline: Any, batch: _Batch, counters: Any) -> List[Any]:
        """The outputs of a batch that came back; raises its error."""
        outputs: List[Any] = []
        seconds = 0.0
        out_bytes = 0
        for future in batch.futures:
            if future.cancelled():
                raise _Halted  # cancelled by terminate(): the pipeline is stopping
            exc = future.exception()
            if exc is not None:
                if self._halted(pipeline):
                    raise _Halted
                raise exc
            data, elapsed = future.result()
            seconds += elapsed
            out_bytes += len(data)
            outputs.extend(pickle.loads(data))
        counters.busy += seconds
        # Size the next batches: about BATCH_SECONDS of work and BATCH_BYTES each way.
        weight = 0.3 if self.item_seconds else 1.0
        self.item_seconds += weight * (seconds / batch.size - self.item_seconds)
        self.item_bytes += weight * (max(batch.in_bytes, out_bytes) / batch.size - self.item_bytes)
        size = BATCH_SECONDS / self.item_seconds if self.item_seconds > 0 else MAX_BATCH
        if self.item_bytes > 0:
            size = min(size, BATCH_BYTES / self.item_bytes)
        self.batch_size = max(1, min(MAX_BATCH, int(size)))
        return outputs

    def _emit(self, pipeline: Any, stage: Any, counters: Any, out: Queue[Any]) -> None:
        """Pass on the outputs of the batches that come back (in order if the stage is ordered)."""
        assert self.tokens is not None
        give_token = self.tokens.put
        get_landed = self.landed.get_many
        put_many = out.put_many
        qsize = out.qsize
        cancel = pipeline._cancel
        where = f"stage {stage.name!r}"
        ordered = stage.ordered
        waiting: Dict[int, List[Any]] = {}  # ordered: outputs of batches ahead of their turn
        next_seq = 0
        finished = False
        try:
            while True:
                try:
                    landed = get_landed(64, cancel=cancel)
                except ShutDown:
                    break  # everything was passed on, or the pipeline is stopping
                except Cancelled as exc:
                    pipeline._fail(exc, where)
                    return
                for batch in landed:
                    try:
                        outputs = self._outputs(pipeline, batch, counters)
                    except _Halted:
                        return
                    except BaseException as exc:  # noqa: BLE001 - the first error stops the pipeline
                        counters.errors += 1
                        pipeline._fail(exc, where)
                        return
                    if ordered:
                        waiting[batch.seq] = outputs
                        due = []
                        while next_seq in waiting:
                            due.append(waiting.pop(next_seq))
                            next_seq += 1
                    else:
                        due = [outputs]
                    del outputs
                    for outputs in due:
                        t0 = perf_counter()
                        try:
                            if outputs:
                                put_many(outputs, cancel=cancel)
                            give_token(None)
                        except ShutDown:
                            return
                        except Cancelled as exc:
                            pipeline._fail(exc, where)
                            return
                        counters.put_wait += perf_counter() - t0
                        counters.items_out += len(outputs)
                        size = qsize()
                        if size > counters.high_water:
                            counters.high_water = size
                    with self.lock:
                        self.in_flight -= 1
                        finished = not self.feeding and self.in_flight == 0
                    if finished:
                        break
                if finished:
                    break
            if not self._halted(pipeline):
                out.shutdown()  # the clean end: the next stage drains its queue, then stops
        except BaseException as exc:  # noqa: BLE001 - must not die silently
            pipeline._fail(exc, where)

    # --- per item (a stage with a rate) ------------------------------------------------------

    def _result(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return self.pool.submit(fn, *args).result()
        except (BrokenProcessPool, RuntimeError):
            if self.halted:
                from .pipeline import _Stopped

                raise _Stopped from None  # the pipeline halted: not this stage's error
            raise

    def _call_one(self, item: Any) -> Any:
        return self._result(_run_one, item)

    def _call_gen(self, item: Any) -> Iterator[Any]:
        yield from self._result(_run_gen, item)

    # --- stopping -----------------------------------------------------------------------------

    def terminate(self) -> None:
        """The pipeline halts: kill the processes now; the feeder and the emitter return."""
        self.halted = True
        self.landed.shutdown(immediate=True)
        tokens = self.tokens
        if tokens is not None:
            tokens.shutdown(immediate=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool._core.terminate()  # type: ignore[attr-defined, unused-ignore]  # see min_ahead above

    def close(self) -> None:
        """After the stage's threads ended: stop the processes and reap them."""
        self.pool.shutdown(wait=True)
