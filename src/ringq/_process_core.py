"""The parent side of ``ringq.ProcessExecutor``: its worker processes and threads (private).

:class:`_Core` is everything the pool's three threads share: the *dispatcher*
hands pending tasks, in batches, to each worker's own ProcessQueue, never more
than a few milliseconds of work ahead of what that worker has finished; the
*collector* drains the shared results queue and completes the futures (outside
every lock: unpickling runs user code); the *watcher* waits on the workers'
sentinels and reports a death to the collector after the dead worker's last
message, so that only the task in the dead worker's slot fails and the tasks it
had not started go to the others. The worker's side is ``_process_worker.py``.
"""
from __future__ import annotations

import itertools
import os
import pickle
import signal
import threading
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as _wait_sentinels
from time import monotonic
from typing import Any, Deque, Dict, List, Optional, Tuple

from ._errors import Empty, Full, ShutDown
from ._executor import _Future
from ._process import ProcessQueue
from ._process_worker import _CHUNK, _DIED, _INIT_FAILED, _OK, _PART, _QUEUE_CAPACITY, _worker_main
from ._queue import Queue

_AHEAD_SECONDS = 0.004           # work sent ahead of a worker, measured in its task time
_MAX_AHEAD = 256                 # tasks sent ahead of a worker, at most
_START_AHEAD = 2                 # ... until a task time has been measured
_STOP_GRACE = 10.0               # seconds a worker told to stop may take before SIGTERM
_MAX_IDLE_DEATHS = 4             # consecutive deaths without a task running break the pool


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


# --- tasks and workers ---------------------------------------------------------------------


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
        tasks: ProcessQueue[Tuple[int, int, Optional[bytes]]] = ProcessQueue(0, _QUEUE_CAPACITY)  # (tid, kind, payload)
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
            from .process_pool import WorkerDied  # (loaded: it made this pool)

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
                    neww.process.kill()  # it ran nothing; the watcher may be gone already
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
    except BaseException as e:  # noqa: BLE001 - the task fails, the pool carries on
        task.set_exception(RuntimeError(f"cannot unpickle the task's result sent by the worker: {e!r}"))
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
