"""Process stages for ringq.Pipeline: ``p.stage(fn, workers=4, processes=True)``.

A process stage keeps the thread stage's machinery (its bounded input queue, its
worker threads, ordering, window, rate, stats, cancel, close) and moves only the
calls of ``fn`` to worker processes: each of the stage's threads sends the batch
it took to a :class:`ringq.ProcessExecutor` of *workers* processes as one task
and passes on the outputs that come back (``SKIP`` dropped, a generator's items
flattened, in order). Items cross to the processes and back in those batches.

*fn* reaches the processes once, as the pool's initializer argument: with the
fork start method nothing is pickled (a lambda works); with spawn or forkserver
it must pickle, which is checked when the stage is added (TypeError naming it).

Stopping: when the pipeline halts (first error anywhere, cancel, close, break,
Ctrl-C) the stage's processes are killed at once, so threads waiting for a batch
return; on a clean end the pool is shut down and joined with the pipeline's
threads. A worker process that dies fails its batch with ``WorkerDied``, which
stops the pipeline like any stage error.
"""
from __future__ import annotations

import inspect
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, List, Optional

from .process_pool import ProcessExecutor, check_sendable

__all__ = ["RemoteStage"]

_fn: Optional[Callable[[Any], Any]] = None


def _install(fn: Callable[[Any], Any]) -> None:
    """In the worker process: the stage's function, for the calls below."""
    global _fn
    _fn = fn


def _run_batch(items: List[Any], generator: bool) -> List[Any]:
    from .pipeline import SKIP

    fn = _fn
    assert fn is not None
    out: List[Any] = []
    if generator:
        for item in items:
            out.extend(fn(item))
    else:
        for item in items:
            result = fn(item)
            if result is not SKIP:
                out.append(result)
    return out


def _run_one(item: Any) -> Any:
    assert _fn is not None
    return _fn(item)


def _run_gen(item: Any) -> List[Any]:
    assert _fn is not None
    return list(_fn(item))


class RemoteStage:
    """The processes of one stage: a ProcessExecutor and the calls into it."""

    def __init__(self, fn: Callable[[Any], Any], workers: int, mp_context: Any = None) -> None:
        ctx = mp_context if mp_context is not None else multiprocessing.get_context()
        if ctx.get_start_method() != "fork":
            check_sendable(fn, "stage function")
        self.generator = inspect.isgeneratorfunction(fn)
        self.halted = False
        self.pool = ProcessExecutor(workers, workers, mp_context=ctx, initializer=_install, initargs=(fn,))
        # The per-item call (used when the stage has a rate): a generator function
        # for a generator stage, so that the pipeline treats it as one.
        self.call: Callable[[Any], Any] = self._call_gen if self.generator else self._call_one

    def _result(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return self.pool.submit(fn, *args).result()
        except (BrokenProcessPool, RuntimeError):
            if self.halted:
                from .pipeline import _Stopped

                raise _Stopped from None  # the pipeline halted: not this stage's error
            raise

    def run_batch(self, batch: List[Any]) -> List[Any]:
        return self._result(_run_batch, batch, self.generator)  # type: ignore[no-any-return]

    def _call_one(self, item: Any) -> Any:
        return self._result(_run_one, item)

    def _call_gen(self, item: Any) -> Iterator[Any]:
        yield from self._result(_run_gen, item)

    def terminate(self) -> None:
        """The pipeline halts: kill the processes now (threads waiting get an error)."""
        self.halted = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool._core.terminate()

    def close(self) -> None:
        """After the stage's threads ended: stop the processes and reap them."""
        self.pool.shutdown(wait=True)
