"""A ``ringq.Pipeline``'s async stages (see the map in ``ringq.pipeline``).

Every ``async def`` stage of a pipeline runs on one event loop that the pipeline
owns, in one thread of its own (:func:`run_loop`): *workers* tasks a stage
(:func:`awork`, :func:`awork_ordered`), the same steps as the thread workers of
``_pipeline_threads`` with the queue calls awaited. ``Pipeline._halt`` stops them by
cancelling the tasks from its own thread (``loop.call_soon_threadsafe``).
"""
from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Tuple

from ._errors import Cancelled, ShutDown
from ._pipeline_stage import FLUSH_EVERY, SKIP, WorkerExit, _Counters, _FunctionFailed, _Stage, _Stopped

if TYPE_CHECKING:
    from ._queue import CancelToken, Queue
    from .pipeline import Pipeline


def run_loop(pipe: Pipeline, loop: asyncio.AbstractEventLoop, stages: List[Tuple[_Stage, Queue[Any]]]) -> None:
    """The loop thread: run every async stage's workers on *loop*, then close it."""
    try:
        asyncio.set_event_loop(loop)  # for code in a stage that asks for "the" loop
        loop.run_until_complete(_main(pipe, stages))
    finally:
        try:
            # No async generator, executor thread or task of ours is left behind.
            loop.run_until_complete(loop.shutdown_asyncgens())
            shutdown_executor = getattr(loop, "shutdown_default_executor", None)
            if shutdown_executor is not None:
                loop.run_until_complete(shutdown_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _main(pipe: Pipeline, stages: List[Tuple[_Stage, Queue[Any]]]) -> None:
    create_task = asyncio.get_running_loop().create_task
    workers = []
    for stage, out in stages:
        if stage.ordered:
            stage.atake_lock = asyncio.Lock()
        work = awork_ordered if stage.ordered else awork
        for worker in range(stage.workers):
            workers.append(create_task(work(pipe, stage, stage.counters[worker], out)))
    watcher = create_task(_watch_token(pipe, pipe._cancel)) if pipe._cancel is not None else None
    pipe._tasks = workers + ([watcher] if watcher is not None else [])
    if pipe._stop.is_set():
        pipe._cancel_tasks()  # _halt came before the tasks were made
    try:
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def _watch_token(pipe: Pipeline, token: CancelToken) -> None:
    # The async stages' own wait on the pipeline's token, so that it cancels a
    # coroutine that is running (a thread stage's function is not interrupted).
    await token.await_cancelled()  # its cancel(), its deadline or a parent's
    try:
        token.raise_if_cancelled()
    except Cancelled as exc:
        pipe._fail(exc, "cancel token")


async def acall_all(pipe: Pipeline, stage: _Stage, batch: List[Any], counters: _Counters,
                    flush: Optional[Callable[[List[Any]], Awaitable[None]]]) -> List[Any]:
    """``call_all`` for an async stage: await ``fn(item)`` for each item of *batch*.

    As there, what the function raises comes out as ``_FunctionFailed``; except the
    ``CancelledError`` of ``_halt`` cancelling the task, which ends it (``WorkerExit``)."""
    fn = stage.fn
    limiter = stage.limiter
    try:
        out: List[Any] = []
        if limiter is None and not stage.generator:
            append = out.append
            for item in batch:
                result = await fn(item)
                if result is not SKIP:
                    append(result)
            return out
        for item in batch:
            if limiter is not None:
                t0 = perf_counter()
                await limiter.aacquire()  # on this loop's timer; a cancelled wait gives its token back
                counters.rate_wait += perf_counter() - t0
            if stage.generator:
                agen = fn(item)
                try:
                    async for result in agen:
                        out.append(result)
                        if flush is not None and len(out) >= FLUSH_EVERY:
                            await flush(out)
                            out = []
                finally:
                    await agen.aclose()
            else:
                result = await fn(item)
                if result is not SKIP:
                    out.append(result)
        return out
    except _Stopped:
        raise
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) and pipe._stop.is_set():
            raise  # _halt cancelled us
        raise _FunctionFailed(exc) from None


async def awork(pipe: Pipeline, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
    """``_pipeline_threads.work`` as a task on the loop."""
    aget_many = stage.inbox.aget_many
    aput_many = out.aput_many
    cancel = pipe._cancel
    batch_size = 1
    leaving = WorkerExit(pipe, stage, counters, out)

    async def flush(items: List[Any]) -> None:  # also called by acall_all, for a generator stage
        t0 = perf_counter()
        try:
            await aput_many(items, cancel=cancel)
        except (ShutDown, Cancelled) as exc:
            raise leaving.put_ended(exc) from None
        counters.sent(t0, len(items), out)

    with leaving:
        while True:
            t0 = perf_counter()
            batch = await aget_many(batch_size, cancel=cancel)
            mark = counters.took(t0, len(batch))
            results = await acall_all(pipe, stage, batch, counters, flush)
            batch_size = counters.worked(mark, len(batch))
            if results:
                await flush(results)


async def awork_ordered(pipe: Pipeline, stage: _Stage, counters: _Counters, out: Queue[Any]) -> None:
    """``_pipeline_threads.work_ordered`` as a task on the loop. The take lock is an
    asyncio.Lock: every worker of the stage runs on this one thread."""
    aget_many = stage.inbox.aget_many
    aput_many = out.aput_many
    assert stage.tokens is not None
    take_token = stage.tokens.aget
    give_token = stage.tokens.put_nowait  # never more than `window` tokens: never full
    take_lock = stage.atake_lock
    cancel = pipe._cancel
    batch_size = 1
    with WorkerExit(pipe, stage, counters, out):
        while True:
            t0 = perf_counter()
            await take_token(cancel=cancel)  # ShutDown: the pipeline is stopping
            try:
                async with take_lock:
                    batch = await aget_many(batch_size, cancel=cancel)
                    seq = stage.next_seq
                    stage.next_seq = seq + 1
            except ShutDown:
                stage.give_back_token()  # the clean end
                raise
            mark = counters.took(t0, len(batch))
            results = await acall_all(pipe, stage, batch, counters, None)
            batch_size = counters.worked(mark, len(batch))
            if not stage.hand_in(seq, results):
                continue
            for due in stage.due_batches():
                t2 = perf_counter()
                if due:
                    await aput_many(due, cancel=cancel)
                give_token(None)
                counters.sent(t2, len(due), out)
