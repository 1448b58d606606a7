"""Run CPython's own asyncio.Queue tests (Lib/test/test_asyncio/test_queues.py) on ringq's q.async_q.

Used by tests/test_foreign_suites.py, in a child interpreter: ``python asyncio_queue_shim.py``.
The stdlib test module is loaded from the interpreter's own ``test`` package (nothing
of it is copied here), with its ``import asyncio`` bound to a copy of asyncio whose
``Queue`` makes a ringq.Queue and returns its AsyncQueueView. Only the tests of
asyncio.Queue itself run (not LifoQueue/PriorityQueue, which ringq does not mirror).
Prints one line per failed or errored test, then "RESULT <run> <failures> <errors> <skipped>".
"""
import asyncio
import importlib.util
import types
import unittest

import ringq


class Queue(ringq.AsyncQueueView):
    """``asyncio.Queue(maxsize)`` for the stdlib tests: the view of a fresh ringq.Queue."""

    __slots__ = ()

    def __init__(self, maxsize=0):
        super().__init__(ringq.Queue(maxsize))


def load():
    spec = importlib.util.find_spec("test.test_asyncio.test_queues")
    if spec is None or spec.origin is None:
        print("MISSING test.test_asyncio.test_queues")
        raise SystemExit(0)
    shim = types.ModuleType("asyncio")
    shim.__dict__.update(asyncio.__dict__)
    shim.Queue = Queue
    source = open(spec.origin, encoding="utf-8").read()
    module = types.ModuleType("ringq_test_queues")
    module.__file__ = spec.origin
    code = compile(source, spec.origin, "exec")
    module.__dict__["__builtins__"] = __builtins__
    exec(code, module.__dict__)  # binds the real asyncio first; replaced below
    module.asyncio = shim  # every test looks asyncio up at run time
    for name in ("QueueJoinTests", "QueueShutdownTests"):
        getattr(module, name).q_class = Queue  # bound to asyncio.Queue at class definition
    return module


def main():
    module = load()
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in ("QueueBasicTests", "QueueGetTests", "QueuePutTests", "QueueJoinTests", "QueueShutdownTests"):
        suite.addTests(loader.loadTestsFromTestCase(getattr(module, name)))
    result = unittest.TextTestRunner(verbosity=0, stream=open("/dev/null", "w")).run(suite)
    for test, _ in result.failures:
        print("FAILED", test.id().rsplit(".", 2)[-2] + "." + test.id().rsplit(".", 1)[-1])
    for test, _ in result.errors:
        print("ERROR", test.id().rsplit(".", 2)[-2] + "." + test.id().rsplit(".", 1)[-1])
    print("RESULT", result.testsRun, len(result.failures), len(result.errors), len(result.skipped))


if __name__ == "__main__":
    main()
