"""Bind the whole suite to both implementations of ringq.Queue.

* ``impl``   - "cython" or "python"; the "cython" leg is skipped when the
  compiled core cannot be imported or RINGQ_NO_EXTENSIONS is set.
* ``qmod``   - the module under test (``ringq._queue_c`` / ``ringq._queue_py``).
* ``Queue``  - its ``Queue`` class.
* ``compat`` - ``queue.Queue`` plus both ringq classes, for the behaviour that
  ringq shares with the stdlib.
"""
import faulthandler
import importlib
import os
import queue
import sys

import pytest

import _helpers

IMPLS = ["cython", "python"]


def _import_impl(name, compiled, twin):
    if name == "cython":
        if _helpers.no_extensions_env():
            pytest.skip("RINGQ_NO_EXTENSIONS is set: the Cython core is not used")
        try:
            return _helpers.import_compiled(compiled)
        except ImportError as e:
            pytest.skip(f"{compiled} cannot be imported: {e}")
    return importlib.import_module(twin)


def load_impl(name):
    return _import_impl(name, "ringq._queue_c", "ringq._queue_py")


@pytest.fixture(params=IMPLS)
def impl(request):
    load_impl(request.param)
    return request.param


@pytest.fixture
def qmod(impl):
    return load_impl(impl)


@pytest.fixture
def Queue(qmod):
    return qmod.Queue


def load_process_impl(name):
    """The ProcessQueue implementation module: ``ringq._process_c`` or ``ringq._process_py``."""
    return _import_impl(name, "ringq._process_c", "ringq._process_py")


@pytest.fixture(params=IMPLS)
def pimpl(request, monkeypatch):
    """The ProcessQueue implementation under ringq.ProcessExecutor (the pool reads the
    name when it starts). tests/test_process_queue.py has its own ``pimpl``."""
    from ringq import _process_core

    monkeypatch.setattr(_process_core, "ProcessQueue", load_process_impl(request.param).ProcessQueue)
    return request.param


@pytest.fixture
def no_child_left():
    """After the test, no child process is left (waits 5 s for them to end, then kills
    them and fails). Used by the process pool and process stage tests through
    ``pytestmark = pytest.mark.usefixtures("no_child_left")``."""
    import multiprocessing as mp
    import time

    yield
    deadline = time.monotonic() + 5
    while mp.active_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    left = mp.active_children()
    for p in left:
        p.kill()
    assert not left, f"child processes left behind: {left}"


@pytest.fixture(params=["queue.Queue"] + IMPLS)
def compat(request):
    """A Queue class: the stdlib's, or one of ringq's two."""
    if request.param == "queue.Queue":
        return queue.Queue
    return load_impl(request.param).Queue


@pytest.fixture(params=["queue.SimpleQueue"] + IMPLS)
def compat_simple(request):
    """queue.SimpleQueue or one of ringq's Queues: for CPython's SimpleQueue-only tests.

    queue.Queue cannot take them: its lock is not re-entrant.
    """
    if request.param == "queue.SimpleQueue":
        return queue.SimpleQueue
    return load_impl(request.param).Queue


@pytest.fixture
def compat_sd(compat):
    """Like ``compat`` but only classes that have ``shutdown`` (queue.Queue is 3.13+)."""
    if not hasattr(compat, "shutdown"):
        pytest.skip(f"queue.Queue has no shutdown() on Python {sys.version_info[:2]}")
    return compat


# A deadlocked test must not hang the whole run (CI has no pytest-timeout):
# dump every thread's stack and exit if one test runs far too long.
WATCHDOG_SECONDS = float(os.environ.get("RINGQ_TEST_WATCHDOG", "240"))
_watchdog_file = None


def pytest_configure(config):
    """Find a file descriptor for the real stderr (fd 2 is captured during tests)."""
    global _watchdog_file
    fd = None
    try:
        capman = config.pluginmanager.getplugin("capturemanager")
        fd = capman._global_capturing.err.targetfd_save  # pytest internals, best effort
    except Exception:  # noqa: BLE001 - any pytest version without them: use fd 2
        fd = None
    try:
        _watchdog_file = os.fdopen(os.dup(fd if fd is not None else 2), "w")
    except OSError:
        _watchdog_file = sys.__stderr__


@pytest.fixture(autouse=True)
def _watchdog():
    f = _watchdog_file or sys.__stderr__
    try:
        f.write("")
        f.flush()
    except (OSError, ValueError, AttributeError):
        f = sys.__stderr__
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=f)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
