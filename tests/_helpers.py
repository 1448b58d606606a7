"""Shared helpers for the ringq test-suite (imported as ``_helpers``).

Nothing here is a test. The helpers are written so that a broken queue makes a
test *fail* (with a useful message) instead of hanging the whole run.
"""
import importlib
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ringq

#: Upper bound for anything that should happen "promptly" on a noisy machine.
LONG = 10.0
#: Timeout given to blocking calls that another thread is expected to release.
#: Much longer than LONG: a lost wake-up then fails the test (the call is still
#: blocked after LONG) instead of being hidden by the call's own timeout.
BLOCK_TIMEOUT = 60.0
#: How long a call must stay blocked before we believe it really blocks.
BLOCK_DELAY = 0.15

CPYTHON = sys.implementation.name == "cpython"
#: For tests that depend on CPython's refcounting (immediate __del__), its GC
#: knobs, tracemalloc or _testcapi.
cpython_only = pytest.mark.skipif(not CPYTHON, reason="CPython-specific (refcounting, GC or allocator hooks)")

IMPL_MODULES = {"cython": "ringq._queue_c", "python": "ringq._queue_py"}


def no_extensions_env():
    return os.environ.get("RINGQ_NO_EXTENSIONS", "") not in ("", "0")


def import_compiled(name):
    """The compiled module *name* (``ringq._queue_c``...), or ImportError if it is not built.

    In a source checkout that was never built, ``ringq._queue_c`` still imports: the
    directory of its include files makes it a namespace package, with nothing in it.
    """
    module = importlib.import_module(name)
    if getattr(module, "__file__", None) is None:
        raise ImportError(f"{name} is not built (only its source directory was found)", name=name)
    return module


class Call:
    """Run ``fn`` in a daemon thread and record how it ended."""

    def __init__(self, fn, *args, **kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.started = threading.Event()
        self.returned = threading.Event()
        self.result = None
        self.exc = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.started.wait(LONG), "helper thread never started"

    def _run(self):
        self.started.set()
        try:
            self.result = self.fn(*self.args, **self.kwargs)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.exc = e
        finally:
            self.returned.set()

    def wait(self, timeout=LONG):
        """Wait until the call ends; fail if it does not end in time."""
        if not self.returned.wait(timeout):
            raise AssertionError(f"{self.fn!r} still blocked after {timeout}s")
        self.thread.join(timeout)
        return self

    def value(self, timeout=LONG):
        self.wait(timeout)
        if self.exc is not None:
            raise self.exc
        return self.result


def assert_blocks(fn, *args, delay=BLOCK_DELAY, **kwargs):
    """Start ``fn(*args)`` in a thread and check it is still blocked after ``delay``.

    Returns the :class:`Call` so that the test can release it and then check
    ``call.value()`` / ``call.exc``.
    """
    call = Call(fn, *args, **kwargs)
    if call.returned.wait(delay):
        raise AssertionError(
            f"{getattr(fn, '__name__', fn)!r} did not block: returned {call.result!r}, "
            f"raised {call.exc!r}"
        )
    return call


def assert_all_block(fns, delay=BLOCK_DELAY):
    """Start every zero-argument callable of ``fns`` in its own thread; all must
    still be blocked after one shared ``delay``. Returns their :class:`Call` s."""
    calls = [Call(fn) for fn in fns]
    time.sleep(delay)
    for c in calls:
        if c.returned.is_set():
            raise AssertionError(f"{c.fn!r} did not block: returned {c.result!r}, raised {c.exc!r}")
    return calls


def blocking_then_released(block_fn, trigger_fn, delay=BLOCK_DELAY):
    """CPython's BlockingTestMixin, made deadlock-proof.

    ``block_fn`` runs in a helper thread; after it has stayed blocked for
    ``delay`` seconds, ``trigger_fn`` runs in this thread and must release it.
    Returns the value of ``block_fn`` (or raises its exception).
    """
    call = assert_blocks(block_fn, delay=delay)
    trigger_fn()
    return call.value()


def wait_until(predicate, timeout=LONG, interval=0.01):
    """Poll ``predicate`` (calling gc.collect() in between) until it is true or time is up.

    Free-threaded CPython and PyPy may free an object a little after its last
    reference is gone; a real leak stays forever and still fails.
    """
    import gc

    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def join_all(threads, timeout=60.0):
    """Join threads with one overall deadline; fail naming the stuck ones."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout}s: {stuck}"


def child_env(impl):
    env = dict(os.environ)
    if impl == "python":
        env["RINGQ_NO_EXTENSIONS"] = "1"
    else:
        env.pop("RINGQ_NO_EXTENSIONS", None)
    # The child imports the *installed* ringq, like the tests do.
    env.pop("PYTHONPATH", None)
    env["PYTHONFAULTHANDLER"] = "1"
    return env


CHILD_PRELUDE = """\
import sys, os, time, gc, threading
IMPL = {impl!r}
import ringq
if IMPL == "cython":
    import ringq._queue_c as qmod
    assert ringq.IMPLEMENTATION == "cython", ringq.IMPLEMENTATION
else:
    import ringq._queue_py as qmod
    assert ringq.IMPLEMENTATION == "python", ringq.IMPLEMENTATION
Queue = qmod.Queue
"""


def run_child(impl, code, timeout=60.0, args=()):
    """Run ``code`` in a fresh interpreter bound to implementation ``impl``.

    Fails (instead of hanging) if the child does not finish within
    ``timeout`` seconds; returns the CompletedProcess otherwise.
    """
    src = CHILD_PRELUDE.format(impl=impl) + textwrap.dedent(code)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", src, *args],
            env=child_env(impl),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/" if os.name != "nt" else None,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr
        raise AssertionError(
            f"child still running after {timeout}s (deadlock?)\n"
            f"--- stdout ---\n{out}\n--- stderr ---\n{err}"
        ) from None
    return proc


def check_child(impl, code, timeout=60.0, args=()):
    """Like :func:`run_child` but also requires exit status 0 and returns stdout."""
    proc = run_child(impl, code, timeout=timeout, args=args)
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    return proc.stdout


def shutdown_supported(cls):
    return hasattr(cls, "shutdown")


ShutDown = ringq.ShutDown
