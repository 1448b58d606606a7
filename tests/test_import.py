"""`import ringq` loads the core only; the toolkit is imported on first use (PEP 562)."""
import subprocess
import sys

import pytest

import _helpers
import ringq

TOOLKIT = ["ringq.broadcast", "ringq.pipeline", "ringq.pool", "ringq.ratelimit", "ringq.router", "ringq.redis",
           "ringq._process", "ringq.process_pool"]


def _modules_after(impl, code):
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_import_ringq_loads_no_toolkit_module(impl):
    loaded = _modules_after(impl, "import ringq")
    assert "ringq" in loaded and "ringq._queue" in loaded
    assert not loaded & set(TOOLKIT), sorted(loaded & set(TOOLKIT))
    # asyncio still comes with ringq: Empty, Full and ShutDown subclass asyncio.QueueEmpty,
    # asyncio.QueueFull and (3.13+) asyncio.QueueShutDown, so the classes need it.
    # concurrent.futures comes only with the toolkit's pool (or with asyncio).


def test_first_use_imports_the_toolkit_module(impl):
    loaded = _modules_after(impl, "import ringq; ringq.Pipeline")
    assert "ringq.pipeline" in loaded and "ringq.pool" not in loaded
    loaded = _modules_after(impl, "from ringq import BoundedExecutor")
    assert "ringq.pool" in loaded and "ringq.pipeline" not in loaded


def test_every_public_name_resolves_and_is_listed():
    for name in ringq.__all__:
        assert getattr(ringq, name) is not None, name
    assert set(ringq.__all__) <= set(dir(ringq))
    import ringq.pipeline as pipeline_module
    from ringq import SKIP, Pipeline, Router  # noqa: F401 - the from-import form

    assert ringq.Pipeline is pipeline_module.Pipeline
    assert ringq.pool.BoundedExecutor is ringq.BoundedExecutor  # the old submodule attributes
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        ringq.no_such_name  # noqa: B018
