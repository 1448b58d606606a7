"""Suites we did not write, run on ringq: janus's tests on ringq.Queue, CPython's asyncio.Queue tests on q.async_q.

Nothing of those suites is copied into this repository: they run from where they
are, in a child interpreter bound to each implementation, through the adapters in
tests/foreign/ (ours). Each test skips cleanly when its suite is not there.

* janus: set RINGQ_JANUS_TESTS to a janus checkout's ``tests`` directory (e.g. from
  ``git clone https://github.com/aio-libs/janus``, or an sdist); needs pytest-asyncio.
  tests/foreign/janus/ stands in for the janus package (see its docstring).
* CPython: Lib/test/test_asyncio/test_queues.py from the running interpreter's own
  ``test`` package (3.13+: its shutdown tests use asyncio.QueueShutDown).

The failures left are the documented differences, listed below with the reason;
any other failure, or one of these passing, fails the test (update the list).
"""
import importlib.util
import os
import subprocess
import sys

import pytest

import _helpers

FOREIGN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "foreign")

JANUS_DIFFERENCES = {
    # maxsize must be an integer (docs/api.md "Semantics"); janus takes 1.3.
    "tests/test_async.py::TestQueuePut::test_float_maxsize",
    # A ringq queue is bound to no event loop: no _loop / _get_loop().
    "tests/test_mixed.py::TestMixedMode::test_get_loop_ok",
    "tests/test_mixed.py::TestMixedMode::test_get_loop_different_loop",
    # No _put/_get hooks for a subclass to override (docs/api.md "Semantics").
    "tests/test_sync.py::TestFailingQueue::test_failing_queue",
    # It patches loop.is_closed() and counts janus's own calls to it (its notifier).
    "tests/test_sync.py::TestFailingQueue::test_closed_loop_non_failing",
}
# Not in the list: TestQueue::test_queue_join and test_simple_queue call the blocking
# sync_q.get()/join() on the loop's thread (helper threads unblock them). ringq
# raises LoopBlockingError there (issue 17 #21; docs/api.md "Blocking calls on an
# event loop's thread"); tests/foreign/ringq_janus_plugin.py runs those two inside
# ringq.allow_blocking(), the documented opt-out, and they pass.

CPYTHON_DIFFERENCES = {
    # The repr shows ringq's queue, not asyncio.Queue's internals (_getters[1], _queue=[1]).
    "QueueBasicTests.test_repr",
    "QueueBasicTests.test_str",
    # maxsize must be an integer (docs/api.md "Semantics"); asyncio.Queue takes 1.3.
    "QueuePutTests.test_float_maxsize",
    # They use asyncio.Queue's private _getters/_putters deques and _format().
    "QueueGetTests.test_get_with_putters",
    "QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters",
    "QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters",
    "QueueJoinTests.test_format",
    "QueueShutdownTests.test_format",
}


def _run(impl, args, cwd, extra_path):
    env = _helpers.child_env(impl)
    env["PYTHONPATH"] = extra_path
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_janus_suite(impl):
    tests = os.environ.get("RINGQ_JANUS_TESTS")
    if not tests or not os.path.isdir(tests):
        pytest.skip("set RINGQ_JANUS_TESTS to a janus checkout's tests directory")
    if importlib.util.find_spec("pytest_asyncio") is None:
        pytest.skip("janus's suite needs pytest-asyncio")
    root = os.path.dirname(os.path.abspath(tests))
    proc = _run(impl, ["-m", "pytest", os.path.basename(tests), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                       "-p", "ringq_janus_plugin",
                       "-o", "faulthandler_timeout=60", "-rfE", "--deselect", "tests/test_benchmarks.py",
                       "-W", "ignore::DeprecationWarning"],
                cwd=root, extra_path=FOREIGN)
    out = proc.stdout + proc.stderr
    failed = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))}
    assert "passed" in out, out[-3000:]
    assert failed == JANUS_DIFFERENCES, out[-3000:]


def test_cpython_asyncio_queue_suite(impl):
    if sys.version_info < (3, 13):
        pytest.skip("CPython's asyncio.Queue tests of 3.13+ (asyncio.QueueShutDown)")
    try:  # find_spec imports the parents: Debian's CPython has `test` without test_asyncio
        found = importlib.util.find_spec("test.test_asyncio.test_queues") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        pytest.skip("this interpreter has no test package (test.test_asyncio)")
    proc = _run(impl, [os.path.join(FOREIGN, "asyncio_queue_shim.py")], cwd=FOREIGN, extra_path=FOREIGN)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines and lines[-1].startswith("RESULT"), proc.stdout + proc.stderr
    failed = {line.split()[1] for line in lines if line.startswith(("FAILED ", "ERROR "))}
    run = int(lines[-1].split()[1])
    assert run >= 30, proc.stdout
    assert failed == CPYTHON_DIFFERENCES, proc.stdout + proc.stderr
