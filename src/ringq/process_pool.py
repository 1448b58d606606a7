"""``ringq.ProcessExecutor``: a bounded process pool whose workers survive their crashes.

    >>> import ringq, math
    >>> with ringq.ProcessExecutor(max_workers=2, max_pending=100) as pool:
    ...     pool.submit(math.factorial, 5).result()
    120

It is a :class:`concurrent.futures.Executor` with ``ProcessPoolExecutor``'s meaning
(the function and its arguments are pickled and run in a worker process; ``submit``,
``map``, ``shutdown`` and the context manager; ``concurrent.futures.wait`` and
``as_completed`` accept its futures), plus :class:`ringq.BoundedExecutor`'s bound:
at most *max_pending* tasks wait for a worker, ``submit`` waits for room, and
``submit_nowait``/``submit_call(..., timeout=)`` raise :class:`ringq.Full`.

How it works. Submitted tasks wait in a bounded :class:`ringq.Queue` in this
process. A dispatcher thread hands them, in batches, to each worker's own
:class:`ringq.ProcessQueue`, never more than a few milliseconds of work ahead of
what the worker has finished. Workers send every result back as soon as it is
ready through one shared ProcessQueue, which a collector thread drains in
batches. Because the pool knows which tasks each worker holds, and each worker
writes the id of the task it starts into shared memory, a worker that dies
(SIGKILL, a segfault, ``os._exit``) fails only the task it was running, with
:class:`WorkerDied` naming the exit code or signal; the tasks it had not started
go to the other workers, and a replacement is started. Workers that die
without running a task several times in a row (a crash at start-up, an
initializer that exits) break the pool: every pending future then raises
``BrokenProcessPool`` saying why.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
import weakref
from collections import deque
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as _wait_sentinels
from time import monotonic, perf_counter
from types import TracebackType
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, NoReturn, Optional, Tuple, Type, TypeVar

from ._errors import Cancelled, Empty, Full, ShutDown
from ._process import ProcessQueue
from ._queue import CancelToken, Queue
from .pool import _check_token, _Future

__all__ = ["ProcessExecutor", "WorkerDied", "check_sendable"]

_T = TypeVar("_T")

_CALL, _CHUNK = 0, 1                              # kinds of task
_OK, _ERR, _PART, _INIT_FAILED, _DIED = range(5)  # kinds of message back
_QUEUE_CAPACITY = 16 * 2**20     # bytes of each ProcessQueue (a task or a result must fit)
_AHEAD_SECONDS = 0.004           # work sent ahead of a worker, measured in its task time
_MAX_AHEAD = 256                 # tasks sent ahead of a worker, at most
_START_AHEAD = 2                 # ... until a task time has been measured
_STOP_GRACE = 10.0               # seconds a worker told to stop may take before SIGTERM
_MAX_IDLE_DEATHS = 4             # consecutive deaths without a task running break the pool


class WorkerDied(BrokenProcessPool):
    """The worker process running this task died (killed, crashed or exited).

    A subclass of ``BrokenProcessPool``, so code written for ProcessPoolExecutor
    catches it; unlike there, only this task failed and the pool keeps serving.
    *exitcode* is the process's exit code (negative: the signal number that ended it).
    """

    def __init__(self, message: str, exitcode: Optional[int] = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


def _describe_exit(exitcode: Optional[int]) -> str:
    if exitcode is None:
        return "ended"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by signal {-exitcode} ({name})"
    return f"exited with code {exitcode}"


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text: set as ``__cause__`` of a task's exception."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _with_remote_traceback(exc: BaseException, tb: str) -> BaseException:
    exc.__cause__ = _RemoteTraceback(f'\n"""\n{tb}"""')
    return exc


# --- can it travel? ------------------------------------------------------------------------


def _callable_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None)
    if name is None:
        return repr(fn)
    return f"{module}.{name}" if module else str(name)


def check_sendable(fn: Any, what: str = "function") -> bytes:
    """Pickle *fn* as it will travel to a worker process; a clear TypeError if it can't.

    Functions travel by reference (module and qualified name), so a lambda, a
    function defined inside another function, or a method of a local class cannot
    reach a process started with spawn or forkserver. Returns the pickle.
    """
    try:
        return pickle.dumps(fn, protocol=5)
    except Exception as exc:
        name = _callable_name(fn)
        qualname = getattr(fn, "__qualname__", "") or ""
        if "<lambda>" in qualname or "<locals>" in qualname:
            kind = ("a lambda" if "<lambda>" in qualname.rsplit(".", 1)[-1]
                    else "a function defined inside another function")
            raise TypeError(
                f"cannot send {what} {name} to a worker process: it is {kind}, and worker processes "
                "receive functions by pickling their module and name. Define it with 'def' at the top "
                "level of a module (functools.partial(top_level_function, ...) also works for bound "
                f"arguments)") from exc
        raise TypeError(
            f"cannot send {what} {name} to a worker process: it cannot be pickled ({exc}). Use a "
            "function defined at the top level of a module, with picklable arguments") from exc


def _pickle_task(fn: Any, args: Any, kwargs: Any) -> bytes:
    try:
        return pickle.dumps((fn, args, kwargs), protocol=5)
    except Exception as exc:
        check_sendable(fn)  # the function is the usual culprit: name it
        raise TypeError(f"cannot send the arguments of {_callable_name(fn)} to a worker process: "
                        f"they cannot be pickled ({exc}); pass picklable values") from exc


# --- the worker process --------------------------------------------------------------------


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
    leave the pure-Python queue's lock held (its lock is not robust to a process
    that dies, nor to an exception raised between its acquire and its with-block)."""


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
                        exc = None  # type: ignore[assignment]
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


