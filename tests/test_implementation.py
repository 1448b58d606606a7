"""Which implementation ``import ringq`` picks, and what both modules export."""
import importlib
import importlib.util
import queue
import subprocess
import sys

import pytest

import _helpers
import ringq


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="only CPython uses the Cython core"
)
def test_default_implementation_is_cython():
    if _helpers.no_extensions_env():
        assert ringq.IMPLEMENTATION == "python"
        assert ringq.Queue is importlib.import_module("ringq._queue_py").Queue
    elif getattr(importlib.util.find_spec("ringq._queue_c"), "origin", None) is None:
        # A pure install (the py3-none-any wheel), or a checkout never built (where the
        # include directory _queue_c/ is found as a namespace package, with no origin):
        # it falls back to the twin by itself.
        assert ringq.IMPLEMENTATION == "python"
        assert ringq.Queue is importlib.import_module("ringq._queue_py").Queue
    else:
        # The compiled core is installed: it must be the one in use. A core that
        # is present but fails to import (and so silently falls back) is a broken build.
        assert ringq.IMPLEMENTATION == "cython"
        assert ringq.Queue is importlib.import_module("ringq._queue_c").Queue


@pytest.mark.parametrize("value, expected", [("1", "python"), ("yes", "python")])
def test_no_extensions_env_selects_twin(value, expected):
    code = (
        "import ringq, ringq._queue_py\n"
        "print(ringq.IMPLEMENTATION, ringq.Queue is ringq._queue_py.Queue)\n"
    )
    env = _helpers.child_env("python")
    env["RINGQ_NO_EXTENSIONS"] = value
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, "True"]


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="only CPython uses the Cython core"
)
@pytest.mark.parametrize("value", ["", "0"])
def test_empty_or_zero_env_keeps_cython(value):
    try:
        _helpers.import_compiled("ringq._queue_c")
    except ImportError:
        pytest.skip("compiled core not built")
    code = "import ringq, ringq._queue_c\nprint(ringq.IMPLEMENTATION, ringq.Queue is ringq._queue_c.Queue)\n"
    env = _helpers.child_env("cython")
    env["RINGQ_NO_EXTENSIONS"] = value
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cython", "True"]


def test_module_queue_is_a_class(qmod, impl):
    assert isinstance(qmod.Queue, type)
    assert qmod.Queue.__name__ == "Queue"


def test_exceptions_subclass_the_stdlib_and_asyncio_ones():
    import asyncio

    assert issubclass(ringq.Empty, queue.Empty) and issubclass(ringq.Empty, asyncio.QueueEmpty)
    assert issubclass(ringq.Full, queue.Full) and issubclass(ringq.Full, asyncio.QueueFull)
    assert not issubclass(ringq.Empty, queue.Full) and not issubclass(ringq.Full, queue.Empty)
    if sys.version_info >= (3, 13):
        assert issubclass(ringq.ShutDown, queue.ShutDown)
        assert issubclass(ringq.ShutDown, asyncio.QueueShutDown)
    else:
        assert issubclass(ringq.ShutDown, Exception)
        assert ringq.ShutDown not in (queue.Empty, queue.Full)


def test_each_impl_raises_the_package_exceptions(Queue):
    q = Queue(1)
    with pytest.raises(ringq.Empty):
        q.get_nowait()
    q.put_nowait(1)
    with pytest.raises(ringq.Full):
        q.put_nowait(2)
    q.shutdown()
    with pytest.raises(ringq.ShutDown):
        q.put_nowait(3)


def test_public_names():
    for name in ("IMPLEMENTATION", "Empty", "Full", "Queue", "ShutDown", "__version__"):
        assert hasattr(ringq, name), name
