"""CPython's own ThreadPoolExecutor tests, run on ringq.BoundedExecutor.

The test classes are imported from the running interpreter's ``test`` package
(``test.test_concurrent_futures``: a package on 3.12+, one module on 3.9-3.11);
nothing of CPython's code is copied here. Where that package is not installed
(many distributions and CI images strip it), the module is skipped, saying so.

The adapter is as thin as the issue asks: ``ThreadPoolExecutor``'s constructor on
``BoundedExecutor(n, 2**20)``, with ThreadPoolExecutor's default worker count.
While a test runs, ``concurrent.futures.ThreadPoolExecutor`` is the adapter (some
tests name that class instead of ``self.executor_type``), and so it is in the
child interpreters that some tests start (their script gets the same adapter
prepended).

These tests use whichever ringq.Queue is loaded (CI runs the suite once compiled
and once with RINGQ_NO_EXTENSIONS=1).

Differences that docs/api.md states are listed in DOCUMENTED_DIFFERENCES; each of
those tests is replaced by a check of ringq's documented behaviour.
"""
import concurrent.futures
import importlib
import sys
import threading
import unittest
from unittest import mock

import pytest

import ringq

ADAPTER_NAME = "BoundedThreadPoolExecutor"

# Run here (exec) and in every child interpreter a test starts: one definition.
ADAPTER_SOURCE = f'''
import concurrent.futures as _cf
import os as _os

import ringq as _ringq


class {ADAPTER_NAME}(_ringq.BoundedExecutor):
    """ThreadPoolExecutor's constructor on BoundedExecutor(n, 2**20)."""

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        if max_workers is None:  # ThreadPoolExecutor's default
            cpus = getattr(_os, "process_cpu_count", _os.cpu_count)()
            max_workers = min(32, (cpus or 1) + 4)
        super().__init__(max_workers, 2 ** 20, thread_name_prefix=thread_name_prefix,
                         initializer=initializer, initargs=initargs)
'''

_namespace = {}
exec(ADAPTER_SOURCE, _namespace)
Adapter = _namespace[ADAPTER_NAME]

# A child interpreter started by a test imports the executor from concurrent.futures.
CHILD_PRELUDE = ADAPTER_SOURCE + f"\n_cf.{ADAPTER_NAME} = _cf.ThreadPoolExecutor = {ADAPTER_NAME}\n"

# Class name -> submodule of the package layout (3.12+).
CLASSES = {
    "ThreadPoolExecutorTest": "test_thread_pool",
    "ThreadPoolShutdownTest": "test_shutdown",
    "ThreadPoolWaitTests": "test_wait",
    "ThreadPoolAsCompletedTest": "test_as_completed",
    "ThreadPoolInitializerTest": "test_init",
    "ThreadPoolFailingInitializerTest": "test_init",
}

# Tests that join the pool's threads with no timeout: a regression (a worker that
# never leaves) would hang the run. They run in a helper thread with a deadline.
BOUNDED_SECONDS = 120.0
HANG_PRONE = {
    "test_del_shutdown", "test_shutdown_no_wait", "test_context_manager_shutdown",
    "test_threads_terminate", "test_thread_names_assigned", "test_thread_names_default",
    "test_map_submits_without_iteration", "test_free_reference", "test_hang_issue12364",
}


def _load_classes():
    try:
        package = importlib.import_module("test.test_concurrent_futures")
    except (ImportError, unittest.SkipTest) as exc:
        return None, f"CPython's test.test_concurrent_futures is not importable here ({exc!r})"
    found = {}
    for name, submodule in CLASSES.items():
        module = package
        if hasattr(package, "__path__"):
            try:
                module = importlib.import_module(f"test.test_concurrent_futures.{submodule}")
            except (ImportError, unittest.SkipTest) as exc:
                return None, f"test.test_concurrent_futures.{submodule} is not importable ({exc!r})"
        cls = getattr(module, name, None)
        if cls is not None:
            found[name] = cls
    if not found:
        return None, "test.test_concurrent_futures has none of the ThreadPool test classes"
    return found, None


if sys.implementation.name != "cpython":
    pytest.skip("CPython's own test suite", allow_module_level=True)
_classes, _why = _load_classes()
if _classes is None:
    pytest.skip(_why, allow_module_level=True)


class _OnBoundedExecutor:
    """Put first in the bases: the executor under test is the adapter."""

    executor_type = Adapter

    def setUp(self):
        patches = [mock.patch.object(concurrent.futures, "ThreadPoolExecutor", Adapter)]
        module = sys.modules[self._cpython_module]
        if hasattr(module, "assert_python_ok"):
            patches.append(mock.patch.object(module, "assert_python_ok",
                                             _with_adapter(module.assert_python_ok)))
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)
        super().setUp()

    def _callTestMethod(self, method):
        if method.__name__ not in HANG_PRONE:
            return super()._callTestMethod(method)
        outcome = {}

        def run():
            try:
                super(_OnBoundedExecutor, self)._callTestMethod(method)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                outcome["exc"] = exc

        thread = threading.Thread(target=run, name=f"bounded-{method.__name__}", daemon=True)
        thread.start()
        thread.join(BOUNDED_SECONDS)
        if thread.is_alive():
            self.fail(f"{method.__name__} still running after {BOUNDED_SECONDS} s (a hang)")
        if "exc" in outcome:
            raise outcome.pop("exc")


def _with_adapter(assert_python_ok):
    def run(*args, **kwargs):
        if len(args) >= 2 and args[0] == "-c":
            args = ("-c", CHILD_PRELUDE + args[1]) + tuple(args[2:])
        return assert_python_ok(*args, **kwargs)
    return run


# --- documented differences (docs/api.md, BoundedExecutor) ---------------------------


def _thread_names_default(self):
    # docs/api.md: threads are named f"{thread_name_prefix}_{n}", default prefix
    # "BoundedExecutor-N" (ThreadPoolExecutor's is "ThreadPoolExecutor-N").
    executor = self.executor_type(max_workers=5)
    executor.map(abs, range(-5, 5))
    threads = list(executor._threads)
    del executor
    for t in threads:
        self.assertRegex(t.name, r"^BoundedExecutor-\d+_[0-4]$")
        t.join(BOUNDED_SECONDS)
        self.assertFalse(t.is_alive())


DOCUMENTED_DIFFERENCES = {
    ("ThreadPoolShutdownTest", "test_thread_names_default"): _thread_names_default,
}


def _adapted(name, base):
    body = {"__module__": __name__, "__qualname__": f"Bounded{name}",
            "_cpython_module": base.__module__}
    for (cls_name, method), replacement in DOCUMENTED_DIFFERENCES.items():
        if cls_name == name and hasattr(base, method):
            body[method] = replacement
    return type(f"Bounded{name}", (_OnBoundedExecutor, base), body)


for _name, _base in _classes.items():
    globals()[f"Bounded{_name}"] = _adapted(_name, _base)
del _name, _base


def test_the_adapter_is_what_runs():
    # Guards the adapter itself: these classes must test ringq, not the stdlib.
    assert issubclass(Adapter, ringq.BoundedExecutor)
    for name in _classes:
        assert globals()[f"Bounded{name}"].executor_type is Adapter
    pool = Adapter(3)
    try:
        assert (pool.max_workers, pool.max_pending) == (3, 2 ** 20)
    finally:
        pool.shutdown()
    assert f"_cf.ThreadPoolExecutor = {ADAPTER_NAME}" in CHILD_PRELUDE