# --- the parent side ---------------------------------------------------------------------


class _PTask(_Future):
    """A submitted task: the caller's Future and the queued record in one."""

    def __init__(self, tid: int, kind: int, payload: bytes) -> None:
        _Future.__init__(self)
        self.tid = tid
        self.kind = kind
        self.payload: Optional[bytes] = payload
        self.parts: Optional[List[Any]] = None  # a chunk's results sent in pieces


class _Worker:
    __slots__ = ("index", "process", "tasks", "held", "sent", "ran", "alive")

    def __init__(self, index: int, process: Any, tasks: Any) -> None:
        self.index = index
        self.process = process
        self.tasks = tasks
        self.held: Dict[int, _PTask] = {}  # sent, no result yet
        self.sent = 0                       # tasks ever sent (max_tasks_per_child)
        self.ran = False                    # a result came back from it
        self.alive = True


_WAKE = object()


class _Core:
    """Everything the pool's threads share; it never refers to the executor, so an
    executor dropped without shutdown() is collected (and then shut down)."""

    def __init__(self, ctx: Any, max_workers: int, max_pending: int, initializer: Any,
                 initargs: Tuple[Any, ...], max_tasks: Optional[int]) -> None:
        self.ctx = ctx
        self.max_workers = max_workers
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks = max_tasks
        self.pending: Queue[Any] = Queue(max_pending)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.retry: Deque[_PTask] = deque()
        self.workers: Dict[int, _Worker] = {}
        self.tasks: Dict[int, Tuple[_PTask, _Worker]] = {}
        self.task_time = 0.0           # moving average of a task's run time in a worker
        self.ahead = _START_AHEAD
        # Tasks held per worker at least (one running, the rest queued at it): 2 keeps a
        # worker busy across the round trip of a result (process stages set it).
        self.min_ahead = 1
        self.idle_deaths = 0
        self.broken: Optional[str] = None
        self.stopping = False          # no more input: finish what is held, then stop workers
        self.started = False
        self.threads: List[threading.Thread] = []
        self.results: Any = None
        self.slots: Any = None
        self.wake_r = self.wake_w = -1
        self.next_tid = itertools.count().__next__

    # --- start ------------------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            if self.started:
                return
            self.started = True
        workers: List[_Worker] = []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        try:
            self.results = ProcessQueue(0, _QUEUE_CAPACITY)
            self.slots = self.ctx.RawArray("q", self.max_workers)
            for i in range(self.max_workers):
                self.slots[i] = -1
            workers = []
            for i in range(self.max_workers):
                workers.append(self._new_worker(i))
        except BaseException as exc:
            for w in workers:
                w.process.kill()
                w.process.join()
            self.break_pool(f"cannot start the worker processes: {exc!r}")
            raise
        with self.lock:
            for w in workers:
                self.workers[w.index] = w
        self._wake()
        for target, name in ((self._dispatch, "dispatch"), (self._collect, "collect"),
                             (self._watch, "watch")):
            thread = threading.Thread(target=target, name=f"ringq.ProcessExecutor-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _new_worker(self, index: int) -> _Worker:
        tasks = ProcessQueue(0, _QUEUE_CAPACITY)
        self.slots[index] = -1
        process = self.ctx.Process(
            target=_worker_main, name=f"ringq.ProcessExecutor-worker-{index}", daemon=True,
            args=(index, tasks, self.results, self.slots, self.initializer, self.initargs,
                  self.max_tasks, os.getpid()))
        process.start()
        return _Worker(index, process, tasks)

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    # --- dispatching --------------------------------------------------------------------

    def _room(self, w: _Worker) -> int:
        room = self.ahead - len(w.held)
        if self.max_tasks is not None:
            room = min(room, self.max_tasks - w.sent)
        return room

    def _assign(self, batch: List[_PTask], i: int) -> Tuple[Dict[_Worker, List[_PTask]], int]:
        """Under the lock: give tasks of *batch* from *i* on to the live workers with room
        (the one with the most room first); returns the plan and the index of the first
        task left. Waits until some worker has room, unless the pool is broken."""
        plan: Dict[_Worker, List[_PTask]] = {}
        while i < len(batch) and self.broken is None:
            best, room = None, 0
            for w in self.workers.values():
                if w.alive:
                    r = self._room(w)
                    if r > room:
                        best, room = w, r
            if best is None:
                if plan:
                    break  # send what is planned first
                self.cond.wait()
                continue
            take = batch[i:i + room]
            i += len(take)
            for task in take:
                best.held[task.tid] = task
                self.tasks[task.tid] = (task, best)
            best.sent += len(take)
            plan.setdefault(best, []).extend(take)
        return plan, i

    def _send_plan(self, plan: Dict[_Worker, List[_PTask]]) -> None:
        for w, tasks in plan.items():
            try:
                w.tasks.put_many([(t.tid, t.kind, t.payload) for t in tasks])
            except (ShutDown, ValueError, OSError):
                pass  # that worker died meanwhile: the collector sends its tasks elsewhere

    def _total_room(self) -> int:
        return sum(max(0, self._room(w)) for w in self.workers.values() if w.alive)

    def _dispatch(self) -> None:
        get_many = self.pending.get_many
        try:
            while True:
                with self.lock:
                    # Take tasks only when a worker has room for them: the others stay
                    # in the bounded queue, where they count for max_pending.
                    while not self.retry and self.broken is None and self._total_room() <= 0:
                        self.cond.wait()
                    retry = list(self.retry)
                    self.retry.clear()
                    room = self._total_room()
                if retry:
                    self._dispatch_batch(retry)
                    continue
                try:
                    batch = get_many(max(1, room))
                except ShutDown:
                    break
                live = [t for t in batch if t is not _WAKE and t.set_running_or_notify_cancel()]
                if live:
                    self._dispatch_batch(live)
            # No more input: serve the retries until every task held is done.
            while True:
                with self.lock:
                    while not self.retry and self.tasks and self.broken is None:
                        self.cond.wait()
                    retry = list(self.retry)
                    self.retry.clear()
                    if not retry:
                        self.stopping = True
                        workers = list(self.workers.values())
                        break
                self._dispatch_batch(retry)
            for w in workers:
                w.tasks.shutdown()  # the workers leave once they are idle
            self._wake()
        except BaseException as exc:  # noqa: BLE001 - must not die silently
            self.break_pool(f"the dispatcher thread failed: {exc!r}")

    def _dispatch_batch(self, batch: List[_PTask]) -> None:
        i = 0
        while i < len(batch):
            with self.lock:
                plan, i = self._assign(batch, i)
                broken = self.broken
            self._send_plan(plan)
            if broken is not None:
                for t in batch[i:]:
                    if not t.done():
                        t.set_exception(BrokenProcessPool(broken))
                return

    # --- collecting ---------------------------------------------------------------------

    def _collect(self) -> None:
        get_many = self.results.get_many
        try:
            while True:
                try:
                    msgs = get_many(1024)
                except ShutDown:
                    return
                outcomes: List[Tuple[_PTask, int, Any]] = []
                deaths = []
                with self.lock:
                    freed = False
                    for tid, kind, value, elapsed in msgs:
                        if kind == _DIED:
                            deaths.append(value)
                            continue
                        if kind == _INIT_FAILED:
                            deaths.append(("init", value))
                            continue
                        entry = self.tasks.get(tid)
                        if entry is None:
                            continue
                        task, w = entry
                        if kind == _PART:
                            if task.parts is None:
                                task.parts = []
                            task.parts.append(value)
                            continue
                        del self.tasks[tid]
                        w.held.pop(tid, None)
                        w.ran = True
                        freed = True
                        self.idle_deaths = 0
                        self.task_time = elapsed if not self.task_time else 0.8 * self.task_time + 0.2 * elapsed
                        outcomes.append((task, kind, value))
                    if freed:
                        t = self.task_time
                        ahead = min(_MAX_AHEAD, int(_AHEAD_SECONDS / t) if t > 0 else _MAX_AHEAD)
                        self.ahead = max(self.min_ahead, ahead)
                        self.cond.notify_all()
                for task, kind, value in outcomes:
                    _complete(task, kind, value)
                del outcomes
                for death in deaths:
                    if isinstance(death, tuple) and death[0] == "init":
                        self.break_pool("A process in the pool failed in its initializer, the pool is not "
                                        "usable anymore; the initializer's traceback:\n" + death[1])
                    else:
                        self._worker_died(death)
                with self.lock:
                    if self.stopping and not any(w.alive for w in self.workers.values()):
                        return
        except BaseException as exc:  # noqa: BLE001
            self.break_pool(f"the collector thread failed: {exc!r}")

    def _worker_died(self, index: int) -> None:
        """Called by the collector once every message the dead worker sent has been read."""
        with self.lock:
            w = self.workers.get(index)
        if w is None or not w.alive:
            return
        w.process.join()  # it has ended (its sentinel is ready): this reaps it
        exitcode = w.process.exitcode
        with self.lock:
            w.alive = False
            running = self.slots[index]
            failed = w.held.pop(running, None) if running >= 0 else None
            if failed is not None:
                del self.tasks[running]
            for tid, task in w.held.items():
                self.tasks.pop(tid, None)
                self.retry.append(task)
            w.held.clear()
            retired = exitcode == 0
            if failed is None and not retired:
                self.idle_deaths += 1
            replace = not self.stopping and self.broken is None
            too_many = self.idle_deaths >= _MAX_IDLE_DEATHS
            self.cond.notify_all()
        w.tasks.shutdown(immediate=True)  # a dispatcher blocked on it gets ShutDown
        if failed is not None:
            failed.set_exception(WorkerDied(
                f"the worker process (pid {w.process.pid}) running this task {_describe_exit(exitcode)}; "
                "the pool started a replacement", exitcode))
            failed = None
        if too_many:
            self.break_pool(f"worker processes keep dying without running a task ({self.idle_deaths} in a "
                            f"row; the last one {_describe_exit(exitcode)})")
            return
        if replace:
            try:
                neww = self._new_worker(index)
            except BaseException as exc:  # noqa: BLE001
                self.break_pool(f"cannot start a worker process to replace a dead one: {exc!r}")
                return
            with self.lock:
                self.workers[index] = neww
                broken = self.broken is not None
                late = self.stopping or broken
                self.cond.notify_all()
            if late:  # the pool stopped while the replacement started
                if broken:
                    neww.process.terminate()
                else:
                    neww.tasks.shutdown()
            self._wake()
        self.pending_wake()

    def pending_wake(self) -> None:
        """Make the dispatcher look at the retries (it may be waiting for input)."""
        try:
            self.pending.put_nowait(_WAKE)
        except (Full, ShutDown):
            pass  # it is busy, or past its input and waiting on the condition
        with self.lock:
            self.cond.notify_all()

    # --- watching -----------------------------------------------------------------------

    def _watch(self) -> None:
        stop_since: Optional[float] = None
        try:
            while True:
                with self.lock:
                    live = {w.process.sentinel: w for w in self.workers.values() if w.alive}
                    stopping = self.stopping or self.broken is not None
                    broken = self.broken is not None
                if broken:
                    # break_pool sent SIGTERM; SIGKILL for those not gone within 1 s.
                    end = monotonic() + 1.0
                    for w in live.values():
                        w.process.join(max(0.0, end - monotonic()))
                    for w in live.values():
                        if w.process.exitcode is None:
                            w.process.kill()
                            w.process.join()
                    break
                if not live and stopping:
                    break
                if stopping and stop_since is None:
                    stop_since = monotonic()
                if stop_since is not None and monotonic() - stop_since > _STOP_GRACE:
                    # Workers told to stop that did not leave (stuck in a task, or in
                    # the exit of a forked child): SIGTERM, then SIGKILL a second later.
                    for w in live.values():
                        if monotonic() - stop_since > _STOP_GRACE + 1.0:
                            w.process.kill()
                        else:
                            w.process.terminate()
                ready = _wait_sentinels([self.wake_r, *live], None if stop_since is None else 0.5)
                for r in ready:
                    if r == self.wake_r:
                        os.read(self.wake_r, 4096)
                        continue
                    w = live[r]
                    # After every message the worker sent (FIFO): the collector handles it.
                    try:
                        self.results.put((-1, _DIED, w.index, 0.0))
                    except ShutDown:
                        return
                    with self.lock:
                        # Not again until the collector has replaced it.
                        while w.alive and self.workers.get(w.index) is w and self.broken is None:
                            self.cond.wait()
        except BaseException as exc:  # noqa: BLE001
            self.break_pool(f"the watcher thread failed: {exc!r}")
        finally:
            # Everything is over: let the collector leave.
            with self.lock:
                done = self.stopping or self.broken is not None
            if done:
                try:
                    self.results.shutdown()
                except Exception:  # noqa: BLE001
                    pass

    # --- ending ---------------------------------------------------------------------------

    def break_pool(self, why: str) -> None:
        with self.lock:
            if self.broken is not None:
                return
            self.broken = why
            self.stopping = True
            held = [t for t, _ in self.tasks.values()] + list(self.retry)
            self.tasks.clear()
            self.retry.clear()
            workers = list(self.workers.values())
            for w in workers:
                w.held.clear()
            self.cond.notify_all()
        # Not immediate: an immediate shutdown would drop the tasks still queued, and
        # their futures would never complete (seen in CI: an initializer that failed
        # before the dispatcher took the first task left its submitter waiting).
        # Take them out here and fail them with the rest.
        self.pending.shutdown()
        while True:
            try:
                held.extend(t for t in self.pending.get_many(1024, False) if t is not _WAKE)
            except (Empty, ShutDown):
                break
        for w in workers:
            try:
                w.process.terminate()  # SIGTERM; the watcher kills those still there after 1 s
            except Exception:  # noqa: BLE001
                pass
        err = BrokenProcessPool(why)
        for t in held:
            if not t.done():
                t.set_exception(err)
        self._wake()

    def terminate(self) -> None:
        """Kill every worker now (Ctrl-C during shutdown, interpreter exit)."""
        self.break_pool("the pool was terminated")


def _complete(task: _PTask, kind: int, data: bytes) -> None:
    """Outside every lock (unpickling runs user code): complete *task*'s future."""
    if task.done():
        return
    task.payload = None
    parts, task.parts = task.parts, None
    try:
        value = pickle.loads(data)
        if parts:
            earlier = [x for part in parts for x in pickle.loads(part)]
    except BaseException as exc:  # noqa: BLE001 - the task fails, the pool carries on
        task.set_exception(RuntimeError(f"cannot unpickle the task's result sent by the worker: {exc!r}"))
        return
    if kind == _OK:
        if parts:
            value = earlier + value
        task.set_result((value, None) if task.kind == _CHUNK else value)
        return
    if task.kind == _CHUNK:
        results, (exc, tb) = value
        if parts:
            results = earlier + results
        task.set_result((results, _with_remote_traceback(exc, tb) if tb else exc))
    else:
        exc, tb = value
        task.set_exception(_with_remote_traceback(exc, tb) if tb else exc)


_live: "weakref.WeakSet[ProcessExecutor]" = weakref.WeakSet()
_exit_registered = False


def _at_exit() -> None:
    for pool in list(_live):
        try:
            pool.shutdown(wait=True)
        except BaseException:  # noqa: BLE001
            pool._core.terminate()


def _register_exit() -> None:
    global _exit_registered
    if _exit_registered:
        return
    _exit_registered = True
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_exit)
    else:  # pragma: no cover
        import atexit

        atexit.register(_at_exit)


