"""The runnable examples in examples/ work, on both implementations."""
import os
import subprocess
import sys

import pytest

import _helpers
import ringq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("workers", ["1", "3"])
def test_priority_jobs_example(impl, workers):
    # Seed 003's priority-based processing; the script checks its own run and exits 1 on a failure.
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "priority_jobs.py"), "--workers", workers],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rejected: Invalid priority: urgent" in proc.stdout
    assert f"36 jobs ran with {workers} workers (ringq {impl})" in proc.stdout
    assert "ok: every job ran once, by priority, FIFO within a priority" in proc.stdout


EXAMPLES = os.path.join(ROOT, "examples")
needs_examples = pytest.mark.skipif(not os.path.isdir(EXAMPLES),
                                    reason="examples/ is not here (the tests run without the repository)")

#: Every program in examples/ and the test that runs it (issue 21: every example runs in CI).
EXAMPLE_TESTS = {
    "async_adaptive_rate.py": "tests/test_examples.py::test_seed_003_async_examples",
    "async_backpressure.py": "tests/test_examples.py::test_seed_003_async_examples",
    "async_bounded_queue.py": "tests/test_examples.py::test_seed_003_async_examples",
    "async_request_queue.py": "tests/test_examples.py::test_seed_003_async_examples",
    "async_worker_pool.py": "tests/test_examples.py::test_seed_003_async_examples",
    "image_pipeline.py": "tests/test_toolkit_examples.py::test_image_pipeline_uploads_every_image_in_order",
    "log_pipeline.py":
        "tests/test_toolkit_examples.py::test_log_pipeline_drains_every_entry_after_the_last_producer",
    "priority_jobs.py": "tests/test_examples.py::test_priority_jobs_example",
    "rate_limited_requests.py": "tests/test_toolkit_examples.py::test_rate_limited_requests_keep_to_the_rate",
    "redis_log_pipeline.py": "tests/test_redis.py::test_log_pipeline_example_survives_a_sigkill",
    "typed_usage.py": "tests/test_examples.py::test_typed_usage_example",
    "worker_pool.py":
        "tests/test_toolkit_examples.py::test_worker_pool_returns_results_and_errors_to_the_submitter",
}


@needs_examples
def test_every_example_is_run_by_a_test():
    assert sorted(EXAMPLE_TESTS) == sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py")), (
        "a program in examples/ without a test that runs it: add one, and list it in EXAMPLE_TESTS")
    for example, test in EXAMPLE_TESTS.items():
        path, name = test.split("::")
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        assert f"def {name}(" in source, f"{example}: {test} does not exist"


@needs_examples
def test_typed_usage_example(impl):
    # The typed tour of the public API: every call behaves as docs/api.md says (it went
    # stale once, asserting that Queue could not be subclassed, and no test noticed).
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "typed_usage.py")],
                          env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"typed_usage: ok (ringq {ringq.__version__}, {impl})" in proc.stdout


ASYNC_SEED_003 = ["async_bounded_queue", "async_worker_pool", "async_backpressure",
                  "async_adaptive_rate", "async_request_queue"]


@pytest.mark.parametrize("name", ASYNC_SEED_003)
def test_seed_003_async_examples(impl, name):
    # Seed 003's programs, async (issue 20, section 5); each checks its own run and exits 1 on a failure.
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name + ".py")],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok: "), proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ASYNC_SEED_003)
def test_seed_003_stdlib_versions_still_do_the_same(name):
    # The stdlib versions the examples are measured against (benchmarks/seed003_stdlib) pass the same checks.
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "seed003_stdlib", name + ".py")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok: "), proc.stdout + proc.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_async_pipeline_benchmark_runs_and_checks_its_results(impl, loop):
    # benchmarks/async_pipeline.py (issue 20, section 6) at a small size: it still works, on both loops.
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "async_pipeline.py"), "--items", "3000",
         "--rounds", "1", "--loop", loop],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"3,000 items, 3 async stages of trivial coroutines, {loop} loop, ringq {impl}" in proc.stdout
    assert proc.stdout.count("x\n") == 3, proc.stdout
