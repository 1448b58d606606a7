"""The worker process of ``ringq.ProcessExecutor``, and the messages it exchanges (private).

A worker takes batches of tasks from its own :class:`ringq.ProcessQueue`, writes
the id of the task it starts into its slot of shared memory (so that the pool
knows which task a worker that dies was running), runs it, and sends the result
back, pickled on its own, through the results ProcessQueue that every worker
shares. The parent side is ``_process_core.py``; the public class,
``process_pool.py``.
"""
from __future__ import annotations

import os
import pickle
import signal
import threading
import traceback
from time import perf_counter
from typing import Any, Callable, List, Optional, Tuple

from ._errors import Empty, ShutDown

_CALL, _CHUNK = 0, 1                              # kinds of task
_OK, _ERR, _PART, _INIT_FAILED, _DIED = range(5)  # kinds of message back
_QUEUE_CAPACITY = 16 * 2**20     # bytes of each ProcessQueue (a task or a result must fit)


def _watch_parent() -> None:
    """A worker whose parent died (killed) leaves instead of waiting for ever: it is
    then adopted by another process (under forkserver the parent is the fork server,
    which ends with the program)."""
    import time

    ppid = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid:
            os._exit(1)


def _sendable_error(exc: BaseException, tb: str) -> Tuple[BaseException, str]:
    """*exc* if it survives pickling both ways, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc, protocol=5))
    except Exception as why:  # noqa: BLE001 - unpicklable exception: send its text
        return RuntimeError(f"{type(exc).__qualname__}: {exc} (the exception could not be pickled: {why!r})"), tb
    return exc, tb


def _send(put: Callable[[Any], None], tid: int, task_kind: int, kind: int, value: Any,
          elapsed: float) -> None:
    """Send one result, pickled here: a result that cannot be pickled becomes the
    task's error, and the parent unpickles each result on its own (one that fails
    fails its task, not the batch it came with)."""
    try:
        data = pickle.dumps(value, protocol=5)
    except BaseException as exc:  # noqa: BLE001 - the result could not be sent: send why
        err = _sendable_error(RuntimeError(
            f"the worker could not send the task's result back: {exc!r}"), traceback.format_exc())
        data = pickle.dumps(([], err) if task_kind == _CHUNK else err, protocol=5)
        kind = _ERR
    else:
        if len(data) > _QUEUE_CAPACITY // 4:
            if task_kind == _CHUNK and kind == _OK and len(value) > 1:
                # A chunk's results too big for the queue at once: send them in halves.
                half = len(value) // 2
                _send(put, tid, task_kind, _PART, value[:half], 0.0)
                _send(put, tid, task_kind, kind, value[half:], elapsed)
                return
            if len(data) > _QUEUE_CAPACITY // 2:
                err = (ValueError(f"the task's result is too big to send back ({len(data)} bytes pickled, "
                                  f"at most {_QUEUE_CAPACITY // 2}); write it to a file or shared memory "
                                  "and return its name"), "")
                data = pickle.dumps(([], err) if task_kind == _CHUNK else err, protocol=5)
                kind = _ERR
    put((tid, kind, data, elapsed))


class _Terminated(BaseException):
    """Raised in a worker by SIGTERM (the pool stops it) while it runs a task or its
    own code, and never sent back as a task's error. Inside a queue call SIGTERM
    only sets a flag, checked when the call returns: an exception there could
    leave the pure-Python queue's lock held by this live process (one raised between
    its acquire and its with-block), or its ring half updated."""


_in_queue_call = 0
_stop_requested = False


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stop_requested
    if _in_queue_call:
        _stop_requested = True
        return
    raise _Terminated


def _queue_call(fn: Callable[..., Any], *args: Any) -> Any:
    global _in_queue_call
    _in_queue_call += 1
    try:
        return fn(*args)
    finally:
        _in_queue_call -= 1
        if _stop_requested:
            raise _Terminated


def _worker_main(index: int, tasks: Any, results: Any, slots: Any, initializer: Any,
                 initargs: Tuple[Any, ...], max_tasks: Optional[int], ppid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _on_sigterm)
    del ppid  # (the pool's pid; under forkserver the parent is the fork server)
    threading.Thread(target=_watch_parent, daemon=True).start()
    put_item = results.put

    def put(msg: Any) -> None:
        _queue_call(put_item, msg)

    if initializer is not None:
        try:
            initializer(*initargs)
        except _Terminated:
            return
        except BaseException:  # noqa: BLE001 - reported, and breaks the pool
            try:
                put((-1, _INIT_FAILED, traceback.format_exc(), 0.0))
            except _Terminated:
                pass
            return
    loads = pickle.loads
    done = 0
    try:
        while True:
            try:
                # In slices, so that a SIGTERM flagged during the wait is seen.
                batch = _queue_call(tasks.get_many, 256, True, 0.2)
            except Empty:
                continue
            except ShutDown:
                return
            for tid, kind, payload in batch:
                slots[index] = tid
                start = perf_counter()
                if kind == _CALL:
                    try:
                        fn, args, kwargs = loads(payload)
                        value = fn(*args, **kwargs)
                    except _Terminated:
                        raise
                    except BaseException as exc:  # noqa: BLE001 - goes to the future
                        msg: Any = _sendable_error(exc, traceback.format_exc())
                        exc = None  # type: ignore[assignment]
                        _send(put, tid, kind, _ERR, msg, perf_counter() - start)
                    else:
                        _send(put, tid, kind, _OK, value, perf_counter() - start)
                    value = None
                else:
                    out: List[Any] = []
                    try:
                        fn, argsets, _ = loads(payload)
                        for a in argsets:
                            out.append(fn(*a))
                    except _Terminated:
                        raise
                    except BaseException as exc:  # noqa: BLE001 - raised by map's iterator
                        msg = (out, _sendable_error(exc, traceback.format_exc()))
                        exc = None
                        _send(put, tid, kind, _ERR, msg, perf_counter() - start)
                    else:
                        _send(put, tid, kind, _OK, out, perf_counter() - start)
                    out = []
                # Between tasks the slot names none: a worker that leaves now (retiring
                # after max_tasks_per_child) was running nothing, and its death must
                # not fail the task it had finished (seen once in CI: WorkerDied,
                # "exited with code 0", on a task whose result had been sent).
                slots[index] = -1
                done += 1
                if max_tasks is not None and done >= max_tasks:
                    return  # retire: the parent sends the tasks not started elsewhere
    except (ShutDown, _Terminated):
        return  # the results queue was shut down, or SIGTERM: the pool is gone