def _default_workers() -> int:
    if hasattr(os, "process_cpu_count"):
        n = os.process_cpu_count()  # type: ignore[attr-defined]
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return n or 1


class ProcessExecutor(Executor):
    """A process pool that keeps at most *max_pending* tasks waiting for a worker.

    ``ProcessExecutor(max_workers=None, max_pending=None, *, mp_context=None,
    initializer=None, initargs=(), max_tasks_per_child=None, cancel=None)``

    * *max_workers*: worker processes (default: the CPUs this process may use);
      *mp_context*, *initializer*, *initargs* and *max_tasks_per_child* mean what
      they mean for ``ProcessPoolExecutor``. An initializer that raises breaks the
      pool (``BrokenProcessPool``, with the initializer's traceback).
    * *max_pending*: tasks waiting for a worker at most (default ``64 * max_workers``);
      a map chunk counts as one task.
    * *cancel*: a :class:`ringq.CancelToken`; when it fires the pool does
      ``shutdown(wait=False, cancel_futures=True)`` and later submits raise
      :class:`ringq.Cancelled`.

    Everything sent to a worker is pickled: the function travels by reference (its
    module and name), so it must be defined at the top level of a module. A lambda
    or a nested function raises TypeError at ``submit``/``map``, naming it.

    A task's exception is raised by ``future.result()`` with the worker's
    traceback text as its ``__cause__``. A worker that dies while running a task
    fails that task alone with :class:`WorkerDied` (exit code or signal in the
    message and in ``.exitcode``); the pool replaces the worker. Workers ignore
    SIGINT: Ctrl-C is handled by the parent (``shutdown`` interrupted by Ctrl-C
    kills the workers). A task and its result must each fit in 16 MiB pickled.
    """

    def __init__(self, max_workers: Optional[int] = None, max_pending: Optional[int] = None, *,
                 mp_context: Any = None, initializer: Optional[Callable[..., object]] = None,
                 initargs: Tuple[Any, ...] = (), max_tasks_per_child: Optional[int] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        _check_token(cancel)
        if max_workers is None:
            max_workers = _default_workers()
        if max_pending is None:
            max_pending = 64 * max_workers
        for name, value in (("max_workers", max_workers), ("max_pending", max_pending)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {type(value).__name__!r}")
            if value < 1:
                raise ValueError(f"{name} must be greater than 0")
        if max_tasks_per_child is not None:
            if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer or None")
            if max_tasks_per_child < 1:
                raise ValueError("max_tasks_per_child must be >= 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        ctx = mp_context if mp_context is not None else multiprocessing.get_context()
        if ctx.get_start_method() != "fork" and initializer is not None:
            check_sendable(initializer, "initializer")
            try:
                pickle.dumps(initargs, protocol=5)
            except Exception as exc:
                raise TypeError(f"cannot send initargs to the worker processes: {exc}") from exc
        self._core = _Core(ctx, max_workers, max_pending, initializer, tuple(initargs), max_tasks_per_child)
        self._max_workers = max_workers
        self._max_pending = max_pending
        self._shutdown = False
        self._cancel = cancel
        self._cancelled = False
        self._shutdown_lock = threading.Lock()
        _register_exit()
        _live.add(self)
        weakref.finalize(self, _finalize, self._core)
        self._watch: Optional[CancelToken] = None
        if cancel is not None:
            self._watch = cancel.child()
            weakref.finalize(self, self._watch.cancel)
            threading.Thread(target=_watch_token, args=(self._watch, cancel, weakref.ref(self)),
                             name="ringq.ProcessExecutor-cancel", daemon=True).start()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def max_pending(self) -> int:
        return self._max_pending

    def pending(self) -> int:
        """Tasks waiting for a worker now (not counting those sent to a worker)."""
        return self._core.pending.qsize()

    # --- submitting ------------------------------------------------------------------

    def _check_open(self) -> None:
        core = self._core
        if core.broken is not None:
            raise BrokenProcessPool(core.broken)
        if self._cancel is not None and self._cancel.cancelled:
            self._refuse_cancelled()
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _refuse_cancelled(self) -> NoReturn:
        self._token_fired()
        assert self._cancel is not None
        try:
            self._cancel.raise_if_cancelled()
        except Cancelled as exc:
            reason = exc
        raise Cancelled(f"cannot schedule new futures after the executor's cancel token fired ({reason})") from reason

    def _turned_away(self) -> NoReturn:
        core = self._core
        if core.broken is not None:
            raise BrokenProcessPool(core.broken) from None
        if self._cancel is not None and self._cancel.cancelled:
            self._refuse_cancelled()
        raise RuntimeError("cannot schedule new futures after shutdown") from None

    def _enqueue(self, task: _PTask, block: bool, timeout: Optional[float],
                 cancel: Optional[CancelToken] = None) -> None:
        core = self._core
        if not core.started:
            core.start()
        try:
            core.pending.put(task, block, timeout, cancel=cancel if cancel is not None else self._cancel)
        except ShutDown:
            self._turned_away()
        except Cancelled:
            if self._cancel is not None and self._cancel.cancelled:
                self._refuse_cancelled()
            raise

    def _make(self, kind: int, payload: bytes) -> _PTask:
        if len(payload) > _QUEUE_CAPACITY // 2:
            raise ValueError(f"a task of {len(payload)} bytes pickled is too big to send to a worker "
                             f"(at most {_QUEUE_CAPACITY // 2}); pass a file name or shared memory instead")
        return _PTask(self._core.next_tid(), kind, payload)

    def _submit(self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                block: bool, timeout: Optional[float], cancel: Optional[CancelToken] = None) -> Future[Any]:
        self._check_open()
        task = self._make(_CALL, _pickle_task(fn, args, kwargs))
        self._enqueue(task, block, timeout, cancel)
        return task

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` in a worker; wait while *max_pending* tasks are queued."""
        return self._submit(fn, args, kwargs, True, None)

    def submit_nowait(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Like :meth:`submit`, but raise :class:`ringq.Full` at once if the queue is full."""
        return self._submit(fn, args, kwargs, False, None)

    def submit_call(self, fn: Callable[..., _T], args: Iterable[Any] = (),
                    kwargs: Optional[Dict[str, Any]] = None, *, block: bool = True,
                    timeout: Optional[float] = None, cancel: Optional[CancelToken] = None) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)``, waiting for room as ``Queue.put`` does:
        :class:`ringq.Full` when none came within *timeout* (or at once with
        ``block=False``); *cancel* ends this one wait with :class:`ringq.Cancelled`."""
        _check_token(cancel)
        return self._submit(fn, tuple(args), dict(kwargs) if kwargs else {}, block, timeout, cancel)

    # --- map -------------------------------------------------------------------------

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any], timeout: Optional[float] = None,
            chunksize: Optional[int] = None, buffersize: Optional[int] = None) -> Iterator[_T]:
        """``fn(*args)`` for each args of ``zip(*iterables)`` in the workers, results in order.

        As ``ProcessPoolExecutor.map`` (with 3.14's *buffersize*), except that
        *chunksize* None (the default) picks the chunk size: with the whole input
        known (*buffersize* None, the input is read now) about four chunks per
        worker, at most 4096 items each, as ``multiprocessing.Pool.map`` does;
        reading lazily, chunks grow from 1 item to 1024. *max_pending* and
        *buffersize* count chunks. The first exception of a call is raised by the
        iterator when it gets there, after the results before it.
        """
        if buffersize is not None:
            if isinstance(buffersize, bool) or not isinstance(buffersize, int):
                raise TypeError("buffersize must be an integer or None")
            if buffersize < 1:
                raise ValueError("buffersize must be None or > 0")
        if chunksize is not None:
            if isinstance(chunksize, bool) or not isinstance(chunksize, int):
                raise TypeError("chunksize must be an integer or None")
            if chunksize < 1:
                raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + monotonic()
        self._check_open()
        fn_pickle = check_sendable(fn)
        del fn_pickle
        argsets: Iterator[Tuple[Any, ...]] = zip(*iterables)
        if buffersize is None:
            items = list(argsets)
            if chunksize is None:
                chunksize = max(1, min(4096, -(-len(items) // (4 * self._max_workers))))
            sizes: Iterator[int] = itertools.repeat(chunksize)
            argsets = iter(items)
        elif chunksize is None:
            sizes = itertools.chain((1, 2, 4, 8, 16, 32, 64, 128, 256, 512), itertools.repeat(1024))
        else:
            sizes = itertools.repeat(chunksize)
        chunks = self._chunks(fn, argsets, sizes)
        futures: Deque[_PTask] = deque()
        try:
            for task in (chunks if buffersize is None else itertools.islice(chunks, buffersize)):
                self._enqueue(task, True, None)
                futures.append(task)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return self._map_results(futures, chunks, buffersize is not None, end_time)

    def _chunks(self, fn: Any, argsets: Iterator[Tuple[Any, ...]], sizes: Iterator[int]) -> Iterator[_PTask]:
        for size in sizes:
            group = tuple(itertools.islice(argsets, size))
            if not group:
                return
            yield from self._chunk_tasks(fn, group)

    def _chunk_tasks(self, fn: Any, group: Tuple[Tuple[Any, ...], ...]) -> Iterator[_PTask]:
        payload = _pickle_task(fn, group, None)
        if len(payload) > _QUEUE_CAPACITY // 4 and len(group) > 1:
            half = len(group) // 2
            yield from self._chunk_tasks(fn, group[:half])
            yield from self._chunk_tasks(fn, group[half:])
            return
        yield self._make(_CHUNK, payload)

    def _map_results(self, futures: Deque[_PTask], chunks: Iterator[_PTask], lazy: bool,
                     end_time: Optional[float]) -> Iterator[Any]:
        try:
            while futures:
                fut = futures[0]
                if end_time is None:
                    results, exc = fut.result()
                else:
                    results, exc = fut.result(max(0.0, end_time - monotonic()))
                futures.popleft()
                if lazy and exc is None:
                    task = next(chunks, None)
                    if task is not None:
                        self._enqueue(task, True, None)
                        futures.append(task)
                yield from results
                if exc is not None:
                    try:
                        raise exc
                    finally:
                        exc = None
        except FuturesTimeoutError:
            raise
        finally:
            for f in futures:
                f.cancel()

    # --- shutting down ---------------------------------------------------------------

    def _token_fired(self) -> None:
        with self._shutdown_lock:
            if self._cancelled:
                return
            self._cancelled = True
        self.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; as ``ProcessPoolExecutor.shutdown``.

        Queued tasks still run unless *cancel_futures* is true. With *wait*, returns
        once every worker process has ended; Ctrl-C during that wait kills the
        workers (their tasks fail with ``BrokenProcessPool``) and is re-raised.
        """
        self._shutdown = True
        _live.discard(self)
        if self._watch is not None:
            self._watch.cancel()
        core = self._core
        core.pending.shutdown()
        if cancel_futures:
            while True:
                try:
                    task = core.pending.get_nowait()
                except (Empty, ShutDown):
                    break
                if task is not _WAKE:
                    task.cancel()
        if not core.started:
            return
        if wait:
            try:
                for thread in core.threads:
                    if thread is not threading.current_thread():
                        thread.join()
                for w in list(core.workers.values()):
                    w.process.join()
            except BaseException:
                core.terminate()
                for w in list(core.workers.values()):
                    w.process.join(5)
                raise
            _close_core(core)

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Optional[bool]:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.shutdown(wait=False, cancel_futures=True)
            self._core.terminate()
            for w in list(self._core.workers.values()):
                w.process.join(5)
            return None
        self.shutdown(wait=True)
        return None

    def __repr__(self) -> str:
        core = self._core
        state = ("broken" if core.broken else "cancelled" if self._cancelled
                 else "shut down" if self._shutdown else "running")
        return (f"<ringq.ProcessExecutor {state} max_workers={self._max_workers} "
                f"max_pending={self._max_pending} pending={core.pending.qsize()}>")


def _close_core(core: _Core) -> None:
    for w in core.workers.values():
        try:
            w.tasks.close()
        except Exception:  # noqa: BLE001
            pass
    if core.results is not None:
        try:
            core.results.close()
        except Exception:  # noqa: BLE001
            pass
    for fd in (core.wake_r, core.wake_w):
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
    core.wake_r = core.wake_w = -1


def _finalize(core: _Core) -> None:
    """The executor was collected without shutdown(): finish the queued tasks, then stop."""
    core.pending.shutdown()


def _watch_token(watch: CancelToken, token: CancelToken, pool_ref: "weakref.ref[ProcessExecutor]") -> None:
    watch.wait()
    if token.cancelled:
        pool = pool_ref()
        if pool is not None:
            pool._token_fired()
